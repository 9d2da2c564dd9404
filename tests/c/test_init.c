/* test_init: the initial weights of a dense network (init.c): the names, the bounds against PyTorch's
 * formulas (torch.nn.init.kaiming_uniform_ with mode fan_in, xavier_uniform_, calculate_gain), and
 * mg_mlp_init: micrograd's init is mg_mlp_init_uniform's, the scaled ones lie within their bound and fill it. */
#include "check.h"

#include <micrograd.h>

#include <string.h>

#define CHECK_ERROR(expected, call, part)                                                                           \
    do {                                                                                                            \
        mg_clear_error();                                                                                           \
        CHECK((call) == (expected));                                                                                \
        if (!CHECK(strstr(mg_last_error(), part) != NULL)) fprintf(stderr, "  message: \"%s\"\n", mg_last_error()); \
    } while (0)

static void test_names(void) {
    static const char *const names[] = {"micrograd", "kaiming_uniform", "xavier_uniform"};
    for (int i = 0; i < MG_INIT_COUNT; i++) {
        mg_init init = MG_INIT_COUNT;
        CHECK(strcmp(mg_init_name((mg_init)i), names[i]) == 0);
        CHECK(mg_init_from_name(names[i], &init) == MG_OK && init == (mg_init)i);
    }
    CHECK(MG_INIT_COUNT == 3 && strcmp(mg_init_name(MG_INIT_COUNT), "?") == 0);
    CHECK(strcmp(mg_init_name((mg_init)-1), "?") == 0);
    mg_init init = MG_INIT_XAVIER_UNIFORM;
    CHECK_ERROR(MG_ERR_ARG, mg_init_from_name("kaiming", &init),
                "unknown init 'kaiming': expected micrograd, kaiming_uniform or xavier_uniform");
    CHECK(init == MG_INIT_XAVIER_UNIFORM); /* untouched on an error */
    CHECK_ERROR(MG_ERR_NULL, mg_init_from_name(NULL, &init), "NULL");
    CHECK_ERROR(MG_ERR_NULL, mg_init_from_name("micrograd", NULL), "NULL");
}

/* PyTorch's formulas written out: bound = gain * sqrt(3 / fan_in) (Kaiming, fan_in), gain * sqrt(6 / (fan_in
 * + fan_out)) (Xavier); gains sqrt(2) (relu), 5/3 (tanh), 1 (linear, sigmoid) */
static void test_bounds(void) {
    const double gains[MG_ACT_COUNT] = {
        [MG_ACT_LINEAR] = 1.0, [MG_ACT_RELU] = sqrt(2.0), [MG_ACT_TANH] = 5.0 / 3.0, [MG_ACT_SIGMOID] = 1.0};
    const size_t fans[][2] = {{784, 256}, {256, 10}, {2, 16}, {1, 1}};
    for (int a = 0; a < MG_ACT_COUNT; a++)
        for (size_t f = 0; f < sizeof fans / sizeof *fans; f++) {
            size_t in = fans[f][0], out = fans[f][1];
            double b = -1.0;
            CHECK(mg_init_bound(MG_INIT_MICROGRAD, (mg_activation)a, in, out, &b) == MG_OK && b == 1.0);
            CHECK(mg_init_bound(MG_INIT_KAIMING_UNIFORM, (mg_activation)a, in, out, &b) == MG_OK);
            CHECK_NEAR(b, gains[a] * sqrt(3.0 / (double)in), 1e-15);
            CHECK(mg_init_bound(MG_INIT_XAVIER_UNIFORM, (mg_activation)a, in, out, &b) == MG_OK);
            CHECK_NEAR(b, gains[a] * sqrt(6.0 / (double)(in + out)), 1e-15);
        }
    double b = 0.0;
    CHECK(mg_init_bound(MG_INIT_KAIMING_UNIFORM, MG_ACT_RELU, 784, 256, &b) == MG_OK);
    CHECK_NEAR(b, 0.087481, 1e-6); /* sqrt(6 / 784), what torch gives a 784-input ReLU layer */
    b = 7.0;
    CHECK_ERROR(MG_ERR_ARG, mg_init_bound(MG_INIT_KAIMING_UNIFORM, MG_ACT_RELU, 0, 4, &b), "fan_in 0");
    CHECK_ERROR(MG_ERR_ARG, mg_init_bound(MG_INIT_XAVIER_UNIFORM, MG_ACT_RELU, 4, 0, &b), "fan_out 0");
    CHECK_ERROR(MG_ERR_ARG, mg_init_bound((mg_init)9, MG_ACT_RELU, 4, 4, &b), "unknown init 9");
    CHECK_ERROR(MG_ERR_ARG, mg_init_bound(MG_INIT_MICROGRAD, (mg_activation)-2, 4, 4, &b), "unknown activation -2");
    CHECK(b == 7.0); /* untouched on an error */
    CHECK_ERROR(MG_ERR_NULL, mg_init_bound(MG_INIT_MICROGRAD, MG_ACT_RELU, 4, 4, NULL), "bound is NULL");
}

