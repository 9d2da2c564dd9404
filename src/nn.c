/* nn.c: dense multilayer perceptrons, forward and backward over a chunk of samples.
 *
 * Parameters sit in one array in micrograd's order (per layer, per neuron: n weights, then the bias), so
 * a neuron's weights are one contiguous row and a Python model's parameters() copy straight in and out.
 *
 * Inside a chunk, activations are stored feature-major, a[feature][sample]: the innermost loops then run
 * over samples, which are independent, so they vectorise, while each sample still sums its bias and then
 * w[i] * x[i] in order, exactly as micrograd's Neuron does. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

/* The counts and byte sizes of a model, each checked: a model whose sizes overflow size_t is refused
 * (MG_ERR_ARG, the rule of internal.h), here, once, so nothing computed from a model later can overflow:
 * its allocation, its parameter offsets, and the work space of mg__work_init. The parts of each carved
 * block are listed once, in mlp_parts and work_parts. */
typedef struct {
    size_t n_params, max_width, total_width, bytes;
} mlp_sizes;

enum { MLP_PARTS = 5, WORK_PARTS = 4 };

/* the model's block after its struct: parameters, gradients, then the per-layer tables */
static void mlp_parts(mg_mlp *m, size_t n_layers, size_t n_params, mg__part parts[MLP_PARTS]) {
    parts[0] = MG__PART(m->params, n_params);
    parts[1] = MG__PART(m->grads, n_params);
    parts[2] = MG__PART(m->sizes, n_layers);
    parts[3] = MG__PART(m->offsets, n_layers);
    parts[4] = MG__PART(m->acts, n_layers);
}

/* one chunk's scratch: every layer's activations, two delta buffers, a gradient accumulator; the
 * activations first, so w->acts is the block itself (what mg__work_free frees) */
static void work_parts(mg__work *w, size_t total_width, size_t max_width, size_t n_params,
                       mg__part parts[WORK_PARTS]) {
    parts[0] = MG__PART_ROWS(w->acts, total_width, MG_CHUNK);
    parts[1] = MG__PART_ROWS(w->delta, max_width, MG_CHUNK);
    parts[2] = MG__PART_ROWS(w->delta_in, max_width, MG_CHUNK);
    parts[3] = MG__PART(w->grads, n_params);
}

static int too_large(size_t n_in, size_t n_layers, const char *what) {
    mg__fail(MG_ERR_ARG, "mg_mlp_new: the model is too large (%zu inputs, %zu layers): %s overflows size_t", n_in,
             n_layers, what);
    return 0;
}

static int mlp_sizes_of(size_t n_in, size_t n_layers, const size_t *sizes, const mg_activation *acts, mlp_sizes *z) {
    size_t width = n_in, per;
    z->n_params = 0;
    z->max_width = z->total_width = n_in;
    for (size_t l = 0; l < n_layers; l++) {
        if (sizes[l] == 0 || sizes[l] > ((size_t)1 << 24)) {
            mg__fail(MG_ERR_ARG, "mg_mlp_new: layer %zu has %zu neurons (1 to 2^24 allowed)", l, sizes[l]);
            return 0;
        }
        if (acts && (unsigned)acts[l] >= MG_ACT_COUNT) {
            mg__fail(MG_ERR_ARG, "mg_mlp_new: layer %zu has an unknown activation %d", l, (int)acts[l]);
            return 0;
        }
        /* width <= 2^24, so width + 1 cannot overflow; the product and the sums can */
        if (mg__mul_size(sizes[l], width + 1, &per) || mg__add_size(z->n_params, per, &z->n_params))
            return too_large(n_in, n_layers, "the number of parameters");
        if (mg__add_size(z->total_width, sizes[l], &z->total_width))
            return too_large(n_in, n_layers, "the number of neurons");
        width = sizes[l];
        if (width > z->max_width) z->max_width = width;
    }
    mg_mlp layout;
    mg__work work;
    mg__part parts[MLP_PARTS], wparts[WORK_PARTS];
    mlp_parts(&layout, n_layers, z->n_params, parts);
    if (mg__carve_size(sizeof(mg_mlp), parts, MLP_PARTS, &z->bytes))
        return too_large(n_in, n_layers, "the size in bytes of its parameters and gradients");
    work_parts(&work, z->total_width, z->max_width, z->n_params, wparts);
    if (mg__carve_size(0, wparts, WORK_PARTS, &work.bytes))
        return too_large(n_in, n_layers, "the size in bytes of its work space");
    return 1;
}

