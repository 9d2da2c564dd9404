/* bench_engine: what one scalar node costs: to build, to backpropagate through, to free, in bytes.
 *
 * The graph has 10^6 nodes in two halves, both shaped like a network's work:
 *   - a chain of neuron-like steps: x = relu(x * w + b) + 0.01, with w and b among 128 shared leaves;
 *   - a DAG where each step averages the previous node with an earlier one, then scales and shifts it:
 *     ((prev + other) * 0.5) * w + b. `other` is drawn from the 1024 nodes before (a layer reading the
 *     previous layer); drawing it from the whole graph would time cache misses, not the engine.
 * Every handle is kept in an array while building (as a framework keeps its tensors) and released at the
 * end. Times are medians of 5 runs after a warm-up run, from clock_gettime(CLOCK_MONOTONIC). The same
 * graph at 2 * 10^4 nodes, which fits in cache, shows how much of the cost is memory traffic.
 * Then a 10^7-node chain goes through build, backward and free once: the deepest graph tried. Last, neuron
 * nodes (mg_affine: b + w[0]*x[0] + ..., one node keeping its 2n + 1 inputs in an array) are built and
 * freed in bulk for a few input counts, the moons demo's 2 and 16 among them. */
#define _POSIX_C_SOURCE 200809L
#include <micrograd.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NODES = 1000000, SMALL_NODES = 20000, PARAMS = 128, WINDOW = 1024, REPS = 5, SMALL_REPS = 25 };
enum { DEEP_CHAIN = 10000000 };
/* neuron nodes: each size builds about AFFINE_POINTERS input pointers' worth of nodes (32 MB of arrays) */
enum { AFFINE_SIZES = 4, AFFINE_POINTERS = 4000000, AFFINE_REPS = 9, AFFINE_MAX_IN = 784 };
static const size_t affine_inputs[AFFINE_SIZES] = {2, 16, 64, AFFINE_MAX_IN};

