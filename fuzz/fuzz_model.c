/* fuzz_model: libFuzzer harness for the model-file loader (safetensors). Any input must load or fail with
 * MG_ERR_ARG and a message, never crash, leak or hang; a loaded checkpoint must hold what the loader
 * promises (a model that predicts, an optimizer state of the right size, only the caller's metadata),
 * checked by using all of it. Build and run: fuzz/run.sh model (or make fuzz). */
#include <micrograd.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A broken promise is a crash, so libFuzzer keeps the input that shows it. */
#define EXPECT(cond)                   \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the metadata keys the library writes itself and never hands to the caller */
static const char *const reserved[] = {
    "format",
    "format_version",
    "n_inputs",
    "sizes",
    "activations",
    "step",
    "optimizer",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.dampening",
    "optimizer.nesterov",
    "optimizer.beta1",
    "optimizer.beta2",
    "optimizer.eps",
    "optimizer.weight_decay",
    "optimizer.steps",
};

static void check_loaded(mg_checkpoint *c) {
    mg_mlp *m = c->model;
    EXPECT(m != NULL);
    size_t n_in = mg_mlp_num_inputs(m), n_out = mg_mlp_num_outputs(m), n_layers = mg_mlp_num_layers(m);
    EXPECT(n_in > 0 && n_out > 0 && n_layers > 0 && n_layers <= MG_FILE_MAX_LAYERS && n_in <= MG_FILE_MAX_WIDTH);
    size_t params = 0, width = n_in;
    for (size_t l = 0; l < n_layers; l++) {
        size_t out = mg_mlp_layer_size(m, l);
        EXPECT(out > 0 && (unsigned)mg_mlp_layer_activation(m, l) < MG_ACT_COUNT);
        params += out * (width + 1);
        width = out;
    }
    EXPECT(params == mg_mlp_num_params(m) && width == n_out);

    /* the model runs: on a zero input and on a row of ones */
    double *x = calloc(2 * n_in, sizeof *x), *out = malloc(2 * n_out * sizeof *out);
    if (x && out) {
        for (size_t i = n_in; i < 2 * n_in; i++) x[i] = 1.0;
        EXPECT(mg_mlp_predict(m, x, 2, out) == MG_OK);
    }
    free(x);
    free(out);

    if (c->optimizer) {
        const mg_optim_config *k = mg_optim_get_config(c->optimizer);
        size_t per_param = k->kind == MG_OPTIM_SGD ? 1 : 2;
        EXPECT(mg_optim_state_size(c->optimizer) == per_param * mg_mlp_num_params(m));
        volatile double sum = 0.0; /* read every buffer */
        const double *state = mg_optim_state(c->optimizer);
        for (size_t i = 0; i < mg_optim_state_size(c->optimizer); i++) sum += state[i];
        (void)sum;
    }

    EXPECT((c->n_metadata == 0) == (c->metadata == NULL) && c->n_metadata <= MG_FILE_MAX_METADATA);
    for (size_t i = 0; i < c->n_metadata; i++) {
        const char *key = c->metadata[2 * i], *value = c->metadata[2 * i + 1];
        EXPECT(key != NULL && value != NULL);
        for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++) EXPECT(strcmp(key, reserved[r]) != 0);
        (void)strlen(value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    mg_checkpoint c;
    mg_clear_error();
    mg_status status = mg_checkpoint_load_buffer(size ? data : empty, size, &c);
    if (status != MG_OK) {
        /* a clean failure: a message, and nothing handed out */
        EXPECT(status == MG_ERR_ARG || status == MG_ERR_NOMEM);
        EXPECT(mg_last_error()[0] != '\0');
        EXPECT(c.model == NULL && c.optimizer == NULL && c.step == 0 && c.n_metadata == 0 && c.metadata == NULL);
        return 0;
    }
    check_loaded(&c);
    mg_checkpoint_free(&c);
    EXPECT(c.model == NULL && c.metadata == NULL);
    EXPECT(mg_live_values() == 0);
    return 0;
}
