/* test_threads: separate graphs in separate threads at once, values made in one thread and released in
 * another, per-thread error messages, and the one worker pool: fit and tensor kernels sharing it from two
 * threads at once, and fit following mg_set_num_threads. Run it under ThreadSanitizer too when changing
 * the pool. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <micrograd.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <dirent.h>
#endif

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
    for (int i = 0; i < WORKERS; i++)
        started[i] = CHECK(pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) == 0);
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

/* ---- neuron nodes: their input arrays come from per-thread free lists, one per size class ---- */

enum { NEURON_SIZES = 5, NEURON_MAX = 1100, NEURONS = 64 };
static const size_t neuron_sizes[NEURON_SIZES] = {2, 20, 100, 700, NEURON_MAX}; /* the last past every class */

typedef struct {
    mg_value *b, *w[NEURON_MAX], *x[NEURON_MAX]; /* leaves of its own: a value is used by one thread at a time */
    mg_value *nodes[NEURONS];                   /* neuron nodes of every size, held at once */
} neuron_set;

static void build_neurons(neuron_set *s, int round) {
    s->b = mg_value_new(0.5);
    for (int i = 0; i < NEURON_MAX; i++) {
        s->w[i] = mg_value_new(0.001 * i);
        s->x[i] = mg_value_new(1.0 + round);
    }
    for (int k = 0; k < NEURONS; k++) s->nodes[k] = mg_affine(s->b, s->w, s->x, neuron_sizes[k % NEURON_SIZES]);
}

/* checks each node's value against the same sum in plain C, then releases everything */
static void finish_neurons(neuron_set *s) {
    for (int k = 0; k < NEURONS; k++) {
        size_t n = neuron_sizes[k % NEURON_SIZES];
        double want = mg_value_data(s->b);
        for (size_t i = 0; i < n; i++) want = want + mg_value_data(s->w[i]) * mg_value_data(s->x[i]);
        if (CHECK(s->nodes[k] != NULL)) CHECK_SAME(mg_value_data(s->nodes[k]), want);
        mg_value_release(s->nodes[k]);
    }
    mg_value_release(s->b);
    for (int i = 0; i < NEURON_MAX; i++) {
        mg_value_release(s->w[i]);
        mg_value_release(s->x[i]);
    }
}

static void *neuron_worker(void *arg) {
    for (int round = 0; round < 20; round++) {
        build_neurons(arg, round);
        finish_neurons(arg);
    }
    return NULL;
}

static void *neuron_builder(void *arg) {
    build_neurons(arg, 0);
    return NULL;
}

