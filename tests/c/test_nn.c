/* test_nn: dense networks. Shapes, predict against hand computations and against the scalar engine, fit's
 * gradients against the scalar engine's backward, the losses against hand values and central differences,
 * the optimizers against a plain transcription of torch.optim's update rules, fit's thread-count
 * invariance, its argument checks, early stopping, checkpoint and resume, and micrograd's demo numbers. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "../../examples/c/micrograd_demo.h"

#include <micrograd.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <dirent.h>
#endif

/* ---- helpers ------------------------------------------------------------------------------------- */

/* mg_last_error() holds a message that starts with `prefix` */
static int message_starts_with(const char *prefix) { return strncmp(mg_last_error(), prefix, strlen(prefix)) == 0; }

static int message_contains(const char *part) { return strstr(mg_last_error(), part) != NULL; }

/* |got - want| <= rel * |want| + abs_tol, element by element; reports the first few misses */
static int arrays_close(const double *got, const double *want, size_t n, double rel, double abs_tol, const char *what) {
    int ok = 1, printed = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = rel * fabs(want[i]) + abs_tol;
        if (!(fabs(got[i] - want[i]) <= tol)) {
            ok = 0;
            if (printed++ < 5)
                fprintf(stderr, "  %s[%zu]: %.17g vs %.17g (diff %.3g, tol %.3g)\n", what, i, got[i], want[i],
                        fabs(got[i] - want[i]), tol);
        }
    }
    return ok;
}

static double *copy_of(const double *src, size_t n) {
    double *dst = malloc((n ? n : 1) * sizeof *dst);
    if (dst && n) memcpy(dst, src, n * sizeof *dst);
    return dst;
}

/* ---- the scalar engine's view of an MLP ----
 * The same network built from mg_value leaves (one per parameter, in mg_mlp_params order), mg_affine
 * neurons and activation nodes, as micrograd's MLP builds it. */

typedef struct {
    size_t n_params;
    mg_value **params; /* leaves */
} scalar_params;

static scalar_params scalar_params_new(const double *values, size_t n) {
    scalar_params sp = {n, malloc(n * sizeof(mg_value *))};
    for (size_t i = 0; i < n; i++) sp.params[i] = mg_value_new(values[i]);
    return sp;
}

static void scalar_params_free(scalar_params *sp) {
    for (size_t i = 0; i < sp->n_params; i++) mg_value_release(sp->params[i]);
    free(sp->params);
    sp->params = NULL;
}

/* outputs (n_outputs new references) of the network for one sample x (n_in doubles) */
static void scalar_forward(const mg_mlp *m, const scalar_params *sp, const double *x, mg_value **outputs) {
    size_t n_in = mg_mlp_num_inputs(m), max_width = n_in;
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++)
        if (mg_mlp_layer_size(m, l) > max_width) max_width = mg_mlp_layer_size(m, l);
    mg_value **in = malloc(max_width * sizeof *in), **out = malloc(max_width * sizeof *out);
    for (size_t i = 0; i < n_in; i++) in[i] = mg_value_new(x[i]);
    size_t width = n_in, at = 0;
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++) {
        size_t size = mg_mlp_layer_size(m, l);
        mg_activation act = mg_mlp_layer_activation(m, l);
        for (size_t j = 0; j < size; j++) {
            mg_value *const *w = sp->params + at;
            mg_value *b = sp->params[at + width];
            at += width + 1;
            mg_value *z = mg_affine(b, w, in, width);
            mg_value *a = z;
            if (act == MG_ACT_RELU) a = mg_relu(z);
            else if (act == MG_ACT_TANH) a = mg_tanh(z);
            else if (act == MG_ACT_SIGMOID) a = mg_sigmoid(z);
            if (a != z) mg_value_release(z);
            out[j] = a;
        }
        for (size_t i = 0; i < width; i++) mg_value_release(in[i]);
        mg_value **swap = in;
        in = out;
        out = swap;
        width = size;
    }
    for (size_t k = 0; k < width; k++) outputs[k] = in[k];
    free(in);
    free(out);
}

/* the same loss mg_mlp_fit trains with, as a graph over n samples (micrograd's sum, then * (1/n)),
 * plus l2 * sum(p * p); returns the root */
static mg_value *scalar_loss(const mg_mlp *m, const scalar_params *sp, mg_loss loss, const double *x, const double *y,
                             size_t n, double l2) {
    size_t n_in = mg_mlp_num_inputs(m), k = mg_mlp_num_outputs(m);
    mg_value **scores = malloc(k * sizeof *scores);
    mg_value *total = mg_value_new(0.0);
    for (size_t s = 0; s < n; s++) {
        scalar_forward(m, sp, x + s * n_in, scores);
        mg_value *term = NULL;
        switch (loss) {
        case MG_LOSS_SVM: { /* (1 + -y * score).relu() */
            mg_value *ys = mg_mul_scalar(scores[0], -y[s]);
            mg_value *margin = mg_add_scalar(ys, 1.0);
            term = mg_relu(margin);
            mg_value_release(ys);
            mg_value_release(margin);
            break;
        }
        case MG_LOSS_MSE: { /* sum over outputs of (score - target)^2 */
            term = mg_value_new(0.0);
            for (size_t j = 0; j < k; j++) {
                mg_value *d = mg_sub_scalar(scores[j], y[s * k + j]);
                mg_value *sq = mg_mul(d, d);
                mg_value *next = mg_add(term, sq);
                mg_value_release(d);
                mg_value_release(sq);
                mg_value_release(term);
                term = next;
            }
            break;
        }
        case MG_LOSS_BCE: { /* log(1 + exp(x)) - y * x, for moderate logits */
            mg_value *e = mg_exp(scores[0]);
            mg_value *e1 = mg_add_scalar(e, 1.0);
            mg_value *sp_ = mg_log(e1);
            mg_value *yx = mg_mul_scalar(scores[0], y[s]);
            term = mg_sub(sp_, yx);
            mg_value_release(e);
            mg_value_release(e1);
            mg_value_release(sp_);
            mg_value_release(yx);
            break;
        }
        case MG_LOSS_CROSS_ENTROPY: { /* log(sum_j exp(score_j)) - score_label, for moderate logits */
            mg_value *sum = mg_value_new(0.0);
            for (size_t j = 0; j < k; j++) {
                mg_value *e = mg_exp(scores[j]);
                mg_value *next = mg_add(sum, e);
                mg_value_release(e);
                mg_value_release(sum);
                sum = next;
            }
            mg_value *lse = mg_log(sum);
            term = mg_sub(lse, scores[(size_t)y[s]]);
            mg_value_release(sum);
            mg_value_release(lse);
            break;
        }
        default: break;
        }
        mg_value *next = mg_add(total, term);
        mg_value_release(term);
        mg_value_release(total);
        total = next;
        for (size_t j = 0; j < k; j++) mg_value_release(scores[j]);
    }
    free(scores);
    double scale = loss == MG_LOSS_MSE ? 1.0 / (double)(n * k) : 1.0 / (double)n;
    mg_value *data_loss = mg_mul_scalar(total, scale);
    mg_value_release(total);
    if (l2 == 0.0) return data_loss;
    mg_value *squares = mg_value_new(0.0);
    for (size_t i = 0; i < sp->n_params; i++) {
        mg_value *sq = mg_mul(sp->params[i], sp->params[i]);
        mg_value *next = mg_add(squares, sq);
        mg_value_release(sq);
        mg_value_release(squares);
        squares = next;
    }
    mg_value *reg = mg_mul_scalar(squares, l2);
    mg_value *root = mg_add(data_loss, reg);
    mg_value_release(squares);
    mg_value_release(reg);
    mg_value_release(data_loss);
    return root;
}

/* ---- shapes ---------------------------------------------------------------------------------------- */

static void test_mlp_shapes(void) {
    size_t sizes[] = {16, 16, 1};
    mg_mlp *m = mg_mlp_new(2, 3, sizes, NULL);
    if (!CHECK(m != NULL)) return;
    CHECK(mg_mlp_num_params(m) == 337); /* micrograd's MLP(2, [16, 16, 1]) */
    CHECK(mg_mlp_num_inputs(m) == 2);
    CHECK(mg_mlp_num_outputs(m) == 1);
    CHECK(mg_mlp_num_layers(m) == 3);
    CHECK(mg_mlp_layer_size(m, 0) == 16 && mg_mlp_layer_size(m, 1) == 16 && mg_mlp_layer_size(m, 2) == 1);
    CHECK(mg_mlp_layer_size(m, 3) == 0);
    CHECK(mg_mlp_layer_activation(m, 0) == MG_ACT_RELU);
    CHECK(mg_mlp_layer_activation(m, 1) == MG_ACT_RELU);
    CHECK(mg_mlp_layer_activation(m, 2) == MG_ACT_LINEAR);
    const double *p = mg_mlp_params(m);
    int all_zero = 1;
    for (size_t i = 0; i < 337; i++) all_zero &= p[i] == 0.0 && mg_mlp_grads(m)[i] == 0.0;
    CHECK(all_zero);
    mg_mlp_free(m);

    /* other shapes: params = sum over layers of size * (fan_in + 1) */
    size_t s2[] = {8, 3};
    mg_activation acts[] = {MG_ACT_TANH, MG_ACT_SIGMOID};
    m = mg_mlp_new(5, 2, s2, acts);
    if (CHECK(m != NULL)) {
        CHECK(mg_mlp_num_params(m) == 8 * 6 + 3 * 9);
        CHECK(mg_mlp_num_outputs(m) == 3);
        CHECK(mg_mlp_layer_activation(m, 0) == MG_ACT_TANH);
        CHECK(mg_mlp_layer_activation(m, 1) == MG_ACT_SIGMOID);
    }
    mg_mlp_free(m);
    size_t s3[] = {1};
    m = mg_mlp_new(1, 1, s3, NULL); /* one linear neuron */
    if (CHECK(m != NULL)) {
        CHECK(mg_mlp_num_params(m) == 2);
        CHECK(mg_mlp_layer_activation(m, 0) == MG_ACT_LINEAR);
    }
    mg_mlp_free(m);
    size_t s4[] = {16, 1, 1}; /* a one-neuron hidden layer works */
    m = mg_mlp_new(2, 3, s4, NULL);
    if (CHECK(m != NULL)) CHECK(mg_mlp_num_params(m) == 48 + 17 + 2);
    mg_mlp_free(m);

    CHECK(strcmp(mg_activation_name(MG_ACT_RELU), "relu") == 0);
    CHECK(strcmp(mg_activation_name(MG_ACT_LINEAR), "linear") == 0);
    CHECK(strcmp(mg_activation_name(MG_ACT_COUNT), "?") == 0);
    CHECK(strcmp(mg_activation_name((mg_activation)-1), "?") == 0);
    CHECK(strcmp(mg_activation_name((mg_activation)99), "?") == 0);
    CHECK(strcmp(mg_loss_name((mg_loss)-1), "?") == 0 && strcmp(mg_loss_name((mg_loss)99), "?") == 0);
    /* the accessors accept NULL */
    CHECK(mg_mlp_num_params(NULL) == 0 && mg_mlp_params(NULL) == NULL && mg_mlp_grads(NULL) == NULL);
    mg_mlp_free(NULL);
}

static void test_mlp_bad_shapes(void) {
    size_t sizes[] = {4, 0, 1};
    mg_clear_error();
    CHECK(mg_mlp_new(0, 1, sizes, NULL) == NULL); /* no inputs */
    CHECK(message_starts_with("mg_mlp_new:"));
    mg_clear_error();
    CHECK(mg_mlp_new(2, 0, sizes, NULL) == NULL); /* no layers */
    CHECK(message_starts_with("mg_mlp_new:"));
    mg_clear_error();
    CHECK(mg_mlp_new(2, 3, sizes, NULL) == NULL); /* an empty layer */
    CHECK(message_starts_with("mg_mlp_new:") && message_contains("layer 1"));
    mg_clear_error();
    CHECK(mg_mlp_new(2, 1, NULL, NULL) == NULL);
    CHECK(mg_last_error()[0] != '\0');
    size_t ok[] = {3, 1};
    mg_activation bad[] = {MG_ACT_RELU, (mg_activation)42};
    mg_clear_error();
    CHECK(mg_mlp_new(2, 2, ok, bad) == NULL);
    CHECK(message_starts_with("mg_mlp_new:") && message_contains("activation"));
    size_t huge[] = {((size_t)1 << 24) + 1};
    mg_clear_error();
    CHECK(mg_mlp_new(2, 1, huge, NULL) == NULL);
    CHECK(message_starts_with("mg_mlp_new:"));
}

/* Sizes that overflow size_t are refused with MG_ERR_ARG before anything is allocated: 4097 layers of
 * 2^24 on 2^24 inputs have 2^60 parameters, whose bytes (params and grads) overflow; 2^16 + 1 layers
 * overflow the parameter count itself. Then a model whose arrays fit but whose work space would not. */
