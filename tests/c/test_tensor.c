/* test_tensor: tensors, views, broadcasting, every op's gradient, errors, threads and leaks.
 *
 * Gradients are checked against central differences (eps 1e-6) on random inputs away from kinks; values
 * against plain loops. Every test ends with no tensor alive, and an allocator that fails its k-th call
 * walks every out-of-memory path of a workload. */
#include "check.h"

#include <micrograd.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_LIVE0() CHECK(mg_live_tensors() == 0)

static mg_tensor *make(check_rng *rng, const size_t *shape, int nd, double lo, double hi) {
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    double *data = malloc((n + 1) * sizeof *data);
    for (size_t i = 0; i < n; i++) data[i] = check_uniform(rng, lo, hi);
    mg_tensor *t = mg_tensor_from_data(data, shape, nd, MG_FLOAT64);
    free(data);
    return t;
}

static double at(mg_tensor *t, size_t i) {
    double *buf = malloc((mg_tensor_numel(t) + 1) * sizeof *buf);
    mg_tensor_copy_data(t, buf);
    double v = buf[i];
    free(buf);
    return v;
}

/* ---- gradient check: f builds a scalar from the leaves; analytic grads vs central differences ---- */

typedef mg_tensor *(*scalar_fn)(mg_tensor **leaves);

static void check_grads(const char *name, scalar_fn f, mg_tensor **leaves, int count) {
    for (int l = 0; l < count; l++) mg_tensor_clear_grad(leaves[l]);
    mg_tensor *out = f(leaves);
    if (!CHECK(out != NULL)) {
        fprintf(stderr, "%s: %s\n", name, mg_last_error());
        return;
    }
    CHECK(mg_tensor_backward(out) == MG_OK);
    mg_tensor_release(out);
    for (int l = 0; l < count; l++) {
        double *x = mg_tensor_data_ptr(leaves[l]);
        const double *g = mg_tensor_grad_data(leaves[l]);
        if (!CHECK(g != NULL)) continue;
        for (size_t i = 0; i < mg_tensor_numel(leaves[l]); i++) {
            double saved = x[i], eps = 1e-6;
            x[i] = saved + eps;
            mg_set_grad_enabled(0);
            mg_tensor *plus = f(leaves);
            x[i] = saved - eps;
            mg_tensor *minus = f(leaves);
            mg_set_grad_enabled(1);
            x[i] = saved;
            double numeric = (at(plus, 0) - at(minus, 0)) / (2 * eps);
            mg_tensor_release(plus);
            mg_tensor_release(minus);
            if (!CHECK_NEAR(g[i], numeric, 1e-5 + 1e-4 * fabs(numeric)))
                fprintf(stderr, "  in %s, leaf %d, element %zu\n", name, l, i);
        }
    }
}

/* sum(f(...)) helpers: each returns a scalar, releasing its intermediates */
static mg_tensor *sum_of(mg_tensor *t) {
    mg_tensor *s = mg_tensor_sum(t, MG_DIM_ALL, 0);
    mg_tensor_release(t);
    return s;
}

