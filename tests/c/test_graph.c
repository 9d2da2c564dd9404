/* test_graph: whole graphs: micrograd's README expression, reused nodes, repeated backward, zero_grad,
 * topological order, and who keeps what alive. */
#include "check.h"

#include <micrograd.h>

#include <math.h>
#include <stdint.h>

/* Helpers that consume the references they are given, so expressions can be written out of temporaries
 * as in Python: the new node holds its own references to its inputs. */
static mg_value *add_owned(mg_value *a, mg_value *b) {
    mg_value *sum = mg_add(a, b);
    mg_value_release(a);
    mg_value_release(b);
    return sum;
}

static mg_value *relu_owned(mg_value *a) {
    mg_value *out = mg_relu(a);
    mg_value_release(a);
    return out;
}

/* micrograd's README expression. Only a, b and g are kept: every intermediate is released as soon as it
 * is used, so the graph under g has to keep itself alive. */
static void test_readme_expression(void) {
    int64_t live_before = mg_live_values();
    mg_value *a = mg_value_new(-4.0);
    mg_value *b = mg_value_new(2.0);
    mg_value *c = mg_add(a, b);                                                   /* c = a + b */
    mg_value *d = add_owned(mg_mul(a, b), mg_pow_scalar(b, 3.0));                 /* d = a * b + b**3 */
    c = add_owned(c, mg_add_scalar(c, 1.0));                                      /* c += c + 1 */
    c = add_owned(c, add_owned(mg_add_scalar(c, 1.0), mg_neg(a)));                /* c += 1 + c + (-a) */
    d = add_owned(d, add_owned(mg_mul_scalar(d, 2.0), relu_owned(mg_add(b, a)))); /* d += d * 2 + (b + a).relu() */
    d = add_owned(d, add_owned(mg_mul_scalar(d, 3.0), relu_owned(mg_sub(b, a)))); /* d += 3 * d + (b - a).relu() */
    mg_value *e = mg_sub(c, d);                                                   /* e = c - d */
    mg_value_release(c);
    mg_value_release(d);
    mg_value *f = mg_pow_scalar(e, 2.0);                                          /* f = e**2 */
    mg_value_release(e);
    mg_value *g = mg_div_scalar(f, 2.0);                                          /* g = f / 2.0 */
    g = add_owned(g, mg_rdiv_scalar(10.0, f));                                    /* g += 10.0 / f */
    mg_value_release(f);

    if (!CHECK(g != NULL)) {
        fprintf(stderr, "readme expression: %s\n", mg_last_error());
        return;
    }
    /* everything alive is reachable from g: nothing was freed early, nothing leaked */
    mg_value **nodes = NULL;
    size_t count = 0;
    CHECK(mg_topo_order(g, &nodes, &count) == MG_OK);
    CHECK(mg_live_values() - live_before == (int64_t)count);
    mg_free(nodes);

    CHECK(mg_backward(g) == MG_OK);
    CHECK_NEAR(mg_value_data(g), 24.7041, 1e-4);
    CHECK_NEAR(mg_value_grad(a), 138.8338, 1e-4);
    CHECK_NEAR(mg_value_grad(b), 645.5773, 1e-4);

    mg_value_release(g);
    CHECK(mg_live_values() - live_before == 2); /* a and b, which we still own */
    mg_value_release(b);
    mg_value_release(a);
    CHECK(mg_live_values() == live_before);
}

/* A node used twice passes gradient along both uses. */
static void test_reuse(void) {
    /* b = a + a; c = b + b: dc/da = 4 */
    mg_value *a = mg_value_new(1.5);
    mg_value *b = mg_add(a, a);
    mg_value *c = mg_add(b, b);
    CHECK(mg_backward(c) == MG_OK);
    CHECK_SAME(mg_value_data(c), 6.0);
    CHECK_SAME(mg_value_grad(a), 4.0);
    CHECK_SAME(mg_value_grad(b), 2.0);
    mg_value_release(c);
    mg_value_release(b);
    mg_value_release(a);

    /* x * x: 2x, and x is listed as both inputs */
    mg_value *x = mg_value_new(3.0);
    mg_value *sq = mg_mul(x, x);
    CHECK(mg_value_num_inputs(sq) == 2);
    CHECK(mg_value_input(sq, 0) == x && mg_value_input(sq, 1) == x);
    CHECK(mg_backward(sq) == MG_OK);
    CHECK_SAME(mg_value_data(sq), 9.0);
    CHECK_SAME(mg_value_grad(x), 6.0);
    mg_value_release(sq);
    mg_value_release(x);

    /* a diamond: d = (3a) * (a + 1), dd/da = 3(a + 1) + 3a = 6a + 3 */
    mg_value *top = mg_value_new(2.0);
    mg_value *left = mg_mul_scalar(top, 3.0);
    mg_value *right = mg_add_scalar(top, 1.0);
    mg_value *bottom = mg_mul(left, right);
    CHECK(mg_backward(bottom) == MG_OK);
    CHECK_SAME(mg_value_data(bottom), 18.0);
    CHECK_SAME(mg_value_grad(top), 15.0);
    CHECK_SAME(mg_value_grad(left), 3.0);
    CHECK_SAME(mg_value_grad(right), 6.0);
    mg_value_release(bottom);
    mg_value_release(right);
    mg_value_release(left);
    mg_value_release(top);
}