static void test_mlp_size_overflow(void) {
    size_t n_layers[] = {4097, 65537};
    const char *what[] = {"bytes", "number of parameters"};
    for (int c = 0; c < 2; c++) {
        size_t *sizes = malloc(n_layers[c] * sizeof *sizes);
        for (size_t l = 0; l < n_layers[c]; l++) sizes[l] = (size_t)1 << 24;
        mg_clear_error();
        mg_mlp *m = mg_mlp_new((size_t)1 << 24, n_layers[c], sizes, NULL);
        CHECK(m == NULL);
        CHECK(mg_last_status() == MG_ERR_ARG);
        if (!CHECK(message_starts_with("mg_mlp_new:") && message_contains("too large") && message_contains(what[c])))
            fprintf(stderr, "  %s\n", mg_last_error());
        mg_mlp_free(m);
        free(sizes);
    }
    CHECK(mg_live_values() == 0);
}

static void test_init_uniform(void) {
    size_t sizes[] = {16, 16, 1};
    mg_mlp *a = mg_mlp_new(2, 3, sizes, NULL), *b = mg_mlp_new(2, 3, sizes, NULL);
    if (!CHECK(a && b)) goto done;
    mg_mlp_init_uniform(a, 42);
    mg_mlp_init_uniform(b, 42);
    CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), 337 * sizeof(double)) == 0);
    const double *p = mg_mlp_params(a);
    int in_range = 1, biases_zero = 1, distinct = 0;
    size_t at = 0, width = 2;
    for (size_t l = 0; l < 3; l++) {
        for (size_t j = 0; j < sizes[l]; j++) {
            for (size_t i = 0; i < width; i++, at++) {
                in_range &= p[at] >= -1.0 && p[at] < 1.0;
                distinct += at > 0 && p[at] != p[at - 1];
            }
            biases_zero &= p[at++] == 0.0;
        }
        width = sizes[l];
    }
    CHECK(at == 337);
    CHECK(in_range);
    CHECK(biases_zero);
    CHECK(distinct > 300);
    mg_mlp_init_uniform(b, 43);
    CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), 337 * sizeof(double)) != 0);
done:
    mg_mlp_free(a);
    mg_mlp_free(b);
}

/* ---- predict ----------------------------------------------------------------------------------------- */

static void test_predict_by_hand(void) {
    /* MLP(2, [2, 1]): relu hidden layer, linear output. Parameters per neuron: w..., then b. */
    size_t sizes[] = {2, 1};
    mg_mlp *m = mg_mlp_new(2, 2, sizes, NULL);
    if (!CHECK(m != NULL)) return;
    double params[] = {0.5, -1.0, 0.25, /* neuron 0 */ 2.0, 3.0, -1.0, /* neuron 1 */ 1.5, -2.0, 0.1};
    memcpy(mg_mlp_params(m), params, sizeof params);
    double x[] = {1.0, 2.0, -3.0, 0.5};
    double out[2] = {0, 0};
    CHECK(mg_mlp_predict(m, x, 2, out) == MG_OK);
    for (int s = 0; s < 2; s++) {
        double x0 = x[2 * s], x1 = x[2 * s + 1];
        double h0 = (0.25 + 0.5 * x0) + -1.0 * x1, h1 = (-1.0 + 2.0 * x0) + 3.0 * x1;
        h0 = h0 < 0.0 ? 0.0 : h0;
        h1 = h1 < 0.0 ? 0.0 : h1;
        double want = (0.1 + 1.5 * h0) + -2.0 * h1;
        CHECK_SAME(out[s], want);
    }
    CHECK_SAME(out[0], 0.1 + -2.0 * 7.0); /* h0 = relu(-1.25) = 0, h1 = 7 */
    mg_mlp_free(m);

    /* the bias comes first, then w[i] * x[i] in order: 1 + 1e-16 + 1e-16 rounds to 1 at each step, while
     * summing the products first would give 1 + 2e-16 = 1.0000000000000002 */
    size_t one[] = {1};
    m = mg_mlp_new(2, 1, one, NULL);
    if (!CHECK(m != NULL)) return;
    double p2[] = {1e-16, 1e-16, 1.0};
    memcpy(mg_mlp_params(m), p2, sizeof p2);
    double x2[] = {1.0, 1.0}, out2 = 0;
    CHECK(mg_mlp_predict(m, x2, 1, &out2) == MG_OK);
    CHECK_SAME(out2, 1.0);
    CHECK(out2 != 1e-16 + 1e-16 + 1.0);
    mg_mlp_free(m);

    /* tanh and sigmoid layers */
    size_t s3[] = {1, 1};
    mg_activation acts[] = {MG_ACT_TANH, MG_ACT_SIGMOID};
    m = mg_mlp_new(1, 2, s3, acts);
    if (!CHECK(m != NULL)) return;
    double p3[] = {0.7, -0.2, 3.0, 0.5};
    memcpy(mg_mlp_params(m), p3, sizeof p3);
    double xs[] = {0.3, -40.0}, outs[2];
    CHECK(mg_mlp_predict(m, xs, 2, outs) == MG_OK);
    for (int s = 0; s < 2; s++) {
        double h = tanh(-0.2 + 0.7 * xs[s]);
        double z = 0.5 + 3.0 * h;
        CHECK_NEAR(outs[s], 1.0 / (1.0 + exp(-z)), 1e-15);
    }
    mg_mlp_free(m);

    /* errors */
    m = mg_mlp_new(2, 2, sizes, NULL);
    double o;
    mg_clear_error();
    CHECK(mg_mlp_predict(NULL, x, 1, &o) == MG_ERR_NULL);
    CHECK(mg_mlp_predict(m, NULL, 1, &o) == MG_ERR_NULL);
    CHECK(mg_mlp_predict(m, x, 1, NULL) == MG_ERR_NULL);
    CHECK(message_starts_with("mg_mlp_predict:"));
    CHECK(mg_mlp_predict(m, x, 0, &o) == MG_OK); /* nothing to do */
    mg_mlp_free(m);
}

/* predict gives, bit for bit, what the scalar engine's mg_affine/mg_relu graph gives (several chunks and
 * a partial one: 77 samples) */
static void test_predict_matches_scalar_engine(void) {
    size_t sizes[] = {7, 5, 3};
    mg_mlp *m = mg_mlp_new(4, 3, sizes, NULL);
    if (!CHECK(m != NULL)) return;
    mg_mlp_init_uniform(m, 2024);
    /* non-zero biases too */
    check_rng rng = {99};
    double *p = mg_mlp_params(m);
    for (size_t i = 0; i < mg_mlp_num_params(m); i++)
        if (p[i] == 0.0) p[i] = check_uniform(&rng, -0.5, 0.5);
    enum { N = 77 };
    double x[N * 4], out[N * 3];
    for (size_t i = 0; i < N * 4; i++) x[i] = check_uniform(&rng, -3.0, 3.0);
    CHECK(mg_mlp_predict(m, x, N, out) == MG_OK);
    scalar_params sp = scalar_params_new(p, mg_mlp_num_params(m));
    int same = 1;
    for (size_t s = 0; s < N; s++) {
        mg_value *scores[3];
        scalar_forward(m, &sp, x + 4 * s, scores);
        for (size_t k = 0; k < 3; k++) {
            same &= mg_value_data(scores[k]) == out[s * 3 + k];
            mg_value_release(scores[k]);
        }
    }
    CHECK(same);
    scalar_params_free(&sp);

    /* predicting a sample alone or inside a batch gives the same numbers */
    double alone[3];
    CHECK(mg_mlp_predict(m, x + 4 * 70, 1, alone) == MG_OK);
    CHECK(memcmp(alone, out + 3 * 70, sizeof alone) == 0);
    mg_mlp_free(m);

    /* tanh and sigmoid layers: the scalar engine agrees to rounding */
    mg_activation acts[] = {MG_ACT_TANH, MG_ACT_SIGMOID, MG_ACT_LINEAR};
    m = mg_mlp_new(4, 3, sizes, acts);
    if (!CHECK(m != NULL)) return;
    mg_mlp_init_uniform(m, 7);
    CHECK(mg_mlp_predict(m, x, N, out) == MG_OK);
    sp = scalar_params_new(mg_mlp_params(m), mg_mlp_num_params(m));
    double want[N * 3];
    for (size_t s = 0; s < N; s++) {
        mg_value *scores[3];
        scalar_forward(m, &sp, x + 4 * s, scores);
        for (size_t k = 0; k < 3; k++) {
            want[s * 3 + k] = mg_value_data(scores[k]);
            mg_value_release(scores[k]);
        }
    }
    CHECK(arrays_close(out, want, N * 3, 1e-14, 1e-15, "tanh/sigmoid predict"));
    scalar_params_free(&sp);
    mg_mlp_free(m);
}

/* ---- fit's gradients against the scalar engine's backward -------------------------------------------- */

typedef struct {
    size_t calls;
    double loss, accuracy;
} epoch_log;

static int log_epoch(void *user, size_t epoch, double loss, double accuracy) {
    epoch_log *log = user;
    (void)epoch;
    log->calls++;
    log->loss = loss;
    log->accuracy = accuracy;
    return 0;
}

static void check_fit_gradients(const char *name, mg_loss loss, size_t n_in, size_t n_layers, const size_t *sizes,
                                const mg_activation *acts, double l2) {
    mg_mlp *m = mg_mlp_new(n_in, n_layers, sizes, acts);
    if (!CHECK(m != NULL)) return;
    size_t np = mg_mlp_num_params(m), k = mg_mlp_num_outputs(m);
    mg_mlp_init_uniform(m, 5);
    double *p = mg_mlp_params(m);
    check_rng rng = {17};
    for (size_t i = 0; i < np; i++) p[i] *= 0.8; /* keep logits moderate */
    enum { N = 70 };                            /* one chunk, not a whole number of micro-tiles */
    double x[N * 8], y[N * 4];
    for (size_t i = 0; i < N * n_in; i++) x[i] = check_uniform(&rng, -2.0, 2.0);
    for (size_t s = 0; s < N; s++) {
        double u = check_uniform(&rng, 0.0, 1.0);
        if (loss == MG_LOSS_SVM) y[s] = u < 0.5 ? -1.0 : 1.0;
        else if (loss == MG_LOSS_BCE) y[s] = u < 0.5 ? 0.0 : 1.0;
        else if (loss == MG_LOSS_CROSS_ENTROPY) y[s] = floor(u * (double)k);
        else
            for (size_t j = 0; j < k; j++) y[s * k + j] = check_uniform(&rng, -1.0, 1.0);
    }
    double *p0 = copy_of(p, np);

    scalar_params sp = scalar_params_new(p0, np);
    mg_value *root = scalar_loss(m, &sp, loss, x, y, N, l2);
    CHECK(mg_backward(root) == MG_OK);
    double *want = malloc(np * sizeof *want);
    double max_grad = 0.0;
    for (size_t i = 0; i < np; i++) {
        want[i] = mg_value_grad(sp.params[i]);
        if (fabs(want[i]) > max_grad) max_grad = fabs(want[i]);
    }

    mg_optim_config cfg = mg_optim_defaults(MG_OPTIM_SGD);
    cfg.lr = 1.0;
    mg_optim *opt = mg_optim_new(&cfg, np);
    mg_fit_options o = mg_fit_defaults();
    o.loss = loss;
    o.l2 = l2;
    o.epochs = 1;
    o.batch_size = 0;
    o.shuffle = 0;
    o.threads = 1;
    epoch_log log = {0};
    o.on_epoch = log_epoch;
    o.user = &log;
    CHECK(mg_mlp_fit(m, opt, x, y, N, &o) == MG_OK);
    const double *grads = mg_mlp_grads(m);
    /* relative to each gradient, with a floor for the ones that cancel to near zero */
    if (!CHECK(arrays_close(grads, want, np, 1e-12, 1e-14 * max_grad, "grad"))) fprintf(stderr, "  (%s)\n", name);
    /* SGD with lr 1: p1 = p0 - g, exactly */
    int stepped = 1;
    for (size_t i = 0; i < np; i++) stepped &= p[i] == p0[i] - 1.0 * grads[i];
    CHECK(stepped);
    CHECK(log.calls == 1);
    CHECK_NEAR(log.loss, mg_value_data(root), 1e-13 * fabs(mg_value_data(root)));
    CHECK(max_grad > 0.0);

    mg_value_release(root);
    scalar_params_free(&sp);
    free(want);
    free(p0);
    mg_optim_free(opt);
    mg_mlp_free(m);
}