/* weights the output so every element's gradient differs: sum(t * w), w = 1, 2, 3, ... */
static mg_tensor *weighted_sum(mg_tensor *t) {
    if (!t) return NULL;
    size_t n = mg_tensor_numel(t);
    double *w = malloc((n + 1) * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = 1.0 + 0.5 * (double)i;
    mg_tensor *wt = mg_tensor_from_data(w, mg_tensor_shape(t), mg_tensor_ndim(t), MG_FLOAT64);
    free(w);
    mg_tensor_set_requires_grad(wt, 0);
    mg_tensor *p = mg_tensor_mul(t, wt);
    mg_tensor_release(wt);
    mg_tensor_release(t);
    return sum_of(p);
}

static mg_tensor *f_add_bcast(mg_tensor **x) { return weighted_sum(mg_tensor_add(x[0], x[1])); }
static mg_tensor *f_sub_bcast(mg_tensor **x) { return weighted_sum(mg_tensor_sub(x[1], x[0])); }
static mg_tensor *f_mul_bcast(mg_tensor **x) { return weighted_sum(mg_tensor_mul(x[0], x[1])); }
static mg_tensor *f_div_bcast(mg_tensor **x) { return weighted_sum(mg_tensor_div(x[0], x[1])); }
static mg_tensor *f_matmul(mg_tensor **x) { return weighted_sum(mg_tensor_matmul(x[0], x[1])); }
static mg_tensor *f_unary(mg_tensor **x) {
    /* exp, log, tanh, sigmoid, relu, pow, scalar ops, neg in one chain */
    mg_tensor *a = mg_tensor_tanh(x[0]), *b = mg_tensor_sigmoid(a), *c = mg_tensor_exp(b);
    mg_tensor *d = mg_tensor_log(c), *e = mg_tensor_pow_scalar(d, 3.0), *f = mg_tensor_rdiv_scalar(2.0, e);
    mg_tensor *g = mg_tensor_rsub_scalar(1.5, f), *h = mg_tensor_div_scalar(g, 3.0), *i = mg_tensor_relu(h);
    mg_tensor *j = mg_tensor_neg(i), *k = mg_tensor_mul_scalar(j, -2.0), *l = mg_tensor_add_scalar(k, 0.25);
    mg_tensor_release(a);
    mg_tensor_release(b);
    mg_tensor_release(c);
    mg_tensor_release(d);
    mg_tensor_release(e);
    mg_tensor_release(f);
    mg_tensor_release(g);
    mg_tensor_release(h);
    mg_tensor_release(i);
    mg_tensor_release(j);
    mg_tensor_release(k);
    return weighted_sum(l);
}
static mg_tensor *f_reductions(mg_tensor **x) {
    mg_tensor *s = mg_tensor_sum(x[0], 1, 1), *m = mg_tensor_mean(x[0], 0, 0), *mx = mg_tensor_max(x[0], -1, 0);
    mg_tensor *ls = mg_tensor_log_softmax(x[0], 1);
    mg_tensor *a = weighted_sum(s), *b = weighted_sum(m), *c = weighted_sum(mx), *d = weighted_sum(ls);
    mg_tensor *ab = mg_tensor_add(a, b), *cd = mg_tensor_add(c, d), *r = mg_tensor_add(ab, cd);
    mg_tensor_release(a);
    mg_tensor_release(b);
    mg_tensor_release(c);
    mg_tensor_release(d);
    mg_tensor_release(ab);
    mg_tensor_release(cd);
    return r;
}
static mg_tensor *f_views(mg_tensor **x) {
    /* transpose, slice with a step, select, reshape of a non-contiguous view, expand */
    mg_tensor *t = mg_tensor_transpose(x[0], 0, 2);          /* (4, 3, 2) */
    mg_tensor *s = mg_tensor_slice(t, 0, 1, 4, 2);           /* (2, 3, 2) */
    mg_tensor *e = mg_tensor_select(s, 1, 2);                /* (2, 2) */
    int64_t shape[] = {-1};
    mg_tensor *r = mg_tensor_reshape(e, shape, 1);           /* (4) */
    size_t big[] = {3, 4};
    mg_tensor *x2 = mg_tensor_expand(r, big, 2);             /* (3, 4) */
    mg_tensor *both = mg_tensor_mul(x2, x2);
    mg_tensor_release(t);
    mg_tensor_release(s);
    mg_tensor_release(e);
    mg_tensor_release(r);
    mg_tensor_release(x2);
    return weighted_sum(both);
}
static mg_tensor *f_reuse(mg_tensor **x) {
    mg_tensor *a = mg_tensor_add(x[0], x[0]), *b = mg_tensor_mul(a, x[0]), *c = mg_tensor_mul(b, b);
    mg_tensor_release(a);
    mg_tensor_release(b);
    return weighted_sum(c);
}

static void test_gradients(void) {
    check_rng rng = {42};
    size_t s23[] = {2, 3}, s3[] = {3}, s21[] = {2, 1}, s234[] = {2, 3, 4}, s2_1_3_4[] = {2, 1, 3, 4},
           s3_4_2[] = {3, 4, 2}, s4[] = {4}, s43[] = {4, 3}, s243[] = {2, 4, 3};
    mg_tensor *x[2];

    x[0] = make(&rng, s23, 2, -1, 1), x[1] = make(&rng, s3, 1, 0.5, 2);
    check_grads("add", f_add_bcast, x, 2);
    check_grads("sub", f_sub_bcast, x, 2);
    check_grads("mul", f_mul_bcast, x, 2);
    check_grads("div", f_div_bcast, x, 2);
    mg_tensor_release(x[1]);
    x[1] = make(&rng, s21, 2, 0.5, 2);
    check_grads("mul (2,3)*(2,1)", f_mul_bcast, x, 2);
    check_grads("unary chain", f_unary, x, 1);
    check_grads("reuse", f_reuse, x, 1);
    mg_tensor_release(x[0]);
    mg_tensor_release(x[1]);

    x[0] = make(&rng, s2_1_3_4, 4, -1, 1), x[1] = make(&rng, s3_4_2, 3, -1, 1);
    check_grads("batched matmul", f_matmul, x, 2);
    mg_tensor_release(x[0]);
    mg_tensor_release(x[1]);
    x[0] = make(&rng, s4, 1, -1, 1), x[1] = make(&rng, s243, 3, -1, 1);
    check_grads("vector @ batch", f_matmul, x, 2);
    mg_tensor_release(x[0]);
    mg_tensor_release(x[1]);
    x[0] = make(&rng, s23, 2, -1, 1), x[1] = make(&rng, s3, 1, -1, 1);
    check_grads("matrix @ vector", f_matmul, x, 2);
    mg_tensor_release(x[0]);
    mg_tensor_release(x[1]);

    x[0] = make(&rng, s43, 2, -2, 2);
    check_grads("reductions", f_reductions, x, 1);
    mg_tensor_release(x[0]);
    x[0] = make(&rng, s234, 3, -2, 2);
    check_grads("views", f_views, x, 1);
    mg_tensor_release(x[0]);
    CHECK_LIVE0();
}

/* ---- values, views and layout ---- */

static void test_views(void) {
    double d[] = {1, 2, 3, 4, 5, 6};
    size_t s23[] = {2, 3};
    mg_tensor *t = mg_tensor_from_data(d, s23, 2, MG_FLOAT64);
    CHECK(mg_tensor_is_contiguous(t));
    CHECK(mg_tensor_strides(t)[0] == 3 && mg_tensor_strides(t)[1] == 1);
    mg_tensor *tt = mg_tensor_transpose(t, 0, 1);
    CHECK(!mg_tensor_is_contiguous(tt));
    CHECK(mg_tensor_shape(tt)[0] == 3 && mg_tensor_strides(tt)[0] == 1 && mg_tensor_strides(tt)[1] == 3);
    double out[6];
    mg_tensor_copy_data(tt, out);
    double expect_t[] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) CHECK_SAME(out[i], expect_t[i]);
    mg_tensor *s = mg_tensor_slice(tt, 0, 0, 3, 2); /* rows 0 and 2 */
    mg_tensor_copy_data(s, out);
    CHECK(mg_tensor_shape(s)[0] == 2);
    CHECK_SAME(out[0], 1);
    CHECK_SAME(out[1], 4);
    CHECK_SAME(out[2], 3);
    CHECK_SAME(out[3], 6);
    int64_t flat[] = {6};
    mg_tensor *r = mg_tensor_reshape(tt, flat, 1); /* a copy: tt is not contiguous */
    mg_tensor_copy_data(r, out);
    for (int i = 0; i < 6; i++) CHECK_SAME(out[i], expect_t[i]);
    mg_tensor *rv = mg_tensor_reshape(t, flat, 1); /* a view */
    CHECK(mg_tensor_data_ptr(rv) == mg_tensor_data_ptr(t));
    /* writes through a view are seen by its base */
    mg_tensor *col = mg_tensor_select(t, 1, 2);
    mg_tensor_fill_(col, 9.0);
    mg_tensor_copy_data(t, out);
    CHECK_SAME(out[2], 9);
    CHECK_SAME(out[5], 9);
    CHECK_SAME(out[4], 5);
    mg_tensor *det = mg_tensor_detach(tt);
    CHECK(!mg_tensor_requires_grad(det) && mg_tensor_op(det) == MG_TENSOR_OP_LEAF);
    /* gradient flows through views into the base */
    mg_tensor *sum = mg_tensor_sum(s, MG_DIM_ALL, 0);
    CHECK(mg_tensor_backward(sum) == MG_OK);
    const double *g = mg_tensor_grad_data(t); /* s covers t[0][0], t[1][0], t[0][2], t[1][2] */
    double expect_g[] = {1, 0, 1, 1, 0, 1};
    for (int i = 0; i < 6; i++) CHECK_SAME(g[i], expect_g[i]);
    /* leaves accumulate across backward calls */
    CHECK(mg_tensor_backward(sum) == MG_OK);
    CHECK_SAME(mg_tensor_grad_data(t)[0], 2.0);
    mg_tensor_release(sum);
    mg_tensor_release(det);
    mg_tensor_release(col);
    mg_tensor_release(rv);
    mg_tensor_release(r);
    mg_tensor_release(s);
    mg_tensor_release(tt);
    mg_tensor_release(t);
    CHECK_LIVE0();
}

