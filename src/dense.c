/* dense.c: a dense network over a chunk of samples, forward and backward: each layer one product of
 * gemm.c, its work split over shares that run on the worker pool.
 *
 * Layer l, of n_in inputs and n_out neurons, keeps its parameters as micrograd does, per neuron n_in
 * weights and then the bias: its weights are an n_out x n_in matrix W of row stride n_in + 1. With the
 * chunk's activations feature-major (X is n_in x count), the three products are
 *     forward            Z  = b + W X     C starts at the bias: b + w[0] x[0] + w[1] x[1] + ..., micrograd's sum
 *     weight gradient    dW += dZ X^T     k runs over samples: added in order of samples, chunk after chunk
 *     input gradient     dX = W^T dZ      C starts at 0: summed in order of the layer's neurons
 * and around each, the bias, the activation or its derivative run on the share's own rectangle of the
 * product's output, so that a layer's forward is one pool job and its backward another. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

/* ---- the steps around the products, on a rectangle of a feature-major block, per element type ---- */

typedef struct {
    size_t r0, r1, c0, c1; /* rows [r0, r1) (features), columns [c0, c1) (samples) */
} rect;

typedef struct {
    /* rows of z = the bias of their neuron, from the layer's parameters w */
    void (*set_bias)(void *z, size_t ld, const void *w, size_t n_in, rect r);
    void (*activate)(mg_activation act, void *z, size_t ld, rect r);
    /* dz *= the activation's derivative, computed from its output a */
    void (*activate_backward)(mg_activation act, void *dz, const void *a, size_t ld, rect r);
    /* the bias gradients of neurons [j0, j1) += their dz summed over count samples, in order */
    void (*bias_grad)(void *g, size_t n_in, const void *dz, size_t ld, size_t j0, size_t j1, size_t count);
} elementwise;

