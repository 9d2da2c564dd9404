/* nn.c: dense multilayer perceptrons: the model, its initialisation, how it computes, and predict.
 *
 * Parameters sit in one array in micrograd's order (per layer, per neuron: n weights, then the bias), so
 * a neuron's weights are one contiguous row and a Python model's parameters() copy straight in and out.
 * Running the network over a chunk of samples is dense.c's. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

/* The counts and byte sizes of a model, each checked: a model whose sizes overflow size_t is refused
 * (MG_ERR_ARG, the rule of internal.h), here, once, so nothing computed from a model later can overflow:
 * its allocation, its parameter offsets, and the space of a pass (dense.c: a chunk's activations and
 * gradients, each at most MG__PASS_CHUNK doubles per neuron). The model's block is listed once, in
 * mlp_parts. */
typedef struct {
    size_t n_params, max_width, total_width, bytes;
} mlp_sizes;

enum { MLP_PARTS = 5 };

/* the model's block after its struct: parameters, gradients, then the per-layer tables */
static void mlp_parts(mg_mlp *m, size_t n_layers, size_t n_params, mg__part parts[MLP_PARTS]) {
    parts[0] = MG__PART(m->params, n_params);
    parts[1] = MG__PART(m->grads, n_params);
    parts[2] = MG__PART(m->sizes, n_layers);
    parts[3] = MG__PART(m->offsets, n_layers);
    parts[4] = MG__PART(m->acts, n_layers);
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
    mg__part parts[MLP_PARTS];
    mlp_parts(&layout, n_layers, z->n_params, parts);
    if (mg__carve_size(sizeof(mg_mlp), parts, MLP_PARTS, &z->bytes))
        return too_large(n_in, n_layers, "the size in bytes of its parameters and gradients");
    size_t pass_cells; /* the inputs, every layer's outputs and two widest gradients, per sample of a chunk */
    if (mg__add_size(z->total_width, 2 * z->max_width, &pass_cells) ||
        mg__mul_size(pass_cells, (size_t)MG__PASS_CHUNK * sizeof(double), &pass_cells))
        return too_large(n_in, n_layers, "the size in bytes of a pass's space");
    return 1;
}

mg_mlp *mg_mlp_new(size_t n_in, size_t n_layers, const size_t *sizes, const mg_activation *acts) {
    if (!sizes) {
        mg__fail(MG_ERR_NULL, "mg_mlp_new: sizes is NULL");
        return NULL;
    }
    if (n_in == 0 || n_layers == 0) {
        mg__fail(MG_ERR_ARG, "mg_mlp_new: need at least one input and one layer (got %zu inputs, %zu layers)", n_in,
                 n_layers);
        return NULL;
    }
    if (n_in > ((size_t)1 << 24)) {
        mg__fail(MG_ERR_ARG, "mg_mlp_new: %zu inputs (1 to 2^24 allowed)", n_in);
        return NULL;
    }
    mlp_sizes z;
    if (!mlp_sizes_of(n_in, n_layers, sizes, acts, &z)) return NULL;
    mg_mlp layout = {
        .bytes = z.bytes, .n_in = n_in, .n_layers = n_layers, .n_params = z.n_params, .max_width = z.max_width};
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

const char *mg_activation_name(mg_activation act) { return (unsigned)act < MG_ACT_COUNT ? activation_names[act] : "?"; }

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

/* ---- how it computes ---- */

mg_status mg_mlp_set_compute(mg_mlp *m, mg_precision precision, mg_dtype dtype) {
    if (!m) return mg__fail(MG_ERR_NULL, "mg_mlp_set_compute: the model is NULL");
    if ((unsigned)precision >= MG_PRECISION_COUNT)
        return mg__fail(MG_ERR_ARG, "mg_mlp_set_compute: unknown precision %d (expected exact or fast)",
                        (int)precision);
    if (dtype != MG_FLOAT64 && dtype != MG_FLOAT32)
        return mg__fail(MG_ERR_ARG, "mg_mlp_set_compute: unknown dtype %d (expected float64 or float32)", (int)dtype);
    m->precision = precision;
    m->dtype = dtype;
    return MG_OK;
}

mg_precision mg_mlp_precision(const mg_mlp *m) { return m ? m->precision : MG_PRECISION_EXACT; }
mg_dtype mg_mlp_dtype(const mg_mlp *m) { return m ? m->dtype : MG_FLOAT64; }

/* ---- predict: forward passes over chunks of the rows ---- */

mg_status mg_mlp_predict(mg_mlp *m, const double *x, size_t n, double *out) {
    if (!m || !x || !out) return mg__fail(MG_ERR_NULL, "mg_mlp_predict: an argument is NULL");
    size_t cells, n_out = mg_mlp_num_outputs(m);
    if (mg__mul_size(n, m->n_in, &cells) || mg__mul_size(cells, sizeof(double), &cells) ||
        mg__mul_size(n, n_out, &cells) || mg__mul_size(cells, sizeof(double), &cells))
        return mg__fail(MG_ERR_ARG,
                        "mg_mlp_predict: %zu samples of %zu inputs and %zu outputs are more than "
                        "memory can hold",
                        n, m->n_in, n_out);
    if (n == 0) return MG_OK;
    mg__pass pass;
    size_t chunk = n < MG__PASS_CHUNK ? n : MG__PASS_CHUNK;
    if (!mg__pass_init(&pass, m, chunk, mg__pass_shares(m, 0, chunk), MG__POOL_SPIN))
        return mg__fail(MG_ERR_NOMEM, "mg_mlp_predict: out of memory");
    mg__pass_load_params(&pass);
    mg__pass_pack_weights(&pass);
    for (size_t start = 0; start < n; start += chunk) {
        size_t count = n - start < chunk ? n - start : chunk;
        mg__pass_gather(&pass, x + start * m->n_in, NULL, count);
        memcpy(out + start * n_out, mg__pass_forward(&pass), count * n_out * sizeof *out);
    }
    mg__pass_free(&pass);
    return MG_OK;
}