/* A matmul at each precision against the plain loop s = 0; s += a * b (this file is built without FMA
 * contraction): EXACT gives its bits, FAST is within rounding. Shapes cover one micro-tile, the edges of
 * tiles, the small path that reads operands in place, and the blocked one (m, n and k past one block). */
static void test_matmul_values(void) {
    check_rng rng = {7};
    size_t dims[][3] = {{1, 1, 1}, {5, 7, 3}, {6, 16, 8}, {33, 65, 17}, {70, 300, 129}, {300, 257, 200}, {13, 40, 530}};
    for (int precision = 0; precision < MG_PRECISION_COUNT; precision++)
        for (size_t c = 0; c < sizeof dims / sizeof *dims; c++) {
            size_t m = dims[c][0], k = dims[c][1], n = dims[c][2];
            size_t sa[] = {m, k}, sb[] = {n, k};
            mg_tensor *a = make(&rng, sa, 2, -1, 1), *bt = make(&rng, sb, 2, -1, 1);
            mg_tensor *b = mg_tensor_transpose(bt, 0, 1); /* strided operand */
            mg_tensor *y = mg_tensor_matmul_prec(a, b, (mg_precision)precision);
            if (!CHECK(y != NULL)) continue;
            const double *A = mg_tensor_data_ptr(a), *BT = mg_tensor_data_ptr(bt), *Y = mg_tensor_data_ptr(y);
            double worst = 0;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double s = 0;
                    for (size_t p = 0; p < k; p++) s += A[i * k + p] * BT[j * k + p];
                    double e = fabs(s - Y[i * n + j]);
                    if (e > worst) worst = e;
                }
            if (!CHECK(precision == MG_PRECISION_FAST ? worst < 1e-11 : worst == 0.0))
                fprintf(stderr, "  %s %zu x %zu x %zu: off by %g\n", mg_precision_name((mg_precision)precision), m, k,
                        n, worst);
            mg_tensor_release(y);
            mg_tensor_release(b);
            mg_tensor_release(bt);
            mg_tensor_release(a);
        }
    /* threads give the same numbers, at either precision (3 threads: the pool runs a part on the caller
     * where there are fewer cores) */
    size_t s[] = {256, 256};
    mg_tensor *a = make(&rng, s, 2, -1, 1), *b = make(&rng, s, 2, -1, 1);
    for (int precision = 0; precision < MG_PRECISION_COUNT; precision++) {
        mg_set_num_threads(1);
        mg_tensor *y1 = mg_tensor_matmul_prec(a, b, (mg_precision)precision);
        mg_set_num_threads(3);
        CHECK(mg_get_num_threads() == 3);
        mg_tensor *y3 = mg_tensor_matmul_prec(a, b, (mg_precision)precision);
        mg_set_num_threads(0);
        CHECK(mg_get_num_threads() == mg_num_cores());
        CHECK(memcmp(mg_tensor_data_ptr(y1), mg_tensor_data_ptr(y3), 256 * 256 * sizeof(double)) == 0);
        mg_tensor_release(y1);
        mg_tensor_release(y3);
    }
    mg_tensor_release(a);
    mg_tensor_release(b);
    CHECK_LIVE0();
}