mg_mlp *mg_mlp_new(size_t n_in, size_t n_layers, const size_t *sizes, const mg_activation *acts) {
    if (!sizes) {
        mg__fail(MG_ERR_NULL, "mg_mlp_new: sizes is NULL");
        return NULL;
    }
    if (n_in == 0 || n_layers == 0) {
        mg__fail(MG_ERR_ARG, "mg_mlp_new: need at least one input and one layer (got %zu inputs, %zu layers)",
                 n_in, n_layers);
        return NULL;
    }
    if (n_in > ((size_t)1 << 24)) {
        mg__fail(MG_ERR_ARG, "mg_mlp_new: %zu inputs (1 to 2^24 allowed)", n_in);
        return NULL;
    }
    mlp_sizes z;
    if (!mlp_sizes_of(n_in, n_layers, sizes, acts, &z)) return NULL;
    mg_mlp layout = {.bytes = z.bytes, .n_in = n_in, .n_layers = n_layers, .n_params = z.n_params,
                     .max_width = z.max_width};
    mg__part parts[MLP_PARTS];
    mlp_parts(&layout, n_layers, z.n_params, parts);
    mg_mlp *m = mg__carve(sizeof *m, parts, MLP_PARTS, z.bytes);
    if (!m) {
        mg__fail(MG_ERR_NOMEM, "mg_mlp_new: out of memory for %zu parameters", z.n_params);
        return NULL;
    }
    *m = layout;
    size_t offset = 0, width = n_in;
    for (size_t l = 0; l < n_layers; l++) {
        m->sizes[l] = sizes[l];
        m->offsets[l] = offset;
        m->acts[l] = acts ? acts[l] : (l + 1 < n_layers ? MG_ACT_RELU : MG_ACT_LINEAR);
        offset += sizes[l] * (width + 1); /* partial sums of n_params: no overflow */
        width = sizes[l];
    }
    return m;
}

void mg_mlp_free(mg_mlp *m) {
    if (m) mg__free(m, m->bytes);
}

size_t mg_mlp_num_inputs(const mg_mlp *m) { return m ? m->n_in : 0; }
size_t mg_mlp_num_outputs(const mg_mlp *m) { return m ? m->sizes[m->n_layers - 1] : 0; }
size_t mg_mlp_num_layers(const mg_mlp *m) { return m ? m->n_layers : 0; }
size_t mg_mlp_layer_size(const mg_mlp *m, size_t layer) { return m && layer < m->n_layers ? m->sizes[layer] : 0; }
mg_activation mg_mlp_layer_activation(const mg_mlp *m, size_t layer) {
    return m && layer < m->n_layers ? m->acts[layer] : MG_ACT_LINEAR;
}
size_t mg_mlp_num_params(const mg_mlp *m) { return m ? m->n_params : 0; }
double *mg_mlp_params(mg_mlp *m) { return m ? m->params : NULL; }
double *mg_mlp_grads(mg_mlp *m) { return m ? m->grads : NULL; }

static const char *const activation_names[MG_ACT_COUNT] = {
    [MG_ACT_LINEAR] = "linear", [MG_ACT_RELU] = "relu", [MG_ACT_TANH] = "tanh", [MG_ACT_SIGMOID] = "sigmoid"};

const char *mg_activation_name(mg_activation act) {
    return (unsigned)act < MG_ACT_COUNT ? activation_names[act] : "?";
}

mg_status mg_activation_from_name(const char *name, mg_activation *out) {
    MG__RETURN_FROM_NAME("activation", activation_names, MG_ACT_COUNT, name, out);
}

uint64_t mg__splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mg_mlp_init_uniform(mg_mlp *m, uint64_t seed) {
    if (!m) return;
    uint64_t state = seed;
    size_t width = m->n_in;
    for (size_t l = 0; l < m->n_layers; l++) {
        double *row = m->params + m->offsets[l];
        for (size_t j = 0; j < m->sizes[l]; j++, row += width + 1) {
            for (size_t i = 0; i < width; i++)
                row[i] = 2.0 * ((double)(mg__splitmix64(&state) >> 11) * 0x1.0p-53) - 1.0;
            row[width] = 0.0;
        }
        width = m->sizes[l];
    }
}