/* every layer's weights in [-bound, bound), the largest near the bound (they fill it); biases 0 */
static void check_layers(mg_mlp *m, mg_init init) {
    const double *p = mg_mlp_params(m);
    size_t width = mg_mlp_num_inputs(m);
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++) {
        size_t size = mg_mlp_layer_size(m, l);
        double bound = 0.0, largest = 0.0;
        int inside = 1, biases_zero = 1;
        CHECK(mg_init_bound(init, mg_mlp_layer_activation(m, l), width, size, &bound) == MG_OK);
        for (size_t j = 0; j < size; j++, p += width + 1) {
            for (size_t i = 0; i < width; i++) {
                inside &= p[i] >= -bound && p[i] < bound;
                largest = fabs(p[i]) > largest ? fabs(p[i]) : largest;
            }
            biases_zero &= p[width] == 0.0;
        }
        CHECK(inside && biases_zero);
        if (!CHECK(largest > 0.99 * bound)) fprintf(stderr, "  layer %zu: largest %g, bound %g\n", l, largest, bound);
        width = size;
    }
}

static void test_mlp_init(void) {
    size_t sizes[] = {256, 10};
    mg_mlp *a = mg_mlp_new(784, 2, sizes, NULL), *b = mg_mlp_new(784, 2, sizes, NULL);
    if (!CHECK(a && b)) return;
    size_t n = mg_mlp_num_params(a);
    /* micrograd's: exactly mg_mlp_init_uniform's weights */
    mg_mlp_init_uniform(a, 42);
    CHECK(mg_mlp_init(b, MG_INIT_MICROGRAD, 42) == MG_OK);
    CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), n * sizeof(double)) == 0);
    check_layers(b, MG_INIT_MICROGRAD);
    for (int init = MG_INIT_KAIMING_UNIFORM; init < MG_INIT_COUNT; init++) {
        CHECK(mg_mlp_init(a, (mg_init)init, 7) == MG_OK && mg_mlp_init(b, (mg_init)init, 7) == MG_OK);
        CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), n * sizeof(double)) == 0); /* a seed, one model */
        check_layers(a, (mg_init)init);
        CHECK(mg_mlp_init(b, (mg_init)init, 8) == MG_OK);
        CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), n * sizeof(double)) != 0);
    }
    /* the same draws as micrograd's, scaled: the first weight is bound * (micrograd's first weight) */
    mg_mlp_init_uniform(a, 3);
    CHECK(mg_mlp_init(b, MG_INIT_KAIMING_UNIFORM, 3) == MG_OK);
    CHECK_SAME(mg_mlp_params(b)[0], sqrt(2.0) * sqrt(3.0 / 784.0) * mg_mlp_params(a)[0]);
    double before = mg_mlp_params(b)[0];
    CHECK_ERROR(MG_ERR_ARG, mg_mlp_init(b, (mg_init)5, 3), "mg_mlp_init: unknown init 5");
    CHECK(mg_mlp_params(b)[0] == before); /* untouched on an error */
    CHECK_ERROR(MG_ERR_NULL, mg_mlp_init(NULL, MG_INIT_MICROGRAD, 3), "NULL");
    mg_mlp_free(a);
    mg_mlp_free(b);

    /* every activation gets its own gain */
    size_t wide[] = {64, 64, 64, 3};
    mg_activation acts[] = {MG_ACT_TANH, MG_ACT_SIGMOID, MG_ACT_RELU, MG_ACT_LINEAR};
    mg_mlp *m = mg_mlp_new(100, 4, wide, acts);
    if (CHECK(m != NULL)) {
        CHECK(mg_mlp_init(m, MG_INIT_XAVIER_UNIFORM, 11) == MG_OK);
        check_layers(m, MG_INIT_XAVIER_UNIFORM);
    }
    mg_mlp_free(m);
}

int main(void) {
    test_names();
    test_bounds();
    test_mlp_init();
    return check_finish("test_init");
}
