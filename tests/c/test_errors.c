/* test_errors: NULL everywhere, error propagation through expressions, status codes and messages. */
#include "check.h"

#include <micrograd.h>

#include <math.h>
#include <string.h>

/* The message starts with "<function>:", so "mg_add" is not satisfied by "mg_add_scalar: ..." */
static int message_names(const char *function) {
    const char *msg = mg_last_error();
    size_t n = strlen(function);
    return strncmp(msg, function, n) == 0 && msg[n] == ':';
}

#define CHECK_NULL_OP(function, call)                                                                   \
    do {                                                                                                \
        mg_clear_error();                                                                               \
        int64_t live_ = mg_live_values();                                                               \
        mg_value *r_ = call;                                                                            \
        CHECK(r_ == NULL);                                                                              \
        if (!CHECK(message_names(function))) fprintf(stderr, "  %s: \"%s\"\n", #call, mg_last_error()); \
        CHECK(mg_live_values() == live_);                                                               \
        mg_value_release(r_);                                                                           \
    } while (0)

static void test_null_operands(void) {
    mg_value *x = mg_value_new(2.0);
    CHECK_NULL_OP("mg_add", mg_add(NULL, x));
    CHECK_NULL_OP("mg_add", mg_add(x, NULL));
    CHECK_NULL_OP("mg_add", mg_add(NULL, NULL));
    CHECK_NULL_OP("mg_sub", mg_sub(NULL, x));
    CHECK_NULL_OP("mg_sub", mg_sub(x, NULL));
    CHECK_NULL_OP("mg_mul", mg_mul(NULL, x));
    CHECK_NULL_OP("mg_mul", mg_mul(x, NULL));
    CHECK_NULL_OP("mg_div", mg_div(NULL, x));
    CHECK_NULL_OP("mg_div", mg_div(x, NULL));
    CHECK_NULL_OP("mg_pow", mg_pow(NULL, x));
    CHECK_NULL_OP("mg_pow", mg_pow(x, NULL));
    CHECK_NULL_OP("mg_neg", mg_neg(NULL));
    CHECK_NULL_OP("mg_relu", mg_relu(NULL));
    CHECK_NULL_OP("mg_tanh", mg_tanh(NULL));
    CHECK_NULL_OP("mg_exp", mg_exp(NULL));
    CHECK_NULL_OP("mg_log", mg_log(NULL));
    CHECK_NULL_OP("mg_sigmoid", mg_sigmoid(NULL));
    CHECK_NULL_OP("mg_add_scalar", mg_add_scalar(NULL, 1.0));
    CHECK_NULL_OP("mg_sub_scalar", mg_sub_scalar(NULL, 1.0));
    CHECK_NULL_OP("mg_rsub_scalar", mg_rsub_scalar(1.0, NULL));
    CHECK_NULL_OP("mg_mul_scalar", mg_mul_scalar(NULL, 1.0));
    CHECK_NULL_OP("mg_div_scalar", mg_div_scalar(NULL, 1.0));
    CHECK_NULL_OP("mg_rdiv_scalar", mg_rdiv_scalar(1.0, NULL));
    CHECK_NULL_OP("mg_pow_scalar", mg_pow_scalar(NULL, 2.0));
    CHECK_NULL_OP("mg_rpow_scalar", mg_rpow_scalar(2.0, NULL));

    /* mg_affine: NULL bias, arrays or elements; n == 0 is an argument error */
    mg_value *w[2] = {x, x}, *holes[2] = {x, NULL};
    CHECK_NULL_OP("mg_affine", mg_affine(NULL, w, w, 2));
    CHECK_NULL_OP("mg_affine", mg_affine(x, NULL, w, 2));
    CHECK_NULL_OP("mg_affine", mg_affine(x, w, NULL, 2));
    CHECK_NULL_OP("mg_affine", mg_affine(x, holes, w, 2));
    CHECK_NULL_OP("mg_affine", mg_affine(x, w, holes, 2));
    CHECK_NULL_OP("mg_affine", mg_affine(x, w, w, 0));

    /* the operand we passed is untouched: one release frees it */
    mg_value_release(x);
    CHECK(mg_live_values() == 0);
}

/* An expression built on a NULL is NULL at its root and keeps the first message. */
static void test_propagation(void) {
    mg_value *x = mg_value_new(0.5);
    mg_clear_error();
    mg_value *bad = mg_mul(x, NULL);
    mg_value *t = mg_tanh(bad);
    mg_value *s = mg_add(t, x);
    mg_value *root = mg_pow_scalar(s, 2.0);
    CHECK(bad == NULL && t == NULL && s == NULL && root == NULL);
    CHECK(message_names("mg_mul"));
    CHECK(mg_backward(root) == MG_ERR_NULL);
    mg_value_release(x);

    /* a failure with a message already set keeps the older message: clear it to start over */
    mg_clear_error();
    CHECK(mg_neg(NULL) == NULL);
    CHECK(mg_exp(NULL) == NULL);
    CHECK(message_names("mg_neg"));
    mg_clear_error();
    CHECK(mg_exp(NULL) == NULL);
    CHECK(message_names("mg_exp"));
}

/* An error that was read is over: a NULL passed afterwards gets its own message and MG_ERR_NULL, not the
 * old one. An error nobody has read, raised by an op of the operand's kind, is the one that made the
 * operand NULL, and is kept, whatever ops ran in between; one of another kind is not. */
static void test_stale_messages(void) {
    mg_value *x = mg_value_new(1.0), *w[2] = {x, x}, *holes[2] = {x, NULL};
    size_t sizes[] = {1};
    mg_clear_error();
    CHECK(mg_mlp_new(0, 1, sizes, NULL) == NULL);
    CHECK(mg_last_status() == MG_ERR_ARG); /* read: handled */
    CHECK(mg_affine(x, w, holes, 2) == NULL);
    CHECK(mg_last_status() == MG_ERR_NULL);
    if (!CHECK(strcmp(mg_last_error(), "mg_affine: x[1] is NULL") == 0)) fprintf(stderr, "  %s\n", mg_last_error());
    CHECK(mg_affine(x, holes, w, 2) == NULL && strcmp(mg_last_error(), "mg_affine: w[1] is NULL") == 0);
    CHECK(mg_affine(NULL, w, w, 2) == NULL && strcmp(mg_last_error(), "mg_affine: the bias b is NULL") == 0);
    CHECK(mg_affine(x, w, NULL, 2) == NULL && strcmp(mg_last_error(), "mg_affine: the array x is NULL") == 0);

    /* reading the message (not only the status) also ends the old error */
    CHECK(mg_mlp_new(0, 1, sizes, NULL) == NULL);
    CHECK(message_names("mg_mlp_new"));
    CHECK(mg_add(x, NULL) == NULL && message_names("mg_add") && mg_last_status() == MG_ERR_NULL);

    /* unread: propagation, through an affine's element and through ops that succeed in between */
    mg_clear_error();
    mg_value *bad = mg_mul(x, NULL), *fine = mg_exp(x), *in[2] = {fine, bad};
    mg_value *root = mg_add(mg_affine(x, w, in, 2), fine);
    CHECK(root == NULL && message_names("mg_mul") && mg_last_status() == MG_ERR_NULL);
    mg_value_release(fine);

    /* a value op's failure keeps its status (here MG_ERR_ARG) through the NULL it made */
    mg_clear_error();
    mg_value *many[3] = {x, x, x};
    CHECK(mg_affine(x, many, many, 0) == NULL); /* unread */
    CHECK(mg_neg(NULL) == NULL && mg_last_status() == MG_ERR_ARG && message_names("mg_affine"));

    /* unread but of another origin: a failed model, CSV or tensor op cannot have made a value NULL */
    mg_clear_error();
    CHECK(mg_mlp_new(0, 1, sizes, NULL) == NULL);
    CHECK(mg_affine(x, w, holes, 2) == NULL);
    CHECK(mg_last_status() == MG_ERR_NULL && strcmp(mg_last_error(), "mg_affine: x[1] is NULL") == 0);
    CHECK(mg_csv_read_buffer("", 0, NULL) == NULL);
    CHECK(mg_exp(NULL) == NULL && message_names("mg_exp") && mg_last_status() == MG_ERR_NULL);
    size_t s2[] = {2};
    mg_tensor *t = mg_tensor_new(s2, 1, MG_FLOAT64);
    CHECK(mg_tensor_sum(t, 3, 0) == NULL); /* unread, a tensor op's */
    CHECK(mg_relu(NULL) == NULL && message_names("mg_relu"));
    /* and the other way: a value op's failure does not explain a NULL tensor */
    CHECK(mg_mul(x, NULL) == NULL);
    CHECK(mg_tensor_exp(NULL) == NULL && message_names("exp") && mg_last_status() == MG_ERR_NULL);
    /* a tensor op's failure does explain one */
    mg_clear_error();
    CHECK(mg_tensor_exp(mg_tensor_sum(t, 3, 0)) == NULL && message_names("sum"));
    CHECK(mg_last_status() == MG_ERR_RANGE);
    mg_tensor_release(t);
    CHECK(mg_live_tensors() == 0);

    mg_clear_error();
    mg_value_release(x);
    CHECK(mg_live_values() == 0);
}

static void test_null_graph_calls(void) {
    mg_value *x = mg_value_new(1.0);
    mg_value *y = mg_mul_scalar(x, 3.0);

    mg_clear_error();
    CHECK(mg_backward(NULL) == MG_ERR_NULL);
    CHECK(message_names("mg_backward"));
    mg_clear_error();
    CHECK(mg_zero_grad(NULL) == MG_ERR_NULL);
    CHECK(message_names("mg_zero_grad"));

    mg_value **nodes = (mg_value **)&x; /* sentinels: untouched on failure */
    size_t count = 77;
    mg_clear_error();
    CHECK(mg_topo_order(NULL, &nodes, &count) == MG_ERR_NULL);
    CHECK(message_names("mg_topo_order"));
    CHECK(mg_topo_order(y, NULL, &count) == MG_ERR_NULL);
    CHECK(mg_topo_order(y, &nodes, NULL) == MG_ERR_NULL);
    CHECK(mg_topo_order(NULL, NULL, NULL) == MG_ERR_NULL);
    CHECK(nodes == (mg_value **)&x && count == 77);

    /* nothing of the graph was disturbed */
    CHECK(mg_backward(y) == MG_OK);
    CHECK_SAME(mg_value_grad(x), 3.0);
    mg_value_release(y);
    mg_value_release(x);
}

static void test_null_accessors(void) {
    static int tag;
    CHECK(isnan(mg_value_data(NULL)));
    CHECK(isnan(mg_value_grad(NULL)));
    CHECK(isnan(mg_value_constant(NULL)));
    CHECK(mg_value_op(NULL) == MG_OP_LEAF);
    CHECK(mg_value_num_inputs(NULL) == 0);
    CHECK(mg_value_input(NULL, 0) == NULL);
    CHECK(mg_value_user(NULL) == NULL);
    mg_value_set_data(NULL, 1.0);
    mg_value_set_grad(NULL, 1.0);
    mg_value_set_user(NULL, &tag);
    CHECK(mg_value_retain(NULL) == NULL);
    mg_value_release(NULL);
    mg_free(NULL);

    /* out-of-range indices and op codes */
    mg_value *x = mg_value_new(1.0), *y = mg_neg(x);
    CHECK(mg_value_input(y, 1) == NULL);
    CHECK(mg_value_input(y, (size_t)-1) == NULL);
    CHECK(mg_value_input(x, 0) == NULL);
    mg_value_release(y);
    mg_value_release(x);
    CHECK(strcmp(mg_op_name(MG_OP_COUNT), "?") == 0);
    CHECK(strcmp(mg_op_name((mg_opcode)(MG_OP_COUNT + 100)), "?") == 0);
}

static void test_status_strings(void) {
    static const mg_status all[] = {MG_OK,        MG_ERR_NULL, MG_ERR_NOMEM, MG_ERR_ARG,
                                    MG_ERR_STATE, MG_ERR_IO,   MG_ERR_RANGE, MG_ERR_BUSY};
    enum { N = sizeof all / sizeof all[0] };
    for (int i = 0; i < N; i++) {
        const char *s = mg_status_string(all[i]);
        CHECK(s != NULL && s[0] != '\0');
        for (int j = 0; j < i; j++) CHECK(strcmp(s, mg_status_string(all[j])) != 0); /* all different */
    }
    CHECK(strcmp(mg_status_string(MG_OK), "ok") == 0);
    CHECK(strcmp(mg_status_string(MG_ERR_NOMEM), "out of memory") == 0);
    const char *unknown = mg_status_string((mg_status)99);
    CHECK(unknown != NULL && unknown[0] != '\0');
    for (int i = 0; i < N; i++) CHECK(strcmp(unknown, mg_status_string(all[i])) != 0); /* never a valid name */
    CHECK(strcmp(mg_status_string((mg_status)-1), unknown) == 0);
}

static void test_clear_error(void) {
    mg_clear_error();
    CHECK(strcmp(mg_last_error(), "") == 0);
    CHECK(mg_relu(NULL) == NULL);
    CHECK(mg_last_error()[0] != '\0');
    mg_clear_error();
    CHECK(mg_last_error() != NULL && mg_last_error()[0] == '\0');

    /* success does not set a message */
    mg_value *x = mg_value_new(1.0), *y = mg_exp(x);
    CHECK(mg_backward(y) == MG_OK);
    CHECK(mg_last_error()[0] == '\0');
    mg_value_release(y);
    mg_value_release(x);
}

int main(void) {
    test_null_operands();
    test_propagation();
    test_stale_messages();
    test_null_graph_calls();
    test_null_accessors();
    test_status_strings();
    test_clear_error();
    return check_finish("test_errors");
}
