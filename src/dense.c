/* dense.c: a dense network over a chunk of samples, forward and backward: each layer one product of
 * gemm.c, its work split over shares that run on the worker pool.
 *
 * Layer l, of n_in inputs and n_out neurons, keeps its parameters as micrograd does, per neuron n_in
 * weights and then the bias: its weights are an n_out x n_in matrix W of row stride n_in + 1. With the
 * chunk's activations sample-major (X is count x n_in, a row a sample, as PyTorch lays them out), the
 * three products are
 *     forward            Z  = b + X W^T    C starts at the bias: b + w[0] x[0] + w[1] x[1] + ..., micrograd's sum
 *     weight gradient    dW += dZ^T X      k runs over samples: added in order of samples, chunk after chunk
 *     input gradient     dX = dZ W         C starts at 0: summed in order of the layer's neurons
 * and around each, the bias, the activation or its derivative run on the share's own rectangle of the
 * product's output, so that a layer's forward is one pool job and its backward another. Only W^T is read
 * across its rows (packing gathers it): the weights, small next to a chunk's activations for small models. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

/* ---- the steps around the products, on a rectangle of a sample-major block, per element type ---- */

typedef struct {
    size_t r0, r1, c0, c1; /* rows [r0, r1) (samples), columns [c0, c1) (features) */
} rect;

typedef struct {
    void (*activate)(mg_activation act, void *z, size_t ld, rect r);
    /* dz *= the activation's derivative, computed from its output a */
    void (*activate_backward)(mg_activation act, void *dz, const void *a, size_t ld, rect r);
    /* the bias gradients of neurons [j0, j1) += their dz summed over count samples, in order (from 0 when
     * fresh) */
    void (*bias_grad)(void *g, size_t n_in, const void *dz, size_t ld, size_t j0, size_t j1, size_t count, int fresh);
} elementwise;

/* The loops run over whole rows at once where the rectangle spans them (a flat loop the compiler
 * vectorises), else row by row. tanh and the sigmoid are computed in double for both types (the float result
 * rounded once); relu lets nan pass. */
#define FOR_RECT(r, ld, body)                                                                      \
    do {                                                                                           \
        size_t span_ = (r).c0 == 0 && (r).c1 == (ld) ? ((r).r1 - (r).r0) * (ld) : (r).c1 - (r).c0; \
        size_t rows_ = (r).c0 == 0 && (r).c1 == (ld) ? 1 : (r).r1 - (r).r0;                        \
        for (size_t row_ = 0; row_ < rows_; row_++) {                                              \
            size_t at_ = ((r).r0 + row_) * (ld) + (r).c0;                                          \
            for (size_t i = at_; i < at_ + span_; i++) body;                                       \
        }                                                                                          \
    } while (0)

#define ELEMENTWISE(T)                                                                                               \
    static void activate_##T(mg_activation act, void *zv, size_t ld, rect r) {                                       \
        T *z = zv;                                                                                                   \
        switch (act) {                                                                                               \
        case MG_ACT_RELU: FOR_RECT(r, ld, z[i] = z[i] < 0 ? 0 : z[i]); break;                                        \
        case MG_ACT_TANH: FOR_RECT(r, ld, z[i] = (T)tanh(z[i])); break;                                              \
        case MG_ACT_SIGMOID: FOR_RECT(r, ld, z[i] = (T)mg__sigmoid(z[i])); break;                                    \
        default: break;                                                                                              \
        }                                                                                                            \
    }                                                                                                                \
    static void activate_backward_##T(mg_activation act, void *dzv, const void *av, size_t ld, rect r) {             \
        T *dz = dzv;                                                                                                 \
        const T *a = av;                                                                                             \
        switch (act) {                                                                                               \
        case MG_ACT_RELU: FOR_RECT(r, ld, dz[i] = a[i] > 0 ? dz[i] : 0); break;                                      \
        case MG_ACT_TANH: FOR_RECT(r, ld, dz[i] *= 1 - a[i] * a[i]); break;                                          \
        case MG_ACT_SIGMOID: FOR_RECT(r, ld, dz[i] *= (1 - a[i]) * a[i]); break;                                     \
        default: break;                                                                                              \
        }                                                                                                            \
    }                                                                                                                \
    /* 64 neurons at a time, their sums side by side, each still in order of samples */                              \
    static void bias_grad_##T(void *gv, size_t n_in, const void *dzv, size_t ld, size_t j0, size_t j1, size_t count, \
                              int fresh) {                                                                           \
        T *g = gv, sum[64];                                                                                          \
        const T *dz = dzv;                                                                                           \
        for (size_t b0 = j0; b0 < j1; b0 += 64) {                                                                    \
            size_t width = j1 - b0 < 64 ? j1 - b0 : 64;                                                              \
            for (size_t j = 0; j < width; j++) sum[j] = fresh ? 0 : g[(b0 + j) * (n_in + 1) + n_in];                 \
            for (size_t s = 0; s < count; s++)                                                                       \
                for (size_t j = 0; j < width; j++) sum[j] += dz[s * ld + b0 + j];                                    \
            for (size_t j = 0; j < width; j++) g[(b0 + j) * (n_in + 1) + n_in] = sum[j];                             \
        }                                                                                                            \
    }                                                                                                                \
    static const elementwise elementwise_##T = {activate_##T, activate_backward_##T, bias_grad_##T};

