/* modelfile.c: what a model and its optimizer become in a model file, and back: the mapping onto the
 * safetensors layout (safetensors.c), written against the public API of models and optimizers. A model's
 * Linear layers are the tensors "<i>.weight" [out, in] and "<i>.bias" [out] at their nn.Sequential
 * indices (PyTorch's state_dict names, an activation module taking an index of its own), a checkpoint adds
 * "optimizer.state", and the metadata holds what tensors cannot say (the activations, the optimizer's
 * settings and steps, the training step) beside the caller's own keys. Save refuses before writing anything
 * what load would refuse; load accepts a plain PyTorch state_dict too, and checks that the metadata agrees
 * with the tensors. The bytes go through fileio.c. */
#define _POSIX_C_SOURCE 200809L
#include "modelfile_internal.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limits are the header's MG_FILE_MAX_*, one table for save and load. A checkpoint's tensors (two a
 * layer and the optimizer state) fit in the tensor limit; the metadata limit counts the caller's keys, and
 * the loader takes ours on top. */
_Static_assert(2 * MG_FILE_MAX_LAYERS + 1 <= MG_FILE_MAX_TENSORS, "a checkpoint of the most layers must load");

/* ---- what the file holds, as we describe it in the header ---- */

static const char *const our_keys[] = {
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

enum { N_OUR_KEYS = sizeof our_keys / sizeof *our_keys, MAX_ALL_METADATA = MG_FILE_MAX_METADATA + N_OUR_KEYS };

static int is_our_key(const char *key) {
    for (size_t i = 0; i < sizeof our_keys / sizeof *our_keys; i++)
        if (strcmp(key, our_keys[i]) == 0) return 1;
    return 0;
}

/* the nn.Sequential index of each Linear: activations take an index of their own */
static size_t sequential_index(const mg_mlp *m, size_t layer) {
    size_t index = 0;
    for (size_t l = 0; l < layer; l++) index += 1 + (mg_mlp_layer_activation(m, l) != MG_ACT_LINEAR);
    return index;
}

/* ---- saving, first: everything load checks, refused before anything is written ---- */

static mg_status check_metadata(const char *const *metadata, size_t n) {
    if (n > MG_FILE_MAX_METADATA)
        return mg__fail(MG_ERR_ARG, "%zu metadata keys: a model file holds at most %d", n, MG_FILE_MAX_METADATA);
    uint64_t bytes = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        /* the string itself is not quoted in the message: it is not valid text */
        if (!mg__utf8_valid((const unsigned char *)metadata[i], strlen(metadata[i])))
            return mg__fail(MG_ERR_ARG, "metadata %s #%zu is not valid UTF-8", i % 2 ? "value" : "key", i / 2);
        bytes += mg__json_string_size(metadata[i]);
    }
    if (bytes > MG_FILE_MAX_HEADER)
        return mg__fail(MG_ERR_ARG,
                        "metadata of %" PRIu64 " bytes (as JSON) is over the %d-byte limit of a model "
                        "file's header",
                        bytes, MG_FILE_MAX_HEADER);
    for (size_t i = 0; i < n; i++) {
        const char *key = metadata[2 * i];
        if (is_our_key(key) || strcmp(key, "__metadata__") == 0)
            return mg__fail(MG_ERR_ARG, "metadata key '%.60s' is reserved", key);
        for (size_t j = 0; j < i; j++) /* n is at most MG_FILE_MAX_METADATA: a few million compares */
            if (strcmp(metadata[2 * j], key) == 0)
                return mg__fail(MG_ERR_ARG, "metadata key '%.60s' appears twice (#%zu and #%zu)", key, j, i);
    }
    return MG_OK;
}

/* The optimizer as load rebuilds it: a state of the size the model needs, and settings and state that
 * pass the same checks as every other way of setting an optimizer (mg_optim_check_config,
 * mg_optim_set_state), which the loader applies too. */