static void test_fit_gradients_match_scalar_engine(void) {
    size_t svm[] = {16, 16, 1};
    check_fit_gradients("svm", MG_LOSS_SVM, 2, 3, svm, NULL, 1e-4);
    check_fit_gradients("svm without l2", MG_LOSS_SVM, 2, 3, svm, NULL, 0.0);
    size_t mse[] = {6, 3};
    mg_activation tanh_acts[] = {MG_ACT_TANH, MG_ACT_LINEAR};
    check_fit_gradients("mse", MG_LOSS_MSE, 3, 2, mse, NULL, 0.0);
    check_fit_gradients("mse tanh", MG_LOSS_MSE, 3, 2, mse, tanh_acts, 1e-3);
    size_t bce[] = {5, 4, 1};
    mg_activation sig_acts[] = {MG_ACT_SIGMOID, MG_ACT_RELU, MG_ACT_LINEAR};
    check_fit_gradients("bce", MG_LOSS_BCE, 2, 3, bce, NULL, 0.0);
    check_fit_gradients("bce sigmoid", MG_LOSS_BCE, 2, 3, bce, sig_acts, 1e-4);
    size_t ce[] = {8, 4};
    check_fit_gradients("cross_entropy", MG_LOSS_CROSS_ENTROPY, 3, 2, ce, NULL, 1e-4);
}

/* ---- losses ------------------------------------------------------------------------------------------ */

static double loss_value(mg_loss loss, const double *scores, const double *targets, size_t n, size_t k) {
    double out = NAN;
    mg_loss_compute(loss, scores, targets, n, k, &out, NULL, NULL);
    return out;
}

/* dscores against central differences of the loss (eps 1e-6) */
static void check_finite_differences(const char *name, mg_loss loss, double *scores, const double *targets, size_t n,
                                     size_t k) {
    double l, d[64];
    if (!CHECK(mg_loss_compute(loss, scores, targets, n, k, &l, d, NULL) == MG_OK)) return;
    int ok = 1;
    for (size_t i = 0; i < n * k; i++) {
        double keep = scores[i], h = 1e-6;
        scores[i] = keep + h;
        double up = loss_value(loss, scores, targets, n, k);
        scores[i] = keep - h;
        double down = loss_value(loss, scores, targets, n, k);
        scores[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        if (!(fabs(numeric - d[i]) <= 1e-7 + 1e-5 * fabs(d[i]))) {
            ok = 0;
            fprintf(stderr, "  %s: d[%zu] = %.17g, central difference %.17g\n", name, i, d[i], numeric);
        }
    }
    CHECK(ok);
}

static void test_loss_svm(void) {
    /* margins 1 - y * s: 0.5, 3, 4, 1, 0 (kink: gradient 0, as micrograd's relu), -1 */
    double s[] = {0.5, -2.0, 3.0, 0.0, 1.0, 2.0}, y[] = {1, 1, -1, -1, 1, 1};
    double l = NAN, d[6];
    size_t correct = 99;
    CHECK(mg_loss_compute(MG_LOSS_SVM, s, y, 6, 1, &l, d, &correct) == MG_OK);
    CHECK_NEAR(l, (0.5 + 3.0 + 4.0 + 1.0 + 0.0 + 0.0) * (1.0 / 6.0), 1e-15);
    double want_d[] = {-1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 0.0, 0.0};
    CHECK(arrays_close(d, want_d, 6, 1e-15, 0.0, "svm dscores"));
    CHECK(correct == 4); /* (y > 0) == (s > 0): yes, no, no, yes (0 is not > 0), yes, yes */

    check_rng rng = {3};
    double rs[20], ry[20];
    for (int i = 0; i < 20; i++) {
        ry[i] = i % 3 ? 1.0 : -1.0;
        double margin;
        do { /* away from the kink at margin 0 */
            rs[i] = check_uniform(&rng, -3.0, 3.0);
            margin = 1.0 - ry[i] * rs[i];
        } while (fabs(margin) < 1e-3);
    }
    check_finite_differences("svm", MG_LOSS_SVM, rs, ry, 20, 1);
}

static void test_loss_mse(void) {
    double s[] = {1, 2, 3, 4}, t[] = {0, 2, 5, 1}; /* n 2, k 2: diffs 1, 0, -2, 3 */
    double l = NAN, d[4];
    size_t correct = 99;
    CHECK(mg_loss_compute(MG_LOSS_MSE, s, t, 2, 2, &l, d, &correct) == MG_OK);
    CHECK_SAME(l, 14.0 / 4.0);
    double want_d[] = {0.5, 0.0, -1.0, 1.5}; /* 2 * diff / (n * k) */
    CHECK(arrays_close(d, want_d, 4, 0.0, 0.0, "mse dscores"));
    CHECK(correct == 0);
    double one_s[] = {0.25}, one_t[] = {-0.5};
    CHECK(mg_loss_compute(MG_LOSS_MSE, one_s, one_t, 1, 1, &l, d, NULL) == MG_OK);
    CHECK_SAME(l, 0.5625);
    CHECK_SAME(d[0], 1.5);

    check_rng rng = {4};
    double rs[24], rt[24];
    for (int i = 0; i < 24; i++) rs[i] = check_uniform(&rng, -2, 2), rt[i] = check_uniform(&rng, -2, 2);
    check_finite_differences("mse", MG_LOSS_MSE, rs, rt, 8, 3);
}

static double softplus_ref(double x) { return log(1.0 + exp(x)); }
static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_loss_bce(void) {
    double s[] = {0.0, 2.0, -3.0, 0.5}, y[] = {1, 0, 1, 0};
    double l = NAN, d[6];
    size_t correct = 99;
    CHECK(mg_loss_compute(MG_LOSS_BCE, s, y, 4, 1, &l, d, &correct) == MG_OK);
    double want = 0.0;
    for (int i = 0; i < 4; i++) want += softplus_ref(s[i]) - y[i] * s[i];
    CHECK_NEAR(l, want / 4.0, 1e-15);
    for (int i = 0; i < 4; i++) CHECK_NEAR(d[i], (sigmoid_ref(s[i]) - y[i]) / 4.0, 1e-16);
    CHECK_NEAR(d[0], -0.125, 1e-17); /* sigmoid(0) - 1 = -0.5, over 4 */
    CHECK(correct == 0);             /* 0 is not > 0; 2 says 1; -3 says 0; 0.5 says 1 */

    /* extreme logits: finite loss and gradient */
    double xs[] = {800.0, 800.0, -800.0, -800.0, 50.0, -50.0}, xy[] = {1, 0, 1, 0, 0, 1};
    CHECK(mg_loss_compute(MG_LOSS_BCE, xs, xy, 6, 1, &l, d, NULL) == MG_OK);
    CHECK(isfinite(l));
    CHECK_NEAR(l, (0.0 + 800.0 + 800.0 + 0.0 + 50.0 + 50.0) / 6.0, 1e-12);
    double want_d[] = {0.0, 1.0 / 6, -1.0 / 6, 0.0, 1.0 / 6, -1.0 / 6};
    CHECK(arrays_close(d, want_d, 6, 1e-15, 1e-20, "bce extreme dscores"));

    check_rng rng = {5};
    double rs[16], ry[16];
    for (int i = 0; i < 16; i++) rs[i] = check_uniform(&rng, -6, 6), ry[i] = i % 2;
    check_finite_differences("bce", MG_LOSS_BCE, rs, ry, 16, 1);
}

static void test_loss_cross_entropy(void) {
    double s[] = {1, 2, 3, /**/ 0, 0, 0, /**/ 5, -1, 5}, y[] = {2, 0, 1};
    double l = NAN, d[9];
    size_t correct = 99;
    CHECK(mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, y, 3, 3, &l, d, &correct) == MG_OK);
    double lse0 = log(exp(1.0) + exp(2.0) + exp(3.0)), lse2 = log(2.0 * exp(5.0) + exp(-1.0));
    CHECK_NEAR(l, ((lse0 - 3.0) + log(3.0) + (lse2 + 1.0)) / 3.0, 1e-14);
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(d[j], (exp(s[j] - lse0) - (j == 2)) / 3.0, 1e-16);
        CHECK_NEAR(d[3 + j], (1.0 / 3.0 - (j == 0)) / 3.0, 1e-16);
        CHECK_NEAR(d[6 + j], (exp(s[6 + j] - lse2) - (j == 1)) / 3.0, 1e-16);
    }
    CHECK(correct == 2); /* argmax 2 (right), a tie picks the first: 0 (right), 0 (wrong) */

    double xs[] = {800, -800, 0, /**/ -800, -800, -800}, xy[] = {1, 2};
    CHECK(mg_loss_compute(MG_LOSS_CROSS_ENTROPY, xs, xy, 2, 3, &l, d, NULL) == MG_OK);
    CHECK_NEAR(l, (1600.0 + log(3.0)) / 2.0, 1e-12);
    int finite = 1;
    for (int i = 0; i < 6; i++) finite &= isfinite(d[i]);
    CHECK(finite);
    CHECK_NEAR(d[0], 0.5, 1e-16);
    CHECK_NEAR(d[1], -0.5, 1e-16);

    check_rng rng = {6};
    double rs[40], ry[10];
    for (int i = 0; i < 40; i++) rs[i] = check_uniform(&rng, -4, 4);
    for (int i = 0; i < 10; i++) ry[i] = i % 4;
    check_finite_differences("cross_entropy", MG_LOSS_CROSS_ENTROPY, rs, ry, 10, 4);
}

#define CHECK_LOSS_ERROR(expected, call, part)                                                       \
    do {                                                                                             \
        mg_clear_error();                                                                            \
        CHECK((call) == (expected));                                                                 \
        if (!CHECK(message_contains(part))) fprintf(stderr, "  message: \"%s\"\n", mg_last_error()); \
    } while (0)

static void test_loss_errors(void) {
    double s[] = {0.5, -0.5, 1.0, 2.0}, l = 0.0, d[4];
    double svm_bad[] = {1, 0}, bce_bad[] = {1, 0.5}, ce_out[] = {0, 2}, ce_neg[] = {-1, 0}, ce_frac[] = {0.5, 1},
           ce_nan[] = {NAN, 1}, svm_nan[] = {NAN, 1}, ok2[] = {1, -1};
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_SVM, s, svm_bad, 2, 1, &l, d, NULL), "svm");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_SVM, s, svm_nan, 2, 1, &l, d, NULL), "svm");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_BCE, s, bce_bad, 2, 1, &l, d, NULL), "bce");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, ce_out, 2, 2, &l, d, NULL), "label");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, ce_neg, 2, 2, &l, d, NULL), "label");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, ce_frac, 2, 2, &l, d, NULL), "label");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, ce_nan, 2, 2, &l, d, NULL), "label");
    /* a loss that does not fit the number of scores per sample */
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_SVM, s, ok2, 2, 2, &l, d, NULL), "svm");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_BCE, s, ok2, 2, 2, &l, d, NULL), "bce");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_CROSS_ENTROPY, s, ok2, 4, 1, &l, d, NULL), "2 classes");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_SVM, s, ok2, 0, 1, &l, d, NULL), "no scores");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_compute(MG_LOSS_COUNT, s, ok2, 2, 1, &l, d, NULL), "unknown loss");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_loss_compute(MG_LOSS_SVM, NULL, ok2, 2, 1, &l, d, NULL), "NULL");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_loss_compute(MG_LOSS_SVM, s, NULL, 2, 1, &l, d, NULL), "NULL");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_loss_compute(MG_LOSS_SVM, s, ok2, 2, 1, NULL, d, NULL), "NULL");

    /* names */
    for (int i = 0; i < MG_LOSS_COUNT; i++) {
        mg_loss back = MG_LOSS_COUNT;
        CHECK(mg_loss_from_name(mg_loss_name((mg_loss)i), &back) == MG_OK && back == (mg_loss)i);
    }
    CHECK(strcmp(mg_loss_name(MG_LOSS_CROSS_ENTROPY), "cross_entropy") == 0);
    CHECK(strcmp(mg_loss_name(MG_LOSS_COUNT), "?") == 0);
    mg_loss out;
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_loss_from_name("hinge", &out), "hinge");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_loss_from_name(NULL, &out), "NULL");
}

/* Every enum's names go both ways through one table; an unknown name is MG_ERR_ARG naming it and listing
 * the choices; a number out of range has the name "?". */