/* One leaf w in 10^6 products: sum_i w * x_i. dS/dw = sum_i x_i, exact here: every x_i is a multiple of
 * 0.5 and every partial sum stays far below 2^52. */
static void test_leaf_used_a_million_times(void) {
    enum { USES = 1000000 };
    mg_value *w = mg_value_new(0.25);
    mg_value *sum = mg_value_new(0.0);
    double want_dw = 0.0, want_sum = 0.0;
    for (int i = 0; i < USES; i++) {
        double xi = 0.5 * (double)(i % 7);
        mg_value *x = mg_value_new(xi);
        mg_value *product = mg_mul(w, x);
        mg_value *next = mg_add(sum, product);
        mg_value_release(product);
        mg_value_release(x);
        mg_value_release(sum);
        sum = next;
        want_dw += xi;
        want_sum += 0.25 * xi;
    }
    if (!CHECK(sum != NULL)) {
        fprintf(stderr, "shared leaf: %s\n", mg_last_error());
    } else {
        CHECK(mg_live_values() >= 3 * (int64_t)USES);
        CHECK(mg_backward(sum) == MG_OK);
        CHECK_SAME(mg_value_data(sum), want_sum);
        CHECK_SAME(mg_value_grad(w), want_dw);
    }
    mg_value_release(sum);
    mg_value_release(w);
}

/* micrograd semantics: backward sets the root's grad to 1 each time; every other grad accumulates. */
static void test_backward_twice_and_zero_grad(void) {
    /* inputs that are leaves: a second pass doubles their grads */
    mg_value *p = mg_value_new(1.5), *q = mg_value_new(-4.0);
    mg_value *pq = mg_mul(p, q);
    CHECK(mg_backward(pq) == MG_OK);
    CHECK(mg_backward(pq) == MG_OK);
    CHECK_SAME(mg_value_grad(pq), 1.0);
    CHECK_SAME(mg_value_grad(p), -8.0);
    CHECK_SAME(mg_value_grad(q), 3.0);
    mg_value_release(pq);
    mg_value_release(q);
    mg_value_release(p);

    mg_value *x = mg_value_new(2.0), *y = mg_value_new(-3.0);
    mg_value *xy = mg_mul(x, y);
    mg_value *f = mg_add(xy, x); /* f = x*y + x: df/dx = y + 1 = -2, df/dy = x = 2 */
    CHECK(mg_backward(f) == MG_OK);
    CHECK_SAME(mg_value_grad(f), 1.0);
    CHECK_SAME(mg_value_grad(xy), 1.0);
    CHECK_SAME(mg_value_grad(x), -2.0);
    CHECK_SAME(mg_value_grad(y), 2.0);

    /* the second pass adds 1 to xy (now 2) and passes xy's whole accumulated grad on, as micrograd does:
     * x gets 1 from f and y * 2 = -6 from xy, y gets x * 2 = 4. Not simply doubled. */
    CHECK(mg_backward(f) == MG_OK);
    CHECK_SAME(mg_value_grad(f), 1.0);
    CHECK_SAME(mg_value_grad(xy), 2.0);
    CHECK_SAME(mg_value_grad(x), -2.0 + 1.0 - 6.0);
    CHECK_SAME(mg_value_grad(y), 2.0 + 4.0);

    /* zero_grad reaches every node under the root, the root included */
    CHECK(mg_zero_grad(f) == MG_OK);
    CHECK_SAME(mg_value_grad(f), 0.0);
    CHECK_SAME(mg_value_grad(xy), 0.0);
    CHECK_SAME(mg_value_grad(x), 0.0);
    CHECK_SAME(mg_value_grad(y), 0.0);

    /* and after it, one backward gives the single-pass gradients again */
    CHECK(mg_backward(f) == MG_OK);
    CHECK_SAME(mg_value_grad(x), -2.0);
    CHECK_SAME(mg_value_grad(y), 2.0);

    /* zero_grad of a subgraph leaves the rest alone */
    CHECK(mg_zero_grad(xy) == MG_OK);
    CHECK_SAME(mg_value_grad(f), 1.0);
    CHECK_SAME(mg_value_grad(x), 0.0);

    /* a leaf as root: its grad becomes 1 */
    mg_value_set_grad(x, 5.0);
    CHECK_SAME(mg_value_grad(x), 5.0);
    CHECK(mg_backward(x) == MG_OK);
    CHECK_SAME(mg_value_grad(x), 1.0);

    mg_value_release(f);
    mg_value_release(xy);
    mg_value_release(y);
    mg_value_release(x);
}