static const double GOAL_BUILD_NS = 15.0, GOAL_BACKWARD_NS = 10.0, GOAL_BYTES = 64.0;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Resident set size in bytes from /proc/self/statm, or -1 where there is none. */
static long long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, resident = -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (long long)sysconf(_SC_PAGESIZE);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *samples, int n) {
    qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

static uint64_t rng_next(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

/* ---- the mixed graph ---- */

typedef struct {
    size_t nodes;
    mg_value **owned; /* every handle, `nodes` of them */
    uint32_t *back;   /* for the DAG steps: how far back `other` is, drawn before timing */
    mg_value *params[PARAMS];
} graph;

static int graph_init(graph *g, size_t nodes) {
    g->nodes = nodes;
    g->owned = malloc(nodes * sizeof *g->owned);
    g->back = malloc(nodes * sizeof *g->back);
    if (!g->owned || !g->back) return 0;
    uint64_t state = 42;
    for (size_t i = 0; i < nodes; i++) g->back[i] = 1 + (uint32_t)(rng_next(&state) % WINDOW);
    for (int p = 0; p < PARAMS; p++) {
        double r = (double)rng_next(&state) / 2147483648.0; /* [0, 2) */
        /* weights +-1 keep values and gradients away from underflow; biases in [-1, 1) */
        g->params[p] = mg_value_new(p % 2 == 0 ? (r < 1.0 ? -1.0 : 1.0) : r - 1.0);
        if (!g->params[p]) return 0;
    }
    return 1;
}

static void graph_done(graph *g) {
    for (int p = 0; p < PARAMS; p++) mg_value_release(g->params[p]);
    free(g->owned);
    free(g->back);
}

/* Builds g->nodes nodes into g->owned; returns the root (the last node) or NULL. */
static mg_value *graph_build(graph *g) {
    mg_value **owned = g->owned;
    size_t n = 0, nodes = g->nodes;
    mg_value *x = g->params[1];
    while (n + 4 <= nodes / 2) { /* chain: x = relu(x * w + b) + 0.01 */
        mg_value *w = g->params[(2 * n) % PARAMS], *b = g->params[(2 * n + 1) % PARAMS];
        mg_value *m = owned[n++] = mg_mul(x, w);
        mg_value *a = owned[n++] = mg_add(m, b);
        mg_value *r = owned[n++] = mg_relu(a);
        x = owned[n++] = mg_add_scalar(r, 0.01);
    }
    while (n + 4 <= nodes) { /* DAG: ((prev + other) * 0.5) * w + b */
        mg_value *w = g->params[(2 * n) % PARAMS], *b = g->params[(2 * n + 1) % PARAMS];
        mg_value *other = owned[n > g->back[n] ? n - g->back[n] : 0];
        mg_value *s = owned[n++] = mg_add(x, other);
        mg_value *h = owned[n++] = mg_mul_scalar(s, 0.5);
        mg_value *m = owned[n++] = mg_mul(h, w);
        x = owned[n++] = mg_add(m, b);
    }
    while (n < nodes) x = owned[n++] = mg_neg(x);
    return x;
}

static void graph_free(graph *g) {
    for (size_t i = g->nodes; i-- > 0;) mg_value_release(g->owned[i]);
}

typedef struct {
    double build, backward, ordering, replay, free; /* ns per node, medians */
} phase_times;

/* A warm-up run (it grows the pool), then `reps` timed runs. Returns 0 if the library failed. */
static int time_graph(size_t nodes, int reps, phase_times *out) {
    graph g;
    if (!graph_init(&g, nodes)) return 0;
    double build[SMALL_REPS], backward[SMALL_REPS], ordering[SMALL_REPS], replay[SMALL_REPS], freeing[SMALL_REPS];
    int ok = 1;
    for (int rep = -1; rep < reps && ok; rep++) {
        double t0 = now_ns();
        mg_value *root = graph_build(&g);
        double t1 = now_ns();
        ok = root && mg_backward(root) == MG_OK;
        double t2 = now_ns();
        /* zero_grad is the same traversal with a trivial body: what ordering the nodes alone costs */
        ok = ok && mg_zero_grad(root) == MG_OK;
        double t3 = now_ns();
        /* backward again over an order saved once (mg_topo_order, not timed): the cost of each further
         * backward pass over the same graph */
        mg_value **order = NULL;
        size_t count = 0;
        ok = ok && mg_topo_order(root, &order, &count) == MG_OK;
        double t4 = now_ns();
        ok = ok && mg_backward_order(order, count) == MG_OK;
        double t5 = now_ns();
        mg_free(order);
        double t6 = now_ns();
        graph_free(&g);
        double t7 = now_ns();
        if (rep < 0) continue;
        build[rep] = (t1 - t0) / (double)nodes;
        backward[rep] = (t2 - t1) / (double)nodes;
        ordering[rep] = (t3 - t2) / (double)nodes;
        replay[rep] = (t5 - t4) / (double)nodes;
        freeing[rep] = (t7 - t6) / (double)nodes;
    }
    graph_done(&g);
    if (!ok) return 0;
    out->build = median(build, reps);
    out->backward = median(backward, reps);
    out->ordering = median(ordering, reps);
    out->replay = median(replay, reps);
    out->free = median(freeing, reps);
    return 1;
}

/* ---- a counting allocator, to see the pool's real footprint ---- */

typedef struct {
    long long bytes, peak;
} counting;

typedef union {
    size_t size;
    max_align_t align;
} block_header;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    counting *c = ud;
    (void)old_size;
    block_header *h = ptr ? (block_header *)ptr - 1 : NULL;
    long long old = h ? (long long)h->size : 0;
    if (new_size == 0) {
        c->bytes -= old;
        free(h);
        return NULL;
    }
    block_header *grown = realloc(h, sizeof *grown + new_size);
    if (!grown) return NULL;
    grown->size = new_size;
    c->bytes += (long long)new_size - old;
    if (c->bytes > c->peak) c->peak = c->bytes;
    return grown + 1;
}

typedef struct {
    double pool_per_node, scratch_per_node;
} footprint;

/* The pool's bytes per node and backward's scratch, seen by a counting allocator (an untimed run). */
static int measure_footprint(footprint *out) {
    counting count = {0, 0};
    graph g;
    if (mg_set_allocator(counting_alloc, &count) != MG_OK || !graph_init(&g, NODES)) return 0;
    mg_value *root = graph_build(&g);
    long long pool = count.bytes; /* the parameters and the graph */
    count.peak = count.bytes;
    int ok = root && mg_backward(root) == MG_OK;
    out->pool_per_node = (double)pool / (NODES + PARAMS);
    out->scratch_per_node = (double)(count.peak - count.bytes) / NODES;
    graph_free(&g);
    graph_done(&g);
    return mg_set_allocator(NULL, NULL) == MG_OK && ok;
}

/* ---- the deep chain ---- */

typedef struct {
    double build_ms, backward_ms, free_ms;
    long long rss_growth;
} chain_result;

/* x -> x + 1 -> x * 1 -> ...: gradient 1 all the way down. Returns 0 if anything failed. */
static int run_deep_chain(chain_result *r) {
    long long rss_before = rss_bytes();
    double t0 = now_ns();
    mg_value *leaf = mg_value_new(1.0);
    mg_value *x = mg_value_retain(leaf);
    for (long i = 0; i < DEEP_CHAIN && x; i++) {
        mg_value *next = i % 2 ? mg_mul_scalar(x, 1.0) : mg_add_scalar(x, 1.0);
        mg_value_release(x);
        x = next;
    }
    double t1 = now_ns();
    r->rss_growth = rss_before < 0 ? -1 : rss_bytes() - rss_before;
    int ok = x != NULL && mg_backward(x) == MG_OK && mg_value_grad(leaf) == 1.0;
    double t2 = now_ns();
    mg_value_release(x);
    double t3 = now_ns();
    mg_value_release(leaf);
    r->build_ms = (t1 - t0) / 1e6;
    r->backward_ms = (t2 - t1) / 1e6;
    r->free_ms = (t3 - t2) / 1e6;
    return ok;
}

/* ---- neuron nodes ---- */

typedef struct {
    size_t n_in, nodes;
    double build, free; /* ns per node, medians */
} affine_times;

/* `nodes` neuron nodes of n_in inputs each on shared leaves w and x, all held, then all released. */
static int time_affine(size_t n_in, affine_times *out) {
    mg_value *w[AFFINE_MAX_IN], *x[AFFINE_MAX_IN], *b = mg_value_new(0.5);
    int ok = b != NULL;
    for (size_t i = 0; i < n_in; i++) {
        w[i] = mg_value_new(1.0 / (double)(i + 1));
        x[i] = mg_value_new((double)i);
        ok = ok && w[i] && x[i];
    }
    size_t nodes = AFFINE_POINTERS / (2 * n_in + 1);
    mg_value **owned = malloc(nodes * sizeof *owned);
    double build[AFFINE_REPS], freeing[AFFINE_REPS];
    ok = ok && owned;
    for (int rep = -1; rep < AFFINE_REPS && ok; rep++) { /* a warm-up run first */
        double t0 = now_ns();
        for (size_t k = 0; k < nodes; k++) ok &= (owned[k] = mg_affine(b, w, x, n_in)) != NULL;
        double t1 = now_ns();
        for (size_t k = nodes; k-- > 0;) mg_value_release(owned[k]);
        double t2 = now_ns();
        if (rep < 0) continue;
        build[rep] = (t1 - t0) / (double)nodes;
        freeing[rep] = (t2 - t1) / (double)nodes;
    }
    for (size_t i = 0; i < n_in; i++) {
        mg_value_release(w[i]);
        mg_value_release(x[i]);
    }
    mg_value_release(b);
    free(owned);
    if (!ok) return 0;
    *out = (affine_times){n_in, nodes, median(build, AFFINE_REPS), median(freeing, AFFINE_REPS)};
    return 1;
}

static const char *meets(double value, double goal) { return value <= goal ? "yes" : "no"; }

int main(void) {
    /* the deep chain first, in a fresh process, so that its RSS growth is the pool's alone */
    chain_result deep;
    phase_times big, small;
    footprint bytes;
    affine_times affine[AFFINE_SIZES];
    int affine_ok = 1;
    if (!run_deep_chain(&deep) || mg_pool_trim() != MG_OK || !measure_footprint(&bytes) ||
        !time_graph(NODES, REPS, &big) || !time_graph(SMALL_NODES, SMALL_REPS, &small)) {
        fprintf(stderr, "bench_engine: %s\n", mg_last_error());
        return 1;
    }
    for (int i = 0; i < AFFINE_SIZES; i++) affine_ok = affine_ok && time_affine(affine_inputs[i], &affine[i]);
    if (!affine_ok) {
        fprintf(stderr, "bench_engine: %s\n", mg_last_error());
        return 1;
    }
    double node_bytes = (double)mg_value_size();

    printf("## micrograd-c engine: %d-node graph, median of %d runs (%d nodes: median of %d)\n\n", NODES, REPS,
           SMALL_NODES, SMALL_REPS);
    printf("| measure | %d nodes | %d nodes (in cache) | goal | met |\n", NODES, SMALL_NODES);
    printf("| --- | ---: | ---: | ---: | :---: |\n");
    printf("| build, ns/node | %.1f | %.1f | <= %.0f | %s |\n", big.build, small.build, GOAL_BUILD_NS,
           meets(big.build, GOAL_BUILD_NS));
    printf("| backward, ns/node | %.1f | %.1f | <= %.0f | %s |\n", big.backward, small.backward, GOAL_BACKWARD_NS,
           meets(big.backward, GOAL_BACKWARD_NS));
    printf("| ordering alone (mg_zero_grad), ns/node | %.1f | %.1f | | |\n", big.ordering, small.ordering);
    printf("| backward over a saved order (mg_backward_order), ns/node | %.1f | %.1f | <= %.0f | %s |\n", big.replay,
           small.replay, GOAL_BACKWARD_NS, big.replay <= GOAL_BACKWARD_NS ? "yes" : "no");
    printf("| free, ns/node | %.1f | %.1f | | |\n", big.free, small.free);
    printf("| node, bytes (mg_value_size) | %.0f | | <= %.0f | %s |\n", node_bytes, GOAL_BYTES,
           meets(node_bytes, GOAL_BYTES));
    printf("| pool, bytes/node (whole chunks of 4096, the last part-used) | %.2f | | <= %.0f | %s |\n",
           bytes.pool_per_node, GOAL_BYTES, meets(bytes.pool_per_node, GOAL_BYTES));
    printf("| backward scratch, bytes/node (freed after) | %.2f | | | |\n", bytes.scratch_per_node);
    if (deep.rss_growth >= 0)
        printf("| RSS growth, bytes/node (%d-node chain) | %.2f | | | |\n", DEEP_CHAIN,
               (double)deep.rss_growth / DEEP_CHAIN);
    printf("\n| deepest chain tried | build | backward | free |\n| --- | ---: | ---: | ---: |\n");
    printf("| %d nodes | %.0f ms | %.0f ms | %.0f ms |\n", DEEP_CHAIN, deep.build_ms, deep.backward_ms, deep.free_ms);
    printf("\n| neuron node (mg_affine) | nodes | build, ns/node | free, ns/node |\n");
    printf("| --- | ---: | ---: | ---: |\n");
    for (int i = 0; i < AFFINE_SIZES; i++)
        printf("| %zu inputs | %zu | %.1f | %.1f |\n", affine[i].n_in, affine[i].nodes, affine[i].build,
               affine[i].free);
    return 0;
}