/* The backward of an EXACT matmul is EXACT too: its gradients are the plain loops' sums. */
static void test_matmul_exact_backward(void) {
    check_rng rng = {8};
    size_t sa[] = {9, 20}, sb[] = {20, 11};
    mg_tensor *a = make(&rng, sa, 2, -1, 1), *b = make(&rng, sb, 2, -1, 1);
    mg_tensor *y = mg_tensor_matmul_prec(a, b, MG_PRECISION_EXACT), *l = mg_tensor_sum(y, MG_DIM_ALL, 0);
    CHECK(mg_tensor_op(y) == MG_TENSOR_OP_MATMUL && mg_tensor_backward(l) == MG_OK);
    const double *A = mg_tensor_data_ptr(a), *B = mg_tensor_data_ptr(b);
    const double *ga = mg_tensor_grad_data(a), *gb = mg_tensor_grad_data(b);
    int same = ga && gb;
    for (size_t i = 0; same && i < 9; i++)
        for (size_t p = 0; p < 20; p++) { /* da = dy @ b^T, dy all ones: the sum of b's row p, in order */
            double s = 0;
            for (size_t j = 0; j < 11; j++) s += 1.0 * B[p * 11 + j];
            same &= ga[i * 20 + p] == s;
        }
    for (size_t p = 0; same && p < 20; p++)
        for (size_t j = 0; j < 11; j++) { /* db = a^T @ dy: the sum of a's column p, in order */
            double s = 0;
            for (size_t i = 0; i < 9; i++) s += A[i * 20 + p] * 1.0;
            same &= gb[p * 11 + j] == s;
        }
    CHECK(same);
    mg_tensor_release(l);
    mg_tensor_release(y);
    mg_tensor_release(b);
    mg_tensor_release(a);
    /* errors: a precision that is none of the two, and the name table both ways */
    mg_tensor *t = make(&rng, sa, 2, -1, 1), *u = make(&rng, sb, 2, -1, 1);
    CHECK(mg_tensor_matmul_prec(t, u, MG_PRECISION_COUNT) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(strstr(mg_last_error(), "precision") != NULL);
    mg_tensor_release(t);
    mg_tensor_release(u);
    mg_precision pr;
    CHECK(mg_precision_from_name("fast", &pr) == MG_OK && pr == MG_PRECISION_FAST);
    CHECK(strcmp(mg_precision_name(MG_PRECISION_EXACT), "exact") == 0 && strcmp(mg_precision_name(9), "?") == 0);
    CHECK(mg_precision_from_name("fused", &pr) == MG_ERR_ARG && strstr(mg_last_error(), "exact or fast"));
    CHECK(strcmp(mg_simd(), "generic") == 0 || strcmp(mg_simd(), "avx2") == 0 || strcmp(mg_simd(), "avx512") == 0);
    const char *cap = getenv("MG_SIMD");
    if (cap && strcmp(cap, "generic") == 0) CHECK(strcmp(mg_simd(), "generic") == 0);
    CHECK_LIVE0();
}

static void test_broadcast_and_reductions(void) {
    double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {10, 20, 30};
    size_t s23[] = {2, 3}, s3[] = {3}, s2[] = {2};
    mg_tensor *a = mg_tensor_from_data(av, s23, 2, MG_FLOAT64), *b = mg_tensor_from_data(bv, s3, 1, MG_FLOAT64);
    mg_tensor *c = mg_tensor_add(a, b);
    double out[6];
    mg_tensor_copy_data(c, out);
    CHECK_SAME(out[0], 11);
    CHECK_SAME(out[5], 36);
    mg_tensor *bad = mg_tensor_from_data(bv, s2, 1, MG_FLOAT64);
    mg_clear_error();
    CHECK(mg_tensor_add(a, bad) == NULL);
    CHECK(mg_last_status() == MG_ERR_ARG);
    CHECK(strstr(mg_last_error(), "[2, 3]") && strstr(mg_last_error(), "[2]"));
    mg_clear_error();
    mg_tensor *s0 = mg_tensor_sum(a, 0, 0), *m1 = mg_tensor_mean(a, 1, 1), *mx = mg_tensor_max(a, MG_DIM_ALL, 0);
    mg_tensor_copy_data(s0, out);
    CHECK(mg_tensor_ndim(s0) == 1 && mg_tensor_shape(s0)[0] == 3);
    CHECK_SAME(out[0], 5);
    CHECK_SAME(out[2], 9);
    mg_tensor_copy_data(m1, out);
    CHECK(mg_tensor_ndim(m1) == 2 && mg_tensor_shape(m1)[1] == 1);
    CHECK_SAME(out[0], 2);
    CHECK_SAME(out[1], 5);
    double v;
    CHECK(mg_tensor_item(mx, &v) == MG_OK && v == 6);
    CHECK(mg_tensor_item(a, &v) == MG_ERR_ARG);
    mg_clear_error();
    mg_tensor_release(s0);
    mg_tensor_release(m1);
    mg_tensor_release(mx);
    mg_tensor_release(bad);
    mg_tensor_release(c);
    mg_tensor_release(b);
    mg_tensor_release(a);
    CHECK_LIVE0();
}

static void test_errors(void) {
    size_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, s23[] = {2, 3};
    mg_clear_error();
    CHECK(mg_tensor_new(s9, 9, MG_FLOAT64) == NULL);
    CHECK(strstr(mg_last_error(), "at most 8") != NULL);
    mg_tensor *a = mg_tensor_new(s23, 2, MG_FLOAT64);
    mg_clear_error();
    CHECK(mg_tensor_backward(a) == MG_ERR_ARG);
    CHECK(mg_tensor_transpose(a, 0, 2) == NULL && strstr(mg_last_error(), "out of range"));
    mg_clear_error();
    CHECK(mg_tensor_slice(a, 1, 2, 4, 1) == NULL && strstr(mg_last_error(), "out of range"));
    mg_clear_error();
    CHECK(mg_tensor_slice(a, 1, 0, 2, 0) == NULL);
    CHECK(mg_tensor_select(a, 0, 2) == NULL);
    int64_t bad[] = {4, 2};
    CHECK(mg_tensor_reshape(a, bad, 2) == NULL && strstr(mg_last_error(), "reshape"));
    mg_clear_error();
    CHECK(mg_tensor_matmul(a, a) == NULL && strstr(mg_last_error(), "matmul"));
    /* NULL operands propagate and keep the first message */
    mg_clear_error();
    mg_tensor *e = mg_tensor_exp(mg_tensor_transpose(a, 5, 0));
    CHECK(e == NULL && strstr(mg_last_error(), "transpose"));
    mg_clear_error();
    /* no grad: no graph, backward refuses */
    mg_set_grad_enabled(0);
    mg_tensor *b = mg_tensor_exp(a);
    mg_set_grad_enabled(1);
    CHECK(!mg_tensor_requires_grad(b) && mg_tensor_num_inputs(b) == 0);
    mg_tensor *sb = mg_tensor_sum(b, MG_DIM_ALL, 0);
    CHECK(mg_tensor_backward(sb) == MG_ERR_STATE);
    mg_clear_error();
    mg_tensor *ex = mg_tensor_exp(a);
    CHECK(mg_tensor_set_requires_grad(ex, 0) == MG_ERR_STATE);
    mg_clear_error();
    mg_tensor_release(ex);
    mg_tensor_release(sb);
    mg_tensor_release(b);
    mg_tensor_release(a);
    CHECK_LIVE0();
}

/* Shapes whose sizes multiply past what a tensor can hold are refused (MG_ERR_ARG, the shape in the
 * message), by every function that makes a shape: new, full, from_data, reshape, expand, matmul. A size 0
 * does not hide the others: [0, 2^40, 2^40] has no element, but its strides would overflow int64. */
static int too_large(mg_tensor *t) {
    int ok = t == NULL && mg_last_status() == MG_ERR_ARG && strstr(mg_last_error(), "too large") != NULL;
    if (!ok) fprintf(stderr, "  status %d: %s\n", (int)mg_last_status(), mg_last_error());
    mg_tensor_release(t);
    return ok;
}

static void test_size_overflow(void) {
    const size_t G = (size_t)1 << 32, T = (size_t)1 << 40;
    size_t cube[] = {G, G, G}, hidden[] = {0, T, T}, flat[] = {(size_t)1 << 61}, one[] = {1}, none[] = {0};
    double x = 1.0;
    mg_clear_error();
    CHECK(too_large(mg_tensor_new(cube, 3, MG_FLOAT64)));
    CHECK(strstr(mg_last_error(), "[4294967296, 4294967296, 4294967296]") != NULL);
    CHECK(too_large(mg_tensor_new(cube, 3, MG_FLOAT32)));
    CHECK(too_large(mg_tensor_new(hidden, 3, MG_FLOAT64)));
    CHECK(too_large(mg_tensor_new(flat, 1, MG_FLOAT32))); /* fits size_t, not its bytes */
    CHECK(too_large(mg_tensor_full(cube, 3, 1.0, MG_FLOAT64)));
    CHECK(too_large(mg_tensor_from_data(&x, cube, 3, MG_FLOAT64)));

    mg_tensor *a = mg_tensor_new(one, 1, MG_FLOAT64), *e = mg_tensor_new(none, 1, MG_FLOAT64);
    int64_t r_cube[] = {(int64_t)G, (int64_t)G, (int64_t)G}, r_hidden[] = {0, (int64_t)T, (int64_t)T};
    int64_t r_infer[] = {-1, (int64_t)T, (int64_t)T, (int64_t)T};
    mg_clear_error();
    mg_tensor *r = mg_tensor_reshape(a, r_cube, 3);
    CHECK(r == NULL && mg_last_status() == MG_ERR_ARG && strstr(mg_last_error(), "4294967296"));
    CHECK(mg_tensor_reshape(e, r_hidden, 3) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(mg_tensor_reshape(e, r_infer, 4) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(mg_tensor_reshape(a, r_infer, 4) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(too_large(mg_tensor_expand(a, cube, 3)));
    CHECK(too_large(mg_tensor_expand(a, hidden, 3)));

    /* batch dims broadcast to 2^32 x 2^32: each operand is small (k = 0), their product is not */
    size_t sa[] = {G, 1, 1, 0}, sb[] = {1, G, 0, 1};
    mg_tensor *ma = mg_tensor_new(sa, 4, MG_FLOAT64), *mb = mg_tensor_new(sb, 4, MG_FLOAT64);
    CHECK(ma && mb);
    mg_clear_error();
    CHECK(mg_tensor_matmul(ma, mb) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(strstr(mg_last_error(), "matmul") != NULL);
    mg_tensor_release(ma);
    mg_tensor_release(mb);
    mg_tensor_release(a);
    mg_tensor_release(e);

    /* a step as large as size_t allows: one element per slice (end - start + step used to wrap to 0), and
     * the stride is not multiplied by it (that overflowed int64) */
    double d23[] = {1, 2, 3, 4, 5, 6};
    size_t s23[] = {2, 3};
    mg_tensor *m = mg_tensor_from_data(d23, s23, 2, MG_FLOAT64);
    mg_tensor *c0 = mg_tensor_slice(m, 1, 0, 3, SIZE_MAX), *c1 = mg_tensor_slice(m, -1, 1, 3, SIZE_MAX - 1);
    mg_tensor *r0 = mg_tensor_slice(m, 0, 1, 2, (size_t)1 << 63);
    CHECK(c0 && c1 && r0);
    if (c0 && c1 && r0) {
        CHECK(mg_tensor_shape(c0)[0] == 2 && mg_tensor_shape(c0)[1] == 1 && at(c0, 0) == 1 && at(c0, 1) == 4);
        CHECK(mg_tensor_shape(c1)[1] == 1 && at(c1, 0) == 2 && at(c1, 1) == 5);
        CHECK(mg_tensor_shape(r0)[0] == 1 && at(r0, 0) == 4 && at(r0, 2) == 6);
        mg_tensor *sum = mg_tensor_sum(c1, MG_DIM_ALL, 0);
        CHECK(mg_tensor_backward(sum) == MG_OK);
        const double *g = mg_tensor_grad_data(m);
        CHECK(g && g[0] == 0 && g[1] == 1 && g[2] == 0 && g[3] == 0 && g[4] == 1 && g[5] == 0);
        mg_tensor_release(sum);
    }
    mg_tensor_release(c0);
    mg_tensor_release(c1);
    mg_tensor_release(r0);
    mg_tensor_release(m);
    mg_clear_error();
    CHECK_LIVE0();
}

/* Out-of-range dims name the dim as passed and the range; MG_ERR_RANGE for dims and indices. */
static int range_error(mg_tensor *t, const char *part1, const char *part2) {
    int ok = t == NULL && mg_last_status() == MG_ERR_RANGE && strstr(mg_last_error(), part1) &&
             (!part2 || strstr(mg_last_error(), part2));
    if (!ok) fprintf(stderr, "  status %d: %s\n", (int)mg_last_status(), mg_last_error());
    mg_tensor_release(t);
    return ok;
}

static void test_dim_messages(void) {
    size_t s23[] = {2, 3};
    mg_tensor *a = mg_tensor_new(s23, 2, MG_FLOAT64), *z = mg_tensor_new(NULL, 0, MG_FLOAT64);
    mg_clear_error();
    CHECK(range_error(mg_tensor_sum(a, 5, 0), "sum: dimension 5 is out of range", "-2 to 1"));
    CHECK(range_error(mg_tensor_sum(a, -3, 0), "dimension -3 ", "-2 to 1"));
    CHECK(range_error(mg_tensor_mean(a, 2, 1), "mean: dimension 2 ", NULL));
    CHECK(range_error(mg_tensor_max(a, -999, 0), "max: dimension -999 ", NULL));
    CHECK(range_error(mg_tensor_argmax(a, 7, 0), "argmax: dimension 7 ", NULL));
    CHECK(range_error(mg_tensor_log_softmax(a, MG_DIM_ALL), "log_softmax: dimension -2147483648 ", "-2 to 1"));
    CHECK(range_error(mg_tensor_log_softmax(a, 2), "log_softmax: dimension 2 ", NULL));
    CHECK(range_error(mg_tensor_transpose(a, 0, -3), "transpose: dimension -3 ", NULL));
    CHECK(range_error(mg_tensor_slice(a, -4, 0, 1, 1), "slice: dimension -4 ", NULL));
    CHECK(range_error(mg_tensor_slice(a, -1, 2, 5, 1), "dimension -1 of size 3", NULL));
    CHECK(range_error(mg_tensor_select(a, -1, 3), "select: index 3 is out of range for dimension -1", NULL));
    CHECK(range_error(mg_tensor_select(a, 2, 0), "select: dimension 2 ", NULL));
    CHECK(range_error(mg_tensor_sum(z, 0, 0), "0-dimensional", NULL));
    mg_tensor *all = mg_tensor_sum(a, MG_DIM_ALL, 0); /* -1000 is MG_DIM_ALL for the reductions */
    CHECK(all != NULL && mg_tensor_ndim(all) == 0);
    mg_tensor_release(all);
    /* names of dtypes: never a valid name for an invalid value */
    CHECK(strcmp(mg_dtype_name(MG_FLOAT64), "float64") == 0 && strcmp(mg_dtype_name(MG_FLOAT32), "float32") == 0);
    CHECK(strcmp(mg_dtype_name((mg_dtype)9), "?") == 0 && strcmp(mg_dtype_name((mg_dtype)-1), "?") == 0);
    /* names back to dtypes, torch's aliases too; anything else is MG_ERR_ARG naming it and the choices */
    const char *names[] = {"float64", "double", "float32", "float"};
    for (int i = 0; i < 4; i++) {
        mg_dtype d = (mg_dtype)9;
        CHECK(mg_dtype_from_name(names[i], &d) == MG_OK && d == (i < 2 ? MG_FLOAT64 : MG_FLOAT32));
    }
    mg_dtype d = MG_FLOAT32;
    CHECK(mg_dtype_from_name("int8", &d) == MG_ERR_ARG && d == MG_FLOAT32);
    CHECK(strstr(mg_last_error(), "'int8'") && strstr(mg_last_error(), "float64, float32, double or float"));
    CHECK(mg_dtype_from_name("Float32", &d) == MG_ERR_ARG && mg_dtype_from_name(NULL, &d) == MG_ERR_NULL);
    CHECK(mg_dtype_from_name("float64", NULL) == MG_ERR_NULL);
    mg_clear_error();
    CHECK(mg_dtype_size((mg_dtype)9) == 0 && mg_dtype_size(MG_FLOAT32) == 4 && mg_dtype_size(MG_FLOAT64) == 8);
    CHECK(strcmp(mg_tensor_op_name(MG_TENSOR_OP_COUNT), "?") == 0 &&
          strcmp(mg_tensor_op_name((mg_tensor_opcode)-5), "?") == 0);
    mg_tensor_release(a);
    mg_tensor_release(z);
    mg_clear_error();
    CHECK_LIVE0();
}

static void test_float32(void) {
    double d[] = {0.1, 0.2, 0.3, 0.4};
    size_t s22[] = {2, 2};
    mg_tensor *a = mg_tensor_from_data(d, s22, 2, MG_FLOAT32);
    mg_tensor *b = mg_tensor_matmul(a, a), *c = mg_tensor_sum(b, MG_DIM_ALL, 0);
    CHECK(mg_tensor_dtype(b) == MG_FLOAT32 && mg_tensor_dtype(c) == MG_FLOAT32);
    CHECK(mg_tensor_backward(c) == MG_OK);
    CHECK_NEAR(mg_tensor_grad_data(a)[0], (0.1f + 0.2f) + (0.1f + 0.3f), 1e-6);
    mg_tensor *a64 = mg_tensor_to_dtype(a, MG_FLOAT64);
    CHECK(mg_tensor_dtype(a64) == MG_FLOAT64);
    CHECK_SAME(at(a64, 1), (double)0.2f);
    mg_tensor *mixed = mg_tensor_add(a, a64);
    CHECK(mg_tensor_dtype(mixed) == MG_FLOAT64);
    mg_tensor_release(mixed);
    mg_tensor_release(a64);
    mg_tensor_release(c);
    mg_tensor_release(b);
    mg_tensor_release(a);
    CHECK_LIVE0();
}

/* IEEE edge values through the vectorised kernels, and argmax. */
static void test_edges(void) {
    double xs[] = {1000.0, -1000.0, 0.0, NAN, INFINITY, -INFINITY, 709.78, -745.0, 1e-300};
    size_t n[] = {9};
    mg_tensor *x = mg_tensor_from_data(xs, n, 1, MG_FLOAT64);
    mg_tensor *e = mg_tensor_exp(x), *s = mg_tensor_sigmoid(x), *t = mg_tensor_tanh(x), *r = mg_tensor_relu(x);
    for (int i = 0; i < 9; i++) {
        double x_i = xs[i];
        CHECK_NEAR(at(e, (size_t)i), exp(x_i), 4e-16 * fabs(exp(x_i)) + 1e-320);
        CHECK_NEAR(at(s, (size_t)i), 1.0 / (1.0 + exp(-x_i)), 1e-15);
        CHECK_SAME(at(t, (size_t)i), tanh(x_i));
        CHECK_SAME(at(r, (size_t)i), x_i < 0 ? 0.0 : x_i);
    }
    CHECK(isinf(at(e, 0)) && at(e, 1) == 0.0 && isnan(at(e, 3)));
    double m[] = {1, 3, 3, 2, 2, 0};
    size_t s23[] = {2, 3};
    mg_tensor *a = mg_tensor_from_data(m, s23, 2, MG_FLOAT64);
    mg_tensor *i1 = mg_tensor_argmax(a, 1, 0), *iall = mg_tensor_argmax(a, MG_DIM_ALL, 0);
    CHECK_SAME(at(i1, 0), 1.0);
    CHECK_SAME(at(i1, 1), 0.0);
    CHECK_SAME(at(iall, 0), 1.0);
    mg_tensor_release(i1);
    mg_tensor_release(iall);
    mg_tensor_release(a);
    mg_tensor_release(e);
    mg_tensor_release(s);
    mg_tensor_release(t);
    mg_tensor_release(r);
    mg_tensor_release(x);
    CHECK_LIVE0();
}

/* Separate graphs in separate threads at once: the same numbers as one after another (a caller that
 * finds the worker pool busy runs its kernel alone). */
static void *thread_work(void *arg) {
    double *out = arg;
    check_rng rng = {99};
    size_t s[] = {160, 160}; /* big enough for the worker pool: callers compete for it */
    mg_tensor *a = make(&rng, s, 2, -1, 1), *b = make(&rng, s, 2, -1, 1);
    for (int k = 0; k < 5; k++) {
        mg_tensor *c = mg_tensor_matmul(a, b), *d = mg_tensor_tanh(c), *l = mg_tensor_sum(d, MG_DIM_ALL, 0);
        mg_tensor_backward(l);
        mg_tensor_release(l);
        mg_tensor_release(d);
        mg_tensor_release(c);
    }
    *out = mg_tensor_grad_data(a)[7] + mg_tensor_grad_data(b)[100];
    mg_tensor_release(a);
    mg_tensor_release(b);
    return NULL;
}

/* Tensor and scalar sigmoid share one formula (internal.h): they agree to 2 ulp everywhere, also where
 * 1 / (1 + exp(-x)) would give 0 (x < -709: the answer is a tiny positive number, exp(x) to rounding). */
static void test_sigmoid_one_formula(void) {
    enum { N = 4001 };
    double xs[N];
    for (int i = 0; i < N; i++) xs[i] = -745.0 + 1490.0 * i / (N - 1);
    xs[N / 2] = -0.0;
    size_t n[] = {N};
    mg_tensor *x = mg_tensor_from_data(xs, n, 1, MG_FLOAT64), *s = mg_tensor_sigmoid(x);
    if (!CHECK(s != NULL)) return;
    double *y = mg_tensor_data_ptr(s);
    for (int i = 0; i < N; i++) {
        mg_value *v = mg_value_new(xs[i]), *sv = mg_sigmoid(v);
        double want = mg_value_data(sv);
        if (!CHECK(fabs(y[i] - want) <= 2.0 * nextafter(fabs(want), INFINITY) - 2.0 * fabs(want)))
            fprintf(stderr, "  sigmoid(%.17g): tensor %.17g, value %.17g\n", xs[i], y[i], want);
        mg_value_release(sv);
        mg_value_release(v);
    }
    CHECK(y[0] > 0.0 && fabs(y[0] - exp(-745.0)) <= 1e-323); /* subnormal, not flushed to 0 */
    CHECK(y[N / 2] == 0.5 && y[N - 1] == 1.0);
    CHECK(fabs(y[100] / exp(xs[100]) - 1.0) < 1e-12); /* x about -708: e / (1 + e) is exp(x) to rounding */
    mg_tensor_release(s);
    mg_tensor_release(x);
    CHECK_LIVE0();
}

static void test_threads(void) {
    double alone, results[4];
    thread_work(&alone);
    pthread_t ids[4];
    for (int i = 0; i < 4; i++) pthread_create(&ids[i], NULL, thread_work, &results[i]);
    for (int i = 0; i < 4; i++) pthread_join(ids[i], NULL);
    for (int i = 0; i < 4; i++) CHECK_SAME(results[i], alone);
    CHECK_LIVE0();
}

static void *release_in_thread(void *t) {
    mg_tensor_release(t);
    return NULL;
}

/* A chain of 10^6 views and ops: backward and free iterate, whatever the depth. */
static void test_deep_chain(void) {
    size_t s2[] = {2};
    double d[] = {1, 2};
    mg_tensor *x = mg_tensor_from_data(d, s2, 1, MG_FLOAT64), *t = mg_tensor_retain(x);
    for (int i = 0; i < 1000000; i++) {
        mg_tensor *next = i % 2 ? mg_tensor_add_scalar(t, 1.0) : mg_tensor_slice(t, 0, 0, 2, 1);
        mg_tensor_release(t);
        t = next;
    }
    mg_tensor *s = mg_tensor_sum(t, MG_DIM_ALL, 0);
    CHECK(mg_tensor_backward(s) == MG_OK);
    CHECK_SAME(mg_tensor_grad_data(x)[1], 1.0);
    CHECK_SAME(at(s, 0), 3.0 + 1000000.0);
    mg_tensor_release(t);
    mg_tensor_release(x);
    /* the last reference dropped in a thread with a small stack: freeing does not recurse */
    pthread_attr_t attr;
    pthread_t id;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    CHECK(pthread_create(&id, &attr, release_in_thread, s) == 0);
    pthread_join(id, NULL);
    pthread_attr_destroy(&attr);
    CHECK_LIVE0();
}

/* ---- out of memory: fail the k-th allocation for every k ---- */

typedef struct {
    long long calls, fail_at, blocks;
} failing;

static void *failing_alloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    failing *f = ud;
    (void)old_size;
    if (new_size == 0) {
        if (ptr) f->blocks--;
        free(ptr);
        return NULL;
    }
    if (++f->calls == f->fail_at) return NULL;
    void *p = realloc(ptr, new_size);
    if (p && !ptr) f->blocks++;
    return p;
}

static int oom_workload(void) {
    check_rng rng = {3};
    size_t s[] = {8, 8}, sv[] = {8};
    mg_tensor *a = make(&rng, s, 2, -1, 1), *b = make(&rng, sv, 1, -1, 1);
    mg_tensor *c = mg_tensor_matmul(a, a), *d = mg_tensor_add(c, b), *e = mg_tensor_transpose(d, 0, 1);
    mg_tensor *f = mg_tensor_reshape(e, (int64_t[]){64}, 1), *g = mg_tensor_log_softmax(f, 0);
    mg_tensor *h = mg_tensor_max(d, 0, 0), *i = mg_tensor_sum(g, MG_DIM_ALL, 0);
    mg_tensor *hi = mg_tensor_mul(h, i), *j = mg_tensor_sum(hi, MG_DIM_ALL, 0);
    mg_tensor_release(hi);
    int ok = j != NULL && mg_tensor_backward(j) == MG_OK;
    mg_tensor_release(a);
    mg_tensor_release(b);
    mg_tensor_release(c);
    mg_tensor_release(d);
    mg_tensor_release(e);
    mg_tensor_release(f);
    mg_tensor_release(g);
    mg_tensor_release(h);
    mg_tensor_release(i);
    mg_tensor_release(j);
    return ok;
}

static void test_out_of_memory(void) {
    CHECK(mg_live_values() == 0);
    for (long long k = 1; k < 2000; k++) {
        failing f = {0, k, 0};
        if (!CHECK(mg_set_allocator(failing_alloc, &f) == MG_OK)) break;
        mg_clear_error();
        int ok = oom_workload();
        mg_set_allocator(NULL, NULL);
        CHECK(mg_live_tensors() == 0);
        if (!CHECK(f.blocks == 0)) fprintf(stderr, "  k = %lld: %lld blocks leaked\n", k, f.blocks);
        if (f.calls < k) { /* the workload never reached allocation k: every path was tried */
            CHECK(ok);
            break;
        }
        if (!ok) CHECK(mg_last_error()[0] != '\0');
    }
    CHECK_LIVE0();
}

/* Memory the caller owns: viewed in place with its strides, given back once when the last view goes, never
 * on a failure. */
static int released;
static void count_release(void *ctx) { released += *(const int *)ctx; }

static void test_external_memory(void) {
    double buf[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[] = {3, 2};
    int64_t column_major[] = {1, 3}, negative[] = {-1, 1};
    static const int one = 1;
    released = 0;
    mg_tensor *t = mg_tensor_from_external(buf, shape, column_major, 2, MG_FLOAT64, count_release, (void *)&one);
    mg_tensor *s = mg_tensor_sum(t, 0, 0), *v = mg_tensor_transpose(t, 0, 1);
    double sums[2] = {0};
    CHECK(t && s && v && mg_tensor_copy_data(s, sums) == MG_OK && sums[0] == 6.0 && sums[1] == 15.0);
    CHECK(!mg_tensor_requires_grad(t) && !mg_tensor_is_contiguous(t) && mg_tensor_data_ptr(t) == buf);
    buf[0] = 10.0; /* shared, not copied */
    double first;
    mg_tensor *row = mg_tensor_select(v, 0, 0), *head = mg_tensor_select(row, 0, 0);
    CHECK(head && mg_tensor_item(head, &first) == MG_OK && first == 10.0);
    mg_tensor_release(head);
    mg_tensor_release(row);
    mg_tensor_release(s);
    mg_tensor_release(t);
    CHECK(released == 0); /* the view still uses the memory */
    mg_tensor_release(v);
    CHECK(released == 1);
    CHECK(!mg_tensor_from_external(buf, shape, negative, 2, MG_FLOAT64, count_release, (void *)&one) &&
          mg_last_status() == MG_ERR_ARG && strstr(mg_last_error(), "negative"));
    CHECK(!mg_tensor_from_external(NULL, shape, NULL, 2, MG_FLOAT64, count_release, (void *)&one) &&
          mg_last_status() == MG_ERR_NULL);
    CHECK(released == 1); /* failures give nothing back: the memory is still the caller's */
    mg_tensor *f = mg_tensor_from_external(buf, shape, NULL, 2, MG_FLOAT32, NULL, NULL);
    CHECK(f && mg_tensor_is_contiguous(f) && mg_tensor_dtype(f) == MG_FLOAT32);
    mg_tensor_release(f);
    mg_clear_error();
}

int main(void) {
    test_views();
    test_external_memory();
    test_broadcast_and_reductions();
    test_gradients();
    test_matmul_values();
    test_matmul_exact_backward();
    test_errors();
    test_size_overflow();
    test_dim_messages();
    test_float32();
    test_edges();
    test_sigmoid_one_formula();
    test_threads();
    test_deep_chain();
    test_out_of_memory();
    CHECK_LIVE0();
    return check_finish("test_tensor");
}
