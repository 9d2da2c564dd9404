/* test_deep: graphs far deeper than any call stack: a 10^7-node chain in the main thread, a 10^6-node chain
 * in a thread with a 256 KiB stack, and a wide graph. Recursion anywhere in building, backward, zero_grad,
 * topological ordering or freeing would overflow the stack here. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <micrograd.h>

#include <pthread.h>
#include <stdint.h>

/* The same depth with and without AddressSanitizer: the 10^7 chain takes about 1 s in a release build and
 * under 10 s with ASan, within the suite's budget, so no scaling down is needed. */
enum { MAIN_CHAIN = 10000000, THREAD_CHAIN = 1000000, SMALL_STACK = 256 * 1024 };

/* A chain x -> x + 1 -> -(...) -> (...) * -1 -> (...) - 0.25 -> ...: each round of four ops adds 0.75 to the
 * value and multiplies the gradient by (1)(-1)(-1)(1) = 1. Each handle is released as soon as the next
 * node holds it, so the whole chain hangs off the root; the leaf is kept to read its gradient. Returns the
 * number of checks that failed in it. */
static long run_chain(long length) {
    long failures_before = atomic_load(&check_failures);
    int64_t live_before = mg_live_values();
    mg_value *leaf = mg_value_new(1.0);
    mg_value *x = mg_value_retain(leaf);
    for (long i = 0; i < length && x; i++) {
        mg_value *next;
        switch (i % 4) {
        case 0: next = mg_add_scalar(x, 1.0); break;
        case 1: next = mg_neg(x); break;
        case 2: next = mg_mul_scalar(x, -1.0); break;
        default: next = mg_sub_scalar(x, 0.25); break;
        }
        mg_value_release(x);
        x = next;
    }
    if (!CHECK(x != NULL)) {
        fprintf(stderr, "chain of %ld: %s\n", length, mg_last_error());
        mg_value_release(leaf);
        return atomic_load(&check_failures) - failures_before;
    }
    CHECK(mg_live_values() - live_before == (int64_t)length + 1);
    CHECK_SAME(mg_value_data(x), 1.0 + 0.75 * (double)(length / 4));

    CHECK(mg_backward(x) == MG_OK);
    CHECK_SAME(mg_value_grad(leaf), 1.0);
    CHECK(mg_zero_grad(x) == MG_OK);
    CHECK_SAME(mg_value_grad(leaf), 0.0);

    mg_value **order = NULL;
    size_t count = 0;
    if (CHECK(mg_topo_order(x, &order, &count) == MG_OK)) {
        CHECK(count == (size_t)length + 1);
        CHECK(order[0] == leaf && order[count - 1] == x);
        mg_free(order);
    }

    mg_value_release(x); /* frees the whole chain but the leaf, which we still own */
    CHECK(mg_live_values() - live_before == 1);
    mg_value_release(leaf);
    CHECK(mg_live_values() == live_before);
    return atomic_load(&check_failures) - failures_before;
}

static void *chain_thread(void *arg) {
    long *failures = arg;
    *failures = run_chain(THREAD_CHAIN);
    return NULL;
}

static void test_chain_in_small_stack(void) {
    pthread_attr_t attr;
    pthread_t thread;
    long failures = -1;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, SMALL_STACK) == 0);
    if (CHECK(pthread_create(&thread, &attr, chain_thread, &failures) == 0)) {
        CHECK(pthread_join(thread, NULL) == 0);
        CHECK(failures == 0);
    }
    pthread_attr_destroy(&attr);
}

/* Wide: one leaf w feeds 2^17 nodes t_i = tanh(c_i * w), summed by a balanced tree of additions.
 * d(sum)/dw = sum_i c_i (1 - t_i^2). */
static void test_wide(void) {
    enum { WIDTH = 1 << 17 };
    static mg_value *level[WIDTH];
    mg_value *w = mg_value_new(0.3);
    double want_dw = 0.0, want_sum = 0.0;
    for (int i = 0; i < WIDTH; i++) {
        double c = (double)(i % 13) - 6.0;
        mg_value *scaled = mg_mul_scalar(w, c);
        level[i] = mg_tanh(scaled);
        mg_value_release(scaled);
        double t = tanh(c * 0.3);
        want_sum += t;
        want_dw += c * (1.0 - t * t);
    }
    /* pairwise sums, level by level, in place */
    for (int width = WIDTH; width > 1; width /= 2) {
        for (int i = 0; i < width / 2; i++) {
            mg_value *sum = mg_add(level[2 * i], level[2 * i + 1]);
            mg_value_release(level[2 * i]);
            mg_value_release(level[2 * i + 1]);
            level[i] = sum;
        }
    }
    mg_value *root = level[0];
    if (CHECK(root != NULL)) {
        CHECK(mg_backward(root) == MG_OK);
        CHECK_NEAR(mg_value_data(root), want_sum, 1e-9 * WIDTH);
        CHECK_NEAR(mg_value_grad(w), want_dw, 1e-9 * WIDTH);
        mg_value **order = NULL;
        size_t count = 0;
        CHECK(mg_topo_order(root, &order, &count) == MG_OK);
        CHECK(count == 1 + 2 * (size_t)WIDTH + (size_t)WIDTH - 1); /* w, WIDTH mul_c + tanh, WIDTH-1 adds */
        CHECK(count > 0 && order[0] == w);
        mg_free(order);
    }
    mg_value_release(root);
    mg_value_release(w);
}

int main(void) {
    run_chain(MAIN_CHAIN);
    test_chain_in_small_stack();
    test_wide();
    return check_finish("test_deep");
}