/* ---- work space for one chunk of samples ----
 * Kernels work on LANES samples at once and always on whole groups of LANES (MG_CHUNK is a multiple):
 * the lanes past a short chunk's end compute on stale numbers that nothing reads. The space is zeroed
 * once, so those numbers are never uninitialised memory. */

enum { LANES = 8 };
_Static_assert(MG_CHUNK % LANES == 0, "a chunk is whole groups of lanes");

size_t mg__mlp_total_width(const mg_mlp *m) {
    size_t total = m->n_in;
    for (size_t l = 0; l < m->n_layers; l++) total += m->sizes[l];
    return total;
}

/* 0 when out of memory. The sizes were checked by mg_mlp_new (mlp_sizes_of), so they fit. */
int mg__work_init(mg__work *w, const mg_mlp *m) {
    memset(w, 0, sizeof *w);
    mg__part parts[WORK_PARTS];
    work_parts(w, mg__mlp_total_width(m), m->max_width, m->n_params, parts);
    if (mg__carve_size(0, parts, WORK_PARTS, &w->bytes)) return 0;
    return mg__carve(0, parts, WORK_PARTS, w->bytes) != NULL;
}

void mg__work_free(mg__work *w) {
    mg__free(w->acts, w->bytes);
    w->acts = NULL;
}

/* z = act(z) over n values; one loop per activation so each vectorises */
static void activate(mg_activation act, double *z, size_t n) {
    switch (act) {
    case MG_ACT_RELU: /* micrograd's relu: nan passes through */
        for (size_t s = 0; s < n; s++) z[s] = z[s] < 0.0 ? 0.0 : z[s];
        break;
    case MG_ACT_TANH:
        for (size_t s = 0; s < n; s++) z[s] = tanh(z[s]);
        break;
    case MG_ACT_SIGMOID:
        for (size_t s = 0; s < n; s++) z[s] = mg__sigmoid(z[s]);
        break;
    default: break;
    }
}

/* dz *= d(activation)/dz, computed from the activation's output a */
static void activate_backward(mg_activation act, double *dz, const double *a, size_t n) {
    switch (act) {
    case MG_ACT_RELU:
        for (size_t s = 0; s < n; s++) dz[s] = a[s] > 0.0 ? dz[s] : 0.0;
        break;
    case MG_ACT_TANH:
        for (size_t s = 0; s < n; s++) dz[s] *= 1.0 - a[s] * a[s];
        break;
    case MG_ACT_SIGMOID:
        for (size_t s = 0; s < n; s++) dz[s] *= (1.0 - a[s]) * a[s];
        break;
    default: break;
    }
}

/* x: count rows of n_in (row-major, rows[s] picks the row, or s itself when rows is NULL).
 * Leaves each layer's outputs in w->acts; returns the last layer's, feature-major [n_out][MG_CHUNK]. */
const double *mg__mlp_forward(const mg_mlp *m, mg__work *w, const double *x, const size_t *rows, size_t count) {
    const size_t B = MG_CHUNK;
    double *in = w->acts;
    for (size_t s = 0; s < count; s++) {
        const double *row = x + (rows ? rows[s] : s) * m->n_in;
        for (size_t i = 0; i < m->n_in; i++) in[i * B + s] = row[i];
    }
    size_t width = m->n_in;
    for (size_t l = 0; l < m->n_layers; l++) {
        double *out = in + width * B;
        const double *W = m->params + m->offsets[l];
        mg_activation act = m->acts[l];
        for (size_t j = 0; j < m->sizes[l]; j++) {
            const double *wrow = W + j * (width + 1);
            /* LANES samples at a time, their sums held in registers across the whole row */
            for (size_t s0 = 0; s0 < count; s0 += LANES) {
                double acc[LANES];
                for (size_t t = 0; t < LANES; t++) acc[t] = wrow[width]; /* the bias first, as micrograd */
                for (size_t i = 0; i < width; i++) {
                    const double wi = wrow[i], *xi = in + i * B + s0;
                    for (size_t t = 0; t < LANES; t++) acc[t] += wi * xi[t];
                }
                memcpy(out + j * B + s0, acc, sizeof acc);
            }
            activate(act, out + j * B, count);
        }
        in = out;
        width = m->sizes[l];
    }
    return in;
}