ELEMENTWISE(double)
ELEMENTWISE(float)

static const elementwise *steps(const mg__pass *p) { return p->elem == 4 ? &elementwise_float : &elementwise_double; }

/* ---- a layer, and its three products ---- */

typedef struct {
    size_t n_in, n_out;
    const char *w;  /* parameters */
    const char *wt; /* W^T packed ahead for the forward (mg__pass_pack_weights), then the biases in a row */
    const char *bias;
    char *dw;       /* their gradients */
    const char *x; /* inputs, [count][n_in] */
    char *out;     /* outputs, [count][n_out] */
    mg_activation act;
} layer;

static layer layer_at(const mg__pass *p, size_t l) {
    const mg_mlp *m = p->m;
    layer L = {.n_in = l ? m->sizes[l - 1] : m->n_in, .n_out = m->sizes[l], .act = m->acts[l]};
    L.w = p->params + m->offsets[l] * p->elem;
    L.wt = p->packed_w + p->packed_at[l];
    L.bias = p->packed_w + p->bias_at[l];
    L.dw = p->grads + m->offsets[l] * p->elem;
    L.x = l ? p->acts + p->act_at[l - 1] * p->elem : p->x;
    L.out = p->acts + p->act_at[l] * p->elem;
    return L;
}

static mg__gemm_args product(const mg__pass *p, size_t m, size_t n, size_t k) {
    return (mg__gemm_args){
        .dtype = p->elem == 4 ? MG_FLOAT32 : MG_FLOAT64, .precision = p->m->precision, .m = m, .n = n, .k = k};
}

/* Z (count x n_out) = b + X W^T */
static mg__gemm_args forward_product(const mg__pass *p, const layer *L) {
    mg__gemm_args g = product(p, p->count, L->n_out, L->n_in);
    g.a = L->x, g.rsa = (int64_t)L->n_in, g.csa = 1;
    g.b = L->w, g.rsb = 1, g.csb = (int64_t)(L->n_in + 1), g.b_packed = L->wt;
    g.c = L->out, g.ldc = L->n_out, g.start = MG__GEMM_FROM_ROW, g.row = L->bias;
    return g;
}

/* dW (n_out x n_in) += dZ^T X */
static mg__gemm_args weight_grad_product(const mg__pass *p, const layer *L, const char *dz) {
    mg__gemm_args g = product(p, L->n_out, L->n_in, p->count);
    g.a = dz, g.rsa = 1, g.csa = (int64_t)L->n_out;
    g.b = L->x, g.rsb = (int64_t)L->n_in, g.csb = 1;
    g.c = L->dw, g.ldc = L->n_in + 1, g.start = p->fresh ? MG__GEMM_FROM_ZERO : MG__GEMM_FROM_C;
    return g;
}

/* dX (count x n_in) = dZ W */
static mg__gemm_args input_grad_product(const mg__pass *p, const layer *L, const char *dz, char *dx) {
    mg__gemm_args g = product(p, p->count, L->n_in, L->n_out);
    g.a = dz, g.rsa = (int64_t)L->n_out, g.csa = 1;
    g.b = L->w, g.rsb = (int64_t)(L->n_in + 1), g.csb = 1;
    g.c = dx, g.ldc = L->n_in, g.start = MG__GEMM_FROM_ZERO;
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
    mg__gemm_run(&g, u0, u1, p->scratch + part * p->scratch_bytes);
    steps(p)->activate(L.act, L.out, L.n_out, r);
}

