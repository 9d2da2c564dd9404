/* test_ops: every op's value and gradients.
 *
 * Each op is checked at 24 inputs from a fixed generator, away from kinks and poles:
 *   - value and gradient against formulas derived by hand (within 1e-12 + 1e-9 * |expected|);
 *   - gradient against central differences of the op itself (eps 1e-6, atol 1e-5, rtol 1e-3, the
 *     tolerances of torch.autograd.gradcheck);
 *   - what the node says about itself: mg_value_op, mg_op_name, mg_value_constant, its inputs.
 * The op's output feeds a mul_c by UPSTREAM, so an op that ignores the incoming gradient is caught.
 * Then the IEEE edge cases, checked exactly. */
#include "check.h"

#include <micrograd.h>

#include <math.h>
#include <stddef.h>
#include <string.h>

enum { POINTS = 24 };
static const double UPSTREAM = 1.75; /* exact in binary: grad / UPSTREAM loses nothing */
static const double FD_EPS = 1e-6, FD_ATOL = 1e-5, FD_RTOL = 1e-3;

/* ---- hand-derived values and derivatives; y is the second operand or the constant ---- */

/* clang-format off */
static double add_f(double x, double y) { return x + y; }
static double sub_f(double x, double y) { return x - y; }
static double mul_f(double x, double y) { return x * y; }
static double div_f(double x, double y) { return x / y; }
static double pow_f(double x, double y) { return pow(x, y); }
static double rsub_f(double x, double y) { return y - x; }
static double rdiv_f(double x, double y) { return y / x; }
static double rpow_f(double x, double y) { return pow(y, x); }
static double neg_f(double x, double y) { (void)y; return -x; }
static double relu_f(double x, double y) { (void)y; return x > 0.0 ? x : 0.0; }
static double tanh_f(double x, double y) { (void)y; return tanh(x); }
static double exp_f(double x, double y) { (void)y; return exp(x); }
static double log_f(double x, double y) { (void)y; return log(x); }
static double sigmoid_f(double x, double y) { (void)y; return 1.0 / (1.0 + exp(-x)); }

static double one(double x, double y) { (void)x; (void)y; return 1.0; }
static double minus_one(double x, double y) { (void)x; (void)y; return -1.0; }
static double mul_dx(double x, double y) { (void)x; return y; }
static double mul_dy(double x, double y) { (void)y; return x; }
static double div_dx(double x, double y) { (void)x; return 1.0 / y; }
static double div_dy(double x, double y) { return -x / (y * y); }
static double pow_dx(double x, double y) { return y * pow(x, y - 1.0); }
static double pow_dy(double x, double y) { return pow(x, y) * log(x); }
static double rdiv_dx(double x, double y) { return -y / (x * x); }
static double rpow_dx(double x, double y) { return pow(y, x) * log(y); }
static double relu_dx(double x, double y) { (void)y; return x > 0.0 ? 1.0 : 0.0; }
static double tanh_dx(double x, double y) { (void)y; return 1.0 - tanh(x) * tanh(x); }
static double exp_dx(double x, double y) { (void)y; return exp(x); }
static double log_dx(double x, double y) { (void)y; return 1.0 / x; }
/* clang-format on */
static double sigmoid_dx(double x, double y) {
    double s = sigmoid_f(x, y);
    return s * (1.0 - s);
}

/* ---- the table ---- */

typedef enum { UNARY, BINARY, CONST_RIGHT, CONST_LEFT } op_kind;

/* Inputs drawn from [lo, hi], or from [lo, hi] with a random sign to keep away from 0. */
typedef struct {
    double lo, hi;
    int either_sign;
} domain;

typedef struct {
    const char *name;
    op_kind kind;
    mg_value *(*unary)(mg_value *);
    mg_value *(*binary)(mg_value *, mg_value *);
    mg_value *(*const_right)(mg_value *, double);
    mg_value *(*const_left)(double, mg_value *);
    mg_opcode op;                     /* what mg_value_op reports */
    const char *op_name;          /* what mg_op_name gives for it */
    double constant_sign;         /* mg_value_constant is constant_sign * c; 0: the op has none (NAN) */
    double (*value)(double x, double y);
    double (*dx)(double x, double y);
    double (*dy)(double x, double y); /* binary ops only */
    domain x, y;                  /* y: the second operand or the constant */
} op_case;

