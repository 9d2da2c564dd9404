/* check.h: the few checks the C tests share.
 *
 * CHECK(cond) and CHECK_NEAR(a, b, tol) print file:line and the values on failure and count it; the test
 * keeps going so one run shows every failure. check_finish() ends each test: it checks that no value is
 * still alive, prints a one-line summary and gives main() its exit code. Counters are atomic because
 * test_threads checks from several threads at once. */
#ifndef MG_TEST_CHECK_H
#define MG_TEST_CHECK_H

#include <micrograd.h>

#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <dirent.h>
#endif

static atomic_long check_count;
static atomic_long check_failures;

/* Past this many failures, stop printing (a failing loop over 10^6 nodes would drown the log). */
enum { CHECK_MAX_PRINTED = 40 };

static inline int check_failed_print(void) { return atomic_fetch_add(&check_failures, 1) < CHECK_MAX_PRINTED; }

static inline int check_true(int ok, const char *expr, const char *file, int line) {
    atomic_fetch_add(&check_count, 1);
    if (!ok && check_failed_print()) fprintf(stderr, "%s:%d: CHECK(%s) failed\n", file, line, expr);
    return ok;
}

/* |a - b| <= tol; a NaN on either side fails unless both are NaN, equal infinities pass. */
static inline int check_near(double a, double b, double tol, const char *ea, const char *eb, const char *file,
                             int line) {
    atomic_fetch_add(&check_count, 1);
    int ok = (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= tol;
    if (!ok && check_failed_print())
        fprintf(stderr, "%s:%d: CHECK_NEAR(%s, %s) failed: %.17g vs %.17g (diff %.3g, tol %.3g)\n", file, line, ea, eb,
                a, b, fabs(a - b), tol);
    return ok;
}

/* The same number: equal (so +inf matches +inf), or both NaN. */
static inline int check_same(double a, double b, const char *ea, const char *eb, const char *file, int line) {
    atomic_fetch_add(&check_count, 1);
    int ok = (isnan(a) && isnan(b)) || a == b;
    if (!ok && check_failed_print())
        fprintf(stderr, "%s:%d: CHECK_SAME(%s, %s) failed: %.17g vs %.17g\n", file, line, ea, eb, a, b);
    return ok;
}

#define CHECK(cond) check_true((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) check_near((a), (b), (tol), #a, #b, __FILE__, __LINE__)
#define CHECK_SAME(a, b) check_same((a), (b), #a, #b, __FILE__, __LINE__)

/* Ends a test: nothing may be left alive, then one summary line; returns main()'s exit code. The trim
 * also proves that every input array of a neuron node was returned (it refuses while one is alive). */
static inline int check_finish(const char *test_name) {
    long long live = (long long)mg_live_values();
    if (!CHECK(live == 0)) fprintf(stderr, "%s: %lld values still alive at exit\n", test_name, live);
    else if (!CHECK(mg_pool_trim() == MG_OK)) fprintf(stderr, "%s: %s\n", test_name, mg_last_error());
    long failures = atomic_load(&check_failures);
    printf("%s: %ld checks, %ld failed\n", test_name, atomic_load(&check_count), failures);
    return failures == 0 ? 0 : 1;
}

/* A small deterministic generator (PCG's LCG step, top 53 bits): the same inputs on every run. */
typedef struct {
    unsigned long long state;
} check_rng;

static inline double check_uniform(check_rng *rng, double lo, double hi) {
    rng->state = rng->state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * ((double)(rng->state >> 11) * 0x1.0p-53);
}

/* moons-like data for the nn and model-file tests: two interleaved arcs plus noise, labels -1/+1, deterministic */
static inline void check_moons(size_t n, uint64_t seed, double *x, double *y) {
    check_rng rng = {seed};
    for (size_t i = 0; i < n; i++) {
        double t = check_uniform(&rng, 0.0, 3.14159265358979323846);
        int upper = i % 2 == 0;
        x[2 * i] = (upper ? cos(t) : 1.0 - cos(t)) + check_uniform(&rng, -0.2, 0.2);
        x[2 * i + 1] = (upper ? sin(t) : 0.5 - sin(t)) + check_uniform(&rng, -0.2, 0.2);
        y[i] = upper ? -1.0 : 1.0;
    }
}

/* ---- a counting allocator for mg_set_allocator: counts blocks and bytes, checks every old_size, and
 * fails the fail_at-th call on purpose (out-of-memory paths get tested) ---- */

typedef struct {
    long long blocks;    /* outstanding */
    long long bytes;     /* outstanding, as requested */
    long long calls;     /* allocations and reallocations asked for */
    long long fail_at;   /* fail the call with this number (1-based); 0: never */
    long long failed;    /* failures injected */
    long long bad_sizes; /* frees or reallocations whose old_size was not the block's size */
} counting;

typedef union {
    size_t size;
    max_align_t align;
} block_header;

static inline void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    counting *count = ud;
    block_header *h = ptr ? (block_header *)ptr - 1 : NULL;
    if (h && h->size != old_size) count->bad_sizes++;
    if (new_size == 0) { /* free */
        if (h) {
            count->blocks--;
            count->bytes -= (long long)h->size;
            free(h);
        }
        return NULL;
    }
    if (++count->calls == count->fail_at) { /* injected failure: a failed realloc keeps the old block */
        count->failed++;
        return NULL;
    }
    block_header *grown = realloc(h, sizeof *h + new_size);
    if (!grown) return NULL;
    if (!h) count->blocks++;
    count->bytes += (long long)new_size - (long long)(h ? grown->size : 0);
    grown->size = new_size;
    return grown + 1;
}

/* The library's pool workers (threads named "mg-pool"): *count gets how many are alive, and the CPU time (ns)
 * they have run, summed, is returned; -1 where it cannot be read (not Linux, no schedstat). */
static inline long long check_pool_workers(int *count) {
    *count = 0;
#ifdef __linux__
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    long long total = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* a thread that has just exited */
        int is_pool = fgets(name, sizeof name, f) && strcmp(name, "mg-pool\n") == 0;
        fclose(f);
        if (!is_pool) continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        long long ns = -1;
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%lld", &ns) != 1) ns = -1;
            fclose(f);
        }
        if (ns < 0) total = -1;
        if (total >= 0) total += ns;
        ++*count;
    }
    closedir(dir);
    return total;
#else
    return -1;
#endif
}

#endif