static void backward_part(void *ctx, size_t part) {
    const layer_job *job = ctx;
    const mg__pass *p = job->p;
    layer L = layer_at(p, job->l);
    void *scratch = p->scratch + part * p->scratch_bytes;
    size_t u0, u1;
    rect r;
    mg__gemm_args g = weight_grad_product(p, &L, job->dz);
    if (share_of(p, &g, part, &u0, &u1, &r)) mg__gemm_run(&g, u0, u1, scratch); /* from 0 in a batch's first chunk */
    steps(p)->bias_grad(L.dw, L.n_in, job->dz, L.n_out, mg__part_start(L.n_out, part, p->n_shares),
                        mg__part_start(L.n_out, part + 1, p->n_shares), p->count, p->fresh);
    if (job->l == 0) return; /* the data needs no gradient */
    g = input_grad_product(p, &L, job->dz, job->dx);
    if (!share_of(p, &g, part, &u0, &u1, &r)) return;
    mg__gemm_run(&g, u0, u1, scratch);
    layer below = layer_at(p, job->l - 1);
    steps(p)->activate_backward(below.act, job->dx, below.out, L.n_in, r);
}

/* share `part`'s slivers of every layer's W^T, and its biases in a row (the forward's start) */
static void pack_weights_part(void *ctx, size_t part) {
    const mg__pass *p = ctx;
    for (size_t l = 0; l < p->m->n_layers; l++) {
        layer L = layer_at(p, l);
        mg__gemm_args g = forward_product(p, &L);
        g.b_packed = NULL;
        size_t slivers = mg__gemm_b_slivers(&g);
        mg__gemm_pack_b(&g, mg__part_start(slivers, part, p->n_shares), mg__part_start(slivers, part + 1, p->n_shares),
                        (void *)L.wt);
        size_t j0 = mg__part_start(L.n_out, part, p->n_shares), j1 = mg__part_start(L.n_out, part + 1, p->n_shares);
        for (size_t j = j0; j < j1; j++)
            memcpy((char *)L.bias + j * p->elem, L.w + (j * (L.n_in + 1) + L.n_in) * p->elem, p->elem);
    }
}

void mg__pass_pack_weights(mg__pass *p) { mg__pool_run(p->n_shares, pack_weights_part, p, p->wait); }

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
    for (size_t i = 0; i < p->count * last.n_out; i++) p->scores[i] = out[i];
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
        for (size_t i = 0; i < p->count * last.n_out; i++) dz[i] = (float)d[i];
    }
    steps(p)->activate_backward(last.act, p->delta, last.out, last.n_out, (rect){0, p->count, 0, last.n_out});
    char *dz = p->delta, *dx = p->delta_in;
    for (size_t l = m->n_layers; l-- > 0;) {
        layer_job job = {p, l, dz, dx};
        mg__pool_run(p->n_shares, backward_part, &job, p->wait);
        char *swap = dz;
        dz = dx;
        dx = swap;
    }
    p->fresh = 0;
}

typedef struct {
    const mg__pass *p;
    const double *x;
    const size_t *rows;
} gather_job;

/* share `part`'s rows of the chunk, copied (rounded to float for float32) */
static void gather_part(void *ctx, size_t part) {
    const gather_job *job = ctx;
    const mg__pass *p = job->p;
    size_t n_in = p->m->n_in, s1 = mg__part_start(p->count, part + 1, p->n_shares);
    for (size_t s = mg__part_start(p->count, part, p->n_shares); s < s1; s++) {
        const double *row = job->x + (job->rows ? job->rows[s] : s) * n_in;
        if (p->elem == 8) {
            memcpy(p->input + s * n_in * 8, row, n_in * 8);
        } else {
            float *to = (float *)p->input + s * n_in;
            for (size_t i = 0; i < n_in; i++) to[i] = (float)row[i];
        }
    }
}

void mg__pass_gather(mg__pass *p, const double *x, const size_t *rows, size_t count) {
    p->count = count;
    p->x = p->input;
    if (!rows && p->elem == 8) { /* the rows as they are: nothing to copy */
        p->x = (const char *)x;
        return;
    }
    gather_job job = {p, x, rows};
    mg__pool_run(p->n_shares, gather_part, &job, p->wait);
}