static void test_enum_names(void) {
    static const char *const kinds[] = {"sgd", "adam", "adamw"};
    static const char *const schedules[] = {"constant", "linear", "cosine"};
    static const char *const acts[] = {"linear", "relu", "tanh", "sigmoid"};
    for (int i = 0; i < 3; i++) {
        mg_optim_kind k = (mg_optim_kind)99;
        mg_schedule sc = (mg_schedule)99;
        CHECK(strcmp(mg_optim_kind_name((mg_optim_kind)i), kinds[i]) == 0);
        CHECK(mg_optim_kind_from_name(kinds[i], &k) == MG_OK && k == (mg_optim_kind)i);
        CHECK(strcmp(mg_schedule_name((mg_schedule)i), schedules[i]) == 0);
        CHECK(mg_schedule_from_name(schedules[i], &sc) == MG_OK && sc == (mg_schedule)i);
    }
    for (int i = 0; i < MG_ACT_COUNT; i++) {
        mg_activation a = MG_ACT_COUNT;
        CHECK(strcmp(mg_activation_name((mg_activation)i), acts[i]) == 0);
        CHECK(mg_activation_from_name(acts[i], &a) == MG_OK && a == (mg_activation)i);
    }
    CHECK(strcmp(mg_optim_kind_name((mg_optim_kind)3), "?") == 0);
    CHECK(strcmp(mg_optim_kind_name((mg_optim_kind)-1), "?") == 0);
    CHECK(strcmp(mg_schedule_name((mg_schedule)3), "?") == 0 && strcmp(mg_schedule_name((mg_schedule)-1), "?") == 0);
    mg_optim_kind k = MG_OPTIM_ADAM;
    mg_schedule sc = MG_SCHEDULE_LINEAR;
    mg_activation a = MG_ACT_TANH;
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_optim_kind_from_name("rmsprop", &k),
                     "unknown optimizer 'rmsprop': expected sgd, adam or adamw");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_optim_kind_from_name("SGD", &k), "'SGD'");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_schedule_from_name("step", &sc),
                     "unknown schedule 'step': expected constant, linear or cosine");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_activation_from_name("gelu", &a), "expected linear, relu, tanh or sigmoid");
    CHECK_LOSS_ERROR(MG_ERR_ARG, mg_activation_from_name("", &a), "unknown activation ''");
    CHECK(k == MG_OPTIM_ADAM && sc == MG_SCHEDULE_LINEAR && a == MG_ACT_TANH); /* untouched on an error */
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_optim_kind_from_name(NULL, &k), "NULL");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_schedule_from_name("linear", NULL), "NULL");
    CHECK_LOSS_ERROR(MG_ERR_NULL, mg_activation_from_name(NULL, &a), "NULL");
    CHECK(mg_optim_buffers_per_param(MG_OPTIM_SGD) == 1 && mg_optim_buffers_per_param(MG_OPTIM_ADAM) == 2 &&
          mg_optim_buffers_per_param(MG_OPTIM_ADAMW) == 2 && mg_optim_buffers_per_param((mg_optim_kind)7) == 0);
    for (int i = 0; i < 3; i++) {
        mg_optim_config c = mg_optim_defaults((mg_optim_kind)i);
        mg_optim *opt = mg_optim_new(&c, 5);
        CHECK(opt && mg_optim_num_params(opt) == 5);
        CHECK(mg_optim_state_size(opt) == 5 * mg_optim_buffers_per_param(c.kind));
        mg_optim_free(opt);
    }
    CHECK(mg_optim_num_params(NULL) == 0);
}

/* A model's and an optimizer's arrays are parts carved from one block (mg__carve): each starts aligned to
 * 16 bytes, they do not overlap, and they start zeroed. */
static void test_carved_parts(void) {
    size_t sizes[] = {3, 5, 1};
    mg_mlp *m = mg_mlp_new(7, 3, sizes, NULL);
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_ADAM);
    mg_optim *opt = m ? mg_optim_new(&c, mg_mlp_num_params(m)) : NULL;
    if (!CHECK(m && opt)) goto done;
    size_t n = mg_mlp_num_params(m);
    CHECK(n == 3 * 8 + 5 * 4 + 1 * 6);
    double *p = mg_mlp_params(m), *g = mg_mlp_grads(m), *s = mg_optim_state(opt);
    CHECK((uintptr_t)p % 16 == 0 && (uintptr_t)g % 16 == 0 && (uintptr_t)s % 16 == 0);
    CHECK(g >= p + n && mg_optim_state_size(opt) == 2 * n);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= p[i] == 0.0 && g[i] == 0.0 && s[i] == 0.0 && s[n + i] == 0.0;
    CHECK(zero);
    for (size_t l = 0; l < 3; l++) CHECK(mg_mlp_layer_size(m, l) == sizes[l]);
    CHECK(mg_mlp_layer_activation(m, 0) == MG_ACT_RELU && mg_mlp_layer_activation(m, 2) == MG_ACT_LINEAR);
done:
    mg_optim_free(opt);
    mg_mlp_free(m);
}

/* ---- optimizers against torch.optim's formulas ----------------------------------------------------- */

/* torch.lerp(start, end, weight) as ATen computes it */
static double torch_lerp(double start, double end, double weight) {
    return weight < 0.5 ? start + weight * (end - start) : end - (end - start) * (1.0 - weight);
}

typedef struct {
    int step;
    double buf[8], m[8], v[8];
} ref_optim;

/* a direct transcription of torch.optim.SGD / Adam / AdamW (single-tensor, float64) */
static void ref_step(const mg_optim_config *c, ref_optim *r, double *p, const double *grad, size_t n) {
    r->step++;
    for (size_t i = 0; i < n; i++) {
        double g = grad[i];
        if (c->kind == MG_OPTIM_SGD) {
            if (c->weight_decay != 0.0) g = g + c->weight_decay * p[i];
            if (c->momentum != 0.0) {
                if (r->step == 1) r->buf[i] = g; /* torch.clone(grad) */
                else r->buf[i] = r->buf[i] * c->momentum + (1.0 - c->dampening) * g;
                g = c->nesterov ? g + c->momentum * r->buf[i] : r->buf[i];
            }
            p[i] = p[i] + (-c->lr) * g;
        } else {
            if (c->kind == MG_OPTIM_ADAMW) p[i] = p[i] * (1.0 - c->lr * c->weight_decay);
            else if (c->weight_decay != 0.0) g = g + c->weight_decay * p[i];
            r->m[i] = torch_lerp(r->m[i], g, 1.0 - c->beta1);
            r->v[i] = r->v[i] * c->beta2 + (1.0 - c->beta2) * g * g;
            double bc1 = 1.0 - pow(c->beta1, r->step), bc2 = 1.0 - pow(c->beta2, r->step);
            double step_size = c->lr / bc1, bc2_sqrt = pow(bc2, 0.5);
            double denom = sqrt(r->v[i]) / bc2_sqrt + c->eps;
            p[i] = p[i] + (-step_size) * (r->m[i] / denom);
        }
    }
}

static void check_optimizer(const char *name, mg_optim_config cfg) {
    enum { N = 6, STEPS = 7 };
    mg_optim *opt = mg_optim_new(&cfg, N);
    if (!CHECK(opt != NULL)) {
        fprintf(stderr, "  %s: %s\n", name, mg_last_error());
        return;
    }
    double p[N] = {0.5, -1.25, 2.0, 0.0, -0.001, 3.5}, want[N];
    memcpy(want, p, sizeof p);
    ref_optim ref = {0};
    check_rng rng = {123};
    int ok = 1;
    for (int step = 0; step < STEPS; step++) {
        double g[N];
        for (int i = 0; i < N; i++) g[i] = check_uniform(&rng, -2.0, 2.0);
        g[3] = step % 2 ? 0.0 : g[3]; /* a zero gradient now and then */
        CHECK(mg_optim_step(opt, p, g, N) == MG_OK);
        ref_step(&cfg, &ref, want, g, N);
        ok &= arrays_close(p, want, N, 1e-13, 1e-15, name);
    }
    if (!CHECK(ok)) fprintf(stderr, "  (%s)\n", name);
    CHECK(mg_optim_steps(opt) == STEPS);
    CHECK(mg_optim_state_size(opt) == (cfg.kind == MG_OPTIM_SGD ? (size_t)N : 2 * (size_t)N));

    /* a step with the wrong count changes nothing */
    double before[N];
    memcpy(before, p, sizeof p);
    mg_clear_error();
    CHECK(mg_optim_step(opt, p, p, N - 1) == MG_ERR_ARG);
    CHECK(message_starts_with("mg_optim_step:"));
    CHECK(memcmp(before, p, sizeof p) == 0);
    CHECK(mg_optim_steps(opt) == STEPS);
    mg_optim_free(opt);
}

static void test_optimizers_match_torch_formulas(void) {
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.1;
    check_optimizer("sgd", c);
    c.momentum = 0.9;
    check_optimizer("sgd momentum", c);
    c.dampening = 0.3;
    check_optimizer("sgd momentum dampening", c);
    c.dampening = 0.0;
    c.nesterov = 1;
    check_optimizer("sgd nesterov", c);
    c.weight_decay = 0.05;
    check_optimizer("sgd nesterov weight decay", c);
    c.nesterov = 0;
    c.momentum = 0.0;
    check_optimizer("sgd weight decay", c);

    c = mg_optim_defaults(MG_OPTIM_ADAM);
    c.lr = 0.01;
    check_optimizer("adam", c);
    c.beta1 = 0.8, c.beta2 = 0.99, c.eps = 1e-6, c.weight_decay = 0.1;
    check_optimizer("adam betas weight decay", c);
    c.beta1 = 0.3, c.beta2 = 0.5; /* lerp weight above 1/2: torch's other branch */
    check_optimizer("adam small betas", c);
    c = mg_optim_defaults(MG_OPTIM_ADAMW);
    c.lr = 0.01;
    check_optimizer("adamw", c);
    c.weight_decay = 0.5, c.beta1 = 0.0, c.beta2 = 0.9;
    check_optimizer("adamw big decay", c);
}

/* mg_optim_step_values does what mg_optim_step does */
static void test_optim_step_values(void) {
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_ADAM);
    c.lr = 0.05;
    enum { N = 4 };
    mg_optim *a = mg_optim_new(&c, N), *b = mg_optim_new(&c, N);
    if (!CHECK(a && b)) goto done;
    double p[N] = {1, -2, 0.5, 0}, g[N];
    mg_value *vals[N];
    for (int i = 0; i < N; i++) vals[i] = mg_value_new(p[i]);
    check_rng rng = {8};
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < N; i++) {
            g[i] = check_uniform(&rng, -1, 1);
            mg_value_set_grad(vals[i], g[i]);
        }
        CHECK(mg_optim_step(a, p, g, N) == MG_OK);
        CHECK(mg_optim_step_values(b, vals, N) == MG_OK);
    }
    int same = 1;
    for (int i = 0; i < N; i++) same &= mg_value_data(vals[i]) == p[i];
    CHECK(same);
    CHECK(memcmp(mg_optim_state(a), mg_optim_state(b), 2 * N * sizeof(double)) == 0);
    mg_clear_error();
    CHECK(mg_optim_step_values(b, vals, N - 1) == MG_ERR_ARG);
    CHECK(mg_last_error()[0] != '\0');
    mg_value *holes[N] = {vals[0], NULL, vals[2], vals[3]};
    CHECK(mg_optim_step_values(b, holes, N) == MG_ERR_NULL);
    for (int i = 0; i < N; i++) mg_value_release(vals[i]);
done:
    mg_optim_free(a);
    mg_optim_free(b);
}