static mg_status check_optimizer(const mg_mlp *m, const mg_optim *opt) {
    const mg_optim_config *c = mg_optim_get_config(opt);
    if (mg_optim_num_params(opt) != mg_mlp_num_params(m))
        return mg__fail(MG_ERR_ARG, "the optimizer was made for another number of parameters");
    if (mg_optim_skipped(opt))
        return mg__fail(MG_ERR_STATE, "the optimizer skipped parameters that had no gradient, which a checkpoint "
                                      "cannot record");
    if (mg_optim_check_config(c) == MG_OK && mg_optim_check_state(opt) == MG_OK) return MG_OK;
    char why[200]; /* a copy: the message is rewritten from it */
    snprintf(why, sizeof why, "%s", mg_last_error());
    return mg__fail(MG_ERR_ARG, "the optimizer would not load: %s", why);
}

static mg_status check_model(const mg_mlp *m) {
    size_t n_layers = mg_mlp_num_layers(m), n_in = mg_mlp_num_inputs(m);
    if (n_layers > MG_FILE_MAX_LAYERS)
        return mg__fail(MG_ERR_ARG, "the model has %zu layers: a model file holds at most %d", n_layers,
                        MG_FILE_MAX_LAYERS);
    if (n_in > MG_FILE_MAX_WIDTH)
        return mg__fail(MG_ERR_ARG, "the model has %zu inputs: a model file holds at most %d", n_in, MG_FILE_MAX_WIDTH);
    for (size_t l = 0; l < n_layers; l++)
        if (mg_mlp_layer_size(m, l) > MG_FILE_MAX_WIDTH)
            return mg__fail(MG_ERR_ARG, "layer %zu has %zu neurons: a model file holds at most %d", l,
                            mg_mlp_layer_size(m, l), MG_FILE_MAX_WIDTH);
    return MG_OK;
}

/* the sizes known once the header is built: the header's own and the whole file's */
static mg_status check_file_size(const mg_mlp *m, const mg_optim *opt, size_t header_size) {
    if (header_size > MG_FILE_MAX_HEADER)
        return mg__fail(MG_ERR_ARG, "the file's header would be %zu bytes, over the %d-byte limit", header_size,
                        MG_FILE_MAX_HEADER);
    uint64_t doubles = (uint64_t)mg_mlp_num_params(m) + (opt ? mg_optim_state_size(opt) : 0);
    uint64_t bytes = mg__st_file_size(header_size, doubles);
    if (bytes > MG_FILE_MAX_BYTES)
        return mg__fail(MG_ERR_ARG,
                        "the file would be %" PRIu64 " bytes, over the %" PRIu64 "-byte limit of a model "
                        "file",
                        bytes, MG_FILE_MAX_BYTES);
    return MG_OK;
}

/* ---- saving ---- */

/* The tensors in file order (weights and biases by layer, then the optimizer state), then the metadata:
 * ours, then the caller's. */