/* tanh and the sigmoid in double for both types (the float result rounded once); relu nan passes */
#define ELEMENTWISE(T)                                                                                  \
    static void set_bias_##T(void *zv, size_t ld, const void *wv, size_t n_in, rect r) {                \
        T *z = zv;                                                                                      \
        const T *w = wv;                                                                                \
        for (size_t j = r.r0; j < r.r1; j++)                                                            \
            for (size_t s = r.c0; s < r.c1; s++) z[j * ld + s] = w[j * (n_in + 1) + n_in];              \
    }                                                                                                   \
    static void activate_##T(mg_activation act, void *zv, size_t ld, rect r) {                          \
        for (size_t j = r.r0; j < r.r1; j++) {                                                          \
            T *z = (T *)zv + j * ld;                                                                    \
            switch (act) {                                                                              \
            case MG_ACT_RELU: for (size_t s = r.c0; s < r.c1; s++) z[s] = z[s] < 0 ? 0 : z[s]; break;   \
            case MG_ACT_TANH: for (size_t s = r.c0; s < r.c1; s++) z[s] = (T)tanh(z[s]); break;         \
            case MG_ACT_SIGMOID: for (size_t s = r.c0; s < r.c1; s++) z[s] = (T)mg__sigmoid(z[s]); break; \
            default: break;                                                                             \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    static void activate_backward_##T(mg_activation act, void *dzv, const void *av, size_t ld, rect r) { \
        for (size_t j = r.r0; j < r.r1; j++) {                                                          \
            T *dz = (T *)dzv + j * ld;                                                                  \
            const T *a = (const T *)av + j * ld;                                                        \
            switch (act) {                                                                              \
            case MG_ACT_RELU: for (size_t s = r.c0; s < r.c1; s++) dz[s] = a[s] > 0 ? dz[s] : 0; break; \
            case MG_ACT_TANH: for (size_t s = r.c0; s < r.c1; s++) dz[s] *= 1 - a[s] * a[s]; break;     \
            case MG_ACT_SIGMOID: for (size_t s = r.c0; s < r.c1; s++) dz[s] *= (1 - a[s]) * a[s]; break; \
            default: break;                                                                             \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    static void bias_grad_##T(void *gv, size_t n_in, const void *dzv, size_t ld, size_t j0, size_t j1,  \
                              size_t count) {                                                           \
        T *g = gv;                                                                                      \
        for (size_t j = j0; j < j1; j++) {                                                              \
            const T *dz = (const T *)dzv + j * ld;                                                      \
            T sum = g[j * (n_in + 1) + n_in];                                                           \
            for (size_t s = 0; s < count; s++) sum += dz[s];                                            \
            g[j * (n_in + 1) + n_in] = sum;                                                             \
        }                                                                                               \
    }                                                                                                   \
    static const elementwise elementwise_##T = {set_bias_##T, activate_##T, activate_backward_##T,      \
                                                bias_grad_##T};

ELEMENTWISE(double)
ELEMENTWISE(float)

static const elementwise *steps(const mg__pass *p) { return p->elem == 4 ? &elementwise_float : &elementwise_double; }

/* ---- a layer, and its three products ---- */

typedef struct {
    size_t n_in, n_out;
    const char *w; /* parameters */
    char *dw;      /* their gradients */
    const char *x; /* inputs: element (i, s) at x[i * x_feature + s * x_sample] */
    size_t x_feature, x_sample;
    char *out; /* outputs, feature-major */
    mg_activation act;
} layer;

static layer layer_at(const mg__pass *p, size_t l) {
    const mg_mlp *m = p->m;
    layer L = {.n_in = l ? m->sizes[l - 1] : m->n_in, .n_out = m->sizes[l], .act = m->acts[l]};
    L.w = (const char *)p->params + m->offsets[l] * p->elem;
    L.dw = p->grads + m->offsets[l] * p->elem;
    L.out = p->acts + p->act_at[l] * p->elem;
    if (l == 0) { /* the chunk's rows, sample-major */
        L.x = p->input;
        L.x_feature = 1;
        L.x_sample = m->n_in;
    } else {
        L.x = p->acts + p->act_at[l - 1] * p->elem;
        L.x_feature = p->chunk;
        L.x_sample = 1;
    }
    return L;
}

static mg__gemm_args product(const mg__pass *p, size_t m, size_t n, size_t k) {
    return (mg__gemm_args){.dtype = p->elem == 4 ? MG_FLOAT32 : MG_FLOAT64, .precision = p->m->precision,
                           .m = m, .n = n, .k = k};
}

/* Z (n_out x count) = b + W X */
static mg__gemm_args forward_product(const mg__pass *p, const layer *L) {
    mg__gemm_args g = product(p, L->n_out, p->count, L->n_in);
    g.a = L->w, g.rsa = (int64_t)(L->n_in + 1), g.csa = 1;
    g.b = L->x, g.rsb = (int64_t)L->x_feature, g.csb = (int64_t)L->x_sample;
    g.c = L->out, g.ldc = p->chunk;
    return g;
}

/* dW (n_out x n_in) += dZ X^T */
static mg__gemm_args weight_grad_product(const mg__pass *p, const layer *L, const char *dz) {
    mg__gemm_args g = product(p, L->n_out, L->n_in, p->count);
    g.a = dz, g.rsa = (int64_t)p->chunk, g.csa = 1;
    g.b = L->x, g.rsb = (int64_t)L->x_sample, g.csb = (int64_t)L->x_feature;
    g.c = L->dw, g.ldc = L->n_in + 1;
    return g;
}

/* dX (n_in x count) = W^T dZ */
static mg__gemm_args input_grad_product(const mg__pass *p, const layer *L, const char *dz, char *dx) {
    mg__gemm_args g = product(p, L->n_in, p->count, L->n_out);
    g.a = L->w, g.rsa = 1, g.csa = (int64_t)(L->n_in + 1);
    g.b = dz, g.rsb = (int64_t)p->chunk, g.csb = 1;
    g.c = dx, g.ldc = p->chunk;
    return g;
}

/* ---- the jobs: one a layer, each share taking its range of every product's units ---- */

typedef struct {
    const mg__pass *p;
    size_t l;
    char *dz, *dx; /* backward: this layer's output gradient, and where its input gradient goes */
} layer_job;

/* share `part`'s units of g: 0 when it has none */
static int share_of(const mg__pass *p, const mg__gemm_args *g, size_t part, size_t *u0, size_t *u1, rect *r) {
    size_t units = mg__gemm_units(g);
    *u0 = mg__part_start(units, part, p->n_shares);
    *u1 = mg__part_start(units, part + 1, p->n_shares);
    if (*u0 == *u1) return 0;
    mg__gemm_rect(g, *u0, *u1, &r->r0, &r->r1, &r->c0, &r->c1);
    return 1;
}

static void forward_part(void *ctx, size_t part) {
    const layer_job *job = ctx;
    const mg__pass *p = job->p;
    layer L = layer_at(p, job->l);
    mg__gemm_args g = forward_product(p, &L);
    size_t u0, u1;
    rect r;
    if (!share_of(p, &g, part, &u0, &u1, &r)) return;
    steps(p)->set_bias(L.out, p->chunk, L.w, L.n_in, r);
    mg__gemm_run(&g, u0, u1, p->scratch + part * p->scratch_bytes);
    steps(p)->activate(L.act, L.out, p->chunk, r);
}

static void backward_part(void *ctx, size_t part) {
    const layer_job *job = ctx;
    const mg__pass *p = job->p;
    layer L = layer_at(p, job->l);
    void *scratch = p->scratch + part * p->scratch_bytes;
    size_t u0, u1;
    rect r;
    mg__gemm_args g = weight_grad_product(p, &L, job->dz);
    if (share_of(p, &g, part, &u0, &u1, &r)) mg__gemm_run(&g, u0, u1, scratch);
    steps(p)->bias_grad(L.dw, L.n_in, job->dz, p->chunk, mg__part_start(L.n_out, part, p->n_shares),
                        mg__part_start(L.n_out, part + 1, p->n_shares), p->count);
    if (job->l == 0) return; /* the data needs no gradient */
    g = input_grad_product(p, &L, job->dz, job->dx);
    if (!share_of(p, &g, part, &u0, &u1, &r)) return;
    for (size_t i = r.r0; i < r.r1; i++) memset(job->dx + (i * p->chunk + r.c0) * p->elem, 0, (r.c1 - r.c0) * p->elem);
    mg__gemm_run(&g, u0, u1, scratch);
    layer below = layer_at(p, job->l - 1);
    steps(p)->activate_backward(below.act, job->dx, below.out, p->chunk, r);
}

/* ---- the pass ---- */

const double *mg__pass_forward(mg__pass *p) {
    const mg_mlp *m = p->m;
    for (size_t l = 0; l < m->n_layers; l++) {
        layer_job job = {p, l, NULL, NULL};
        mg__pool_run(p->n_shares, forward_part, &job, p->wait);
    }
    layer last = layer_at(p, m->n_layers - 1);
    if (p->elem == 8) return (const double *)last.out;
    const float *out = (const float *)last.out;
    for (size_t j = 0; j < last.n_out; j++)
        for (size_t s = 0; s < p->count; s++) p->scores[j * p->chunk + s] = out[j * p->chunk + s];
    return p->scores;
}

double *mg__pass_dscores(mg__pass *p) {
    return p->elem == 8 ? (double *)p->delta : p->scores + mg_mlp_num_outputs(p->m) * p->chunk;
}

void mg__pass_backward(mg__pass *p) {
    const mg_mlp *m = p->m;
    layer last = layer_at(p, m->n_layers - 1);
    if (p->elem == 4) { /* the loss's gradient, computed in double, rounded into the float deltas */
        const double *d = mg__pass_dscores(p);
        float *dz = (float *)p->delta;
        for (size_t j = 0; j < last.n_out; j++)
            for (size_t s = 0; s < p->count; s++) dz[j * p->chunk + s] = (float)d[j * p->chunk + s];
    }
    steps(p)->activate_backward(last.act, p->delta, last.out, p->chunk, (rect){0, last.n_out, 0, p->count});
    char *dz = p->delta, *dx = p->delta_in;
    for (size_t l = m->n_layers; l-- > 0;) {
        layer_job job = {p, l, dz, dx};
        mg__pool_run(p->n_shares, backward_part, &job, p->wait);
        char *swap = dz;
        dz = dx;
        dx = swap;
    }
}

void mg__pass_gather(mg__pass *p, const double *x, const size_t *rows, size_t count) {
    size_t n_in = p->m->n_in;
    p->count = count;
    for (size_t s = 0; s < count; s++) {
        const double *row = x + (rows ? rows[s] : s) * n_in;
        if (p->elem == 8) {
            memcpy(p->input + s * n_in * 8, row, n_in * 8);
        } else {
            float *to = (float *)p->input + s * n_in;
            for (size_t i = 0; i < n_in; i++) to[i] = (float)row[i];
        }
    }
}

void mg__pass_load_params(mg__pass *p) {
    if (p->elem == 8) return;
    float *to = (float *)p->params;
    for (size_t i = 0; i < p->m->n_params; i++) to[i] = (float)p->m->params[i];
}

void mg__pass_zero_grads(mg__pass *p) { memset(p->grads, 0, p->m->n_params * p->elem); }

void mg__pass_store_grads(mg__pass *p) {
    if (p->elem == 8) return;
    const float *from = (const float *)p->grads;
    for (size_t i = 0; i < p->m->n_params; i++) p->m->grads[i] = from[i];
}

/* ---- its space: one block, carved, and the packing space ---- */

enum { PASS_PARTS = 8 };

static void pass_parts(mg__pass *p, mg__part parts[PASS_PARTS]) {
    const mg_mlp *m = p->m;
    size_t hidden = 0, widest = 0, f32 = p->elem == 4;
    for (size_t l = 0; l < m->n_layers; l++) {
        hidden += m->sizes[l];
        if (m->sizes[l] > widest) widest = m->sizes[l];
    }
    parts[0] = MG__PART(p->act_at, m->n_layers);
    parts[1] = MG__PART_ROWS(p->input, p->chunk, m->n_in * p->elem);
    parts[2] = MG__PART_ROWS(p->acts, hidden, p->chunk * p->elem);
    parts[3] = MG__PART_ROWS(p->delta, widest, p->chunk * p->elem);
    parts[4] = MG__PART_ROWS(p->delta_in, widest, p->chunk * p->elem);
    parts[5] = MG__PART_ROWS(p->params32, f32 ? m->n_params : 0, sizeof(float));
    parts[6] = MG__PART_ROWS(p->grads32, f32 ? m->n_params : 0, sizeof(float));
    parts[7] = MG__PART(p->scores, f32 ? 2 * mg_mlp_num_outputs(m) * p->chunk : 0);
}

/* the most packing space any of the pass's products needs */
static size_t scratch_bytes(mg__pass *p) {
    size_t most = 0;
    p->count = p->chunk;
    for (size_t l = 0; l < p->m->n_layers; l++) {
        layer L = layer_at(p, l);
        mg__gemm_args g[3] = {forward_product(p, &L), weight_grad_product(p, &L, p->delta),
                              input_grad_product(p, &L, p->delta, p->delta_in)};
        for (int i = 0; i < 3; i++)
            if (mg__gemm_scratch_bytes(&g[i]) > most) most = mg__gemm_scratch_bytes(&g[i]);
    }
    return most;
}

int mg__pass_init(mg__pass *p, mg_mlp *m, size_t chunk, size_t n_shares, mg__pool_wait wait) {
    memset(p, 0, sizeof *p);
    *p = (mg__pass){.m = m, .chunk = chunk, .elem = m->dtype == MG_FLOAT32 ? 4 : 8, .n_shares = n_shares,
                    .wait = wait};
    mg__part parts[PASS_PARTS];
    pass_parts(p, parts);
    if (mg__carve_size(0, parts, PASS_PARTS, &p->bytes) || !mg__carve(0, parts, PASS_PARTS, p->bytes)) return 0;
    for (size_t l = 0, at = 0; l < m->n_layers; at += m->sizes[l], l++) p->act_at[l] = at * p->chunk;
    p->params = p->elem == 4 ? p->params32 : (const char *)m->params;
    p->grads = p->elem == 4 ? p->grads32 : (char *)m->grads;
    p->scratch_bytes = scratch_bytes(p);
    size_t all;
    if (mg__mul_size(p->scratch_bytes, n_shares, &all) || !(p->scratch = mg__alloc(all))) {
        mg__free(p->act_at, p->bytes);
        return 0;
    }
    return 1;
}

void mg__pass_free(mg__pass *p) {
    mg__free(p->scratch, p->scratch_bytes * p->n_shares);
    mg__free(p->act_at, p->bytes); /* the block starts with its first part */
    p->act_at = NULL;
    p->scratch = NULL;
}

size_t mg__pass_shares(const mg_mlp *m, int threads, size_t samples) {
    int wanted = threads > 0 ? threads : mg_get_num_threads(), cores = mg_num_cores();
    size_t shares = (size_t)(wanted < cores ? wanted : cores);
    /* under about 2e5 multiply-adds a step, waking threads costs more than they save */
    if ((double)m->n_params * (double)samples < 2e5) shares = 1;
    return shares;
}