static void test_optim_config(void) {
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    CHECK(c.kind == MG_OPTIM_SGD && c.lr == 1e-3 && c.momentum == 0.0 && c.weight_decay == 0.0 && !c.nesterov);
    c = mg_optim_defaults(MG_OPTIM_ADAM);
    CHECK(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0.0);
    c = mg_optim_defaults(MG_OPTIM_ADAMW);
    CHECK(c.lr == 1e-3 && c.weight_decay == 1e-2);

    struct {
        const char *what;
        mg_optim_config c;
    } bad[] = {
        {"negative lr", {.kind = MG_OPTIM_SGD, .lr = -0.1}},
        {"nan lr", {.kind = MG_OPTIM_SGD, .lr = NAN}},
        {"infinite lr", {.kind = MG_OPTIM_ADAM, .lr = INFINITY, .beta1 = 0.9, .beta2 = 0.999}},
        {"nesterov without momentum", {.kind = MG_OPTIM_SGD, .lr = 0.1, .nesterov = 1}},
        {"nesterov with dampening",
         {.kind = MG_OPTIM_SGD, .lr = 0.1, .nesterov = 1, .momentum = 0.9, .dampening = 0.1}},
        {"negative momentum", {.kind = MG_OPTIM_SGD, .lr = 0.1, .momentum = -0.5}},
        {"negative weight decay", {.kind = MG_OPTIM_SGD, .lr = 0.1, .weight_decay = -1}},
        {"beta1 = 1", {.kind = MG_OPTIM_ADAM, .lr = 0.1, .beta1 = 1.0, .beta2 = 0.999, .eps = 1e-8}},
        {"beta1 < 0", {.kind = MG_OPTIM_ADAM, .lr = 0.1, .beta1 = -0.1, .beta2 = 0.999, .eps = 1e-8}},
        {"beta2 > 1", {.kind = MG_OPTIM_ADAMW, .lr = 0.1, .beta1 = 0.9, .beta2 = 1.5, .eps = 1e-8}},
        {"beta2 nan", {.kind = MG_OPTIM_ADAM, .lr = 0.1, .beta1 = 0.9, .beta2 = NAN, .eps = 1e-8}},
        {"negative eps", {.kind = MG_OPTIM_ADAM, .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = -1e-8}},
        {"adamw negative weight decay",
         {.kind = MG_OPTIM_ADAMW, .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .weight_decay = -0.01}},
        {"unknown kind", {.kind = (mg_optim_kind)9, .lr = 0.1}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mg_clear_error();
        mg_optim *opt = mg_optim_new(&bad[i].c, 3);
        if (!CHECK(opt == NULL)) fprintf(stderr, "  %s was accepted\n", bad[i].what);
        if (!CHECK(message_starts_with("mg_optim_new:")))
            fprintf(stderr, "  %s: \"%s\"\n", bad[i].what, mg_last_error());
        mg_optim_free(opt);
    }
    mg_clear_error();
    CHECK(mg_optim_new(NULL, 3) == NULL);
    CHECK(mg_last_error()[0] != '\0');

    /* lr get/set, and the config reads back */
    c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.25;
    c.momentum = 0.5;
    mg_optim *opt = mg_optim_new(&c, 2);
    if (CHECK(opt != NULL)) {
        CHECK(mg_optim_lr(opt) == 0.25);
        mg_optim_set_lr(opt, 0.125);
        CHECK(mg_optim_lr(opt) == 0.125);
        CHECK(mg_optim_get_config(opt)->momentum == 0.5 && mg_optim_get_config(opt)->lr == 0.125);
        CHECK(mg_optim_steps(opt) == 0);
        CHECK(mg_optim_state_size(opt) == 2 && mg_optim_state(opt)[0] == 0.0 && mg_optim_state(opt)[1] == 0.0);
    }
    mg_optim_free(opt);
    CHECK(isnan(mg_optim_lr(NULL)) && mg_optim_steps(NULL) == 0 && mg_optim_state(NULL) == NULL);
    mg_optim_free(NULL);
}

/* ---- fit: the same parameters for any number of threads --------------------------------------------- */

/* The library's pool workers alive now, -1 where that cannot be read. The pool is started on first need and
 * kept, so fit's workers outlive it. */
static int count_pool_workers(void) {
    int n;
    long long ns = check_pool_workers(&n);
    return ns == -1 && n == 0 ? -1 : n;
}

typedef struct {
    double losses[16];
    size_t epochs;
    int max_workers; /* pool workers alive while an epoch ended */
} thread_log;

static int log_threads(void *user, size_t epoch, double loss, double accuracy) {
    thread_log *log = user;
    (void)accuracy;
    if (epoch < 16) log->losses[epoch] = loss;
    log->epochs = epoch + 1;
    int n = count_pool_workers();
    if (n > log->max_workers) log->max_workers = n;
    return 0;
}

/* trains a fresh copy of the model with each thread count; all must match bit for bit */
typedef struct {
    mg_precision precision;
    mg_dtype dtype;
} compute;

static void check_thread_invariance(const char *name, size_t n_layers, const size_t *sizes, mg_optim_config cfg,
                                    mg_fit_options o, const double *x, const double *y, size_t n, compute how) {
    mg_mlp *ref = NULL;
    thread_log ref_log = {0};
    for (int threads = 1; threads <= 4; threads++) {
        int before = count_pool_workers();
        mg_mlp *m = mg_mlp_new(2, n_layers, sizes, NULL);
        if (!CHECK(m != NULL)) break;
        mg_mlp_init_uniform(m, 11);
        CHECK(mg_mlp_set_compute(m, how.precision, how.dtype) == MG_OK);
        mg_optim *opt = mg_optim_new(&cfg, mg_mlp_num_params(m));
        thread_log log = {0};
        o.threads = threads;
        o.on_epoch = log_threads;
        o.user = &log;
        CHECK(mg_mlp_fit(m, opt, x, y, n, &o) == MG_OK);
        CHECK(log.epochs == o.epochs);
        /* the test is only worth something if the pool had the workers (capped at the core count; the
         * pool keeps those an earlier call started) */
        int expected = threads < mg_num_cores() ? threads : mg_num_cores();
        int most = before > mg_num_cores() - 1 ? before : mg_num_cores() - 1;
        if (before >= 0 && !CHECK(log.max_workers >= expected - 1))
            fprintf(stderr, "  %s: %d threads asked, %d pool workers seen\n", name, threads, log.max_workers);
        if (before >= 0 && !CHECK(log.max_workers <= most))
            fprintf(stderr, "  %s: %d threads asked, %d pool workers seen: not capped at %d cores\n", name, threads,
                    log.max_workers, mg_num_cores());
        if (!ref) {
            ref = m;
            ref_log = log;
        } else {
            if (!CHECK(memcmp(mg_mlp_params(m), mg_mlp_params(ref), mg_mlp_num_params(m) * sizeof(double)) == 0))
                fprintf(stderr, "  %s: parameters differ with %d threads\n", name, threads);
            CHECK(memcmp(log.losses, ref_log.losses, sizeof log.losses) == 0);
            mg_mlp_free(m);
        }
        mg_optim_free(opt);
    }
    /* threads = 0 (the mg_set_num_threads setting: every core) too */
    mg_mlp *m = mg_mlp_new(2, n_layers, sizes, NULL);
    mg_mlp_init_uniform(m, 11);
    mg_mlp_set_compute(m, how.precision, how.dtype);
    mg_optim *opt = mg_optim_new(&cfg, mg_mlp_num_params(m));
    o.threads = 0;
    o.on_epoch = NULL;
    CHECK(mg_mlp_fit(m, opt, x, y, n, &o) == MG_OK);
    if (ref) CHECK(memcmp(mg_mlp_params(m), mg_mlp_params(ref), mg_mlp_num_params(m) * sizeof(double)) == 0);
    mg_optim_free(opt);
    mg_mlp_free(m);
    mg_mlp_free(ref);
}

static void test_fit_thread_invariance(void) {
    enum { N = 2000 };
    double *x = malloc(2 * N * sizeof *x), *y = malloc(N * sizeof *y), *y3 = malloc(3 * N * sizeof *y3);
    check_moons(N, 77, x, y);
    for (size_t i = 0; i < N; i++) {
        y3[3 * i] = x[2 * i] * x[2 * i + 1];
        y3[3 * i + 1] = sin(x[2 * i]);
        y3[3 * i + 2] = y[i];
    }

    /* full batch, SGD, the demo's loss */
    size_t small[] = {16, 16, 1};
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
    sgd.lr = 0.5;
    mg_fit_options o = mg_fit_defaults();
    o.loss = MG_LOSS_SVM;
    o.l2 = 1e-4;
    o.epochs = 4;
    o.batch_size = 0;
    o.shuffle = 0;
    o.schedule = MG_SCHEDULE_LINEAR;
    o.lr_end = 0.05;
    compute exact64 = {MG_PRECISION_EXACT, MG_FLOAT64};
    check_thread_invariance("full batch", 3, small, sgd, o, x, y, N, exact64);

    /* minibatches of 300 (not a multiple of the chunk; the last batch is 200), shuffled, Adam */
    size_t wide[] = {32, 32, 1};
    mg_optim_config adam = mg_optim_defaults(MG_OPTIM_ADAM);
    adam.lr = 0.01;
    o.batch_size = 300;
    o.shuffle = 1;
    o.seed = 12345;
    o.epochs = 3;
    o.schedule = MG_SCHEDULE_COSINE;
    o.lr_end = 0.001;
    check_thread_invariance("minibatch shuffle", 3, wide, adam, o, x, y, N, exact64);
    /* the other precision and element type keep the invariance */
    compute others[] = {
        {MG_PRECISION_FAST, MG_FLOAT64}, {MG_PRECISION_EXACT, MG_FLOAT32}, {MG_PRECISION_FAST, MG_FLOAT32}};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        check_thread_invariance("minibatch shuffle, other compute", 3, wide, adam, o, x, y, N, others[i]);

    /* multi-output MSE with momentum */
    size_t mse[] = {32, 32, 3};
    mg_optim_config mom = mg_optim_defaults(MG_OPTIM_SGD);
    mom.lr = 0.02, mom.momentum = 0.9, mom.nesterov = 1;
    o.loss = MG_LOSS_MSE;
    o.l2 = 0.0;
    o.batch_size = 256;
    o.epochs = 2;
    o.schedule = MG_SCHEDULE_CONSTANT;
    check_thread_invariance("mse", 3, mse, mom, o, x, y3, N, exact64);

    free(x);
    free(y);
    free(y3);
}

/* ---- fit: bad arguments are refused before anything changes ---------------------------------------- */

typedef struct {
    mg_mlp *m;
    mg_optim *opt;
    double *params;
} fit_fixture;

static fit_fixture fixture_new(size_t n_in, size_t n_layers, const size_t *sizes, mg_optim_kind kind) {
    fit_fixture f = {0};
    f.m = mg_mlp_new(n_in, n_layers, sizes, NULL);
    mg_mlp_init_uniform(f.m, 3);
    mg_optim_config c = mg_optim_defaults(kind);
    c.lr = 0.1;
    c.momentum = kind == MG_OPTIM_SGD ? 0.9 : 0.0;
    f.opt = mg_optim_new(&c, mg_mlp_num_params(f.m));
    f.params = copy_of(mg_mlp_params(f.m), mg_mlp_num_params(f.m));
    return f;
}

/* nothing changed: parameters, optimizer steps and state, learning rate */
static int fixture_unchanged(fit_fixture *f) {
    int ok = memcmp(f->params, mg_mlp_params(f->m), mg_mlp_num_params(f->m) * sizeof(double)) == 0;
    ok &= mg_optim_steps(f->opt) == 0 && mg_optim_lr(f->opt) == 0.1;
    for (size_t i = 0; i < mg_optim_state_size(f->opt); i++) ok &= mg_optim_state(f->opt)[i] == 0.0;
    return ok;
}

static void fixture_free(fit_fixture *f) {
    mg_mlp_free(f->m);
    mg_optim_free(f->opt);
    free(f->params);
}

#define CHECK_FIT_REFUSED(f, expected, call, part)                                                   \
    do {                                                                                             \
        mg_clear_error();                                                                            \
        mg_status status_ = (call);                                                                  \
        if (!CHECK(status_ == (expected))) fprintf(stderr, "  %s gave %d\n", #call, (int)status_);   \
        if (!CHECK(message_contains(part))) fprintf(stderr, "  message: \"%s\"\n", mg_last_error()); \
        CHECK(fixture_unchanged(&(f)));                                                              \
    } while (0)

static void test_fit_refuses_bad_input(void) {
    enum { N = 40 };
    double x[2 * N], y[N], x_bad[2 * N], y_bad[N], y01[N], y_ce[N];
    check_moons(N, 5, x, y);
    for (int i = 0; i < N; i++) y01[i] = y[i] > 0, y_ce[i] = i % 3;
    size_t one[] = {8, 1}, three[] = {8, 3};
    fit_fixture f = fixture_new(2, 2, one, MG_OPTIM_SGD);
    mg_fit_options o = mg_fit_defaults();
    o.epochs = 3;
    o.loss = MG_LOSS_SVM;

    memcpy(x_bad, x, sizeof x);
    x_bad[2 * 17 + 1] = NAN;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x_bad, y, N, &o), "x[17][1]");
    x_bad[2 * 17 + 1] = INFINITY;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x_bad, y, N, &o), "finite");
    x_bad[2 * 17 + 1] = -INFINITY;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x_bad, y, N, &o), "finite");
    memcpy(y_bad, y, sizeof y);
    y_bad[N - 1] = NAN;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "y[");
    y_bad[N - 1] = 0.0; /* svm wants -1 or 1 */
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "svm");
    y_bad[N - 1] = 2.0;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "svm");
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, 0, &o), "no samples");

    o.loss = MG_LOSS_BCE;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, N, &o), "bce"); /* -1 is not a bce label */
    y_bad[N - 1] = 0.5;
    memcpy(y_bad, y01, (N - 1) * sizeof *y_bad);
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "bce");
    o.loss = MG_LOSS_CROSS_ENTROPY; /* a one-output model */
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_ce, N, &o), "cross_entropy");
    o.loss = MG_LOSS_COUNT;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, N, &o), "unknown loss");
    o.loss = MG_LOSS_SVM;
    o.l2 = -1e-4;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, N, &o), "l2");
    o.l2 = NAN;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, N, &o), "l2");
    o.l2 = 0.0;
    CHECK_FIT_REFUSED(f, MG_ERR_NULL, mg_mlp_fit(NULL, f.opt, x, y, N, &o), "NULL");
    CHECK_FIT_REFUSED(f, MG_ERR_NULL, mg_mlp_fit(f.m, NULL, x, y, N, &o), "NULL");
    CHECK_FIT_REFUSED(f, MG_ERR_NULL, mg_mlp_fit(f.m, f.opt, NULL, y, N, &o), "NULL");
    CHECK_FIT_REFUSED(f, MG_ERR_NULL, mg_mlp_fit(f.m, f.opt, x, NULL, N, &o), "NULL");
    CHECK_FIT_REFUSED(f, MG_ERR_NULL, mg_mlp_fit(f.m, f.opt, x, y, N, NULL), "NULL");

    /* an optimizer made for another number of parameters, of each kind */
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD), adam = mg_optim_defaults(MG_OPTIM_ADAM);
    size_t np = mg_mlp_num_params(f.m);
    mg_optim *wrong[] = {mg_optim_new(&sgd, np + 1), mg_optim_new(&sgd, np - 1), mg_optim_new(&adam, np + 1),
                         mg_optim_new(&adam, np / 2), mg_optim_new(&sgd, 2 * np)};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, wrong[i], x, y, N, &o), "optimizer");
        CHECK(mg_optim_steps(wrong[i]) == 0);
        mg_optim_free(wrong[i]);
    }
    fixture_free(&f);

    /* a multi-output model: svm and bce need one output; cross_entropy labels must be classes 0..k-1 */
    f = fixture_new(2, 2, three, MG_OPTIM_ADAM);
    o.loss = MG_LOSS_SVM;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y, N, &o), "1 output");
    o.loss = MG_LOSS_BCE;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y01, N, &o), "1 output");
    o.loss = MG_LOSS_CROSS_ENTROPY;
    memcpy(y_bad, y_ce, sizeof y_ce);
    y_bad[9] = 3.0;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "y[9]");
    y_bad[9] = -1.0;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "cross_entropy");
    y_bad[9] = 1.5;
    CHECK_FIT_REFUSED(f, MG_ERR_ARG, mg_mlp_fit(f.m, f.opt, x, y_bad, N, &o), "cross_entropy");
    /* and these labels are fine */
    CHECK(mg_mlp_fit(f.m, f.opt, x, y_ce, N, &o) == MG_OK);
    CHECK(mg_optim_steps(f.opt) == 3);
    fixture_free(&f);

    /* zero epochs: a no-op that succeeds */
    f = fixture_new(2, 2, one, MG_OPTIM_SGD);
    o.loss = MG_LOSS_SVM;
    o.epochs = 0;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_OK);
    CHECK(fixture_unchanged(&f));
    fixture_free(&f);
}