static int build_header(mg__json_text *h, const mg_mlp *m, const mg_optim *opt, uint64_t step,
                        const char *const *metadata, size_t n_metadata) {
    mg__c_numbers numbers;
    mg__c_numbers_begin(&numbers);
    size_t n_layers = mg_mlp_num_layers(m), offset = 0, width = mg_mlp_num_inputs(m);
    mg__st_begin_header(h);
    for (size_t l = 0; l < n_layers; l++) {
        char name[64];
        size_t index = sequential_index(m, l), out = mg_mlp_layer_size(m, l), weight[2] = {out, width};
        snprintf(name, sizeof name, "%zu.weight", index);
        mg__st_add_tensor(h, name, 2, weight, &offset);
        snprintf(name, sizeof name, "%zu.bias", index);
        mg__st_add_tensor(h, name, 1, &out, &offset);
        width = out;
    }
    if (opt) {
        size_t n = mg_optim_state_size(opt);
        mg__st_add_tensor(h, "optimizer.state", 1, &n, &offset);
    }
    mg__st_begin_metadata(h);
    mg__json_add(h, "\"format\":\"micrograd-c\",\"format_version\":\"1\",\"n_inputs\":\"%zu\",", mg_mlp_num_inputs(m));
    mg__json_add(h, "\"sizes\":\"");
    for (size_t l = 0; l < n_layers; l++) mg__json_add(h, "%s%zu", l ? "," : "", mg_mlp_layer_size(m, l));
    mg__json_add(h, "\",\"activations\":\"");
    for (size_t l = 0; l < n_layers; l++)
        mg__json_add(h, "%s%s", l ? "," : "", mg_activation_name(mg_mlp_layer_activation(m, l)));
    mg__json_add(h, "\",\"step\":\"%" PRIu64 "\"", step);
    if (opt) {
        const mg_optim_config *c = mg_optim_get_config(opt);
        mg__json_add(h,
                     ",\"optimizer\":\"%s\",\"optimizer.lr\":\"%.17g\",\"optimizer.momentum\":\"%.17g\","
                     "\"optimizer.dampening\":\"%.17g\",\"optimizer.nesterov\":\"%d\","
                     "\"optimizer.beta1\":\"%.17g\",\"optimizer.beta2\":\"%.17g\",\"optimizer.eps\":\"%.17g\","
                     "\"optimizer.weight_decay\":\"%.17g\",\"optimizer.steps\":\"%" PRIu64 "\"",
                     mg_optim_kind_name(c->kind), c->lr, c->momentum, c->dampening, c->nesterov != 0, /* any true: 1 */
                     c->beta1, c->beta2, c->eps, c->weight_decay, mg_optim_steps(opt));
    }
    for (size_t i = 0; i < n_metadata; i++) {
        mg__json_add(h, ",");
        mg__json_add_string(h, metadata[2 * i]);
        mg__json_add(h, ":");
        mg__json_add_string(h, metadata[2 * i + 1]);
    }
    mg__st_end_header(h);
    mg__c_numbers_end(&numbers);
    return !h->failed;
}

typedef struct {
    const mg__json_text *header;
    const mg_mlp *m;
    const mg_optim *opt;
} file_contents;

/* the whole file, for mg__file_replace: the header, then the tensors in its order: per layer the weight
 * [out, in] then the bias (the parameters hold, by layer, each neuron's weights followed by its bias) */
static mg_status write_contents(int fd, const void *context, const char *path) {
    const file_contents *c = context;
    mg_status status = mg__st_write_header(fd, c->header, path);
    const double *rows = mg_mlp_params((mg_mlp *)c->m); /* only read: the accessor hands out writable ones */
    size_t width = mg_mlp_num_inputs(c->m);
    for (size_t l = 0; l < mg_mlp_num_layers(c->m) && status == MG_OK; l++) {
        size_t out = mg_mlp_layer_size(c->m, l);
        for (size_t j = 0; j < out && status == MG_OK; j++)
            status = mg__st_write_f64(fd, rows + j * (width + 1), width, path);
        for (size_t j = 0; j < out && status == MG_OK; j++)
            status = mg__st_write_f64(fd, rows + j * (width + 1) + width, 1, path);
        rows += out * (width + 1);
        width = out;
    }
    if (status == MG_OK && c->opt)
        status = mg__st_write_f64(fd, mg_optim_state((mg_optim *)c->opt), mg_optim_state_size(c->opt), path);
    return status;
}

mg_status mg_checkpoint_save(const mg_mlp *m, const mg_optim *opt, const char *path, uint64_t step,
                             const char *const *metadata, size_t n_metadata) {
    if (!path || !m || (n_metadata && !metadata))
        return mg__fail(MG_ERR_NULL, "mg_checkpoint_save: an argument is NULL");
    for (size_t i = 0; i < 2 * n_metadata; i++)
        if (!metadata[i]) return mg__fail(MG_ERR_NULL, "mg_checkpoint_save: metadata string %zu is NULL", i);
    mg_status status = check_model(m);
    if (status == MG_OK) status = check_metadata(metadata, n_metadata);
    if (status == MG_OK && opt) status = check_optimizer(m, opt);
    if (status != MG_OK) return status;

    mg__json_text header = {0};
    if (!build_header(&header, m, opt, step, metadata, n_metadata)) {
        mg__json_text_free(&header);
        return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    }
    status = check_file_size(m, opt, header.size);
    file_contents contents = {&header, m, opt};
    if (status == MG_OK) status = mg__file_replace(path, write_contents, &contents);
    int saved = errno; /* for the bindings: FileNotFoundError, IsADirectoryError, ... */
    mg__json_text_free(&header);
    errno = saved;
    return status;
}