/* sum of a[s] * b[s]: four running sums, combined in a fixed order, so the adds pipeline and vectorise
 * (one running sum waits on each add) and the result never depends on anything but the inputs */
static inline double dot(const double *a, const double *b, size_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t s = 0;
    for (; s + 4 <= n; s += 4) {
        s0 += a[s] * b[s];
        s1 += a[s + 1] * b[s + 1];
        s2 += a[s + 2] * b[s + 2];
        s3 += a[s + 3] * b[s + 3];
    }
    for (; s < n; s++) s0 += a[s] * b[s];
    return (s0 + s1) + (s2 + s3);
}

/* On entry w->delta holds d(loss)/d(outputs) of the last layer, feature-major; adds every parameter's
 * gradient for these count samples into grads. */
void mg__mlp_backward(const mg_mlp *m, mg__work *w, size_t count, double *grads) {
    const size_t B = MG_CHUNK;
    /* the outputs of layer l start after the inputs and layers 0..l-1 */
    size_t out_at = mg__mlp_total_width(m) - m->sizes[m->n_layers - 1];
    double *delta = w->delta, *delta_in = w->delta_in;
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t nout = m->sizes[l], nin = l ? m->sizes[l - 1] : m->n_in;
        const double *out = w->acts + out_at * B, *in = out - nin * B;
        const double *W = m->params + m->offsets[l];
        double *dW = grads + m->offsets[l];
        mg_activation act = m->acts[l];
        for (size_t j = 0; j < nout; j++) {
            double *dz = delta + j * B;
            activate_backward(act, dz, out + j * B, count);
            double *dwrow = dW + j * (nin + 1);
            dwrow[nin] += mg__sum(dz, count);
            for (size_t i = 0; i < nin; i++) dwrow[i] += dot(dz, in + i * B, count);
        }
        if (l == 0) break;
        /* d(loss)/d(inputs of this layer) = W^T dz, LANES samples at a time in registers */
        for (size_t i = 0; i < nin; i++) {
            for (size_t s0 = 0; s0 < count; s0 += LANES) {
                double acc[LANES] = {0};
                for (size_t j = 0; j < nout; j++) {
                    const double wji = W[j * (nin + 1) + i], *dz = delta + j * B + s0;
                    for (size_t t = 0; t < LANES; t++) acc[t] += wji * dz[t];
                }
                memcpy(delta_in + i * B + s0, acc, sizeof acc);
            }
        }
        double *swap = delta;
        delta = delta_in;
        delta_in = swap;
        out_at -= nin;
    }
}

mg_status mg_mlp_predict(mg_mlp *m, const double *x, size_t n, double *out) {
    if (!m || !x || !out) return mg__fail(MG_ERR_NULL, "mg_mlp_predict: an argument is NULL");
    size_t cells;
    if (mg__mul_size(n, m->n_in, &cells) || mg__mul_size(cells, sizeof(double), &cells) ||
        mg__mul_size(n, mg_mlp_num_outputs(m), &cells) || mg__mul_size(cells, sizeof(double), &cells))
        return mg__fail(MG_ERR_ARG, "mg_mlp_predict: %zu samples of %zu inputs and %zu outputs are more than "
                        "memory can hold", n, m->n_in, mg_mlp_num_outputs(m));
    mg__work w;
    if (!mg__work_init(&w, m)) return mg__fail(MG_ERR_NOMEM, "mg_mlp_predict: out of memory");
    size_t n_out = mg_mlp_num_outputs(m);
    for (size_t start = 0; start < n; start += MG_CHUNK) {
        size_t count = n - start < MG_CHUNK ? n - start : MG_CHUNK;
        const double *scores = mg__mlp_forward(m, &w, x + start * m->n_in, NULL, count);
        for (size_t s = 0; s < count; s++)
            for (size_t k = 0; k < n_out; k++) out[(start + s) * n_out + k] = scores[k * MG_CHUNK + s];
    }
    mg__work_free(&w);
    return MG_OK;
}