/* The learning-rate schedule ends at lr_end: a NaN or negative lr_end is a learning rate the optimizer
 * itself refuses (mg_optim_new: "lr must be a finite number >= 0"), so fit must refuse it too rather than
 * train the model into NaNs or uphill. */
static void test_fit_refuses_bad_lr_end(void) {
    enum { N = 40 };
    double x[2 * N], y[N];
    check_moons(N, 5, x, y);
    size_t one[] = {8, 1};
    double bad[] = {NAN, -0.5, INFINITY};
    mg_schedule schedules[] = {MG_SCHEDULE_LINEAR, MG_SCHEDULE_COSINE};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < 3; i++) {
            fit_fixture f = fixture_new(2, 2, one, MG_OPTIM_SGD);
            mg_fit_options o = mg_fit_defaults();
            o.epochs = 3;
            o.schedule = schedules[s];
            o.lr_end = bad[i];
            mg_clear_error();
            mg_status status = mg_mlp_fit(f.m, f.opt, x, y, N, &o);
            int finite = 1;
            for (size_t p = 0; p < mg_mlp_num_params(f.m); p++) finite &= isfinite(mg_mlp_params(f.m)[p]) != 0;
            if (!CHECK(status == MG_ERR_ARG && fixture_unchanged(&f)))
                fprintf(stderr, "  schedule %zu, lr_end %g: status %d, parameters %s\n", s, bad[i], (int)status,
                        finite ? "finite but changed" : "now NaN/inf");
            fixture_free(&f);
        }
}

/* ---- fit: early stop, learning rate, schedule ------------------------------------------------------- */

typedef struct {
    size_t calls, stop_after;
} stopper;

static int stop_early(void *user, size_t epoch, double loss, double accuracy) {
    stopper *s = user;
    (void)loss, (void)accuracy;
    s->calls++;
    return epoch + 1 >= s->stop_after;
}

static void test_fit_early_stop(void) {
    enum { N = 64 };
    double x[2 * N], y[N];
    check_moons(N, 9, x, y);
    size_t sizes[] = {8, 8, 1};
    mg_mlp *a = mg_mlp_new(2, 3, sizes, NULL), *b = mg_mlp_new(2, 3, sizes, NULL);
    mg_mlp_init_uniform(a, 1);
    mg_mlp_init_uniform(b, 1);
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.3;
    mg_optim *oa = mg_optim_new(&c, mg_mlp_num_params(a)), *ob = mg_optim_new(&c, mg_mlp_num_params(b));
    mg_fit_options o = mg_fit_defaults();
    o.batch_size = 16; /* 4 steps an epoch */
    o.seed = 3;
    o.epochs = 50;
    stopper s = {0, 3};
    o.on_epoch = stop_early;
    o.user = &s;
    CHECK(mg_mlp_fit(a, oa, x, y, N, &o) == MG_OK);
    CHECK(s.calls == 3);
    CHECK(mg_optim_steps(oa) == 12);
    CHECK(mg_optim_lr(oa) == 0.3);
    /* the same as asking for 3 epochs (constant learning rate) */
    o.epochs = 3;
    o.on_epoch = NULL;
    CHECK(mg_mlp_fit(b, ob, x, y, N, &o) == MG_OK);
    CHECK(memcmp(mg_mlp_params(a), mg_mlp_params(b), mg_mlp_num_params(a) * sizeof(double)) == 0);

    /* the first callback can stop it too: one epoch ran */
    stopper first = {0, 1};
    o.epochs = 10;
    o.on_epoch = stop_early;
    o.user = &first;
    CHECK(mg_mlp_fit(a, oa, x, y, N, &o) == MG_OK);
    CHECK(first.calls == 1);
    CHECK(mg_optim_steps(oa) == 16);

    /* a scheduled fit leaves the optimizer's learning rate as it found it */
    o.on_epoch = NULL;
    o.schedule = MG_SCHEDULE_LINEAR;
    o.lr_end = 0.01;
    CHECK(mg_mlp_fit(a, oa, x, y, N, &o) == MG_OK);
    CHECK(mg_optim_lr(oa) == 0.3);
    mg_optim_free(oa);
    mg_optim_free(ob);
    mg_mlp_free(a);
    mg_mlp_free(b);
}

/* The linear schedule is micrograd's: lr_k = lr0 - (lr0 - lr_end) * k / steps. Checked with a one-weight
 * model whose gradient is known: MSE on a single linear neuron with a zero input and target t. */
static void test_fit_linear_schedule(void) {
    size_t one[] = {1};
    mg_mlp *m = mg_mlp_new(1, 1, one, NULL);
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 1.0;
    mg_optim *opt = mg_optim_new(&c, 2);
    double x[] = {0.0}, y[] = {0.0};
    mg_mlp_params(m)[1] = 1.0; /* the bias b: loss b^2, gradient 2b, so b <- b - lr * 2b = b (1 - 2 lr) */
    mg_fit_options o = mg_fit_defaults();
    o.loss = MG_LOSS_MSE;
    o.epochs = 4;
    o.shuffle = 0;
    o.schedule = MG_SCHEDULE_LINEAR;
    o.lr_end = 0.2;
    CHECK(mg_mlp_fit(m, opt, x, y, 1, &o) == MG_OK);
    double b = 1.0;
    for (int k = 0; k < 4; k++) {
        double lr = 1.0 - (1.0 - 0.2) * k / 4.0;
        b = b - lr * (2.0 * b);
    }
    CHECK_NEAR(mg_mlp_params(m)[1], b, 1e-15);
    mg_optim_free(opt);
    mg_mlp_free(m);
}

/* ---- checkpoint: 10 epochs straight = 5, save, restore into fresh objects, 5 more ----------------- */

static void check_resume(const char *name, mg_optim_config cfg, mg_fit_options o) {
    enum { N = 200 };
    double x[2 * N], y[N];
    check_moons(N, 21, x, y);
    size_t sizes[] = {12, 12, 1};

    mg_mlp *straight = mg_mlp_new(2, 3, sizes, NULL);
    mg_mlp_init_uniform(straight, 8);
    size_t np = mg_mlp_num_params(straight);
    mg_optim *opt = mg_optim_new(&cfg, np);
    o.epochs = 10;
    CHECK(mg_mlp_fit(straight, opt, x, y, N, &o) == MG_OK);
    mg_optim_free(opt);

    mg_mlp *first = mg_mlp_new(2, 3, sizes, NULL);
    mg_mlp_init_uniform(first, 8);
    opt = mg_optim_new(&cfg, np);
    o.epochs = 5;
    o.total_epochs = o.schedule == MG_SCHEDULE_CONSTANT ? 0 : 10; /* the schedule needs the run's length */
    CHECK(mg_mlp_fit(first, opt, x, y, N, &o) == MG_OK);
    /* the checkpoint */
    double *saved_params = copy_of(mg_mlp_params(first), np);
    size_t state_size = mg_optim_state_size(opt);
    double *saved_state = copy_of(mg_optim_state(opt), state_size);
    uint64_t saved_steps = mg_optim_steps(opt);
    double saved_lr = mg_optim_lr(opt);
    mg_optim_free(opt);
    mg_mlp_free(first);

    /* restored into new objects */
    mg_mlp *resumed = mg_mlp_new(2, 3, sizes, NULL);
    memcpy(mg_mlp_params(resumed), saved_params, np * sizeof(double));
    mg_optim_config fresh = cfg;
    fresh.lr = 0.5 * cfg.lr; /* set_lr restores it */
    opt = mg_optim_new(&fresh, np);
    CHECK(mg_optim_state_size(opt) == state_size);
    memcpy(mg_optim_state(opt), saved_state, state_size * sizeof(double));
    mg_optim_set_steps(opt, saved_steps);
    mg_optim_set_lr(opt, saved_lr);
    CHECK(mg_optim_steps(opt) == saved_steps);
    CHECK(mg_mlp_fit(resumed, opt, x, y, N, &o) == MG_OK);
    if (!CHECK(memcmp(mg_mlp_params(resumed), mg_mlp_params(straight), np * sizeof(double)) == 0))
        fprintf(stderr, "  (%s)\n", name);
    CHECK(mg_optim_steps(opt) == 2 * saved_steps);
    mg_optim_free(opt);
    mg_mlp_free(resumed);
    mg_mlp_free(straight);
    free(saved_params);
    free(saved_state);
}

static void test_fit_checkpoint_resume(void) {
    /* epochs are numbered from the optimizer's steps, so the shuffled order continues, and with total_epochs
     * the schedule does too: every configuration splits bit for bit */
    mg_fit_options o = mg_fit_defaults();
    o.batch_size = 30; /* 7 steps an epoch, the last one short */
    o.seed = 77;
    o.lr_end = 1e-3;
    mg_optim_config s = mg_optim_defaults(MG_OPTIM_SGD);
    s.lr = 0.1, s.momentum = 0.9, s.weight_decay = 1e-3;
    mg_optim_config a = mg_optim_defaults(MG_OPTIM_ADAM);
    a.lr = 0.02;
    mg_schedule schedules[] = {MG_SCHEDULE_CONSTANT, MG_SCHEDULE_LINEAR, MG_SCHEDULE_COSINE};
    for (int k = 0; k < 3; k++) {
        o.schedule = schedules[k];
        o.shuffle = 1;
        check_resume(k == 0 ? "shuffled sgd" : k == 1 ? "shuffled sgd linear" : "shuffled sgd cosine", s, o);
        check_resume(k == 0 ? "shuffled adam" : k == 1 ? "shuffled adam linear" : "shuffled adam cosine", a, o);
        o.shuffle = 0;
        check_resume(k == 0 ? "adam" : k == 1 ? "adam linear" : "adam cosine", a, o);
    }
    o = mg_fit_defaults();
    o.shuffle = 0;
    o.batch_size = 50;
    o.l2 = 1e-4;
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_ADAM);
    c.lr = 0.02;
    c.weight_decay = 1e-3;
    check_resume("adam", c, o);
    c = mg_optim_defaults(MG_OPTIM_ADAMW);
    c.lr = 0.02;
    check_resume("adamw", c, o);
    c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.1, c.momentum = 0.9, c.nesterov = 1;
    check_resume("sgd nesterov", c, o);
    c.nesterov = 0, c.dampening = 0.5;
    o.batch_size = 0;
    check_resume("sgd dampening full batch", c, o);
}

/* ---- hostile optimizer settings: every field, every entry point ------------------------------------ */

static int message_has(const char *a, const char *b) {
    return strstr(mg_last_error(), a) != NULL && (!b || strstr(mg_last_error(), b) != NULL);
}

typedef struct {
    const char *field; /* as the message names it */
    mg_optim_kind kind;
    size_t offset;     /* of the double in mg_optim_config */
    double bad[4];     /* NAN-terminated list is impossible: count below */
    int n_bad;
} bad_field;

#define FIELD(name, text, kind, ...) \
    {text, kind, offsetof(mg_optim_config, name), {__VA_ARGS__}, sizeof((double[]){__VA_ARGS__}) / sizeof(double)}

