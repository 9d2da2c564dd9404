/* init.c: the initial weights of a dense network: micrograd's uniform(-1, 1), or PyTorch's scaled ones.
 *
 * With many inputs micrograd's init saturates: a neuron of 784 inputs sums 784 products of weights of
 * size ~0.6, so the first layer's outputs are in the tens and the logits in the hundreds, and the loss
 * does not come down. Kaiming's and Xavier's inits scale each layer's bound by its fan-in (and fan-out),
 * as torch.nn.init does, so activations stay near unit size. The Python package draws its weights with
 * Python's `random` (micrograd's generator) but takes the bounds from here, so both follow one formula.
 *
 * The model is read through the public API only (its documented parameter order), not its layout. */
#include "nn_internal.h"

#include <math.h>

static const char *const init_names[MG_INIT_COUNT] = {[MG_INIT_MICROGRAD] = "micrograd",
                                                      [MG_INIT_KAIMING_UNIFORM] = "kaiming_uniform",
                                                      [MG_INIT_XAVIER_UNIFORM] = "xavier_uniform"};

const char *mg_init_name(mg_init init) { return (unsigned)init < MG_INIT_COUNT ? init_names[init] : "?"; }

mg_status mg_init_from_name(const char *name, mg_init *out) {
    int i = mg__name_index("mg_init_from_name", "init", init_names, MG_INIT_COUNT, name, out);
    if (i < 0) return mg__status();
    *out = (mg_init)i;
    return MG_OK;
}

/* torch.nn.init.calculate_gain for the activations a layer can have */
static double gain(mg_activation act) {
    switch (act) {
    case MG_ACT_RELU: return sqrt(2.0);
    case MG_ACT_TANH: return 5.0 / 3.0;
    case MG_ACT_LINEAR:
    case MG_ACT_SIGMOID:
    case MG_ACT_COUNT: break;
    }
    return 1.0;
}

mg_status mg_init_bound(mg_init init, mg_activation act, size_t fan_in, size_t fan_out, double *bound) {
    if (!bound) return mg__fail(MG_ERR_NULL, "mg_init_bound: bound is NULL");
    if ((unsigned)init >= MG_INIT_COUNT) return mg__fail(MG_ERR_ARG, "mg_init_bound: unknown init %d", (int)init);
    if ((unsigned)act >= MG_ACT_COUNT) return mg__fail(MG_ERR_ARG, "mg_init_bound: unknown activation %d", (int)act);
    if (fan_in == 0 || fan_out == 0)
        return mg__fail(MG_ERR_ARG, "mg_init_bound: a layer needs inputs and outputs (fan_in %zu, fan_out %zu)", fan_in,
                        fan_out);
    switch (init) {
    case MG_INIT_KAIMING_UNIFORM: *bound = gain(act) * sqrt(3.0 / (double)fan_in); break;
    case MG_INIT_XAVIER_UNIFORM: *bound = gain(act) * sqrt(6.0 / ((double)fan_in + (double)fan_out)); break;
    case MG_INIT_MICROGRAD:
    case MG_INIT_COUNT: *bound = 1.0; break;
    }
    return MG_OK;
}

mg_status mg_mlp_init(mg_mlp *m, mg_init init, uint64_t seed) {
    if (!m) return mg__fail(MG_ERR_NULL, "mg_mlp_init: the model is NULL");
    if ((unsigned)init >= MG_INIT_COUNT) return mg__fail(MG_ERR_ARG, "mg_mlp_init: unknown init %d", (int)init);
    uint64_t state = seed;
    double *row = mg_mlp_params(m);
    size_t width = mg_mlp_num_inputs(m);
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++) {
        size_t size = mg_mlp_layer_size(m, l);
        double bound;
        mg_status status = mg_init_bound(init, mg_mlp_layer_activation(m, l), width, size, &bound);
        if (status != MG_OK) return status;
        for (size_t j = 0; j < size; j++, row += width + 1) { /* a neuron: its weights, then its bias */
            for (size_t i = 0; i < width; i++)
                row[i] = bound * (2.0 * ((double)(mg__splitmix64(&state) >> 11) * 0x1.0p-53) - 1.0);
            row[width] = 0.0;
        }
        width = size;
    }
    return MG_OK;
}