mg_status mg_mlp_save(const mg_mlp *m, const char *path) { return mg_checkpoint_save(m, NULL, path, 0, NULL, 0); }

/* ---- loading ---- */

/* a comma-separated list of positive sizes, at most `max` of them */
static int parse_sizes(const char *text_in, size_t *out, size_t max, size_t *count) {
    *count = 0;
    const char *p = text_in;
    while (*p) {
        if (*count == max) return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno || v == 0 || v > MG_FILE_MAX_WIDTH || *p == '-' || *p == '+' || *p == ' ') return 0;
        out[(*count)++] = (size_t)v;
        if (*end == ',' && end[1] != '\0') end++;
        else if (*end) return 0;
        p = end;
    }
    return *count > 0;
}

static int parse_double(const char *s, double *out) {
    if (!s) return 0;
    char *end;
    mg__c_numbers numbers;
    mg__c_numbers_begin(&numbers);
    errno = 0;
    *out = strtod(s, &end);
    int range_error = errno == ERANGE;
    mg__c_numbers_end(&numbers);
    /* ERANGE also flags subnormal results, which are exact enough to keep; only overflow is an error.
     * Save writes finite settings only: "inf" and "nan" are refused here as there. */
    return end != s && *end == '\0' && (!range_error || fabs(*out) <= DBL_MIN) && isfinite(*out);
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    *out = v;
    return *end == '\0' && errno == 0;
}

typedef struct {
    size_t n_inputs, n_layers, sizes[MG_FILE_MAX_LAYERS];
    mg_activation acts[MG_FILE_MAX_LAYERS];
} network_shape;

/* the layers read off the tensor names: Linear layers at nn.Sequential indices 0, then +1 or +2 (an
 * activation module between) */
static mg_status read_layers(const mg__st_file *f, network_shape *s) {
    for (size_t seq = 0;; seq++) {
        char name[64];
        snprintf(name, sizeof name, "%zu.weight", seq);
        const mg__st_tensor *w = mg__st_find_tensor(f, name);
        if (!w) {
            snprintf(name, sizeof name, "%zu.weight", seq + 1);
            if (s->n_layers > 0 && (w = mg__st_find_tensor(f, name))) {
                seq++;
                s->acts[s->n_layers - 1] = MG_ACT_RELU; /* an activation module sat between: ReLU unless told */
            }
        }
        if (!w) break;
        if (s->n_layers == MG_FILE_MAX_LAYERS) MG__REFUSE("more than %d layers", MG_FILE_MAX_LAYERS);
        if (w->ndim != 2 || w->shape[0] == 0 || w->shape[1] == 0 || w->shape[0] > MG_FILE_MAX_WIDTH ||
            w->shape[1] > MG_FILE_MAX_WIDTH)
            MG__REFUSE("tensor '%.60s' must be a non-empty 2-D weight [out, in]", w->name);
        if (s->n_layers > 0 && w->shape[1] != s->sizes[s->n_layers - 1])
            MG__REFUSE("tensor '%.60s' takes %" PRIu64 " inputs but the layer before has %zu outputs", w->name,
                       w->shape[1], s->sizes[s->n_layers - 1]);
        if (s->n_layers == 0) s->n_inputs = (size_t)w->shape[1];
        s->sizes[s->n_layers] = (size_t)w->shape[0];
        s->acts[s->n_layers] = MG_ACT_LINEAR;
        s->n_layers++;
    }
    if (s->n_layers == 0) MG__REFUSE("no layer found: expected tensors named 0.weight, 0.bias, ...");
    return MG_OK;
}