void mg__pass_load_params(mg__pass *p) {
    if (p->elem == 8) return;
    float *to = (float *)p->params;
    for (size_t i = 0; i < p->m->n_params; i++) to[i] = (float)p->m->params[i];
}

void mg__pass_begin_batch(mg__pass *p) { p->fresh = 1; }

void mg__pass_store(mg__pass *p) {
    if (p->elem == 8) return;
    const float *params = (const float *)p->params32, *grads = (const float *)p->grads32;
    for (size_t i = 0; i < p->m->n_params; i++) {
        p->m->params[i] = params[i];
        p->m->grads[i] = grads[i];
    }
}

/* ---- its space: one block, carved, and the packing space ---- */

enum { PASS_PARTS = 10 };

/* the bytes of every layer's W^T packed ahead and its biases, at packed_at[l] and bias_at[l] */
static size_t packed_weights_bytes(const mg__pass *p, size_t *packed_at, size_t *bias_at) {
    size_t total = 0;
    for (size_t l = 0; l < p->m->n_layers; l++) {
        mg__gemm_args g = product(p, 0, p->m->sizes[l], l ? p->m->sizes[l - 1] : p->m->n_in);
        packed_at[l] = total;
        total += (mg__gemm_packed_b_bytes(&g) + 63) / 64 * 64;
        bias_at[l] = total;
        total += (p->m->sizes[l] * p->elem + 63) / 64 * 64;
    }
    return total;
}

static void pass_parts(mg__pass *p, mg__part parts[PASS_PARTS]) {
    const mg_mlp *m = p->m;
    size_t hidden = 0, widest = 0, f32 = p->elem == 4;
    for (size_t l = 0; l < m->n_layers; l++) {
        hidden += m->sizes[l];
        if (m->sizes[l] > widest) widest = m->sizes[l];
    }
    parts[0] = MG__PART(p->act_at, m->n_layers);
    parts[1] = MG__PART_ROWS(p->input, p->chunk, m->n_in * p->elem);
    parts[2] = MG__PART_ROWS(p->acts, p->chunk, hidden * p->elem);
    parts[3] = MG__PART_ROWS(p->delta, p->chunk, widest * p->elem);
    parts[4] = MG__PART_ROWS(p->delta_in, p->chunk, widest * p->elem);
    parts[5] = MG__PART_ROWS(p->params32, f32 ? m->n_params : 0, sizeof(float));
    parts[6] = MG__PART_ROWS(p->grads32, f32 ? m->n_params : 0, sizeof(float));
    parts[7] = MG__PART(p->scores, f32 ? 2 * mg_mlp_num_outputs(m) * p->chunk : 0);
    parts[8] = MG__PART(p->packed_at, m->n_layers);
    parts[9] = MG__PART(p->bias_at, m->n_layers);
}

/* the most packing space any of the pass's products needs */
static size_t scratch_bytes(mg__pass *p) {
    size_t most = 0;
    p->count = p->chunk;
    p->x = p->input;
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
    *p = (mg__pass){.m = m, .chunk = chunk, .elem = m->dtype == MG_FLOAT32 ? 4 : 8, .n_shares = n_shares, .wait = wait};
    mg__part parts[PASS_PARTS];
    pass_parts(p, parts);
    if (mg__carve_size(0, parts, PASS_PARTS, &p->bytes) || !mg__carve(0, parts, PASS_PARTS, p->bytes)) return 0;
    for (size_t l = 0, at = 0; l < m->n_layers; at += m->sizes[l], l++) p->act_at[l] = at * p->chunk;
    p->params = p->elem == 4 ? p->params32 : (const char *)m->params;
    p->grads = p->elem == 4 ? p->grads32 : (char *)m->grads;
    p->packed_bytes = packed_weights_bytes(p, p->packed_at, p->bias_at);
    if (!(p->packed_w = mg__alloc(p->packed_bytes + 64))) {
        mg__free(p->act_at, p->bytes);
        return 0;
    }
    p->scratch_bytes = scratch_bytes(p);
    size_t all;
    if (mg__mul_size(p->scratch_bytes, n_shares, &all) || !(p->scratch = mg__alloc(all))) {
        mg__free(p->packed_w, p->packed_bytes + 64);
        mg__free(p->act_at, p->bytes);
        return 0;
    }
    return 1;
}

void mg__pass_free(mg__pass *p) {
    mg__free(p->packed_w, p->packed_bytes + 64);
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