static const bad_field bad_fields[] = {
    FIELD(lr, "lr", MG_OPTIM_SGD, NAN, INFINITY, -1e-3, -INFINITY),
    FIELD(lr, "lr", MG_OPTIM_ADAM, NAN, INFINITY, -0.5),
    FIELD(weight_decay, "weight_decay", MG_OPTIM_SGD, NAN, INFINITY, -1.0),
    FIELD(weight_decay, "weight_decay", MG_OPTIM_ADAMW, NAN, INFINITY, -1e-2),
    FIELD(momentum, "momentum", MG_OPTIM_SGD, NAN, INFINITY, -0.1),
    FIELD(momentum, "momentum", MG_OPTIM_ADAM, NAN, INFINITY), /* unused by Adam, but stored: finite */
    FIELD(dampening, "dampening", MG_OPTIM_SGD, NAN, INFINITY, -0.1, 1.5),
    FIELD(dampening, "dampening", MG_OPTIM_ADAMW, NAN, -INFINITY),
    FIELD(beta1, "beta1", MG_OPTIM_ADAM, NAN, INFINITY, 1.0, -0.1),
    FIELD(beta2, "beta2", MG_OPTIM_ADAMW, NAN, INFINITY, 1.0, -1e-9),
    FIELD(beta1, "beta1", MG_OPTIM_SGD, NAN, INFINITY),
    FIELD(eps, "eps", MG_OPTIM_ADAM, NAN, INFINITY, -1e-8),
    FIELD(eps, "eps", MG_OPTIM_SGD, NAN),
};

static void check_refused(const char *where, const bad_field *f, double value, mg_status status) {
    char text[32];
    snprintf(text, sizeof text, "%g", value);
    if (!CHECK(status == MG_ERR_ARG && mg_last_status() == MG_ERR_ARG && message_has(f->field, text)))
        fprintf(stderr, "  %s: %s = %g (kind %d): status %d, \"%s\"\n", where, f->field, value, (int)f->kind,
                (int)status, mg_last_error());
}

static void test_optim_validation_every_entry_point(void) {
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        const bad_field *f = &bad_fields[i];
        mg_optim_config good = mg_optim_defaults(f->kind);
        if (f->kind == MG_OPTIM_SGD) good.momentum = 0.5;
        mg_optim *opt = mg_optim_new(&good, 3);
        if (!CHECK(opt != NULL)) continue;
        for (int b = 0; b < f->n_bad; b++) {
            mg_optim_config c = good;
            *(double *)((char *)&c + f->offset) = f->bad[b];
            mg_clear_error();
            check_refused("mg_optim_check_config", f, f->bad[b], mg_optim_check_config(&c));
            mg_clear_error();
            mg_optim *made = mg_optim_new(&c, 3);
            check_refused("mg_optim_new", f, f->bad[b], made ? MG_OK : mg_last_status());
            mg_optim_free(made);
            mg_clear_error();
            check_refused("mg_optim_set_config", f, f->bad[b], mg_optim_set_config(opt, &c));
            if (f->offset == offsetof(mg_optim_config, lr)) {
                mg_clear_error();
                check_refused("mg_optim_set_lr", f, f->bad[b], mg_optim_set_lr(opt, f->bad[b]));
            }
            CHECK(memcmp(mg_optim_get_config(opt), &good, sizeof good) == 0);
        }
        mg_optim_free(opt);
    }
    /* nesterov: 0 or 1, and only with momentum > 0 and no dampening */
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    c.momentum = 0.9;
    c.nesterov = 2;
    CHECK(mg_optim_check_config(&c) == MG_ERR_ARG && message_has("nesterov", "2"));
    c.nesterov = 1, c.dampening = 0.5;
    CHECK(mg_optim_check_config(&c) == MG_ERR_ARG && message_has("Nesterov", "0.5"));
    c.dampening = 0.0;
    CHECK(mg_optim_check_config(&c) == MG_OK);
    /* the edges torch allows stay allowed: lr 0, momentum 0 and >= 1, dampening 0 and 1, beta 0, eps 0 */
    c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.0, c.momentum = 1.0, c.dampening = 1.0;
    CHECK(mg_optim_check_config(&c) == MG_OK);
    c = mg_optim_defaults(MG_OPTIM_ADAM);
    c.beta1 = 0.0, c.beta2 = 0.0, c.eps = 0.0;
    CHECK(mg_optim_check_config(&c) == MG_OK);
    /* a zero-initialized SGD config (no Adam fields set) is fine */
    mg_optim_config zero = {.kind = MG_OPTIM_SGD, .lr = 0.1};
    CHECK(mg_optim_check_config(&zero) == MG_OK);
    /* the kind cannot change through set_config */
    mg_optim *opt = mg_optim_new(&zero, 2);
    c = mg_optim_defaults(MG_OPTIM_ADAM);
    CHECK(mg_optim_set_config(opt, &c) == MG_ERR_ARG);
    CHECK(mg_optim_get_config(opt)->kind == MG_OPTIM_SGD);
    CHECK(mg_optim_check_config(NULL) == MG_ERR_NULL && mg_optim_set_lr(NULL, 0.1) == MG_ERR_NULL);
    mg_optim_free(opt);
}

/* mg_optim_set_state: finite buffers, Adam's second moments >= 0, skipped counts at most steps; a refusal
 * changes nothing */
static void test_optim_set_state_validation(void) {
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_ADAM);
    mg_optim *opt = mg_optim_new(&c, 2);
    double good[4] = {0.1, -0.2, 0.3, 0.4};
    CHECK(mg_optim_set_state(opt, 5, good, 4, NULL) == MG_OK && mg_optim_steps(opt) == 5);
    double bad_values[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) {
            double state[4] = {0.1, -0.2, 0.3, 0.4};
            state[i] = bad_values[k];
            CHECK(mg_optim_set_state(opt, 9, state, 4, NULL) == MG_ERR_ARG && message_has("state[", NULL));
        }
    double negative_v[4] = {0.1, 0.2, 0.3, -1e-300};
    CHECK(mg_optim_set_state(opt, 9, negative_v, 4, NULL) == MG_ERR_ARG && message_has("state[3]", NULL));
    CHECK(mg_optim_set_state(opt, 9, good, 3, NULL) == MG_ERR_ARG);
    uint64_t skipped[2] = {0, 6};
    CHECK(mg_optim_set_state(opt, 5, good, 4, skipped) == MG_ERR_ARG && message_has("skipped[1]", "6"));
    CHECK(mg_optim_steps(opt) == 5 && memcmp(mg_optim_state(opt), good, sizeof good) == 0);
    CHECK(mg_optim_skipped(opt) == NULL);
    skipped[1] = 5;
    CHECK(mg_optim_set_state(opt, 5, good, 4, skipped) == MG_OK && mg_optim_skipped(opt)[1] == 5);
    CHECK(mg_optim_set_state(opt, 5, good, 4, NULL) == MG_OK && mg_optim_skipped(opt) == NULL);
    mg_optim_free(opt);
    /* SGD's momentum buffer may be negative, but not NaN */
    c = mg_optim_defaults(MG_OPTIM_SGD);
    opt = mg_optim_new(&c, 2);
    double sgd[2] = {-1.0, 2.0}, sgd_nan[2] = {NAN, 0.0};
    CHECK(mg_optim_set_state(opt, 1, sgd, 2, NULL) == MG_OK);
    CHECK(mg_optim_set_state(opt, 2, sgd_nan, 2, NULL) == MG_ERR_ARG && mg_optim_steps(opt) == 1);
    mg_optim_free(opt);
}

/* A parameter without a gradient is skipped as torch skips it: parameters 0 and 2 trained together with
 * parameter 1 that gets gradients only from step 4 on equal three separate one-parameter optimizers, of
 * which the second starts at step 4 (its own step count, momentum buffer and weight decay wait) */
static void test_optim_step_masked(void) {
    mg_optim_config configs[3];
    configs[0] = mg_optim_defaults(MG_OPTIM_SGD);
    configs[0].lr = 0.1, configs[0].momentum = 0.9, configs[0].dampening = 0.2, configs[0].weight_decay = 0.05;
    configs[1] = mg_optim_defaults(MG_OPTIM_ADAM);
    configs[1].lr = 0.05, configs[1].weight_decay = 0.01;
    configs[2] = mg_optim_defaults(MG_OPTIM_ADAMW);
    configs[2].lr = 0.05;
    for (int k = 0; k < 3; k++) {
        mg_optim *together = mg_optim_new(&configs[k], 3), *alone[3];
        double p[3] = {0.5, -1.5, 2.0}, q[3] = {0.5, -1.5, 2.0};
        for (int i = 0; i < 3; i++) alone[i] = mg_optim_new(&configs[k], 1);
        for (int step = 1; step <= 8; step++) {
            double g[3] = {0.3 * step - 1.0, 0.7 - 0.1 * step * step, sin(step)};
            unsigned char has[3] = {1, step >= 4, 1};
            CHECK(mg_optim_step_masked(together, p, g, has, 3) == MG_OK);
            for (int i = 0; i < 3; i++)
                if (has[i]) CHECK(mg_optim_step(alone[i], &q[i], &g[i], 1) == MG_OK);
            if (step < 4) CHECK_SAME(p[1], -1.5);
        }
        if (!CHECK(memcmp(p, q, sizeof p) == 0))
            fprintf(stderr, "  kind %d: %.17g %.17g %.17g vs %.17g %.17g %.17g\n", k, p[0], p[1], p[2], q[0], q[1],
                    q[2]);
        CHECK(mg_optim_steps(together) == 8 && mg_optim_skipped(together) && mg_optim_skipped(together)[1] == 3);
        /* plain steps after skips keep each parameter's own count */
        double g[3] = {0.1, 0.2, 0.3};
        CHECK(mg_optim_step(together, p, g, 3) == MG_OK);
        for (int i = 0; i < 3; i++) CHECK(mg_optim_step(alone[i], &q[i], &g[i], 1) == MG_OK);
        CHECK(memcmp(p, q, sizeof p) == 0);
        CHECK(mg_optim_step_masked(together, p, g, NULL, 3) == MG_ERR_NULL);
        mg_optim_free(together);
        for (int i = 0; i < 3; i++) mg_optim_free(alone[i]);
    }
}

/* The checkpoint loader applies the same rules: a file whose optimizer settings or buffers were edited to
 * NaN (same length, so the rest of the file stays valid) is refused, naming the field */
static void test_checkpoint_refuses_bad_optimizer(void) {
    char path[600];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/test_nn_%ld.safetensors", base && *base ? base : ".", (long)getpid());
    size_t sizes[] = {3, 1};
    mg_mlp *m = mg_mlp_new(2, 2, sizes, NULL);
    mg_mlp_init_uniform(m, 4);
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    c.lr = 0.5, c.momentum = 0.5, c.dampening = 0.5;
    mg_optim *opt = mg_optim_new(&c, mg_mlp_num_params(m));
    if (!CHECK(mg_checkpoint_save(m, opt, path, 3, NULL, 0) == MG_OK)) goto done;
    FILE *f = fopen(path, "rb");
    static char bytes[1 << 16];
    size_t size = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    remove(path);
    if (!CHECK(size > 8 && size < sizeof bytes)) goto done;
    static const char *const edits[][3] = {
        {"\"optimizer.dampening\":\"0.5\"", "\"optimizer.dampening\":\"nan\"", "dampening"},
        {"\"optimizer.momentum\":\"0.5\"", "\"optimizer.momentum\":\"inf\"", "momentum"},
        {"\"optimizer.lr\":\"0.5\"", "\"optimizer.lr\":\"-.5\"", "lr"},
        {"\"optimizer.nesterov\":\"0\"", "\"optimizer.nesterov\":\"7\"", "nesterov"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        static char copy[sizeof bytes];
        memcpy(copy, bytes, size);
        char *at = NULL;
        for (size_t i = 8; i + strlen(edits[e][0]) <= size && !at; i++)
            if (memcmp(copy + i, edits[e][0], strlen(edits[e][0])) == 0) at = copy + i;
        if (!CHECK(at != NULL && strlen(edits[e][0]) == strlen(edits[e][1]))) continue;
        memcpy(at, edits[e][1], strlen(edits[e][1]));
        mg_checkpoint loaded;
        mg_status status = mg_checkpoint_load_buffer(copy, size, &loaded);
        if (!CHECK(status == MG_ERR_ARG && message_has("checkpoint's optimizer", edits[e][2])))
            fprintf(stderr, "  %s: status %d, \"%s\"\n", edits[e][1], (int)status, mg_last_error());
        if (status == MG_OK) mg_checkpoint_free(&loaded);
    }
    /* a NaN momentum buffer: the last 8 bytes are the optimizer state's last double */
    double nan = NAN;
    memcpy(bytes + size - 8, &nan, 8);
    mg_checkpoint loaded;
    mg_status status = mg_checkpoint_load_buffer(bytes, size, &loaded);
    CHECK(status == MG_ERR_ARG && message_has("checkpoint's optimizer state", "nan"));
    if (status == MG_OK) mg_checkpoint_free(&loaded);
done:
    mg_optim_free(opt);
    mg_mlp_free(m);
}

/* fit's options: threads, lr_end and l2 named with their values; total_epochs must hold this call */
static void test_fit_refuses_bad_options(void) {
    enum { N = 40 };
    double x[2 * N], y[N];
    check_moons(N, 5, x, y);
    size_t sizes[] = {8, 1};
    fit_fixture f = fixture_new(2, 2, sizes, MG_OPTIM_SGD);
    mg_fit_options o = mg_fit_defaults();
    o.epochs = 2;
    o.threads = -1;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("threads", "-1"));
    o.threads = 0;
    o.lr_end = NAN; /* refused with the constant schedule too */
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("lr_end", "nan"));
    o.lr_end = 0.0;
    o.l2 = INFINITY;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("l2", "inf"));
    o.l2 = 0.0;
    o.schedule = (mg_schedule)7;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("schedule", "7"));
    o.schedule = MG_SCHEDULE_COSINE;
    o.total_epochs = 1; /* 2 epochs do not fit in a run of 1 */
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("total_epochs", NULL));
    o.epochs = SIZE_MAX;
    o.total_epochs = 0;
    o.batch_size = 1;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_ERR_ARG && message_has("epochs", NULL));
    CHECK(fixture_unchanged(&f) && mg_optim_steps(f.opt) == 0);
    /* a huge thread count is capped at the cores */
    o = mg_fit_defaults();
    o.threads = 1 << 30;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_OK);
    /* with total_epochs, the base lr stays the optimizer's (the schedule only sets each step's rate) */
    double lr = mg_optim_lr(f.opt);
    o.schedule = MG_SCHEDULE_LINEAR;
    o.total_epochs = 4;
    o.epochs = 2;
    o.lr_end = 0.0;
    CHECK(mg_mlp_fit(f.m, f.opt, x, y, N, &o) == MG_OK && mg_optim_lr(f.opt) == lr);
    fixture_free(&f);
}