/* mg_topo_order on a random DAG: each reachable node exactly once, inputs before their users, root last,
 * nothing unreachable. Nodes are marked through their user pointer. */
static void test_topo_order(void) {
    enum { LEAVES = 40, NODES = 3000 };
    mg_value *all[LEAVES + NODES];
    check_rng rng = {12345};
    for (int i = 0; i < LEAVES; i++) all[i] = mg_value_new(check_uniform(&rng, -1.0, 1.0));
    for (int i = LEAVES; i < LEAVES + NODES; i++) {
        /* one of the last 8 nodes (so most of the graph is reachable from the last node, not all of it) and
         * any earlier node, sometimes the same one twice */
        mg_value *p = all[i - 1 - (int)check_uniform(&rng, 0.0, 8.0)];
        mg_value *q = i % 17 == 0 ? p : all[(int)check_uniform(&rng, 0.0, (double)i)];
        switch (i % 4) {
        case 0: all[i] = mg_add(p, q); break;
        case 1: all[i] = mg_mul(p, q); break;
        case 2: all[i] = mg_tanh(p); break;
        default: all[i] = mg_sub(p, q); break;
        }
    }
    mg_value *root = all[LEAVES + NODES - 1];
    if (!CHECK(root != NULL)) fprintf(stderr, "topo graph: %s\n", mg_last_error());

    /* the reachable set, found with our own explicit stack; user pointer 1 = reached */
    size_t reachable = 0;
    static mg_value *stack[LEAVES + NODES]; /* each node is pushed at most once */
    size_t top = 0;
    stack[top++] = root;
    mg_value_set_user(root, (void *)1);
    while (top > 0) {
        mg_value *node = stack[--top];
        reachable++;
        for (size_t k = 0; k < mg_value_num_inputs(node); k++) {
            mg_value *input = mg_value_input(node, k);
            if (mg_value_user(input)) continue;
            mg_value_set_user(input, (void *)1);
            stack[top++] = input;
        }
    }
    CHECK(reachable > NODES / 4 && reachable < LEAVES + NODES); /* a real subset */

    mg_value **order = NULL;
    size_t count = 0;
    if (CHECK(mg_topo_order(root, &order, &count) == MG_OK)) {
        CHECK(count == reachable);
        CHECK(count > 0 && order[count - 1] == root);
        /* user pointer 2 + position once placed: each node once, each input placed before its user */
        for (size_t i = 0; i < count; i++) {
            mg_value *node = order[i];
            CHECK((uintptr_t)mg_value_user(node) == 1);
            mg_value_set_user(node, (void *)(uintptr_t)(2 + i));
            for (size_t k = 0; k < mg_value_num_inputs(node); k++) {
                uintptr_t mark = (uintptr_t)mg_value_user(mg_value_input(node, k));
                CHECK(mark >= 2 && mark < 2 + i);
            }
        }
        mg_free(order);
    }

    /* the order is the same the second time (traversal state is left clean) */
    mg_value **again = NULL;
    size_t count_again = 0;
    if (CHECK(mg_topo_order(root, &again, &count_again) == MG_OK)) {
        CHECK(count_again == count);
        for (size_t i = 0; i < count_again; i++) CHECK((uintptr_t)mg_value_user(again[i]) == 2 + i);
        mg_free(again);
    }

    /* a single leaf is its own order */
    mg_value **single = NULL;
    size_t one = 0;
    CHECK(mg_topo_order(all[0], &single, &one) == MG_OK);
    CHECK(one == 1 && single && single[0] == all[0]);
    mg_free(single);

    for (int i = LEAVES + NODES; i-- > 0;) mg_value_release(all[i]);
}