/* ours: the metadata must agree with the tensors, and names the activations */
static mg_status read_shape_metadata(const mg__st_file *f, network_shape *s) {
    const char *n_inputs_text = mg__st_meta_get(f, "n_inputs"), *sizes_text = mg__st_meta_get(f, "sizes");
    const char *acts_text = mg__st_meta_get(f, "activations");
    if (!n_inputs_text && !sizes_text && !acts_text) return MG_OK; /* a plain state_dict */
    size_t meta_sizes[MG_FILE_MAX_LAYERS], count = 0;
    uint64_t meta_inputs;
    if (!parse_u64(n_inputs_text, &meta_inputs) || meta_inputs != s->n_inputs)
        MG__REFUSE("metadata n_inputs '%.20s' does not match the first weight (%zu inputs)",
                   n_inputs_text ? n_inputs_text : "(missing)", s->n_inputs);
    if (!sizes_text || !parse_sizes(sizes_text, meta_sizes, MG_FILE_MAX_LAYERS, &count) || count != s->n_layers ||
        memcmp(meta_sizes, s->sizes, s->n_layers * sizeof *s->sizes) != 0)
        MG__REFUSE("metadata sizes '%.60s' do not match the weight tensors", sizes_text ? sizes_text : "(missing)");
    const char *p = acts_text ? acts_text : "";
    for (size_t l = 0; l < s->n_layers; l++) {
        size_t len = strcspn(p, ",");
        char name[32]; /* one name of the list, NUL-terminated for the table's lookup */
        int found = len < sizeof name;
        if (found) {
            memcpy(name, p, len);
            name[len] = '\0';
            found = mg_activation_from_name(name, &s->acts[l]) == MG_OK;
        }
        if (!found || (l + 1 < s->n_layers && p[len] != ',') || (l + 1 == s->n_layers && p[len] != '\0'))
            MG__REFUSE("metadata activations '%.60s' do not name %zu activations", acts_text ? acts_text : "(missing)",
                       s->n_layers);
        p += len + (p[len] == ',');
    }
    return MG_OK;
}

/* the weights, named by the Sequential numbering recomputed from the activations */
static mg_status read_params(const mg__st_file *f, mg_mlp *m) {
    double *rows = mg_mlp_params(m);
    size_t width = mg_mlp_num_inputs(m);
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++) {
        char name[64];
        size_t index = sequential_index(m, l), out = mg_mlp_layer_size(m, l);
        snprintf(name, sizeof name, "%zu.weight", index);
        const mg__st_tensor *w = mg__st_find_tensor(f, name);
        snprintf(name, sizeof name, "%zu.bias", index);
        const mg__st_tensor *b = mg__st_find_tensor(f, name);
        if (!w || w->shape[0] != out || w->shape[1] != width)
            MG__REFUSE("layer %zu: expected tensor '%zu.weight' of shape [%zu, %zu]", l, index, out, width);
        if (!b || b->ndim != 1 || b->shape[0] != out)
            MG__REFUSE("layer %zu: expected tensor '%s' of shape [%zu]", l, name, out);
        for (size_t j = 0; j < out; j++) {
            for (size_t i = 0; i < width; i++) rows[j * (width + 1) + i] = mg__st_value(f, w, j * width + i);
            rows[j * (width + 1) + width] = mg__st_value(f, b, j);
        }
        rows += out * (width + 1);
        width = out;
    }
    return MG_OK;
}