/* macros, not const variables: C wants constant expressions in a static initializer */
#define ANY {-3.0, 3.0, 0}
#define NONZERO {0.5, 3.0, 1}
#define POSITIVE {0.5, 3.0, 0}
#define EXPONENT {-2.5, 2.5, 0}
#define UNUSED {0.0, 0.0, 0}

static const op_case CASES[] = {
    {"mg_add", BINARY, .binary = mg_add, .op = MG_OP_ADD, .op_name = "+", .value = add_f, .dx = one, .dy = one,
     .x = ANY, .y = ANY},
    {"mg_sub", BINARY, .binary = mg_sub, .op = MG_OP_SUB, .op_name = "-", .value = sub_f, .dx = one, .dy = minus_one,
     .x = ANY, .y = ANY},
    {"mg_mul", BINARY, .binary = mg_mul, .op = MG_OP_MUL, .op_name = "*", .value = mul_f, .dx = mul_dx, .dy = mul_dy,
     .x = ANY, .y = ANY},
    {"mg_div", BINARY, .binary = mg_div, .op = MG_OP_DIV, .op_name = "/", .value = div_f, .dx = div_dx, .dy = div_dy,
     .x = ANY, .y = NONZERO},
    {"mg_pow", BINARY, .binary = mg_pow, .op = MG_OP_POW, .op_name = "**", .value = pow_f, .dx = pow_dx, .dy = pow_dy,
     .x = POSITIVE, .y = EXPONENT},
    {"mg_neg", UNARY, .unary = mg_neg, .op = MG_OP_NEG, .op_name = "neg", .value = neg_f, .dx = minus_one, .x = ANY,
     .y = UNUSED},
    {"mg_relu", UNARY, .unary = mg_relu, .op = MG_OP_RELU, .op_name = "ReLU", .value = relu_f, .dx = relu_dx,
     .x = {0.1, 3.0, 1}, .y = UNUSED},
    {"mg_tanh", UNARY, .unary = mg_tanh, .op = MG_OP_TANH, .op_name = "tanh", .value = tanh_f, .dx = tanh_dx, .x = ANY,
     .y = UNUSED},
    {"mg_exp", UNARY, .unary = mg_exp, .op = MG_OP_EXP, .op_name = "exp", .value = exp_f, .dx = exp_dx, .x = ANY,
     .y = UNUSED},
    {"mg_log", UNARY, .unary = mg_log, .op = MG_OP_LOG, .op_name = "log", .value = log_f, .dx = log_dx,
     .x = {0.1, 5.0, 0}, .y = UNUSED},
    {"mg_sigmoid", UNARY, .unary = mg_sigmoid, .op = MG_OP_SIGMOID, .op_name = "sigmoid", .value = sigmoid_f,
     .dx = sigmoid_dx, .x = {-6.0, 6.0, 0}, .y = UNUSED},
    {"mg_add_scalar", CONST_RIGHT, .const_right = mg_add_scalar, .op = MG_OP_ADD_SCALAR, .op_name = "+",
     .constant_sign = 1, .value = add_f, .dx = one, .x = ANY, .y = ANY},
    /* a - c is stored as a + (-c): the node reports MG_OP_ADD_SCALAR and the constant -c */
    {"mg_sub_scalar", CONST_RIGHT, .const_right = mg_sub_scalar, .op = MG_OP_ADD_SCALAR, .op_name = "+",
     .constant_sign = -1, .value = sub_f, .dx = one, .x = ANY, .y = ANY},
    {"mg_rsub_scalar", CONST_LEFT, .const_left = mg_rsub_scalar, .op = MG_OP_RSUB_SCALAR, .op_name = "-",
     .constant_sign = 1, .value = rsub_f, .dx = minus_one, .x = ANY, .y = ANY},
    {"mg_mul_scalar", CONST_RIGHT, .const_right = mg_mul_scalar, .op = MG_OP_MUL_SCALAR, .op_name = "*",
     .constant_sign = 1, .value = mul_f, .dx = mul_dx, .x = ANY, .y = ANY},
    {"mg_div_scalar", CONST_RIGHT, .const_right = mg_div_scalar, .op = MG_OP_DIV_SCALAR, .op_name = "/",
     .constant_sign = 1, .value = div_f, .dx = div_dx, .x = ANY, .y = NONZERO},
    {"mg_rdiv_scalar", CONST_LEFT, .const_left = mg_rdiv_scalar, .op = MG_OP_RDIV_SCALAR, .op_name = "/",
     .constant_sign = 1, .value = rdiv_f, .dx = rdiv_dx, .x = NONZERO, .y = ANY},
    {"mg_pow_scalar", CONST_RIGHT, .const_right = mg_pow_scalar, .op = MG_OP_POW_SCALAR, .op_name = "**",
     .constant_sign = 1, .value = pow_f, .dx = pow_dx, .x = POSITIVE, .y = EXPONENT},
    {"mg_rpow_scalar", CONST_LEFT, .const_left = mg_rpow_scalar, .op = MG_OP_RPOW_SCALAR, .op_name = "**",
     .constant_sign = 1, .value = rpow_f, .dx = rpow_dx, .x = {-2.0, 2.0, 0}, .y = POSITIVE},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

static double draw(check_rng *rng, domain d) {
    double v = check_uniform(rng, d.lo, d.hi);
    if (d.either_sign && check_uniform(rng, 0.0, 1.0) < 0.5) v = -v;
    return v;
}

/* Builds the op on a (and b for binary ops); y is the constant of the constant forms. */
static mg_value *apply(const op_case *oc, mg_value *a, mg_value *b, double y) {
    switch (oc->kind) {
    case UNARY: return oc->unary(a);
    case BINARY: return oc->binary(a, b);
    case CONST_RIGHT: return oc->const_right(a, y);
    case CONST_LEFT: return oc->const_left(y, a);
    }
    return NULL;
}

/* The op's value computed by the library at (x, y): what central differences are taken of. */
static double library_value(const op_case *oc, double x, double y) {
    mg_value *a = mg_value_new(x);
    mg_value *b = oc->kind == BINARY ? mg_value_new(y) : NULL;
    mg_value *out = apply(oc, a, b, y);
    double value = mg_value_data(out);
    mg_value_release(out);
    mg_value_release(b);
    mg_value_release(a);
    return value;
}

static double central_difference(const op_case *oc, double x, double y, int wrt_y) {
    double plus = wrt_y ? library_value(oc, x, y + FD_EPS) : library_value(oc, x + FD_EPS, y);
    double minus = wrt_y ? library_value(oc, x, y - FD_EPS) : library_value(oc, x - FD_EPS, y);
    return (plus - minus) / (2.0 * FD_EPS);
}

static double exact_tol(double expected) { return 1e-12 + 1e-9 * fabs(expected); }
static double gradcheck_tol(double numeric) { return FD_ATOL + FD_RTOL * fabs(numeric); }

static void check_op_at(const op_case *oc, double x, double y) {
    mg_value *a = mg_value_new(x);
    mg_value *b = oc->kind == BINARY ? mg_value_new(y) : NULL;
    mg_value *out = apply(oc, a, b, y);
    mg_value *root = mg_mul_scalar(out, UPSTREAM);
    if (!CHECK(root != NULL)) {
        fprintf(stderr, "%s(%g, %g): %s\n", oc->name, x, y, mg_last_error());
        goto done;
    }

    /* what the node says about itself */
    CHECK(mg_value_op(out) == oc->op);
    CHECK(strcmp(mg_op_name(mg_value_op(out)), oc->op_name) == 0);
    if (oc->constant_sign != 0.0) CHECK_SAME(mg_value_constant(out), oc->constant_sign * y);
    else CHECK(isnan(mg_value_constant(out)));
    CHECK(mg_value_num_inputs(out) == (oc->kind == BINARY ? 2u : 1u));
    CHECK(mg_value_input(out, 0) == a);
    CHECK(mg_value_input(out, 1) == b); /* NULL past the last input */
    CHECK(mg_value_input(out, 2) == NULL);
    CHECK(mg_value_grad(out) == 0.0);

    /* value and gradients by hand */
    double want = oc->value(x, y);
    if (!CHECK_NEAR(mg_value_data(out), want, exact_tol(want))) fprintf(stderr, "  %s(%g, %g)\n", oc->name, x, y);
    if (!CHECK(mg_backward(root) == MG_OK)) goto done;
    CHECK_SAME(mg_value_grad(root), 1.0);
    CHECK_SAME(mg_value_grad(out), UPSTREAM);
    double want_dx = UPSTREAM * oc->dx(x, y);
    if (!CHECK_NEAR(mg_value_grad(a), want_dx, exact_tol(want_dx)))
        fprintf(stderr, "  d%s/dx at (%g, %g)\n", oc->name, x, y);
    if (oc->kind == BINARY) {
        double want_dy = UPSTREAM * oc->dy(x, y);
        if (!CHECK_NEAR(mg_value_grad(b), want_dy, exact_tol(want_dy)))
            fprintf(stderr, "  d%s/dy at (%g, %g)\n", oc->name, x, y);
    }

    /* gradients by central differences */
    double numeric_dx = central_difference(oc, x, y, 0);
    if (!CHECK_NEAR(mg_value_grad(a) / UPSTREAM, numeric_dx, gradcheck_tol(numeric_dx)))
        fprintf(stderr, "  gradcheck d%s/dx at (%g, %g)\n", oc->name, x, y);
    if (oc->kind == BINARY) {
        double numeric_dy = central_difference(oc, x, y, 1);
        if (!CHECK_NEAR(mg_value_grad(b) / UPSTREAM, numeric_dy, gradcheck_tol(numeric_dy)))
            fprintf(stderr, "  gradcheck d%s/dy at (%g, %g)\n", oc->name, x, y);
    }

done:
    mg_value_release(root);
    mg_value_release(out);
    mg_value_release(b);
    mg_value_release(a);
}

static void test_every_op_on_a_grid(void) {
    for (int i = 0; i < N_CASES; i++) {
        const op_case *oc = &CASES[i];
        check_rng rng = {0x5eed0000ULL + (unsigned long long)i};
        for (int p = 0; p < POINTS; p++) {
            double x = draw(&rng, oc->x);
            double y = oc->kind == UNARY ? 0.0 : draw(&rng, oc->y);
            check_op_at(oc, x, y);
        }
    }
}

/* ---- mg_affine: b + w[0]*x[0] + ... in one node ---- */

enum { AFFINE_MAX = 6 };

/* value of the affine node built from plain numbers, summed left to right */
static double affine_value(double b, const double *w, const double *x, size_t n) {
    double acc = b;
    for (size_t i = 0; i < n; i++) acc = acc + w[i] * x[i];
    return acc;
}

static double affine_library_value(double b, const double *w, const double *x, size_t n) {
    mg_value *vb = mg_value_new(b), *vw[AFFINE_MAX], *vx[AFFINE_MAX];
    for (size_t i = 0; i < n; i++) {
        vw[i] = mg_value_new(w[i]);
        vx[i] = mg_value_new(x[i]);
    }
    mg_value *out = mg_affine(vb, vw, vx, n);
    double value = mg_value_data(out);
    mg_value_release(out);
    for (size_t i = 0; i < n; i++) {
        mg_value_release(vw[i]);
        mg_value_release(vx[i]);
    }
    mg_value_release(vb);
    return value;
}

static void check_affine_at(double b, const double *w, const double *x, size_t n) {
    mg_value *vb = mg_value_new(b), *vw[AFFINE_MAX], *vx[AFFINE_MAX];
    for (size_t i = 0; i < n; i++) {
        vw[i] = mg_value_new(w[i]);
        vx[i] = mg_value_new(x[i]);
    }
    mg_value *out = mg_affine(vb, vw, vx, n);
    mg_value *root = mg_mul_scalar(out, UPSTREAM);
    if (!CHECK(root != NULL)) {
        fprintf(stderr, "mg_affine: %s\n", mg_last_error());
        goto done;
    }
    CHECK(mg_value_op(out) == MG_OP_AFFINE);
    CHECK(strcmp(mg_op_name(MG_OP_AFFINE), "affine") == 0);
    CHECK(isnan(mg_value_constant(out)));
    CHECK(mg_value_num_inputs(out) == 2 * n + 1);
    CHECK(mg_value_input(out, 0) == vb);
    for (size_t i = 0; i < n; i++) {
        CHECK(mg_value_input(out, 1 + i) == vw[i]);
        CHECK(mg_value_input(out, 1 + n + i) == vx[i]);
    }
    CHECK(mg_value_input(out, 2 * n + 1) == NULL);

    /* bit for bit micrograd's chain of multiplications and additions */
    CHECK_SAME(mg_value_data(out), affine_value(b, w, x, n));
    mg_value *chain = mg_value_retain(vb);
    for (size_t i = 0; i < n; i++) {
        mg_value *product = mg_mul(vw[i], vx[i]);
        mg_value *sum = mg_add(chain, product);
        mg_value_release(product);
        mg_value_release(chain);
        chain = sum;
    }
    CHECK_SAME(mg_value_data(out), mg_value_data(chain));
    mg_value_release(chain);

    if (!CHECK(mg_backward(root) == MG_OK)) goto done;
    CHECK_SAME(mg_value_grad(vb), UPSTREAM);
    for (size_t i = 0; i < n; i++) {
        CHECK_NEAR(mg_value_grad(vw[i]), UPSTREAM * x[i], exact_tol(UPSTREAM * x[i]));
        CHECK_NEAR(mg_value_grad(vx[i]), UPSTREAM * w[i], exact_tol(UPSTREAM * w[i]));
    }

    /* central differences, one input at a time */
    double nb = (affine_library_value(b + FD_EPS, w, x, n) - affine_library_value(b - FD_EPS, w, x, n)) / (2 * FD_EPS);
    CHECK_NEAR(mg_value_grad(vb) / UPSTREAM, nb, gradcheck_tol(nb));
    for (size_t i = 0; i < n; i++) {
        double wp[AFFINE_MAX], xp[AFFINE_MAX];
        memcpy(wp, w, n * sizeof *w);
        memcpy(xp, x, n * sizeof *x);
        wp[i] = w[i] + FD_EPS;
        double plus = affine_library_value(b, wp, x, n);
        wp[i] = w[i] - FD_EPS;
        double nw = (plus - affine_library_value(b, wp, x, n)) / (2 * FD_EPS);
        CHECK_NEAR(mg_value_grad(vw[i]) / UPSTREAM, nw, gradcheck_tol(nw));
        xp[i] = x[i] + FD_EPS;
        plus = affine_library_value(b, w, xp, n);
        xp[i] = x[i] - FD_EPS;
        double nx = (plus - affine_library_value(b, w, xp, n)) / (2 * FD_EPS);
        CHECK_NEAR(mg_value_grad(vx[i]) / UPSTREAM, nx, gradcheck_tol(nx));
    }

done:
    mg_value_release(root);
    mg_value_release(out);
    for (size_t i = 0; i < n; i++) {
        mg_value_release(vw[i]);
        mg_value_release(vx[i]);
    }
    mg_value_release(vb);
}

static void test_affine(void) {
    check_rng rng = {0xaff1eULL};
    for (int p = 0; p < POINTS; p++) {
        size_t n = 1 + (size_t)p % AFFINE_MAX;
        double w[AFFINE_MAX], x[AFFINE_MAX];
        double b = check_uniform(&rng, -3.0, 3.0);
        for (size_t i = 0; i < n; i++) {
            w[i] = check_uniform(&rng, -3.0, 3.0);
            x[i] = check_uniform(&rng, -3.0, 3.0);
        }
        check_affine_at(b, w, x, n);
    }

    /* one value as both weight and input (v * v): listed twice, gradient 2v */
    mg_value *b = mg_value_new(0.5), *v = mg_value_new(3.0);
    mg_value *out = mg_affine(b, &v, &v, 1);
    CHECK_SAME(mg_value_data(out), 9.5);
    CHECK(mg_value_num_inputs(out) == 3);
    CHECK(mg_backward(out) == MG_OK);
    CHECK_SAME(mg_value_grad(v), 6.0);
    CHECK_SAME(mg_value_grad(b), 1.0);
    mg_value_release(out);
    mg_value_release(v);
    mg_value_release(b);
}

/* ---- edge cases, checked exactly ---- */

/* op(x) has value want and, as the root of backward, gives x the gradient want_grad */
#define EDGE_UNARY(op, x, want, want_grad)        \
    do {                                          \
        mg_value *a_ = mg_value_new(x);           \
        mg_value *r_ = op(a_);                    \
        CHECK_SAME(mg_value_data(r_), want);      \
        CHECK(mg_backward(r_) == MG_OK);          \
        CHECK_SAME(mg_value_grad(a_), want_grad); \
        mg_value_release(r_);                     \
        mg_value_release(a_);                     \
    } while (0)

/* the same for ops with a constant: call is an expression of the leaf a_ */
#define EDGE_CONST(call, x, want, want_grad)      \
    do {                                          \
        mg_value *a_ = mg_value_new(x);           \
        mg_value *r_ = call;                      \
        CHECK_SAME(mg_value_data(r_), want);      \
        CHECK(mg_backward(r_) == MG_OK);          \
        CHECK_SAME(mg_value_grad(a_), want_grad); \
        mg_value_release(r_);                     \
        mg_value_release(a_);                     \
    } while (0)

/* op(x, y) has value want and gradients want_dx, want_dy */
#define EDGE_BINARY(op, x, y, want, want_dx, want_dy)          \
    do {                                                       \
        mg_value *a_ = mg_value_new(x), *b_ = mg_value_new(y); \
        mg_value *r_ = op(a_, b_);                             \
        CHECK_SAME(mg_value_data(r_), want);                   \
        CHECK(mg_backward(r_) == MG_OK);                       \
        CHECK_SAME(mg_value_grad(a_), want_dx);                \
        CHECK_SAME(mg_value_grad(b_), want_dy);                \
        mg_value_release(r_);                                  \
        mg_value_release(b_);                                  \
        mg_value_release(a_);                                  \
    } while (0)

static void test_edge_cases(void) {
    /* relu: gradient 0 at the kink (PyTorch's choice), NaN passes through */
    EDGE_UNARY(mg_relu, 0.0, 0.0, 0.0);
    EDGE_UNARY(mg_relu, -2.0, 0.0, 0.0);
    mg_value *n = mg_value_new(NAN), *rn = mg_relu(n);
    CHECK(isnan(mg_value_data(rn)));
    CHECK(mg_backward(rn) == MG_OK);
    mg_value_release(rn);
    mg_value_release(n);

    /* saturation: exact limits with exactly zero gradient, no NaN */
    EDGE_UNARY(mg_tanh, 1000.0, 1.0, 0.0);
    EDGE_UNARY(mg_tanh, -1000.0, -1.0, 0.0);
    EDGE_UNARY(mg_sigmoid, 1000.0, 1.0, 0.0);
    EDGE_UNARY(mg_sigmoid, -1000.0, 0.0, 0.0);
    EDGE_UNARY(mg_exp, 1000.0, INFINITY, INFINITY);
    EDGE_UNARY(mg_exp, -1000.0, 0.0, 0.0);

    /* log at and below 0 */
    EDGE_UNARY(mg_log, 0.0, -INFINITY, INFINITY);
    EDGE_UNARY(mg_log, -1.0, NAN, -1.0);

    /* division by zero is IEEE, never a trap */
    EDGE_BINARY(mg_div, 1.0, 0.0, INFINITY, INFINITY, -INFINITY);
    EDGE_BINARY(mg_div, 0.0, 0.0, NAN, INFINITY, NAN);
    EDGE_CONST(mg_rdiv_scalar(1.0, a_), 0.0, INFINITY, -INFINITY);
    EDGE_CONST(mg_div_scalar(a_, 0.0), 1.0, INFINITY, INFINITY);

    /* negative base, fractional exponent: NaN (and NaN gradients, as in PyTorch) */
    EDGE_CONST(mg_pow_scalar(a_, 0.5), -2.0, NAN, NAN);
    EDGE_BINARY(mg_pow, -2.0, 0.5, NAN, NAN, NAN);
    /* negative base, integer exponent: fine; only the exponent's gradient (log of a negative) is NaN */
    EDGE_CONST(mg_pow_scalar(a_, 3.0), -2.0, -8.0, 12.0);
    EDGE_BINARY(mg_pow, -2.0, 3.0, -8.0, 12.0, NAN);

    /* 0 ** -1 is inf, gradients -inf (d/dx x^-1 = -x^-2; d/dy 0^y = 0^y log 0), no crash */
    EDGE_CONST(mg_pow_scalar(a_, -1.0), 0.0, INFINITY, -INFINITY);
    EDGE_BINARY(mg_pow, 0.0, -1.0, INFINITY, -INFINITY, -INFINITY);
    EDGE_CONST(mg_rpow_scalar(0.0, a_), -1.0, INFINITY, -INFINITY);

    /* exponent 0: gradient 0 even at base 0, where y * x^(y-1) would be 0 * inf = NaN (PyTorch masks it) */
    EDGE_CONST(mg_pow_scalar(a_, 0.0), 0.0, 1.0, 0.0);
    EDGE_CONST(mg_pow_scalar(a_, 0.0), 3.0, 1.0, 0.0);
    EDGE_BINARY(mg_pow, 0.0, 0.0, 1.0, 0.0, 0.0);
    EDGE_BINARY(mg_pow, 3.0, 0.0, 1.0, 0.0, log(3.0));
    /* base 0, exponent >= 0: the exponent's gradient 0^y log 0 = 0 * -inf is masked to 0 too */
    EDGE_BINARY(mg_pow, 0.0, 2.0, 0.0, 0.0, 0.0);
    EDGE_CONST(mg_rpow_scalar(0.0, a_), 2.0, 0.0, 0.0);
    EDGE_CONST(mg_rpow_scalar(0.0, a_), 0.0, 1.0, 0.0);
}

static void test_op_names(void) {
    static const char *const want[MG_OP_COUNT] = {
        [MG_OP_LEAF] = "",          [MG_OP_ADD] = "+",        [MG_OP_SUB] = "-",           [MG_OP_MUL] = "*",
        [MG_OP_DIV] = "/",          [MG_OP_POW] = "**",       [MG_OP_ADD_SCALAR] = "+",    [MG_OP_MUL_SCALAR] = "*",
        [MG_OP_RSUB_SCALAR] = "-",  [MG_OP_DIV_SCALAR] = "/", [MG_OP_RDIV_SCALAR] = "/",   [MG_OP_POW_SCALAR] = "**",
        [MG_OP_RPOW_SCALAR] = "**", [MG_OP_NEG] = "neg",      [MG_OP_RELU] = "ReLU",       [MG_OP_TANH] = "tanh",
        [MG_OP_EXP] = "exp",        [MG_OP_LOG] = "log",      [MG_OP_SIGMOID] = "sigmoid", [MG_OP_AFFINE] = "affine",
    };
    for (int op = 0; op < MG_OP_COUNT; op++) {
        const char *name = mg_op_name((mg_opcode)op);
        if (!CHECK(name != NULL && want[op] != NULL && strcmp(name, want[op]) == 0))
            fprintf(stderr, "  mg_op_name(%d) = \"%s\"\n", op, name ? name : "(null)");
    }
    CHECK(strcmp(mg_op_name(MG_OP_COUNT), "?") == 0);
    /* any code out of range, negative included, is "?": never the name of a real op */
    CHECK(strcmp(mg_op_name((mg_opcode)-1), "?") == 0 && strcmp(mg_op_name((mg_opcode)9999), "?") == 0);

    /* a leaf */
    mg_value *leaf = mg_value_new(2.5);
    CHECK(mg_value_op(leaf) == MG_OP_LEAF);
    CHECK(mg_value_num_inputs(leaf) == 0);
    CHECK(mg_value_input(leaf, 0) == NULL);
    CHECK(isnan(mg_value_constant(leaf)));
    CHECK_SAME(mg_value_data(leaf), 2.5);
    CHECK_SAME(mg_value_grad(leaf), 0.0);
    mg_value_release(leaf);
}

/* Grad mode off (mg_set_grad_enabled(0), Python's no_grad): every op, mg_affine included, gives a leaf
 * holding the number it computes with grad mode on, bit for bit; its inputs gain no reference, so they
 * are freed as soon as the caller drops them; backward through it reaches nothing. Back on, graphs again. */
static void test_no_grad(void) {
    CHECK(mg_is_grad_enabled() == 1);
    int64_t live0 = mg_live_values();
    for (size_t i = 0; i < N_CASES; i++) {
        const op_case *oc = &CASES[i];
        double x = oc->x.lo + 0.375 * (oc->x.hi - oc->x.lo),
               y = oc->y.hi > 0.0 ? 0.5 * (oc->y.lo + oc->y.hi) + 0.25 : 0.0;
        double want = library_value(oc, x, y); /* grad mode on */
        CHECK(mg_set_grad_enabled(0) == 1);
        CHECK(mg_is_grad_enabled() == 0);
        mg_value *a = mg_value_new(x);
        mg_value *b = oc->kind == BINARY ? mg_value_new(y) : NULL;
        mg_value *out = apply(oc, a, b, y);
        if (!CHECK(out != NULL)) fprintf(stderr, "  %s under no_grad: %s\n", oc->name, mg_last_error());
        CHECK(mg_value_op(out) == MG_OP_LEAF);
        CHECK(mg_value_num_inputs(out) == 0 && mg_value_input(out, 0) == NULL);
        CHECK(isnan(mg_value_constant(out)));
        if (!CHECK_SAME(mg_value_data(out), want)) fprintf(stderr, "  %s(%g, %g) under no_grad\n", oc->name, x, y);
        mg_value_release(a); /* out holds no reference: a and b go now */
        mg_value_release(b);
        CHECK(mg_live_values() == live0 + 1);
        CHECK(mg_backward(out) == MG_OK);
        CHECK_SAME(mg_value_grad(out), 1.0);
        mg_value_release(out);
        CHECK(mg_set_grad_enabled(1) == 0);
    }

    /* mg_affine: a leaf with b + sum w x, the same number as with graphs */
    mg_value *w[3], *xs[3], *bias = mg_value_new(0.25);
    for (int i = 0; i < 3; i++) w[i] = mg_value_new(0.5 * i - 0.3), xs[i] = mg_value_new(1.5 - i);
    mg_value *with_graph = mg_affine(bias, w, xs, 3);
    mg_set_grad_enabled(0);
    mg_value *leaf = mg_affine(bias, w, xs, 3);
    CHECK(mg_value_op(leaf) == MG_OP_LEAF && mg_value_num_inputs(leaf) == 0);
    CHECK_SAME(mg_value_data(leaf), mg_value_data(with_graph));
    CHECK(mg_affine(bias, w, xs, 0) == NULL && mg_last_status() == MG_ERR_ARG); /* the checks still run */
    /* a chain under no_grad is a chain of leaves: backward from its end leaves the inputs' grads at 0 */
    mg_value *m = mg_mul(leaf, w[0]), *chain = mg_tanh(m);
    mg_value_release(m); /* nothing holds it: freed now */
    if (CHECK(chain != NULL)) {
        CHECK(mg_value_num_inputs(chain) == 0);
        CHECK(mg_backward(chain) == MG_OK);
        CHECK(mg_value_grad(leaf) == 0.0 && mg_value_grad(w[0]) == 0.0);
    }
    mg_set_grad_enabled(1);
    mg_value *again = mg_affine(bias, w, xs, 3);
    CHECK(mg_value_op(again) == MG_OP_AFFINE && mg_value_num_inputs(again) == 7);
    mg_value *sum = mg_add(again, leaf);
    CHECK(mg_value_op(sum) == MG_OP_ADD && mg_value_input(sum, 1) == leaf);
    CHECK(mg_backward(sum) == MG_OK);
    CHECK_SAME(mg_value_grad(bias), 1.0);
    CHECK_SAME(mg_value_grad(leaf), 1.0);
    mg_value *vals[] = {sum, again, chain, leaf, with_graph, bias};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) mg_value_release(vals[i]);
    for (int i = 0; i < 3; i++) mg_value_release(w[i]), mg_value_release(xs[i]);
    CHECK(mg_live_values() == live0);
}

int main(void) {
    test_every_op_on_a_grid();
    test_no_grad();
    test_affine();
    test_edge_cases();
    test_op_names();
    return check_finish("test_ops");
}