/* Dropping intermediates keeps the graph alive under the root; dropping the root frees it all. */
static void test_early_release(void) {
    int64_t live_before = mg_live_values();
    mg_value *a = mg_value_new(0.5);
    mg_value *t = mg_tanh(a);
    mg_value *root = mg_mul_scalar(t, 2.0);
    mg_value_release(t);
    mg_value_release(a);
    CHECK(mg_live_values() - live_before == 3);
    CHECK(mg_backward(root) == MG_OK);
    mg_value *t_again = mg_value_input(root, 0);
    mg_value *a_again = mg_value_input(t_again, 0);
    CHECK(mg_value_op(t_again) == MG_OP_TANH);
    CHECK_SAME(mg_value_data(a_again), 0.5);
    CHECK_NEAR(mg_value_grad(a_again), 2.0 * (1.0 - tanh(0.5) * tanh(0.5)), 1e-15);
    mg_value_release(root);
    CHECK(mg_live_values() == live_before);
}

/* retain/release counts, seen through mg_live_values */
static void test_retain_release(void) {
    int64_t live_before = mg_live_values();
    mg_value *v = mg_value_new(1.0);
    CHECK(mg_value_retain(v) == v);
    CHECK(mg_value_retain(v) == v);
    mg_value_release(v);
    mg_value_release(v);
    CHECK(mg_live_values() - live_before == 1);
    CHECK_SAME(mg_value_data(v), 1.0); /* still ours */
    mg_value_release(v);
    CHECK(mg_live_values() == live_before);

    /* a parent's reference counts like any other */
    mg_value *a = mg_value_new(2.0);
    mg_value *n = mg_neg(a);
    mg_value_release(a);
    CHECK(mg_live_values() - live_before == 2);
    CHECK(mg_value_retain(n) == n);
    mg_value_release(n);
    CHECK(mg_live_values() - live_before == 2);
    mg_value_release(n);
    CHECK(mg_live_values() == live_before);

    /* setters and the user pointer */
    int tag = 0;
    mg_value *u = mg_value_new(0.0);
    CHECK(mg_value_user(u) == NULL);
    mg_value_set_user(u, &tag);
    CHECK(mg_value_user(u) == &tag);
    mg_value_set_data(u, 7.5);
    mg_value_set_grad(u, -1.25);
    CHECK_SAME(mg_value_data(u), 7.5);
    CHECK_SAME(mg_value_grad(u), -1.25);
    mg_value_release(u);
    CHECK(mg_live_values() == live_before);
}

/* mg_backward_order over a saved order gives the same gradients as mg_backward, run after run */
static void test_backward_order(void) {
    mg_value *x = mg_value_new(1.5), *y = mg_value_new(-0.25);
    mg_value *xy = mg_mul(x, y), *t = mg_tanh(xy), *sum = mg_add(t, x), *f = mg_mul(sum, sum);
    CHECK(mg_backward(f) == MG_OK);
    double gx = mg_value_grad(x), gy = mg_value_grad(y);
    mg_value **order = NULL;
    size_t count = 0;
    if (CHECK(mg_topo_order(f, &order, &count) == MG_OK) && CHECK(count == 6) && CHECK(order[count - 1] == f)) {
        for (int run = 0; run < 3; run++) {
            CHECK(mg_zero_grad(f) == MG_OK);
            CHECK(mg_backward_order(order, count) == MG_OK);
            CHECK_SAME(mg_value_grad(x), gx);
            CHECK_SAME(mg_value_grad(y), gy);
        }
    }
    CHECK(mg_backward_order(NULL, 0) == MG_ERR_NULL);
    mg_free(order);
    mg_value *all[] = {f, sum, t, xy, y, x};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) mg_value_release(all[i]);
}

int main(void) {
    test_readme_expression();
    test_backward_order();
    test_reuse();
    test_leaf_used_a_million_times();
    test_backward_twice_and_zero_grad();
    test_topo_order();
    test_early_release();
    test_retain_release();
    return check_finish("test_graph");
}