/* the optimizer's settings, each named when it is missing, not a number or not finite */
static mg_status read_optim_config(const mg__st_file *f, const char *kind, mg_optim_config *c, uint64_t *steps) {
    if (mg_optim_kind_from_name(kind, &c->kind) != MG_OK) MG__REFUSE("unknown optimizer '%.20s' in the metadata", kind);
    const struct {
        const char *key;
        double *out;
    } reals[] = {{"optimizer.lr", &c->lr},
                 {"optimizer.momentum", &c->momentum},
                 {"optimizer.dampening", &c->dampening},
                 {"optimizer.beta1", &c->beta1},
                 {"optimizer.beta2", &c->beta2},
                 {"optimizer.eps", &c->eps},
                 {"optimizer.weight_decay", &c->weight_decay}};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        const char *text_value = mg__st_meta_get(f, reals[i].key);
        if (!parse_double(text_value, reals[i].out))
            MG__REFUSE("the checkpoint's optimizer: %s must be a finite number, got '%.30s'",
                       reals[i].key + strlen("optimizer."), text_value ? text_value : "(missing)");
    }
    uint64_t nesterov = 0;
    if (!parse_u64(mg__st_meta_get(f, "optimizer.nesterov"), &nesterov) ||
        !parse_u64(mg__st_meta_get(f, "optimizer.steps"), steps))
        MG__REFUSE("the optimizer metadata optimizer.nesterov or optimizer.steps is missing or not a count");
    if (nesterov > 1) MG__REFUSE("the checkpoint's optimizer: nesterov must be 0 or 1, got %" PRIu64, nesterov);
    c->nesterov = (int)nesterov;
    /* the same rules as every other way of setting an optimizer */
    if (mg_optim_check_config(c) == MG_OK) return MG_OK;
    char why[200]; /* a copy: the message is rewritten from it */
    snprintf(why, sizeof why, "%s", mg_last_error());
    MG__REFUSE("the checkpoint's optimizer: %s", why);
}

/* a checkpoint: the optimizer (settings, steps, state); *opt stays NULL for a plain model */
static mg_status read_optimizer(const mg__st_file *f, const mg_mlp *m, mg_optim **opt) {
    const mg__st_tensor *state = mg__st_find_tensor(f, "optimizer.state");
    const char *kind = mg__st_meta_get(f, "optimizer");
    if (!state && !kind) return MG_OK;
    if (!kind || !state) MG__REFUSE("a checkpoint needs both the optimizer metadata and the optimizer.state tensor");
    mg_optim_config c = {0};
    uint64_t steps = 0;
    mg_status status = read_optim_config(f, kind, &c, &steps);
    if (status != MG_OK) return status;
    if (!(*opt = mg_optim_new(&c, mg_mlp_num_params(m)))) return mg__status(); /* out of memory: the config passed */
    if (state->ndim != 1 || state->shape[0] != mg_optim_state_size(*opt))
        MG__REFUSE("optimizer.state has the wrong size for a %s optimizer of %zu parameters", kind,
                   mg_mlp_num_params(m));
    double *buffers = mg_optim_state(*opt); /* read in place, then checked as mg_optim_set_state checks */
    for (size_t i = 0; i < mg_optim_state_size(*opt); i++) buffers[i] = mg__st_value(f, state, i);
    if (mg_optim_set_state(*opt, steps, buffers, mg_optim_state_size(*opt), NULL) == MG_OK) return MG_OK;
    char why[200];
    snprintf(why, sizeof why, "%s", mg_last_error());
    MG__REFUSE("the checkpoint's %s", why);
}

static size_t count_user_keys(const mg__st_file *f) {
    size_t n_user = 0;
    for (size_t i = 0; i < f->n_meta; i++) n_user += !is_our_key(f->meta[2 * i]);
    return n_user;
}

/* the header as safetensors reads it, with our keys on top of the caller's MG_FILE_MAX_METADATA */
static mg_status read_header(const unsigned char *bytes, size_t size, mg__st_file *f) {
    mg_status status = mg__st_read_header(bytes, size, MAX_ALL_METADATA, f);
    if (status != MG_OK) return status;
    size_t n_user = count_user_keys(f);
    if (n_user > MG_FILE_MAX_METADATA)
        MG__REFUSE("too many metadata entries: %zu of the caller's own, at most %d", n_user, MG_FILE_MAX_METADATA);
    return MG_OK;
}

/* hand over the caller's metadata: every key that is not ours, moved out of f */
static mg_status take_user_metadata(mg__st_file *f, mg_checkpoint *out) {
    size_t n_user = count_user_keys(f);
    if (!n_user) return MG_OK;
    out->metadata = mg__alloc(2 * n_user * sizeof *out->metadata);
    if (!out->metadata) return mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
    for (size_t i = 0; i < f->n_meta; i++) {
        if (is_our_key(f->meta[2 * i])) continue;
        out->metadata[2 * out->n_metadata] = f->meta[2 * i];
        out->metadata[2 * out->n_metadata + 1] = f->meta[2 * i + 1];
        f->meta[2 * i] = f->meta[2 * i + 1] = NULL; /* moved */
        out->n_metadata++;
    }
    return MG_OK;
}