/* ---- micrograd's demo ------------------------------------------------------------------------------
 * The data and initial weights of micrograd's demo.ipynb, from the header examples/c/moons.c uses. */

enum { DEMO_N = 100 };

typedef struct {
    double loss[100], accuracy[100];
    size_t epochs;
} demo_log;

static int log_demo(void *user, size_t epoch, double loss, double accuracy) {
    demo_log *log = user;
    if (epoch < 100) log->loss[epoch] = loss, log->accuracy[epoch] = accuracy;
    log->epochs = epoch + 1;
    return 0;
}

static void test_micrograd_demo(void) {
    double x[2 * DEMO_N], y[DEMO_N];
    make_moons(DEMO_N, 0.1, 1337, x, y);
    size_t sizes[] = {16, 16, 1};
    mg_mlp *m = mg_mlp_new(2, 3, sizes, NULL);
    if (!CHECK(m != NULL)) return;
    micrograd_init(m, 1337);
    CHECK(mg_mlp_num_params(m) == 337);
    /* micrograd's first weight after random.seed(1337) */
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
    sgd.lr = 1.0;
    mg_optim *opt = mg_optim_new(&sgd, 337);
    mg_fit_options o = mg_fit_defaults();
    o.loss = MG_LOSS_SVM;
    o.l2 = 1e-4;
    o.epochs = 100;
    o.batch_size = 0;
    o.shuffle = 0;
    o.schedule = MG_SCHEDULE_LINEAR;
    o.lr_end = 0.1;
    demo_log log = {0};
    o.on_epoch = log_demo;
    o.user = &log;
    CHECK(mg_mlp_fit(m, opt, x, y, DEMO_N, &o) == MG_OK);
    CHECK(log.epochs == 100);

    /* the loss and accuracy micrograd 0.1.0 itself prints for its first 15 steps */
    static const double micrograd_loss[15] = {
        0.8958441028683222,  1.7235905336972022,  0.7429006313851131,  0.7705641260584202,  0.3692793385976538,
        0.31354548191852194, 0.2814234349772435,  0.26888733313983904, 0.25671472860574174, 0.2704862551637922,
        0.2450702385365805,  0.25099055297915035, 0.2156095185192295,  0.23090378446402737, 0.20152151227899445,
    };
    static const double micrograd_accuracy[15] = {0.5,  0.81, 0.77, 0.82, 0.84, 0.86, 0.89, 0.91,
                                                  0.91, 0.91, 0.91, 0.92, 0.91, 0.93, 0.92};
    for (int k = 0; k < 15; k++) {
        CHECK_NEAR(log.loss[k], micrograd_loss[k], 1e-9 * micrograd_loss[k]);
        CHECK_NEAR(log.accuracy[k], micrograd_accuracy[k], 1e-12);
    }
    CHECK_NEAR(log.loss[0], 0.895844, 1e-6);
    CHECK_SAME(log.accuracy[0], 0.5);
    CHECK_NEAR(log.loss[99], 0.010978, 1e-6);
    CHECK_SAME(log.accuracy[99], 1.0);

    /* the trained model classifies every point right */
    double scores[DEMO_N];
    CHECK(mg_mlp_predict(m, x, DEMO_N, scores) == MG_OK);
    int right = 0;
    for (int i = 0; i < DEMO_N; i++) right += (y[i] > 0) == (scores[i] > 0);
    CHECK(right == DEMO_N);
    mg_optim_free(opt);
    mg_mlp_free(m);
}

/* ---- how a model computes: precision and element type ---------------------------------------------------- */

/* float32 EXACT predict is a plain float loop's bits: z = bias, then z += w[i] * x[i] in order, in float,
 * with tanh and the sigmoid taken in double and rounded once */
static void test_predict_float32_exact(void) {
    size_t sizes[] = {7, 5, 3};
    mg_activation acts[] = {MG_ACT_RELU, MG_ACT_TANH, MG_ACT_SIGMOID};
    mg_mlp *m = mg_mlp_new(4, 3, sizes, acts);
    if (!CHECK(m != NULL)) return;
    mg_mlp_init_uniform(m, 99);
    check_rng rng = {5};
    double *p = mg_mlp_params(m);
    for (size_t i = 0; i < mg_mlp_num_params(m); i++)
        if (p[i] == 0.0) p[i] = check_uniform(&rng, -0.5, 0.5);
    enum { N = 300 }; /* two chunks: 256 and 44 */
    double *x = malloc(N * 4 * sizeof *x), *out = malloc(N * 3 * sizeof *out);
    for (size_t i = 0; i < N * 4; i++) x[i] = check_uniform(&rng, -3.0, 3.0);
    CHECK(mg_mlp_set_compute(m, MG_PRECISION_EXACT, MG_FLOAT32) == MG_OK);
    CHECK(mg_mlp_predict(m, x, N, out) == MG_OK);
    int same = 1;
    for (size_t s = 0; s < N; s++) {
        float in[7], next[7];
        for (size_t i = 0; i < 4; i++) in[i] = (float)x[s * 4 + i];
        size_t width = 4;
        const double *w = p;
        for (size_t l = 0; l < 3; l++, width = sizes[l - 1]) {
            for (size_t j = 0; j < sizes[l]; j++, w += width + 1) {
                float z = (float)w[width];
                for (size_t i = 0; i < width; i++) z += (float)w[i] * in[i];
                double e = exp(-fabs((double)z)); /* the library's one sigmoid formula */
                next[j] = acts[l] == MG_ACT_RELU   ? (z < 0 ? 0 : z)
                          : acts[l] == MG_ACT_TANH ? (float)tanh(z)
                                                   : (float)((z >= 0 ? 1.0 : e) / (1.0 + e));
            }
            memcpy(in, next, sizes[l] * sizeof *in);
        }
        for (size_t k = 0; k < 3; k++) same &= out[s * 3 + k] == (double)in[k];
    }
    CHECK(same);
    /* float64 and float32 agree to float32's precision; FAST float64 to rounding */
    double *out64 = malloc(N * 3 * sizeof *out64), *fast = malloc(N * 3 * sizeof *fast);
    mg_mlp_set_compute(m, MG_PRECISION_EXACT, MG_FLOAT64);
    CHECK(mg_mlp_predict(m, x, N, out64) == MG_OK);
    CHECK(arrays_close(out, out64, N * 3, 1e-5, 1e-6, "float32 predict"));
    mg_mlp_set_compute(m, MG_PRECISION_FAST, MG_FLOAT64);
    CHECK(mg_mlp_predict(m, x, N, fast) == MG_OK);
    CHECK(arrays_close(fast, out64, N * 3, 1e-13, 1e-15, "fast predict"));
    free(x), free(out), free(out64), free(fast);
    mg_mlp_free(m);
}

/* fit in each compute mode: FAST follows EXACT to rounding, float32 to float32's precision */
static void test_fit_compute_modes(void) {
    enum { N = 600 };
    double *x = malloc(2 * N * sizeof *x), *y = malloc(N * sizeof *y);
    check_moons(N, 21, x, y);
    size_t sizes[] = {24, 24, 1};
    compute modes[] = {{MG_PRECISION_EXACT, MG_FLOAT64},
                       {MG_PRECISION_FAST, MG_FLOAT64},
                       {MG_PRECISION_EXACT, MG_FLOAT32},
                       {MG_PRECISION_FAST, MG_FLOAT32}};
    double *params[4] = {0}, tolerance[4] = {0, 1e-9, 2e-4, 2e-4};
    for (int i = 0; i < 4; i++) {
        mg_mlp *m = mg_mlp_new(2, 3, sizes, NULL);
        mg_mlp_init_uniform(m, 4);
        CHECK(mg_mlp_set_compute(m, modes[i].precision, modes[i].dtype) == MG_OK);
        CHECK(mg_mlp_precision(m) == modes[i].precision && mg_mlp_dtype(m) == modes[i].dtype);
        mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
        sgd.lr = 0.1;
        mg_optim *opt = mg_optim_new(&sgd, mg_mlp_num_params(m));
        mg_fit_options o = mg_fit_defaults();
        o.loss = MG_LOSS_BCE;
        o.epochs = 3;
        o.batch_size = 100;
        o.seed = 8;
        for (size_t s = 0; s < N; s++) y[s] = y[s] > 0;
        CHECK(mg_mlp_fit(m, opt, x, y, N, &o) == MG_OK);
        params[i] = copy_of(mg_mlp_params(m), mg_mlp_num_params(m));
        if (i > 0 && !CHECK(arrays_close(params[i], params[0], mg_mlp_num_params(m), tolerance[i], tolerance[i],
                                         "compute mode")))
            fprintf(stderr, "  %s %s\n", mg_precision_name(modes[i].precision), mg_dtype_name(modes[i].dtype));
        mg_optim_free(opt);
        mg_mlp_free(m);
    }
    for (int i = 0; i < 4; i++) free(params[i]);
    free(x), free(y);
}

static void test_set_compute_refuses(void) {
    size_t sizes[] = {3, 1};
    mg_mlp *m = mg_mlp_new(2, 2, sizes, NULL);
    CHECK(mg_mlp_set_compute(NULL, MG_PRECISION_FAST, MG_FLOAT32) == MG_ERR_NULL);
    CHECK(mg_mlp_set_compute(m, MG_PRECISION_COUNT, MG_FLOAT32) == MG_ERR_ARG && message_contains("precision"));
    CHECK(mg_mlp_set_compute(m, MG_PRECISION_FAST, (mg_dtype)7) == MG_ERR_ARG && message_contains("dtype"));
    CHECK(mg_mlp_precision(m) == MG_PRECISION_EXACT && mg_mlp_dtype(m) == MG_FLOAT64); /* unchanged */
    mg_mlp_free(m);
}

int main(void) {
    test_mlp_shapes();
    test_mlp_bad_shapes();
    test_mlp_size_overflow();
    test_init_uniform();
    test_predict_by_hand();
    test_predict_matches_scalar_engine();
    test_fit_gradients_match_scalar_engine();
    test_loss_svm();
    test_loss_mse();
    test_loss_bce();
    test_loss_cross_entropy();
    test_loss_errors();
    test_enum_names();
    test_carved_parts();
    test_optimizers_match_torch_formulas();
    test_optim_step_values();
    test_optim_config();
    test_fit_thread_invariance();
    test_fit_refuses_bad_input();
    test_fit_refuses_bad_lr_end();
    test_fit_early_stop();
    test_fit_linear_schedule();
    test_fit_checkpoint_resume();
    test_optim_validation_every_entry_point();
    test_optim_set_state_validation();
    test_optim_step_masked();
    test_fit_refuses_bad_options();
    test_checkpoint_refuses_bad_optimizer();
    test_micrograd_demo();
    test_predict_float32_exact();
    test_fit_compute_modes();
    test_set_compute_refuses();
    return check_finish("test_nn");
}
