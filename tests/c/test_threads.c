/* test_threads: separate graphs in separate threads at once, values made in one thread and released in
 * another, per-thread error messages. Run it under ThreadSanitizer too when changing the pool. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <micrograd.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

enum { WORKERS = 4, ITERATIONS = 200, TERMS = 2500 }; /* 4 nodes a term: 10^4 nodes a graph */

/* s = sum_i tanh(c_i * w + x), c_i = (i % 11 - 5) / 4. Checks value and gradients against the same sums
 * in plain C. Releases everything; returns 1 if the graph could be built. */
static int run_graph(double w0, double x0) {
    mg_value *w = mg_value_new(w0), *x = mg_value_new(x0);
    mg_value *sum = mg_value_new(0.0);
    double want_sum = 0.0, want_dw = 0.0, want_dx = 0.0;
    for (int i = 0; i < TERMS; i++) {
        double c = (double)(i % 11 - 5) / 4.0;
        mg_value *scaled = mg_mul_scalar(w, c);
        mg_value *shifted = mg_add(scaled, x);
        mg_value *t = mg_tanh(shifted);
        mg_value *next = mg_add(sum, t);
        mg_value_release(t);
        mg_value_release(shifted);
        mg_value_release(scaled);
        mg_value_release(sum);
        sum = next;
        double tv = tanh(w0 * c + x0);
        want_sum = want_sum + tv;
        want_dw += c * (1.0 - tv * tv);
        want_dx += 1.0 - tv * tv;
    }
    int built = CHECK(sum != NULL);
    if (built) {
        CHECK(mg_backward(sum) == MG_OK);
        CHECK_SAME(mg_value_data(sum), want_sum);
        CHECK_NEAR(mg_value_grad(w), want_dw, 1e-9 * TERMS);
        CHECK_NEAR(mg_value_grad(x), want_dx, 1e-9 * TERMS);
    } else {
        fprintf(stderr, "run_graph: %s\n", mg_last_error());
    }
    mg_value_release(sum);
    mg_value_release(x);
    mg_value_release(w);
    return built;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int it = 0; it < ITERATIONS; it++) {
        if (!run_graph(0.01 * id - 0.02, 0.001 * it - 0.1)) break;
    }
    return NULL;
}

static void test_concurrent_graphs(void) {
    pthread_t threads[WORKERS];
    int started[WORKERS];
    for (int i = 0; i < WORKERS; i++) started[i] = CHECK(pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < WORKERS; i++)
        if (started[i]) CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(mg_live_values() == 0);
}

/* ---- values crossing threads ---- */

enum { HANDED = 4 };

typedef struct {
    mg_value *leaf[HANDED];
    mg_value *root[HANDED]; /* root = leaf * leaf * 3 */
} handoff;

static void build_handoff(handoff *h, double base) {
    for (int i = 0; i < HANDED; i++) {
        h->leaf[i] = mg_value_new(base + i);
        mg_value *sq = mg_mul(h->leaf[i], h->leaf[i]);
        h->root[i] = mg_mul_scalar(sq, 3.0);
        mg_value_release(sq);
    }
}

/* backward (d/dleaf = 6 * leaf) and release, in whatever thread calls it */
static void finish_handoff(handoff *h) {
    for (int i = 0; i < HANDED; i++) {
        if (CHECK(mg_backward(h->root[i]) == MG_OK))
            CHECK_SAME(mg_value_grad(h->leaf[i]), 6.0 * mg_value_data(h->leaf[i]));
        mg_value_release(h->root[i]);
        mg_value_release(h->leaf[i]);
    }
}

static void *finish_thread(void *arg) {
    finish_handoff(arg);
    return NULL;
}

static void *build_thread(void *arg) {
    build_handoff(arg, 10.0);
    return NULL;
}

static void test_values_cross_threads(void) {
    /* made here, released there, while this thread keeps working on its own graphs */
    handoff mine[2];
    build_handoff(&mine[0], 1.0);
    build_handoff(&mine[1], 5.0);
    pthread_t threads[2];
    int started[2];
    for (int i = 0; i < 2; i++) started[i] = CHECK(pthread_create(&threads[i], NULL, finish_thread, &mine[i]) == 0);
    for (int it = 0; it < 20; it++) run_graph(0.5, 0.001 * it);
    for (int i = 0; i < 2; i++) {
        if (started[i]) CHECK(pthread_join(threads[i], NULL) == 0);
        else finish_handoff(&mine[i]);
    }

    /* made there (the thread has exited since), released here */
    handoff theirs;
    pthread_t builder;
    if (CHECK(pthread_create(&builder, NULL, build_thread, &theirs) == 0)) {
        CHECK(pthread_join(builder, NULL) == 0);
        CHECK(mg_live_values() == 3 * HANDED);
        finish_handoff(&theirs);
    }
    CHECK(mg_live_values() == 0);

    /* the pool can be trimmed once every thread's values are gone, and works afterwards */
    CHECK(mg_pool_trim() == MG_OK);
    run_graph(0.25, -0.25);
}

/* ---- error messages are per thread ---- */

static void *error_thread(void *arg) {
    int *ok = arg;
    mg_clear_error();
    *ok = mg_tanh(NULL) == NULL && strncmp(mg_last_error(), "mg_tanh:", 8) == 0;
    return NULL;
}

static void test_errors_per_thread(void) {
    mg_clear_error();
    CHECK(mg_exp(NULL) == NULL);
    int ok = 0;
    pthread_t thread;
    if (CHECK(pthread_create(&thread, NULL, error_thread, &ok) == 0)) {
        CHECK(pthread_join(thread, NULL) == 0);
        CHECK(ok);
    }
    CHECK(strncmp(mg_last_error(), "mg_exp:", 7) == 0); /* not the other thread's */
    mg_clear_error();
}

/* A value released by a thread-specific-data destructor that runs after the library's own one still
 * counts: the live count comes back to 0. */
static pthread_key_t late_key;

static void release_late(void *v) { mg_value_release(v); }

static void *make_value_released_at_exit(void *arg) {
    (void)arg;
    mg_value *v = mg_value_new(1.0);
    pthread_setspecific(late_key, v);
    return NULL;
}

static void test_release_in_a_late_destructor(void) {
    mg_value_release(mg_value_new(0.0)); /* the library's own key exists first, so its destructor runs first */
    CHECK(pthread_key_create(&late_key, release_late) == 0);
    pthread_t thread;
    if (CHECK(pthread_create(&thread, NULL, make_value_released_at_exit, NULL) == 0)) pthread_join(thread, NULL);
    CHECK(mg_live_values() == 0);
    pthread_key_delete(late_key);
}

int main(void) {
    test_release_in_a_late_destructor();
    test_concurrent_graphs();
    test_values_cross_threads();
    test_errors_per_thread();
    return check_finish("test_threads");
}