/* the model and optimizer from a checked header: shape, weights, optimizer, the step, the tensor count */
static mg_status read_contents(const mg__st_file *f, mg_mlp **m, mg_optim **opt, uint64_t *step) {
    const char *version = mg__st_meta_get(f, "format_version");
    if (version && strcmp(version, "1") != 0)
        MG__REFUSE("the file is format version %.20s of micrograd-c; this library reads version 1", version);
    network_shape s = {0};
    mg_status status = read_layers(f, &s);
    if (status == MG_OK) status = read_shape_metadata(f, &s);
    if (status != MG_OK) return status;
    if (!(*m = mg_mlp_new(s.n_inputs, s.n_layers, s.sizes, s.acts))) return MG_ERR_ARG;
    status = read_params(f, *m);
    if (status == MG_OK) status = read_optimizer(f, *m, opt);
    if (status != MG_OK) return status;
    size_t expected_tensors = 2 * s.n_layers + (*opt != NULL);
    if (f->n_tensors != expected_tensors)
        MG__REFUSE("the file holds %zu tensors, a model of this shape has %zu", f->n_tensors, expected_tensors);
    const char *step_text = mg__st_meta_get(f, "step");
    if (step_text && !parse_u64(step_text, step)) MG__REFUSE("metadata step '%.30s' is not a number", step_text);
    return MG_OK;
}

mg_status mg_checkpoint_load_buffer(const void *data, size_t size, mg_checkpoint *out) {
    if (!data || !out) return mg__fail(MG_ERR_NULL, "mg_checkpoint_load_buffer: an argument is NULL");
    memset(out, 0, sizeof *out);
    mg__st_file f = {0};
    mg_mlp *m = NULL;
    mg_optim *opt = NULL;
    uint64_t step = 0;
    mg_status status = read_header(data, size, &f);
    if (status == MG_OK) status = mg__st_check_tiling(&f);
    if (status == MG_OK) status = read_contents(&f, &m, &opt, &step);
    if (status == MG_OK) status = take_user_metadata(&f, out);
    if (status == MG_OK) {
        out->model = m;
        out->optimizer = opt;
        out->step = step;
    } else {
        mg_mlp_free(m);
        mg_optim_free(opt);
    }
    mg__st_file_free(&f);
    return status;
}

mg_status mg_checkpoint_load(const char *path, mg_checkpoint *out) {
    if (!path || !out) return mg__fail(MG_ERR_NULL, "mg_checkpoint_load: an argument is NULL");
    memset(out, 0, sizeof *out);
    unsigned char *data = NULL;
    size_t size = 0;
    mg_status status = mg__file_read(path, &data, &size);
    if (status != MG_OK) return status;
    status = mg_checkpoint_load_buffer(data, size, out);
    mg__file_data_free(data, size);
    if (status != MG_OK) { /* name the file in the loader's message */
        char message[300];
        snprintf(message, sizeof message, "%s", mg_last_error());
        mg__fail(status, "%s: %s", path, message);
    }
    return status;
}

void mg_checkpoint_free(mg_checkpoint *c) {
    if (!c) return;
    mg_mlp_free(c->model);
    mg_optim_free(c->optimizer);
    for (size_t i = 0; i < 2 * c->n_metadata; i++) mg__json_free_string(c->metadata[i]);
    if (c->metadata) mg__free(c->metadata, 2 * c->n_metadata * sizeof *c->metadata);
    memset(c, 0, sizeof *c);
}

mg_mlp *mg_mlp_load(const char *path) {
    mg_checkpoint c;
    if (mg_checkpoint_load(path, &c) != MG_OK) return NULL;
    mg_mlp *m = c.model;
    c.model = NULL;
    mg_checkpoint_free(&c);
    return m;
}