static void test_neuron_nodes_cross_threads(void) {
    static neuron_set sets[WORKERS];
    /* several threads at once, each on its own lists */
    pthread_t threads[WORKERS];
    int started[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        started[i] = CHECK(pthread_create(&threads[i], NULL, neuron_worker, &sets[i]) == 0);
    for (int i = 0; i < WORKERS; i++)
        if (started[i]) CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(mg_live_values() == 0);
    /* made by a thread that has exited since (its free blocks become orphans, which the next builder takes
     * over), released here */
    for (int i = 0; i < 2; i++) {
        pthread_t builder;
        if (!CHECK(pthread_create(&builder, NULL, neuron_builder, &sets[0]) == 0)) break;
        CHECK(pthread_join(builder, NULL) == 0);
        CHECK(mg_live_values() == NEURONS + 1 + 2 * NEURON_MAX);
        finish_neurons(&sets[0]);
    }
    CHECK(mg_live_values() == 0);
    CHECK(mg_pool_trim() == MG_OK); /* every input array was given back too */
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

/* ---- the worker pool: fit and tensor kernels share it ---- */

static long long thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

enum { FIT_N = 1024, FIT_IN = 8 };

/* A fit big enough to be split over threads (4801 parameters, 32 chunks a step); its parameters in out. */
static int run_fit(const double *x, const double *y, int threads, double *out, size_t n_out) {
    size_t sizes[] = {64, 64, 1};
    mg_mlp *m = mg_mlp_new(FIT_IN, 3, sizes, NULL);
    if (!m) return 0;
    mg_mlp_init_uniform(m, 3);
    mg_optim_config cfg = mg_optim_defaults(MG_OPTIM_ADAM);
    cfg.lr = 0.01;
    mg_optim *opt = mg_optim_new(&cfg, mg_mlp_num_params(m));
    mg_fit_options o = mg_fit_defaults();
    o.epochs = 3;
    o.batch_size = 0;
    o.l2 = 1e-4;
    o.threads = threads;
    int ok = opt && mg_mlp_fit(m, opt, x, y, FIT_N, &o) == MG_OK && mg_mlp_num_params(m) == n_out;
    if (ok) memcpy(out, mg_mlp_params(m), n_out * sizeof *out);
    mg_optim_free(opt);
    mg_mlp_free(m);
    return ok;
}

static void fit_data(double *x, double *y) {
    uint64_t s = 99;
    for (size_t i = 0; i < FIT_N * FIT_IN; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
    for (size_t i = 0; i < FIT_N; i++) y[i] = x[i * FIT_IN] * x[i * FIT_IN + 1] > 0 ? 1.0 : -1.0;
}

enum { MM = 160, MK = 240, MN = 160, MATMULS = 12, FITS = 3, N_PARAMS = FIT_IN * 64 + 64 + 64 * 64 + 64 + 64 + 1 };

typedef struct {
    const double *x, *y, *want;
    int ok;
} fit_job;

static void *fit_thread(void *arg) {
    fit_job *job = arg;
    static double got[N_PARAMS];
    job->ok = 1;
    for (int i = 0; i < FITS; i++)
        job->ok &= run_fit(job->x, job->y, 2, got, N_PARAMS) && memcmp(got, job->want, sizeof got) == 0;
    return NULL;
}

typedef struct {
    const double *a, *b, *want;
    int ok;
} matmul_job;

static void *matmul_thread(void *arg) {
    matmul_job *job = arg;
    size_t sa[] = {MM, MK}, sb[] = {MK, MN};
    job->ok = 1;
    for (int i = 0; i < MATMULS; i++) {
        mg_tensor *a = mg_tensor_from_data(job->a, sa, 2, MG_FLOAT64);
        mg_tensor *b = mg_tensor_from_data(job->b, sb, 2, MG_FLOAT64);
        mg_tensor *c = mg_tensor_matmul(a, b);
        const double *got = c ? mg_tensor_data_ptr(c) : NULL;
        if (!got) job->ok = 0;
        for (size_t j = 0; got && j < MM * MN; j++)
            if (fabs(got[j] - job->want[j]) > 1e-12 * (1.0 + fabs(job->want[j]))) job->ok = 0;
        mg_tensor_release(c);
        mg_tensor_release(b);
        mg_tensor_release(a);
    }
    return NULL;
}

/* Fit (2 threads) and big matmuls from two threads at once: whichever finds the pool busy runs its job on
 * its own thread; both get the right numbers, fit bit for bit those of a 1-thread run. */
static void test_fit_and_matmul_at_once(void) {
    double *x = malloc(FIT_N * FIT_IN * sizeof *x), *y = malloc(FIT_N * sizeof *y);
    double *want = malloc(N_PARAMS * sizeof *want);
    double *a = malloc(MM * MK * sizeof *a), *b = malloc(MK * MN * sizeof *b), *c = calloc(MM * MN, sizeof *c);
    if (!CHECK(x && y && want && a && b && c)) goto done;
    fit_data(x, y);
    CHECK(run_fit(x, y, 1, want, N_PARAMS));
    for (size_t i = 0; i < MM * MK; i++) a[i] = (double)((i * 7) % 13) / 13.0 - 0.5;
    for (size_t i = 0; i < MK * MN; i++) b[i] = (double)((i * 5) % 11) / 11.0 - 0.5;
    for (size_t i = 0; i < MM; i++)
        for (size_t k = 0; k < MK; k++)
            for (size_t j = 0; j < MN; j++) c[i * MN + j] += a[i * MK + k] * b[k * MN + j];
    fit_job fj = {x, y, want, 0};
    matmul_job mj = {a, b, c, 0};
    pthread_t ft, mt;
    int fit_started = CHECK(pthread_create(&ft, NULL, fit_thread, &fj) == 0);
    int mm_started = CHECK(pthread_create(&mt, NULL, matmul_thread, &mj) == 0);
    if (fit_started) CHECK(pthread_join(ft, NULL) == 0 && fj.ok);
    if (mm_started) CHECK(pthread_join(mt, NULL) == 0 && mj.ok);
    CHECK(mg_live_tensors() == 0);
done:
    free(x), free(y), free(want), free(a), free(b), free(c);
}

/* How much CPU time the pool's workers spent while this thread ran fit, as a share of this thread's. */
static double pool_share_of_fit(const double *x, const double *y, int threads, double *params) {
    /* read while the workers sleep: the kernel brings a running thread's CPU time up to date only at a
     * tick or when it stops running, and the workers spin a little after a fit step */
    struct timespec pause = {0, 30 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int workers;
    long long before = check_pool_workers(&workers), mine = thread_cpu_ns();
    CHECK(run_fit(x, y, threads, params, N_PARAMS));
    mine = thread_cpu_ns() - mine;
    nanosleep(&pause, NULL);
    long long after = check_pool_workers(&workers);
    return before < 0 || after < 0 || mine <= 0 ? -1.0 : (double)(after - before) / (double)mine;
}

/* options.threads = 0 follows mg_set_num_threads; a nonzero one overrides it for that call */
static void test_fit_follows_num_threads(void) {
    double *x = malloc(FIT_N * FIT_IN * sizeof *x), *y = malloc(FIT_N * sizeof *y);
    double *one = malloc(N_PARAMS * sizeof *one), *got = malloc(N_PARAMS * sizeof *got);
    if (!CHECK(x && y && one && got)) goto done;
    fit_data(x, y);
    mg_set_num_threads(1);
    CHECK(mg_get_num_threads() == 1);
    double serial = pool_share_of_fit(x, y, 0, one);
    if (mg_num_cores() >= 2) {
        double pooled = pool_share_of_fit(x, y, 2, got); /* the override: 2 threads despite the setting */
        CHECK(memcmp(got, one, N_PARAMS * sizeof *got) == 0);
        serial = pool_share_of_fit(x, y, 0, got); /* the pool exists now, and must stay idle */
        CHECK(memcmp(got, one, N_PARAMS * sizeof *got) == 0);
        mg_set_num_threads(2);
        double followed = pool_share_of_fit(x, y, 0, got);
        CHECK(memcmp(got, one, N_PARAMS * sizeof *got) == 0);
        if (serial >= 0.0 && pooled >= 0.0 && followed >= 0.0) { /* a worker does about half the chunks */
            if (!CHECK(serial < 0.05 && pooled > 0.3 && followed > 0.3))
                fprintf(stderr, "  pool's CPU time / caller's: setting 1 %.3f, override 2 %.3f, setting 2 %.3f\n",
                        serial, pooled, followed);
        }
    }
    mg_set_num_threads(0);
    CHECK(mg_get_num_threads() == mg_num_cores());
done:
    free(x), free(y), free(one), free(got);
}

#if !defined(__SANITIZE_THREAD__)
/* After fork() the child has none of the parent's workers: its first job starts its own, with the same
 * results. Forked right after a fit, while the parent's workers still spin. */
static void test_pool_after_fork(void) {
    double *x = malloc(FIT_N * FIT_IN * sizeof *x), *y = malloc(FIT_N * sizeof *y);
    double *want = malloc(N_PARAMS * sizeof *want), *got = malloc(N_PARAMS * sizeof *got);
    if (!CHECK(x && y && want && got)) goto done;
    fit_data(x, y);
    CHECK(run_fit(x, y, 2, want, N_PARAMS));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = run_fit(x, y, 2, got, N_PARAMS) && memcmp(got, want, N_PARAMS * sizeof *got) == 0;
        int workers;
        check_pool_workers(&workers);
        _exit(ok && (mg_num_cores() < 2 || workers >= 1) ? 0 : 1);
    }
    int status = 0;
    if (CHECK(pid > 0)) CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(run_fit(x, y, 2, got, N_PARAMS) && memcmp(got, want, N_PARAMS * sizeof *got) == 0); /* the parent's pool */
done:
    free(x), free(y), free(want), free(got);
}
#endif

int main(void) {
    test_release_in_a_late_destructor();
    test_concurrent_graphs();
    test_values_cross_threads();
    test_neuron_nodes_cross_threads();
    test_errors_per_thread();
    test_fit_and_matmul_at_once();
    test_fit_follows_num_threads();
#if !defined(__SANITIZE_THREAD__) /* ThreadSanitizer stops a child of a threaded process that starts threads */
    test_pool_after_fork();
#endif
    return check_finish("test_threads");
}
