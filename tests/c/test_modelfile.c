/* test_modelfile: models and checkpoints as safetensors files.
 *
 * Round trips are bit-exact (parameters compared with memcmp, NaN payloads, -0 and subnormals included),
 * for several shapes and activations, with and without an optimizer (config, steps and state buffers),
 * with user metadata of every awkward kind; a checkpoint resumes training bit for bit. The loader gets
 * crafted bytes of every malformed kind (sizes, JSON, offsets, dtypes, metadata that contradicts the
 * tensors, every truncation of a real file, single-byte corruptions) and must answer each with
 * MG_ERR_ARG, a message, nothing handed out and nothing leaked. Saving: replacing a file, a missing
 * folder, no temporary file left behind, the file's permissions, the process locale.
 *
 * Files go to a private folder made in the working directory (or in $TMPDIR when set) and removed at
 * the end. */
#define _XOPEN_SOURCE 700 /* mknod, realpath */
#include "check.h"

#include <micrograd.h>

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------------- */

static char g_dir[512]; /* the test's own folder */

static const char *path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
    return out;
}

static int message_contains(const char *part) { return strstr(mg_last_error(), part) != NULL; }

/* A copy of a file's bytes in a buffer of exactly that size (so AddressSanitizer sees any over-read). */
static unsigned char *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *grown = realloc(data, cap);
            if (!grown) break;
            data = grown;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    unsigned char *exact = malloc(n ? n : 1);
    if (exact && n) memcpy(exact, data, n);
    free(data);
    *size = n;
    return exact;
}

static int write_whole(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* Entries of g_dir whose names start with prefix. */
static int count_entries(const char *prefix) {
    DIR *d = opendir(g_dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static double bits_to_double(uint64_t bits) {
    double x;
    memcpy(&x, &bits, 8);
    return x;
}

/* A model with every parameter drawn from seed, and a few awkward numbers where there is room:
 * -0, a NaN with a payload, a negative NaN, +-inf, the smallest subnormal, the largest double. */
static mg_mlp *make_model(size_t n_in, size_t n_layers, const size_t *sizes, const mg_activation *acts, uint64_t seed) {
    mg_mlp *m = mg_mlp_new(n_in, n_layers, sizes, acts);
    if (!m) return NULL;
    check_rng rng = {seed};
    double *p = mg_mlp_params(m);
    size_t n = mg_mlp_num_params(m);
    for (size_t i = 0; i < n; i++) p[i] = check_uniform(&rng, -2.0, 2.0);
    const double special[] = {-0.0,
                              bits_to_double(0x7ff8000000000123ULL),
                              bits_to_double(0xfff0000000000001ULL),
                              INFINITY,
                              -INFINITY,
                              4.9406564584124654e-324,
                              DBL_MAX,
                              1.0 / 3.0};
    if (n >= 16)
        for (size_t i = 0; i < sizeof special / sizeof *special; i++) p[(i * 7 + 3) % n] = special[i];
    return m;
}

static int same_model(mg_mlp *a, mg_mlp *b) {
    if (!a || !b) return 0;
    if (mg_mlp_num_inputs(a) != mg_mlp_num_inputs(b) || mg_mlp_num_layers(a) != mg_mlp_num_layers(b) ||
        mg_mlp_num_params(a) != mg_mlp_num_params(b))
        return 0;
    for (size_t l = 0; l < mg_mlp_num_layers(a); l++)
        if (mg_mlp_layer_size(a, l) != mg_mlp_layer_size(b, l) ||
            mg_mlp_layer_activation(a, l) != mg_mlp_layer_activation(b, l))
            return 0;
    return memcmp(mg_mlp_params(a), mg_mlp_params(b), mg_mlp_num_params(a) * sizeof(double)) == 0;
}

static int same_double_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static int same_optim(mg_optim *a, mg_optim *b) {
    if (!a || !b) return 0;
    const mg_optim_config *x = mg_optim_get_config(a), *y = mg_optim_get_config(b);
    int ok = x->kind == y->kind && same_double_bits(x->lr, y->lr) && same_double_bits(x->momentum, y->momentum) &&
             same_double_bits(x->dampening, y->dampening) && (x->nesterov != 0) == (y->nesterov != 0) &&
             same_double_bits(x->beta1, y->beta1) && same_double_bits(x->beta2, y->beta2) &&
             same_double_bits(x->eps, y->eps) && same_double_bits(x->weight_decay, y->weight_decay);
    ok = ok && mg_optim_steps(a) == mg_optim_steps(b) && mg_optim_state_size(a) == mg_optim_state_size(b);
    return ok && memcmp(mg_optim_state(a), mg_optim_state(b), mg_optim_state_size(a) * sizeof(double)) == 0;
}

/* An optimizer whose state buffers hold something: a few steps on made-up gradients. */
static mg_optim *make_optim(mg_optim_config config, mg_mlp *m, int steps) {
    mg_optim *opt = mg_optim_new(&config, mg_mlp_num_params(m));
    if (!opt) return NULL;
    size_t n = mg_mlp_num_params(m);
    double *params = malloc(n * sizeof *params), *grads = malloc(n * sizeof *grads);
    check_rng rng = {99};
    for (size_t i = 0; i < n; i++) params[i] = check_uniform(&rng, -1, 1);
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < n; i++) grads[i] = check_uniform(&rng, -1, 1);
        mg_optim_step(opt, params, grads, n);
    }
    free(params);
    free(grads);
    return opt;
}

static const char *meta_lookup(const mg_checkpoint *c, const char *key) {
    for (size_t i = 0; i < c->n_metadata; i++)
        if (strcmp(c->metadata[2 * i], key) == 0) return c->metadata[2 * i + 1];
    return NULL;
}

/* ---- crafted files ----------------------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t size;
} bytes;

/* 8-byte little-endian size, the header as given, then payload_doubles doubles (0.5, 1.5, ...). The
 * buffer is exactly the file's size. */
static bytes craft_raw(uint64_t declared, const char *header, size_t header_len, size_t payload_doubles) {
    bytes b;
    b.size = 8 + header_len + 8 * payload_doubles;
    b.data = malloc(b.size ? b.size : 1);
    for (int i = 0; i < 8; i++) b.data[i] = (unsigned char)(declared >> (8 * i));
    memcpy(b.data + 8, header, header_len);
    for (size_t i = 0; i < payload_doubles; i++) {
        double x = 0.5 + (double)i;
        memcpy(b.data + 8 + header_len + 8 * i, &x, 8);
    }
    return b;
}

static bytes craft(size_t payload_doubles, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *header = malloc((size_t)n + 1);
    va_start(args, fmt);
    vsnprintf(header, (size_t)n + 1, fmt, args);
    va_end(args);
    bytes b = craft_raw((uint64_t)n, header, (size_t)n, payload_doubles);
    free(header);
    return b;
}

static int checkpoint_is_empty(const mg_checkpoint *c) {
    return c->model == NULL && c->optimizer == NULL && c->step == 0 && c->n_metadata == 0 && c->metadata == NULL;
}

/* The loader must say no: MG_ERR_ARG, a message (containing `part` when given), nothing handed out. */
static void expect_bad_at(bytes b, const char *part, const char *file, int line) {
    mg_checkpoint c;
    memset(&c, 0x5a, sizeof c);
    mg_clear_error();
    mg_status s = mg_checkpoint_load_buffer(b.data, b.size, &c);
    int ok = s == MG_ERR_ARG && mg_last_error()[0] != '\0' && checkpoint_is_empty(&c) &&
             (!part || message_contains(part));
    if (!check_true(ok, "malformed file rejected", file, line)) {
        size_t shown = b.size > 8 ? b.size - 8 : 0;
        if (shown > 300) shown = 300;
        fprintf(stderr, "  status %d, message '%s', expected '%s'\n  header: %.*s\n", (int)s, mg_last_error(),
                part ? part : "(any)", (int)shown, b.size > 8 ? (const char *)b.data + 8 : "");
    }
    if (s == MG_OK) mg_checkpoint_free(&c);
    free(b.data);
}

/* The loader must accept; returns the checkpoint for more checks (the caller frees it). */
static mg_checkpoint expect_good_at(bytes b, const char *file, int line) {
    mg_checkpoint c;
    mg_clear_error();
    mg_status s = mg_checkpoint_load_buffer(b.data, b.size, &c);
    if (!check_true(s == MG_OK && c.model != NULL, "well-formed file loads", file, line))
        fprintf(stderr, "  status %d, message '%s'\n", (int)s, mg_last_error());
    free(b.data);
    return c;
}

#define EXPECT_BAD(b, part) expect_bad_at((b), (part), __FILE__, __LINE__)
#define EXPECT_GOOD(b) expect_good_at((b), __FILE__, __LINE__)

/* A one-layer model, 2 inputs, 1 output: 0.weight [1, 2] then 0.bias [1], 3 doubles. */
#define W1 "\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16]}"
#define B1 "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}"
#define STATE3 "\"optimizer.state\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[24,48]}"
#define OURS1                                                                                                 \
    "\"format\":\"micrograd-c\",\"format_version\":\"1\",\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":" \
    "\"linear\""
/* Two layers as PyTorch numbers them with a ReLU between: 0.weight [3, 2], 0.bias, 2.weight [1, 3], 2.bias. */
#define W2A "\"0.weight\":{\"dtype\":\"F64\",\"shape\":[3,2],\"data_offsets\":[0,48]}"
#define B2A "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[48,72]}"
#define W2B "\"2.weight\":{\"dtype\":\"F64\",\"shape\":[1,3],\"data_offsets\":[72,96]}"
#define B2B "\"2.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[96,104]}"
#define W2B_AT1 "\"1.weight\":{\"dtype\":\"F64\",\"shape\":[1,3],\"data_offsets\":[72,96]}"
#define B2B_AT1 "\"1.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[96,104]}"

/* The optimizer metadata of an SGD checkpoint, with one field replaced (value) or left out (NULL). */
static const char *const opt_fields[][2] = {
    {"optimizer", "sgd"},         {"optimizer.lr", "0.1"},     {"optimizer.momentum", "0.9"},
    {"optimizer.dampening", "0"}, {"optimizer.nesterov", "0"}, {"optimizer.beta1", "0.9"},
    {"optimizer.beta2", "0.999"}, {"optimizer.eps", "1e-08"},  {"optimizer.weight_decay", "0"},
    {"optimizer.steps", "4"},
};

static const char *opt_meta(char *out, size_t cap, const char *field, const char *value) {
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof opt_fields / sizeof *opt_fields; i++) {
        const char *v = opt_fields[i][1];
        if (field && strcmp(field, opt_fields[i][0]) == 0) {
            if (!value) continue;
            v = value;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s\"%s\":\"%s\"", n ? "," : "", opt_fields[i][0], v);
    }
    return out;
}

/* ---- round trips -------------------------------------------------------------------------------- */

static void test_round_trips(void) {
    static const size_t s1[] = {1}, s2[] = {16, 16, 1}, s3[] = {4, 5, 6, 2}, s4[] = {7}, s5[] = {30, 10};
    static const mg_activation a3[] = {MG_ACT_RELU, MG_ACT_TANH, MG_ACT_SIGMOID, MG_ACT_LINEAR};
    static const mg_activation a5[] = {MG_ACT_TANH, MG_ACT_TANH};
    static const mg_activation a4[] = {MG_ACT_SIGMOID};
    struct {
        size_t n_in, n_layers;
        const size_t *sizes;
        const mg_activation *acts;
    } shapes[] = {{1, 1, s1, NULL}, {2, 3, s2, NULL}, {3, 4, s3, a3}, {5, 1, s4, a4}, {20, 2, s5, a5}};
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD), nesterov = sgd, adam = mg_optim_defaults(MG_OPTIM_ADAM),
                    adamw = mg_optim_defaults(MG_OPTIM_ADAMW);
    sgd.lr = 0.1, sgd.momentum = 0.9, sgd.dampening = 0.25, sgd.weight_decay = 1e-4;
    nesterov.lr = 1.0 / 3.0, nesterov.momentum = 0.5, nesterov.nesterov = 1;
    adam.lr = 0.01, adam.beta1 = 0.8, adam.beta2 = 0.99, adam.eps = 1e-10, adam.weight_decay = 0.125;
    adamw.lr = 2e-3, adamw.weight_decay = 0.05;
    const mg_optim_config *configs[] = {NULL, &sgd, &nesterov, &adam, &adamw};
    char path[1024];
    path_in(path, sizeof path, "round.safetensors");

    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        for (size_t k = 0; k < sizeof configs / sizeof *configs; k++) {
            mg_mlp *m = make_model(shapes[s].n_in, shapes[s].n_layers, shapes[s].sizes, shapes[s].acts, 10 + s);
            mg_optim *opt = configs[k] ? make_optim(*configs[k], m, (int)(3 + k)) : NULL;
            if (!CHECK(m && (!configs[k] || opt))) {
                mg_mlp_free(m);
                mg_optim_free(opt);
                continue;
            }
            uint64_t step = k == 4 ? UINT64_MAX : 1000 * s + k;
            if (!CHECK(mg_checkpoint_save(m, opt, path, step, NULL, 0) == MG_OK))
                fprintf(stderr, "  shape %zu optimizer %zu: %s\n", s, k, mg_last_error());
            mg_checkpoint c;
            mg_status status = mg_checkpoint_load(path, &c);
            if (CHECK(status == MG_OK)) {
                if (!CHECK(same_model(m, c.model))) fprintf(stderr, "  shape %zu optimizer %zu\n", s, k);
                CHECK(c.step == step);
                CHECK(c.n_metadata == 0 && c.metadata == NULL);
                if (opt) CHECK(same_optim(opt, c.optimizer));
                else CHECK(c.optimizer == NULL);
                mg_checkpoint_free(&c);
                CHECK(checkpoint_is_empty(&c));
            } else {
                fprintf(stderr, "  shape %zu optimizer %zu: %s\n", s, k, mg_last_error());
            }
            /* the data starts 8-byte aligned, as the safetensors writer pads it */
            size_t size;
            unsigned char *file = read_whole(path, &size);
            if (CHECK(file && size >= 8)) {
                uint64_t header = 0;
                for (int i = 7; i >= 0; i--) header = header << 8 | file[i];
                CHECK(header % 8 == 0);
                /* the buffer loader reads the same bytes the same way */
                status = mg_checkpoint_load_buffer(file, size, &c);
                if (CHECK(status == MG_OK)) {
                    CHECK(same_model(m, c.model));
                    mg_checkpoint_free(&c);
                }
            }
            free(file);
            mg_optim_free(opt);
            mg_mlp_free(m);
        }
    }

    /* the nn.Sequential names: a Linear and its activation each take an index, a linear layer none */
    static const size_t sz[] = {3, 4, 2, 1};
    static const mg_activation acts[] = {MG_ACT_TANH, MG_ACT_LINEAR, MG_ACT_RELU, MG_ACT_SIGMOID};
    mg_mlp *m = make_model(2, 4, sz, acts, 5);
    CHECK(mg_checkpoint_save(m, NULL, path, 0, NULL, 0) == MG_OK);
    size_t size;
    unsigned char *file = read_whole(path, &size);
    if (CHECK(file)) {
        const char *names[] = {"\"0.weight\"", "\"0.bias\"", "\"2.weight\"", "\"3.weight\"", "\"5.bias\""};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            int found = 0;
            for (size_t j = 8; j + strlen(names[i]) <= size && !found; j++)
                found = memcmp(file + j, names[i], strlen(names[i])) == 0;
            if (!CHECK(found)) fprintf(stderr, "  tensor %s is not in the file\n", names[i]);
        }
    }
    free(file);
    mg_mlp_free(m);
    unlink(path);
}

/* config values a checkpoint must carry exactly, however odd */
static void test_optimizer_config_edges(void) {
    char path[1024];
    path_in(path, sizeof path, "edges.safetensors");
    static const size_t sizes[] = {2};
    mg_mlp *m = make_model(2, 1, sizes, NULL, 1);
    mg_optim_config configs[4];
    configs[0] = mg_optim_defaults(MG_OPTIM_SGD); /* lr 1e-3, momentum 0: the state is all zeros */
    configs[1] = mg_optim_defaults(MG_OPTIM_ADAM);
    configs[1].lr = 0.1 + 0.2, configs[1].eps = 0.0, configs[1].beta1 = 0.0, configs[1].beta2 = nextafter(1.0, 0.0);
    configs[2] = mg_optim_defaults(MG_OPTIM_ADAMW);
    configs[2].lr = -0.0, configs[2].weight_decay = DBL_MAX;
    /* subnormal numbers are valid settings and must survive too (strtod flags them with ERANGE) */
    configs[3] = mg_optim_defaults(MG_OPTIM_ADAM);
    configs[3].eps = 4.9406564584124654e-324, configs[3].weight_decay = 1e-310;
    for (int k = 0; k < 4; k++) {
        mg_optim *opt = make_optim(configs[k], m, k);
        if (!CHECK(opt)) continue;
        CHECK(mg_checkpoint_save(m, opt, path, 7, NULL, 0) == MG_OK);
        mg_checkpoint c;
        mg_status s = mg_checkpoint_load(path, &c);
        if (!CHECK(s == MG_OK)) fprintf(stderr, "  config %d: %s\n", k, mg_last_error());
        else {
            if (!CHECK(same_optim(opt, c.optimizer))) fprintf(stderr, "  config %d differs after loading\n", k);
            mg_checkpoint_free(&c);
        }
        mg_optim_free(opt);
    }
    mg_mlp_free(m);
    unlink(path);
}

static void test_metadata(void) {
    char path[1024];
    path_in(path, sizeof path, "meta.safetensors");
    static const size_t sizes[] = {3, 1};
    mg_mlp *m = make_model(2, 2, sizes, NULL, 3);
    char long_value[10001];
    for (size_t i = 0; i < 10000; i++) long_value[i] = (char)('a' + i % 26);
    long_value[10000] = '\0';
    /* clang-format off */
    const char *meta[] = {
        "plain",               "value",
        "quote\"key",          "say \"hi\"",
        "back\\slash",         "C:\\dir\\file \\\" \\\\",
        "utf8 \xc3\xa9",       "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad",
        "control",             "\x01\x02\x1f tab\t nl\n cr\r bs\b ff\f end",
        "",                    "empty key",
        "empty value",         "",
        "slash/and:colon,{}[]", "{\"not\": [\"json\"]}",
        "optimizer.custom",    "not ours: only exact names are reserved",
        "stepping",            "12",
        "long",                long_value,
        "\x7f del",            "\x7f",
    };
    /* clang-format on */
    size_t n_meta = sizeof meta / sizeof *meta / 2;
    mg_optim_config cfg = mg_optim_defaults(MG_OPTIM_ADAM);
    mg_optim *opt = make_optim(cfg, m, 2);
    for (int with_opt = 0; with_opt < 2; with_opt++) {
        if (!CHECK(mg_checkpoint_save(m, with_opt ? opt : NULL, path, 42, meta, n_meta) == MG_OK)) {
            fprintf(stderr, "  %s\n", mg_last_error());
            continue;
        }
        mg_checkpoint c;
        if (!CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
            fprintf(stderr, "  %s\n", mg_last_error());
            continue;
        }
        CHECK(same_model(m, c.model));
        CHECK(c.step == 42);
        CHECK(c.n_metadata == n_meta);
        for (size_t i = 0; i < n_meta; i++) {
            const char *got = meta_lookup(&c, meta[2 * i]);
            if (!CHECK(got && strcmp(got, meta[2 * i + 1]) == 0))
                fprintf(stderr, "  metadata key #%zu: got '%.40s'\n", i, got ? got : "(missing)");
        }
        /* the order is the caller's */
        for (size_t i = 0; i < c.n_metadata && i < n_meta; i++) CHECK(strcmp(c.metadata[2 * i], meta[2 * i]) == 0);
        if (with_opt) CHECK(same_optim(opt, c.optimizer));
        mg_checkpoint_free(&c);
    }
    mg_optim_free(opt);

    /* our own keys are reserved, and so is __metadata__: refused, and no file is written */
    const char *reserved[] = {"format",
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
                              "__metadata__"};
    char other[1024];
    path_in(other, sizeof other, "reserved.safetensors");
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
        const char *pair[] = {"fine", "ok", reserved[i], "x"};
        mg_clear_error();
        mg_status s = mg_checkpoint_save(m, NULL, other, 0, pair, 2);
        if (!CHECK(s == MG_ERR_ARG && message_contains("reserved") && message_contains(reserved[i])))
            fprintf(stderr, "  key '%s': status %d, '%s'\n", reserved[i], (int)s, mg_last_error());
        CHECK(access(other, F_OK) != 0);
    }
    CHECK(count_entries("reserved.safetensors") == 0);

    /* NULL arguments */
    const char *with_null[] = {"key", NULL};
    CHECK(mg_checkpoint_save(m, NULL, other, 0, with_null, 1) == MG_ERR_NULL);
    CHECK(mg_checkpoint_save(m, NULL, other, 0, NULL, 1) == MG_ERR_NULL);
    CHECK(mg_checkpoint_save(m, NULL, NULL, 0, NULL, 0) == MG_ERR_NULL);
    CHECK(mg_checkpoint_save(NULL, NULL, other, 0, NULL, 0) == MG_ERR_NULL);
    mg_checkpoint c;
    CHECK(mg_checkpoint_load(NULL, &c) == MG_ERR_NULL);
    CHECK(mg_checkpoint_load(path, NULL) == MG_ERR_NULL);
    CHECK(mg_checkpoint_load_buffer(NULL, 10, &c) == MG_ERR_NULL);
    CHECK(mg_checkpoint_load_buffer("x", 1, NULL) == MG_ERR_NULL);
    CHECK(access(other, F_OK) != 0);
    mg_checkpoint_free(NULL);
    memset(&c, 0, sizeof c);
    mg_checkpoint_free(&c);
    mg_mlp_free(m);
    unlink(path);
}

static void test_mlp_save_load(void) {
    char path[1024], ck[1024], missing[1024];
    path_in(path, sizeof path, "model.safetensors");
    path_in(ck, sizeof ck, "with_opt.safetensors");
    path_in(missing, sizeof missing, "no_such_model.safetensors");
    static const size_t sizes[] = {16, 16, 1};
    mg_mlp *m = make_model(2, 3, sizes, NULL, 8);
    CHECK(mg_mlp_save(m, path) == MG_OK);
    mg_mlp *back = mg_mlp_load(path);
    CHECK(same_model(m, back));
    mg_mlp_free(back);
    /* the plain save is a checkpoint with nothing else */
    mg_checkpoint c;
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(c.optimizer == NULL && c.step == 0 && c.n_metadata == 0);
        mg_checkpoint_free(&c);
    }
    /* mg_mlp_load takes the model out of a checkpoint and drops the rest */
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAMW), m, 3);
    const char *meta[] = {"k", "v"};
    CHECK(mg_checkpoint_save(m, opt, ck, 9, meta, 1) == MG_OK);
    back = mg_mlp_load(ck);
    CHECK(same_model(m, back));
    mg_mlp_free(back);
    mg_optim_free(opt);
    /* failures: NULL and a message naming the file */
    mg_clear_error();
    CHECK(mg_mlp_load(missing) == NULL);
    CHECK(message_contains("no_such_model.safetensors"));
    CHECK(mg_mlp_save(NULL, path) == MG_ERR_NULL);
    CHECK(mg_mlp_save(m, NULL) == MG_ERR_NULL);
    mg_mlp_free(m);
    unlink(path);
    unlink(ck);
}

/* ---- resuming: 10 epochs straight == 5, save, load, 5 more ---------------------------------------- */

static void test_resume(void) {
    enum { N = 64 };
    double x[2 * N], y[N];
    check_moons(N, 17, x, y);
    static const size_t sizes[] = {8, 8, 1};
    mg_optim_config configs[3] = {mg_optim_defaults(MG_OPTIM_SGD), mg_optim_defaults(MG_OPTIM_ADAM),
                                  mg_optim_defaults(MG_OPTIM_ADAMW)};
    configs[0].lr = 0.1, configs[0].momentum = 0.9, configs[0].nesterov = 1;
    configs[1].lr = 0.01;
    configs[2].lr = 0.01, configs[2].weight_decay = 0.1;
    char path[1024];
    path_in(path, sizeof path, "resume.safetensors");
    for (int k = 0; k < 3; k++) {
        mg_fit_options fit = mg_fit_defaults();
        fit.loss = MG_LOSS_SVM;
        fit.l2 = 1e-4;
        fit.batch_size = 16;
        fit.shuffle = 0;
        fit.threads = 2;

        mg_mlp *straight = mg_mlp_new(2, 3, sizes, NULL);
        mg_mlp_init_uniform(straight, 1337);
        mg_optim *opt_straight = mg_optim_new(&configs[k], mg_mlp_num_params(straight));
        fit.epochs = 10;
        CHECK(mg_mlp_fit(straight, opt_straight, x, y, N, &fit) == MG_OK);

        mg_mlp *first = mg_mlp_new(2, 3, sizes, NULL);
        mg_mlp_init_uniform(first, 1337);
        mg_optim *opt_first = mg_optim_new(&configs[k], mg_mlp_num_params(first));
        fit.epochs = 5;
        CHECK(mg_mlp_fit(first, opt_first, x, y, N, &fit) == MG_OK);
        const char *meta[] = {"run", "resume-test"};
        CHECK(mg_checkpoint_save(first, opt_first, path, 5, meta, 1) == MG_OK);
        mg_mlp_free(first);
        mg_optim_free(opt_first);

        mg_checkpoint c;
        if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
            CHECK(c.step == 5 && c.optimizer != NULL);
            CHECK(c.n_metadata == 1 && meta_lookup(&c, "run") && strcmp(meta_lookup(&c, "run"), "resume-test") == 0);
            CHECK(mg_mlp_fit(c.model, c.optimizer, x, y, N, &fit) == MG_OK);
            if (!CHECK(same_model(straight, c.model))) fprintf(stderr, "  optimizer %d: resumed run differs\n", k);
            CHECK(same_optim(opt_straight, c.optimizer));
            mg_checkpoint_free(&c);
        }
        mg_optim_free(opt_straight);
        mg_mlp_free(straight);
    }
    unlink(path);
}

/* ---- malformed files ----------------------------------------------------------------------------- */

static void test_sizes_and_framing(void) {
    /* sanity: the crafting itself gives loadable files */
    mg_checkpoint c = EXPECT_GOOD(craft(3, "{" W1 "," B1 "}"));
    if (c.model) {
        CHECK(mg_mlp_num_inputs(c.model) == 2 && mg_mlp_num_layers(c.model) == 1);
        CHECK(mg_mlp_params(c.model)[0] == 0.5 && mg_mlp_params(c.model)[1] == 1.5 && mg_mlp_params(c.model)[2] == 2.5);
    }
    mg_checkpoint_free(&c);

    unsigned char tiny[8] = {0};
    bytes b;
    /* empty, shorter than the size field */
    b.data = malloc(1), b.size = 0;
    EXPECT_BAD(b, "8-byte");
    for (size_t n = 1; n < 8; n++) {
        b.data = malloc(n), b.size = n;
        memcpy(b.data, tiny, n);
        EXPECT_BAD(b, "8-byte");
    }
    /* the header size: 0, over the cap, larger than the file, the largest u64 */
    EXPECT_BAD(craft_raw(0, "", 0, 0), "not a JSON object");
    EXPECT_BAD(craft_raw(0, "{}", 2, 0), "not a JSON object");
    EXPECT_BAD(craft_raw(100000001, "{}", 2, 0), "limit");
    EXPECT_BAD(craft_raw(UINT64_MAX, "{}", 2, 0), "limit");
    EXPECT_BAD(craft_raw((uint64_t)1 << 63, "{}", 2, 0), "limit");
    EXPECT_BAD(craft_raw(100000000, "{}", 2, 0), "truncated");
    EXPECT_BAD(craft_raw(3, "{}", 2, 0), "truncated");
    /* a header shorter than its JSON: cut inside */
    EXPECT_BAD(craft_raw(20, "{" W1 "," B1 "}", strlen("{" W1 "," B1 "}"), 3), NULL);
    /* the header must open with '{' */
    EXPECT_BAD(craft(3, " {" W1 "," B1 "}"), "not a JSON object");
    EXPECT_BAD(craft(3, "[" W1 "," B1 "]"), "not a JSON object");
    EXPECT_BAD(craft(0, "null"), "not a JSON object");
    /* no tensors */
    EXPECT_BAD(craft(0, "{}"), "no tensors");
    EXPECT_BAD(craft(0, "{\"__metadata__\":{}}"), "no tensors");
    EXPECT_BAD(craft(0, "{\"__metadata__\":{\"a\":\"b\"}}"), "no tensors");
    /* padding after the JSON: spaces, as the safetensors writer pads, and other JSON whitespace are fine */
    c = EXPECT_GOOD(craft(3, "{" W1 "," B1 "}      "));
    mg_checkpoint_free(&c);
    c = EXPECT_GOOD(craft(3, "{\n\t" W1 " ,\r\n " B1 "\n}\t\r\n "));
    mg_checkpoint_free(&c);
}

static void test_bad_json(void) {
    /* truncated JSON, in the header itself */
    EXPECT_BAD(craft(3, "{"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\""), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\""), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1), "JSON");
    EXPECT_BAD(craft(3, "{" W1 ","), "JSON");
    /* trailing commas */
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",}"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2,],\"data_offsets\":[0,16]}," B1 "}"),
               "integer");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16],}," B1 "}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"b\",}}"), "JSON");
    EXPECT_BAD(craft(3, "{,}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 ",," B1 "}"), "JSON");
    /* structure: missing colon, bare words, single quotes, wrong value kinds */
    EXPECT_BAD(craft(3, "{\"0.weight\" {\"dtype\":\"F64\"}}"), "JSON");
    EXPECT_BAD(craft(3, "{'0.weight':{}}"), "JSON");
    EXPECT_BAD(craft(3, "{0.weight:{}}"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":[1,2]," B1 "}"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":\"F64\"," B1 "}"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":null," B1 "}"), "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":{}," B1 "}"), NULL);
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":1}}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":null}}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":{\"b\":\"c\"}}}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":[\"a\"]}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":\"a\"}"), "JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{},\"__metadata__\":{}}"), "__metadata__");
    EXPECT_BAD(
        craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16]}," B1 "}"),
        "repeated");
    EXPECT_BAD(craft(3,
                     "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16],\"extra\":1}," B1 "}"),
               "unknown");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":{\"begin\":0}}," B1 "}"),
               "JSON");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":64,\"shape\":[1,2],\"data_offsets\":[0,16]}," B1 "}"), "JSON");
    /* numbers: only plain non-negative integers up to 2^53 */
    const char *offsets[] = {"[-1,16]",
                             "[0,16.0]",
                             "[0,1.6e1]",
                             "[00,16]",
                             "[0,+16]",
                             "[0,0x10]",
                             "[0]",
                             "[0,16,24]",
                             "[]",
                             "[0 16]",
                             "[0,9007199254740993]",
                             "[0,99999999999999999999999]",
                             "[0,\"16\"]",
                             "[0,true]",
                             "[0,16"};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++)
        EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":%s}," B1 "}",
                         offsets[i]),
                   NULL);
    const char *shapes[] = {
        "[1,-2]", "[1,2.0]", "[1,02]", "[1,,2]", "[,]", "[1,2", "1", "[[1,2]]", "[1,2,1,1,1,1,1,1,1]"};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":%s,\"data_offsets\":[0,16]}," B1 "}",
                         shapes[i]),
                   NULL);
    /* 8 dimensions are allowed by the reader (but not as a weight) */
    EXPECT_BAD(craft(3,
                     "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2,1,1,1,1,1,1],\"data_offsets\":[0,16]}," B1 "}"),
               "2-D");

    /* strings: escapes and what may not appear raw */
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"bad \\x escape\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"bad \\' escape\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\u12G4\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\u12\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\u\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"x\\uD800\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uD800x\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uD83D\\u0041\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uD83D\\uD83D\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uDE00\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uDE00\\uD83D\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\uD83D\\uDE0\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"\\u0000\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\\u0000b\":\"c\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"raw \x01 control\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"raw \n newline\"}}"), "string");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"raw \t tab\"}}"), "string");
    /* unterminated strings, ending the header in the middle and on a backslash */
    EXPECT_BAD(craft(3, "{\"0.weight"), "unterminated");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"b\\\"}}"), "unterminated");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"a\":\"b\\"), "unterminated");
    EXPECT_BAD(craft(3, "{\"\\"), "unterminated");
    EXPECT_BAD(craft(3, "{\""), "unterminated");
    /* a NUL byte in the header, in a string and between tokens */
    const char nul1[] = "{\"0.wei\0ght\":{}}";
    EXPECT_BAD(craft_raw(sizeof nul1 - 1, nul1, sizeof nul1 - 1, 3), "NUL");
    const char nul2[] = "{" W1 ",\0" B1 "}";
    EXPECT_BAD(craft_raw(sizeof nul2 - 1, nul2, sizeof nul2 - 1, 3), "NUL");
    const char nul3[] = "{" W1 "," B1 "}\0\0\0\0";
    EXPECT_BAD(craft_raw(sizeof nul3 - 1, nul3, sizeof nul3 - 1, 3), "NUL");
    /* text after the JSON object */
    EXPECT_BAD(craft(3, "{" W1 "," B1 "}x"), "after the JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 "}{}"), "after the JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 "}}"), "after the JSON");
    EXPECT_BAD(craft(3, "{" W1 "," B1 "}  ,"), "after the JSON");

    /* what the decoder must get right: every escape, surrogate pairs, raw UTF-8 passes through */
    mg_checkpoint c = EXPECT_GOOD(
        craft(3, "{" W1 "," B1 ",\"__metadata__\":{\"k\\u0041\\/\":"
                 "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u4E2D\\uD83D\\uDE00 caf\xc3\xa9 \x7f\"}}"));
    const char *v = c.model ? meta_lookup(&c, "kA/") : NULL;
    if (!CHECK(v && strcmp(v, "\"\\/\b\f\n\r\t\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 caf\xc3\xa9 \x7f") == 0))
        fprintf(stderr, "  decoded '%s'\n", v ? v : "(missing)");
    mg_checkpoint_free(&c);
}

static void test_bad_tensors(void) {
    /* missing fields */
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"shape\":[1,2],\"data_offsets\":[0,16]}," B1 "}"), "lacks");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"data_offsets\":[0,16]}," B1 "}"), "lacks");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2]}," B1 "}"), "lacks");
    /* dtypes: only F64, named in the message */
    const char *dtypes[] = {"F32", "I64", "F16", "BF16", "f64", "F64 ", "", "U8"};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"%s\",\"shape\":[1,2],\"data_offsets\":[0,16]}," B1 "}",
                         dtypes[i]),
                   "dtype");
    EXPECT_BAD(craft(2, "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                        "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"),
               "F32");
    /* sizes whose product overflows 64 bits, or is merely absurd */
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1099511627776,1099511627776],"
                        "\"data_offsets\":[0,16]}," B1 "}"),
               "large");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4294967296],"
                        "\"data_offsets\":[0,16]}," B1 "}"),
               "large");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                        "\"data_offsets\":[0,16]}," B1 "}"),
               NULL);
    /* 2^61 * 8 = 2^64 wraps to 0: must not pass as an empty tensor */
    EXPECT_BAD(craft(1, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[2,1152921504606846976],"
                        "\"data_offsets\":[0,0]},\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}"),
               NULL);
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,9007199254740992],"
                        "\"data_offsets\":[0,16]}," B1 "}"),
               "large");
    /* offsets: past the end, reversed, overlapping, with gaps, with bytes left over */
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,32]}}"), "outside");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[9007199254740984,"
                        "9007199254740992]}}"),
               "outside");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,16]}}"), "outside");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}"), "overlap");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}"), NULL);
    EXPECT_BAD(craft(4, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]}}"), "gaps");
    EXPECT_BAD(craft(4, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[8,24]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]}}"),
               "gaps");
    EXPECT_BAD(craft(4, "{" W1 "," B1 "}"), "trailing");
    bytes extra = craft(3, "{" W1 "," B1 "}");
    unsigned char *grown = malloc(extra.size + 1);
    memcpy(grown, extra.data, extra.size);
    grown[extra.size] = 0;
    free(extra.data);
    extra.data = grown, extra.size++;
    EXPECT_BAD(extra, "trailing");
    /* duplicate names */
    EXPECT_BAD(craft(4, "{" W1 "," B1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]}}"),
               "twice");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"optimizer.state\":{\"dtype\":\"F64\",\"shape\":[0],"
                        "\"data_offsets\":[48,48]}}"),
               "twice");
    /* size against shape */
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,24]}}"),
               "bytes for");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,3],\"data_offsets\":[0,16]}," B1 "}"),
               "bytes for");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,15]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[15,24]}}"),
               "bytes for");
    /* layers: names, ranks and shapes */
    EXPECT_BAD(craft(3, "{\"weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
                        "\"bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}"),
               "no layer");
    EXPECT_BAD(craft(3, "{\"1.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
                        "\"1.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}"),
               "no layer");
    EXPECT_BAD(craft(2, "{" W1 "}"), "0.bias");
    EXPECT_BAD(craft(3, "{" W1 ",\"1.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}"), "0.bias");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[16,24]}}"), "0.bias");
    EXPECT_BAD(craft(3, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]}}"), "0.bias");
    EXPECT_BAD(craft(4, "{" W1 ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]}}"), "0.bias");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}," B1 "}"), "2-D");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2,1],\"data_offsets\":[0,16]}," B1 "}"), "2-D");
    EXPECT_BAD(craft(3, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[8,24]}}"),
               "2-D");
    EXPECT_BAD(craft(1, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[0,2],\"data_offsets\":[0,0]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}"),
               NULL);
    EXPECT_BAD(craft(2, "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
                        "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}"),
               NULL);
    /* the second layer takes 4 inputs where the first gives 3 */
    EXPECT_BAD(craft(14, "{" W2A "," B2A ",\"2.weight\":{\"dtype\":\"F64\",\"shape\":[1,4],\"data_offsets\":[72,104]},"
                         "\"2.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[104,112]}}"),
               "inputs");
    /* a tensor that belongs to nothing */
    EXPECT_BAD(craft(4, "{" W1 "," B1 ",\"extra\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]}}"),
               "tensors");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"empty\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[24,24]}}"),
               "tensors");
    /* two Linear layers more than one index apart are not a Sequential */
    EXPECT_BAD(craft(13, "{" W2A "," B2A ",\"3.weight\":{\"dtype\":\"F64\",\"shape\":[1,3],\"data_offsets\":[72,96]},"
                         "\"3.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[96,104]}}"),
               "tensors");

    /* a plain state_dict (no metadata): the layers read off the names, ReLU where an index is skipped */
    mg_checkpoint c = EXPECT_GOOD(craft(13, "{" W2A "," B2A "," W2B "," B2B "}"));
    if (c.model) {
        CHECK(mg_mlp_num_inputs(c.model) == 2 && mg_mlp_num_layers(c.model) == 2);
        CHECK(mg_mlp_layer_size(c.model, 0) == 3 && mg_mlp_layer_size(c.model, 1) == 1);
        CHECK(mg_mlp_layer_activation(c.model, 0) == MG_ACT_RELU);
        CHECK(mg_mlp_layer_activation(c.model, 1) == MG_ACT_LINEAR);
        /* weights [out, in] row-major then the bias: our rows are a neuron's weights then its bias */
        const double *p = mg_mlp_params(c.model);
        CHECK(p[0] == 0.5 && p[1] == 1.5 && p[2] == 6.5 && p[3] == 2.5 && p[8] == 8.5);
        CHECK(p[9] == 9.5 && p[10] == 10.5 && p[11] == 11.5 && p[12] == 12.5);
    }
    mg_checkpoint_free(&c);
    /* the tensors in another order in the header and in the data */
    c = EXPECT_GOOD(craft(3, "{\"0.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                             "\"0.weight\":{\"data_offsets\":[8,24],\"shape\":[1,2],\"dtype\":\"F64\"}}"));
    if (c.model) CHECK(mg_mlp_params(c.model)[0] == 1.5 && mg_mlp_params(c.model)[2] == 0.5);
    mg_checkpoint_free(&c);
    c = EXPECT_GOOD(craft(13, "{" W2A "," B2A "," W2B_AT1 "," B2B_AT1 "}"));
    if (c.model) CHECK(mg_mlp_layer_activation(c.model, 0) == MG_ACT_LINEAR);
    mg_checkpoint_free(&c);

    /* too many of everything */
    size_t cap = 64 * 5000 + 64, n = 0;
    char *h = malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "{");
    for (int i = 0; i < 4097; i++)
        n += (size_t)snprintf(h + n, cap - n, "%s\"t%d\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", i);
    n += (size_t)snprintf(h + n, cap - n, "}");
    EXPECT_BAD(craft_raw(n, h, n, 0), "too many tensors");
    n = 0;
    n += (size_t)snprintf(h + n, cap - n, "{" W1 "," B1 ",\"__metadata__\":{");
    for (int i = 0; i < 4097; i++) n += (size_t)snprintf(h + n, cap - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    n += (size_t)snprintf(h + n, cap - n, "}}");
    EXPECT_BAD(craft_raw(n, h, n, 3), "too many metadata");
    /* 256 layers of 1 -> 1 load, 257 do not */
    for (int layers = 256; layers <= 257; layers++) {
        n = 0;
        n += (size_t)snprintf(h + n, cap - n, "{");
        for (int i = 0; i < layers; i++)
            n += (size_t)snprintf(h + n, cap - n,
                                  "%s\"%d.weight\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[%d,%d]},"
                                  "\"%d.bias\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                  i ? "," : "", i, 16 * i, 16 * i + 8, i, 16 * i + 8, 16 * i + 16);
        n += (size_t)snprintf(h + n, cap - n, "}");
        if (layers == 256) {
            c = EXPECT_GOOD(craft_raw(n, h, n, 2 * (size_t)layers));
            if (c.model) CHECK(mg_mlp_num_layers(c.model) == 256);
            mg_checkpoint_free(&c);
        } else {
            EXPECT_BAD(craft_raw(n, h, n, 2 * (size_t)layers), "256 layers");
        }
    }
    free(h);
}

static void test_bad_metadata(void) {
    /* ours, agreeing with the tensors: loads */
    mg_checkpoint c = EXPECT_GOOD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{" OURS1 "}}"));
    if (c.model) CHECK(c.n_metadata == 0);
    mg_checkpoint_free(&c);
    /* a last layer may be told its activation: relu is a valid choice for one layer */
    c = EXPECT_GOOD(craft(3, "{" W1 "," B1
                             ",\"__metadata__\":{\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"relu\"}}"));
    if (c.model) CHECK(mg_mlp_layer_activation(c.model, 0) == MG_ACT_RELU);
    mg_checkpoint_free(&c);
    /* metadata contradicting the tensors */
    const char *contradictions[] = {
        "\"n_inputs\":\"3\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"0\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2x\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"-2\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"18446744073709551618\",\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"sizes\":\"1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\"",
        "\"n_inputs\":\"2\"",
        "\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"2\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1,1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"0\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"-1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\" 1\",\"activations\":\"linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"bogus\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"linear,linear\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"linear,\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"line\"",
        "\"n_inputs\":\"2\",\"sizes\":\"1\",\"activations\":\"linearx\"",
    };
    for (size_t i = 0; i < sizeof contradictions / sizeof *contradictions; i++)
        EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{%s}}", contradictions[i]), "metadata");
    /* two layers: the activations decide the numbering, which must match the names */
    EXPECT_BAD(craft(13, "{" W2A "," B2A "," W2B "," B2B ",\"__metadata__\":{\"n_inputs\":\"2\",\"sizes\":\"3,1\","
                         "\"activations\":\"linear,linear\"}}"),
               "1.weight");
    EXPECT_BAD(craft(13, "{" W2A "," B2A "," W2B_AT1 "," B2B_AT1 ",\"__metadata__\":{\"n_inputs\":\"2\","
                         "\"sizes\":\"3,1\",\"activations\":\"relu,linear\"}}"),
               "2.weight");
    EXPECT_BAD(craft(13, "{" W2A "," B2A "," W2B "," B2B ",\"__metadata__\":{\"n_inputs\":\"2\",\"sizes\":\"3\","
                         "\"activations\":\"relu\"}}"),
               "metadata");
    EXPECT_BAD(craft(13, "{" W2A "," B2A "," W2B "," B2B ",\"__metadata__\":{\"n_inputs\":\"2\",\"sizes\":\"1,3\","
                         "\"activations\":\"relu,linear\"}}"),
               "metadata");
    c = EXPECT_GOOD(craft(13, "{" W2A "," B2A "," W2B "," B2B ",\"__metadata__\":{\"n_inputs\":\"2\",\"sizes\":\"3,1\","
                              "\"activations\":\"tanh,sigmoid\"}}"));
    if (c.model)
        CHECK(mg_mlp_layer_activation(c.model, 0) == MG_ACT_TANH &&
              mg_mlp_layer_activation(c.model, 1) == MG_ACT_SIGMOID);
    mg_checkpoint_free(&c);
    /* the step */
    const char *steps[] = {"abc", "-1", "", " 1", "1.5", "18446744073709551616", "1e3"};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{" OURS1 ",\"step\":\"%s\"}}", steps[i]), "step");
    c = EXPECT_GOOD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{" OURS1 ",\"step\":\"18446744073709551615\"}}"));
    CHECK(c.step == UINT64_MAX);
    mg_checkpoint_free(&c);

    /* the optimizer: its metadata and its state go together */
    char meta[2048];
    c = EXPECT_GOOD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                          opt_meta(meta, sizeof meta, NULL, NULL)));
    if (CHECK(c.optimizer != NULL)) {
        const mg_optim_config *k = mg_optim_get_config(c.optimizer);
        CHECK(k->kind == MG_OPTIM_SGD && k->lr == 0.1 && k->momentum == 0.9 && mg_optim_steps(c.optimizer) == 4);
        CHECK(mg_optim_state(c.optimizer)[0] == 3.5 && mg_optim_state(c.optimizer)[2] == 5.5);
    }
    mg_checkpoint_free(&c);
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 "}}"), "optimizer");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 "}"), "optimizer");
    EXPECT_BAD(craft(3, "{" W1 "," B1 ",\"__metadata__\":{" OURS1 ",%s}}", opt_meta(meta, sizeof meta, NULL, NULL)),
               "optimizer");
    EXPECT_BAD(craft(9,
                     "{" W1 "," B1 ",\"optimizer.state\":{\"dtype\":\"F64\",\"shape\":[6],\"data_offsets\":[24,72]},"
                     "\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, NULL, NULL)),
               "wrong size");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer", "adam")),
               "wrong size");
    EXPECT_BAD(craft(6,
                     "{" W1 "," B1 ",\"optimizer.state\":{\"dtype\":\"F64\",\"shape\":[3,1],\"data_offsets\":[24,48]},"
                     "\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, NULL, NULL)),
               "wrong size");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer", "rmsprop")),
               "rmsprop");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer", "")),
               "optimizer");
    /* every numeric field: missing, not a number, trailing text, out of range */
    const char *bad_numbers[] = {"abc", "", "0.1x", "1e999", "0x", "--1"};
    for (size_t f = 1; f < sizeof opt_fields / sizeof *opt_fields; f++) {
        EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                         opt_meta(meta, sizeof meta, opt_fields[f][0], NULL)),
                   "optimizer");
        for (size_t i = 0; i < sizeof bad_numbers / sizeof *bad_numbers; i++)
            EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                             opt_meta(meta, sizeof meta, opt_fields[f][0], bad_numbers[i])),
                       NULL);
    }
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer.steps", "-1")),
               "optimizer");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer.steps", "2.5")),
               "optimizer");
    /* numbers that parse but make no valid optimizer */
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer.lr", "-1")),
               "lr");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer.lr", "nan")),
               "lr");
    EXPECT_BAD(craft(6, "{" W1 "," B1 "," STATE3 ",\"__metadata__\":{" OURS1 ",%s}}",
                     opt_meta(meta, sizeof meta, "optimizer.momentum", "-0.5")),
               "momentum");
}

/* Every prefix of a real checkpoint fails cleanly; the whole file loads. Then single-byte corruptions:
 * each loads or fails cleanly, never anything else. */
static void test_truncations_and_corruptions(void) {
    char path[1024];
    path_in(path, sizeof path, "cut.safetensors");
    static const size_t sizes[] = {3, 2};
    static const mg_activation acts[] = {MG_ACT_TANH, MG_ACT_LINEAR};
    mg_mlp *m = make_model(2, 2, sizes, acts, 4);
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAM), m, 2);
    const char *meta[] = {"note", "caf\xc3\xa9 \"q\" \\", "x", ""};
    CHECK(mg_checkpoint_save(m, opt, path, 11, meta, 2) == MG_OK);
    size_t size = 0;
    unsigned char *file = read_whole(path, &size);
    if (!CHECK(file && size > 100)) {
        free(file);
        mg_optim_free(opt);
        mg_mlp_free(m);
        return;
    }
    int bad_prefixes = 0;
    for (size_t len = 0; len < size; len++) {
        unsigned char *prefix = malloc(len ? len : 1);
        memcpy(prefix, file, len);
        mg_checkpoint c;
        mg_clear_error();
        mg_status s = mg_checkpoint_load_buffer(prefix, len, &c);
        if (s != MG_ERR_ARG || mg_last_error()[0] == '\0' || !checkpoint_is_empty(&c)) {
            if (bad_prefixes++ < 5)
                fprintf(stderr, "  prefix of %zu bytes: status %d '%s'\n", len, (int)s, mg_last_error());
            if (s == MG_OK) mg_checkpoint_free(&c);
        }
        free(prefix);
    }
    CHECK(bad_prefixes == 0);
    mg_checkpoint c;
    if (CHECK(mg_checkpoint_load_buffer(file, size, &c) == MG_OK)) {
        CHECK(same_model(m, c.model) && same_optim(opt, c.optimizer) && c.step == 11 && c.n_metadata == 2);
        mg_checkpoint_free(&c);
    }

    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | file[i];
    size_t limit = 8 + (size_t)header + 16 < size ? 8 + (size_t)header + 16 : size;
    const unsigned char masks[] = {0x01, 0x80, 0xff, 0x20};
    int unclean = 0;
    unsigned char *copy = malloc(size);
    for (size_t i = 0; i < limit; i++) {
        for (size_t k = 0; k < sizeof masks / sizeof *masks; k++) {
            memcpy(copy, file, size);
            copy[i] ^= masks[k];
            mg_clear_error();
            mg_status s = mg_checkpoint_load_buffer(copy, size, &c);
            if (s == MG_OK) {
                if (!c.model) unclean++;
                mg_checkpoint_free(&c);
            } else if (s != MG_ERR_ARG || mg_last_error()[0] == '\0' || !checkpoint_is_empty(&c)) {
                if (unclean++ < 5)
                    fprintf(stderr, "  byte %zu ^ %#x: status %d '%s'\n", i, masks[k], (int)s, mg_last_error());
            }
        }
    }
    CHECK(unclean == 0);
    free(copy);
    free(file);
    mg_optim_free(opt);
    mg_mlp_free(m);
    unlink(path);
}

/* ---- files and folders ------------------------------------------------------------------------- */

static void test_files(void) {
    char path[1024], sub[2048], missing[1024], dir[1024], empty[1024];
    path_in(path, sizeof path, "over.safetensors");
    path_in(missing, sizeof missing, "no_folder/model.safetensors");
    path_in(dir, sizeof dir, "a_folder");
    path_in(empty, sizeof empty, "empty.safetensors");
    static const size_t big_sizes[] = {32, 32, 4}, small_sizes[] = {1};
    mg_mlp *big = make_model(6, 3, big_sizes, NULL, 21), *small = make_model(2, 1, small_sizes, NULL, 22);
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAM), big, 1);

    /* loading what is not there, or not a file */
    mg_checkpoint c;
    mg_clear_error();
    CHECK(mg_checkpoint_load(missing, &c) == MG_ERR_IO && checkpoint_is_empty(&c));
    CHECK(message_contains("no_folder/model.safetensors") && message_contains("No such file"));
    CHECK(mkdir(dir, 0755) == 0);
    mg_clear_error();
    CHECK(mg_checkpoint_load(dir, &c) == MG_ERR_ARG && checkpoint_is_empty(&c));
    CHECK(message_contains("a_folder") && message_contains("regular file"));
    CHECK(write_whole(empty, "", 0));
    mg_clear_error();
    CHECK(mg_checkpoint_load(empty, &c) == MG_ERR_ARG && message_contains("empty.safetensors"));
    CHECK(mg_mlp_load(dir) == NULL);

    /* saving over a file replaces it: a big checkpoint, then a small model; then back */
    CHECK(mg_checkpoint_save(big, opt, path, 3, NULL, 0) == MG_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    off_t big_size = st.st_size;
    CHECK(mg_mlp_save(small, path) == MG_OK);
    CHECK(stat(path, &st) == 0 && st.st_size < big_size);
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(same_model(small, c.model) && c.optimizer == NULL && c.step == 0);
        mg_checkpoint_free(&c);
    }
    CHECK(mg_checkpoint_save(big, opt, path, 4, NULL, 0) == MG_OK);
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(same_model(big, c.model) && same_optim(opt, c.optimizer) && c.step == 4);
        mg_checkpoint_free(&c);
    }
    /* a file that is not a model is replaced all the same */
    CHECK(write_whole(path, "not a model at all, and rather long ...........................", 64));
    CHECK(mg_mlp_save(small, path) == MG_OK);
    mg_mlp *back = mg_mlp_load(path);
    CHECK(same_model(small, back));
    mg_mlp_free(back);
    CHECK(count_entries("over.safetensors") == 1); /* no temporary file left next to it */

    /* a folder that does not exist: a clean failure, nothing created */
    mg_clear_error();
    CHECK(mg_checkpoint_save(big, opt, missing, 1, NULL, 0) == MG_ERR_IO);
    CHECK(mg_last_error()[0] != '\0' && message_contains("no_folder"));
    CHECK(access(missing, F_OK) != 0 && count_entries("no_folder") == 0);
    /* the target is a folder: the rename fails, the temporary file is removed, the folder stays */
    mg_clear_error();
    CHECK(mg_checkpoint_save(small, NULL, dir, 0, NULL, 0) == MG_ERR_IO);
    CHECK(mg_last_error()[0] != '\0');
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(count_entries("a_folder") == 1);
    /* a path below a regular file */
    snprintf(sub, sizeof sub, "%s/below.safetensors", path);
    CHECK(mg_mlp_save(small, sub) == MG_ERR_IO);
    CHECK(count_entries("over.safetensors") == 1);

    /* a saved model gets the permissions any new file gets (0666 less the umask), as fopen, numpy.save,
     * torch.save and safetensors give: readable by the group and others under the usual umask 022 */
    mode_t old_mask = umask(022);
    char fresh[1024];
    path_in(fresh, sizeof fresh, "fresh.safetensors");
    CHECK(mg_mlp_save(small, fresh) == MG_OK);
    if (CHECK(stat(fresh, &st) == 0))
        if (!CHECK((st.st_mode & 0777) == 0644))
            fprintf(stderr, "  a new model file has mode %o, expected 644 under umask 022\n",
                    (unsigned)(st.st_mode & 0777));
    umask(old_mask);
    unlink(fresh);

    mg_optim_free(opt);
    mg_mlp_free(big);
    mg_mlp_free(small);
    unlink(path);
    unlink(empty);
    rmdir(dir);
}

/* Loading a path that names a FIFO must fail like any other non-regular file, not block forever
 * waiting for a writer. Run in a child with an alarm so a hang is a failure, not a stuck test. */
static void test_fifo(void) {
    char fifo[1024];
    path_in(fifo, sizeof fifo, "model.fifo");
    if (mkfifo(fifo, 0600) != 0) {
        printf("test_modelfile: mkfifo failed, FIFO check skipped\n");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(2);
        mg_checkpoint c;
        mg_status s = mg_checkpoint_load(fifo, &c);
        _exit(s == MG_ERR_ARG && checkpoint_is_empty(&c) ? 0 : 1);
    }
    int status = 0;
    if (CHECK(pid > 0 && waitpid(pid, &status, 0) == pid)) {
        if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "  mg_checkpoint_load on a FIFO: %s\n",
                    WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "blocked (killed after 2 s)"
                                                                       : "did not fail cleanly");
    }
    unlink(fifo);
}

/* An optimizer made for another number of parameters is refused: saving it would write a file that
 * does not load. */
static void test_wrong_optimizer(void) {
    char path[1024];
    path_in(path, sizeof path, "wrong_opt.safetensors");
    static const size_t sizes[] = {3, 1}; /* 9 + 4 = 13 parameters */
    mg_mlp *m = make_model(2, 2, sizes, NULL, 2);
    size_t n = mg_mlp_num_params(m);
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
    sgd.momentum = 0.9;
    mg_optim_config adam = mg_optim_defaults(MG_OPTIM_ADAM);
    struct {
        mg_optim_config config;
        size_t n_params;
    } cases[] = {{sgd, n + 1}, {sgd, 2 * n}, {adam, 3 * n}, {sgd, 3 * n}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mg_optim *opt = mg_optim_new(&cases[i].config, cases[i].n_params);
        mg_clear_error();
        mg_status s = mg_checkpoint_save(m, opt, path, 0, NULL, 0);
        if (!CHECK(s == MG_ERR_ARG)) {
            mg_checkpoint c;
            mg_status loaded = mg_checkpoint_load(path, &c);
            fprintf(stderr, "  an optimizer for %zu parameters saved with a model of %zu: status %d; loading it: %s\n",
                    cases[i].n_params, n, (int)s, loaded == MG_OK ? "ok" : mg_last_error());
            if (loaded == MG_OK) mg_checkpoint_free(&c);
        }
        mg_optim_free(opt);
        unlink(path);
    }
    mg_mlp_free(m);
}

/* ---- save never writes what load rejects, and replaces only regular files -------------------------- */

/* a save refused with MG_ERR_ARG, a message naming what and the limit, and no file named prefix... left */
static int refused(mg_status s, const char *prefix, const char *part, const char *other) {
    int ok = s == MG_ERR_ARG && message_contains(part) && (!other || message_contains(other)) &&
             count_entries(prefix) == 0;
    if (!ok)
        fprintf(stderr, "  status %d, message '%s', %d files named %s...\n", (int)s, mg_last_error(),
                count_entries(prefix), prefix);
    mg_clear_error();
    return ok;
}

static void test_save_layer_limit(void) {
    char path[1024], refused_path[1024];
    path_in(path, sizeof path, "deep.safetensors");
    path_in(refused_path, sizeof refused_path, "refused.safetensors");
    size_t ones[MG_FILE_MAX_LAYERS + 1];
    for (size_t i = 0; i <= MG_FILE_MAX_LAYERS; i++) ones[i] = 1;
    mg_mlp *deep = make_model(1, MG_FILE_MAX_LAYERS, ones, NULL, 5);
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAM), deep, 2);
    CHECK(mg_checkpoint_save(deep, opt, path, 9, NULL, 0) == MG_OK);
    mg_checkpoint c;
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(same_model(deep, c.model) && same_optim(opt, c.optimizer) && c.step == 9);
        mg_checkpoint_free(&c);
    }
    mg_optim_free(opt);
    /* one layer more: refused before anything is written, as a model and as a checkpoint */
    mg_mlp *deeper = make_model(1, MG_FILE_MAX_LAYERS + 1, ones, NULL, 5);
    opt = make_optim(mg_optim_defaults(MG_OPTIM_SGD), deeper, 1);
    CHECK(refused(mg_mlp_save(deeper, refused_path), "refused", "257 layers", "256"));
    CHECK(refused(mg_checkpoint_save(deeper, opt, refused_path, 0, NULL, 0), "refused", "257 layers", NULL));
    /* over an existing file: the file is left as it was */
    size_t before_size, after_size;
    unsigned char *before = read_whole(path, &before_size);
    CHECK(refused(mg_mlp_save(deeper, path), "deep.safetensors.tmp", "layers", NULL));
    unsigned char *after = read_whole(path, &after_size);
    CHECK(before && after && before_size == after_size && memcmp(before, after, before_size) == 0);
    free(before);
    free(after);
    mg_optim_free(opt);
    mg_mlp_free(deeper);
    mg_mlp_free(deep);
    unlink(path);
}

static void test_save_metadata_limits(void) {
    char path[1024], refused_path[1024];
    path_in(path, sizeof path, "keys.safetensors");
    path_in(refused_path, sizeof refused_path, "refused.safetensors");
    static const size_t sizes[] = {2};
    mg_mlp *m = make_model(2, 1, sizes, NULL, 7);
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAMW), m, 1);
    /* the most keys: saved and loaded, in a checkpoint whose own keys come on top; one more refused */
    size_t n = MG_FILE_MAX_METADATA + 1;
    char (*keys)[16] = malloc(n * sizeof *keys);
    const char **meta = malloc(2 * n * sizeof *meta);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        meta[2 * i] = keys[i];
        meta[2 * i + 1] = i % 2 ? "v" : "";
    }
    CHECK(mg_checkpoint_save(m, opt, path, 1, meta, n - 1) == MG_OK);
    mg_checkpoint c;
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(c.n_metadata == n - 1 && same_optim(opt, c.optimizer));
        const char *last = meta_lookup(&c, keys[n - 2]);
        CHECK(last && strcmp(last, meta[2 * (n - 2) + 1]) == 0);
        mg_checkpoint_free(&c);
    }
    CHECK(refused(mg_checkpoint_save(m, opt, refused_path, 1, meta, n), "refused", "4097 metadata keys", "4096"));
    /* the same key twice */
    const char *twice[] = {"a", "1", "b", "2", "a", "3"};
    CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, twice, 3), "refused", "'a' appears twice", NULL));
    /* strings that are not UTF-8 (the loader refuses a header that is not), as a key and as a value */
    const char *bad_utf8[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        const char *as_key[] = {"fine", "ok", bad_utf8[i], "v"}, *as_value[] = {"k", bad_utf8[i]};
        CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, as_key, 2), "refused", "key #1", "UTF-8"));
        CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, as_value, 1), "refused", "value #0", "UTF-8"));
    }
    free(keys);
    free(meta);
    mg_optim_free(opt);
    mg_mlp_free(m);
    unlink(path);
}

/* The header cap: metadata that alone is over it, one that the rest of the header tips over, and the
 * most that fits, saved and loaded back. */
static void test_save_header_limit(void) {
    char path[1024], refused_path[1024];
    path_in(path, sizeof path, "header.safetensors");
    path_in(refused_path, sizeof refused_path, "refused.safetensors");
    static const size_t sizes[] = {1};
    mg_mlp *m = make_model(1, 1, sizes, NULL, 8);
    size_t big = MG_FILE_MAX_HEADER;
    char *value = malloc(big + 1);
    memset(value, 'x', big);
    value[big] = '\0';
    const char *meta[] = {"big", value};
    CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, meta, 1), "refused", "100000000-byte limit", NULL));
    value[big - 40] = '\0'; /* the metadata fits; with the tensors' entries the header does not */
    CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, meta, 1), "refused", "header would be", NULL));
    memset(value, '"', big / 2 + 1); /* escaped, each quote takes two bytes */
    value[big / 2 + 1] = '\0';
    CHECK(refused(mg_checkpoint_save(m, NULL, refused_path, 0, meta, 1), "refused", "metadata of", NULL));
    memset(value, 'y', big);
    value[big - 1000] = '\0';
    if (CHECK(mg_checkpoint_save(m, NULL, path, 0, meta, 1) == MG_OK)) {
        mg_checkpoint c;
        if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
            const char *got = meta_lookup(&c, "big");
            CHECK(got && strcmp(got, value) == 0 && same_model(m, c.model));
            mg_checkpoint_free(&c);
        }
    }
    free(value);
    mg_mlp_free(m);
    unlink(path);
}

/* Settings load would refuse cannot get into an optimizer (every setter checks them as load does), so
 * save writes what it has and load takes it back. What a file cannot hold, parameters the optimizer skipped
 * for want of a gradient, save refuses (MG_ERR_STATE), leaving nothing behind. */
static void test_save_optimizer_settings(void) {
    char refused_path[1024], path[1024];
    path_in(refused_path, sizeof refused_path, "refused.safetensors");
    static const size_t sizes[] = {2};
    mg_mlp *m = make_model(2, 1, sizes, NULL, 9);
    const double lrs[] = {NAN, INFINITY, -1.0};
    mg_optim *opt = make_optim(mg_optim_defaults(MG_OPTIM_ADAM), m, 1);
    for (size_t i = 0; i < sizeof lrs / sizeof *lrs; i++)
        CHECK(mg_optim_set_lr(opt, lrs[i]) == MG_ERR_ARG && mg_optim_lr(opt) == mg_optim_defaults(MG_OPTIM_ADAM).lr);
    CHECK(mg_checkpoint_save(m, opt, path_in(path, sizeof path, "adam.safetensors"), 0, NULL, 0) == MG_OK);
    mg_checkpoint c;
    if (CHECK(mg_checkpoint_load(path, &c) == MG_OK)) {
        CHECK(same_optim(opt, c.optimizer));
        mg_checkpoint_free(&c);
    }
    unlink(path);
    size_t n = mg_mlp_num_params(m);
    double *params = calloc(2 * n, sizeof *params), *grads = params + n;
    unsigned char *has_grad = calloc(n, 1);
    if (CHECK(params && has_grad)) {
        has_grad[0] = 1; /* every other parameter has no gradient: skipped, as torch skips it */
        CHECK(mg_optim_step_masked(opt, params, grads, has_grad, n) == MG_OK && mg_optim_skipped(opt));
        CHECK(mg_checkpoint_save(m, opt, refused_path, 0, NULL, 0) == MG_ERR_STATE && message_contains("skipped") &&
              count_entries("refused") == 0);
        mg_clear_error();
    }
    free(params);
    free(has_grad);
    mg_optim_free(opt);
    mg_mlp_free(m);
}

/* saving to what is there and not a regular file: refused with `status` and `what`, and left as it was */
static int left_alone(mg_status s, mg_status status, const char *what, const char *path, mode_t type) {
    struct stat st;
    int ok = s == status && message_contains(what) && lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
    if (!ok) fprintf(stderr, "  %s: status %d, message '%s'\n", path, (int)s, mg_last_error());
    mg_clear_error();
    return ok;
}

static void test_save_special_targets(mg_mlp *m) {
    char fifo[1024], sock[1024], dev[1024], dir[1024], link[1024];
    mg_clear_error();
    CHECK(mkfifo(path_in(fifo, sizeof fifo, "t.fifo"), 0600) == 0);
    CHECK(left_alone(mg_mlp_save(m, fifo), MG_ERR_ARG, "FIFO", fifo, S_IFIFO));
    CHECK(symlink("t.fifo", path_in(link, sizeof link, "to_fifo")) == 0);
    CHECK(left_alone(mg_mlp_save(m, link), MG_ERR_ARG, "FIFO", fifo, S_IFIFO));
    CHECK(mkdir(path_in(dir, sizeof dir, "t.dir"), 0755) == 0);
    errno = 0;
    CHECK(left_alone(mg_mlp_save(m, dir), MG_ERR_IO, "folder", dir, S_IFDIR) && errno == EISDIR);
    CHECK(symlink("t.dir", path_in(link, sizeof link, "to_dir")) == 0);
    CHECK(left_alone(mg_mlp_save(m, link), MG_ERR_IO, "folder", link, S_IFLNK));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    path_in(sock, sizeof sock, "t.sock");
    if (fd >= 0 && strlen(sock) < sizeof addr.sun_path) {
        memcpy(addr.sun_path, sock, strlen(sock) + 1);
        if (CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0))
            CHECK(left_alone(mg_mlp_save(m, sock), MG_ERR_ARG, "socket", sock, S_IFSOCK));
    }
    if (fd >= 0) close(fd);
    /* a device: one of our own when we may make it (root), then /dev/null, which must stay a device. As
     * root a save that wrongly replaced devices would replace the system's /dev/null: it is tried only
     * once our own device was left alone, or where the process cannot write /dev anyway. */
    struct stat null_st;
    if (stat("/dev/null", &null_st) == 0 && S_ISCHR(null_st.st_mode)) {
        int own_left_alone = 0;
        if (mknod(path_in(dev, sizeof dev, "t.dev"), S_IFCHR | 0600, null_st.st_rdev) == 0)
            own_left_alone = CHECK(left_alone(mg_mlp_save(m, dev), MG_ERR_ARG, "character device", dev, S_IFCHR));
        if (mknod(path_in(dev, sizeof dev, "t.blk"), S_IFBLK | 0600, null_st.st_rdev) == 0) /* never opened */
            CHECK(left_alone(mg_mlp_save(m, dev), MG_ERR_ARG, "block device", dev, S_IFBLK));
        if (own_left_alone || access("/dev", W_OK) != 0)
            CHECK(left_alone(mg_mlp_save(m, "/dev/null"), MG_ERR_ARG, "character device", "/dev/null", S_IFCHR));
        else printf("test_modelfile: cannot check that /dev/null is left alone without risking it: skipped\n");
    }
    const char *names[] = {"t.fifo.tmp", "t.dir.tmp", "t.sock.tmp", "t.dev.tmp", "t.blk.tmp", "to_"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) CHECK(count_entries(names[i]) == (i == 5 ? 2 : 0));
}

static mode_t mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static int is_link_to(const char *link, const char *target) {
    char got[1024];
    ssize_t n = readlink(link, got, sizeof got - 1);
    if (n < 0) return 0;
    got[n] = '\0';
    return strcmp(got, target) == 0;
}

static int holds(const char *path, mg_mlp *m) {
    mg_mlp *back = mg_mlp_load(path);
    int same = same_model(m, back);
    mg_mlp_free(back);
    return same;
}

/* Symbolic links are followed to the file they name, which is replaced; the links stay. */
static void test_save_through_links(mg_mlp *a, mg_mlp *b) {
    char real[1024], link[1024], chain[1024], sub[1024], inner[1024], absolute[1024], dangling[1024];
    CHECK(mg_mlp_save(a, path_in(real, sizeof real, "real.safetensors")) == MG_OK);
    CHECK(chmod(real, 0640) == 0);
    CHECK(symlink("real.safetensors", path_in(link, sizeof link, "link.safetensors")) == 0);
    CHECK(mg_mlp_save(b, link) == MG_OK);
    CHECK(is_link_to(link, "real.safetensors") && holds(real, b) && mode_of(real) == 0640);
    CHECK(symlink("link.safetensors", path_in(chain, sizeof chain, "chain.safetensors")) == 0);
    CHECK(mg_mlp_save(a, chain) == MG_OK);
    CHECK(is_link_to(chain, "link.safetensors") && is_link_to(link, "real.safetensors") && holds(real, a));
    /* a relative link is read from its own folder */
    CHECK(mkdir(path_in(sub, sizeof sub, "sub"), 0755) == 0);
    CHECK(symlink("../real.safetensors", path_in(inner, sizeof inner, "sub/inner.safetensors")) == 0);
    CHECK(mg_mlp_save(b, inner) == MG_OK);
    CHECK(is_link_to(inner, "../real.safetensors") && holds(real, b));
    char *resolved = realpath(real, NULL);
    if (CHECK(resolved)) {
        CHECK(symlink(resolved, path_in(absolute, sizeof absolute, "absolute.safetensors")) == 0);
        CHECK(mg_mlp_save(a, absolute) == MG_OK && is_link_to(absolute, resolved) && holds(real, a));
        free(resolved);
    }
    CHECK(count_entries("real.safetensors") == 1 && count_entries("link.safetensors") == 1 && mode_of(real) == 0640);
    /* a dangling link: its target is made, as open() would */
    CHECK(symlink("made.safetensors", path_in(dangling, sizeof dangling, "dangling.safetensors")) == 0);
    CHECK(mg_mlp_save(b, dangling) == MG_OK);
    path_in(real, sizeof real, "made.safetensors");
    CHECK(is_link_to(dangling, "made.safetensors") && holds(real, b));
    /* ...into a folder that is not there: an error, nothing made */
    CHECK(symlink("no_such_folder/m.safetensors", path_in(dangling, sizeof dangling, "nowhere.safetensors")) == 0);
    errno = 0;
    CHECK(mg_mlp_save(b, dangling) == MG_ERR_IO && errno == ENOENT && access("no_such_folder", F_OK) != 0);
    mg_clear_error();
}

/* Links that never end: a loop, and a chain longer than MG_FILE_MAX_LINKS; the longest allowed works. */
static void test_save_link_loops(mg_mlp *m) {
    char a[1024], b[1024], name[64], next[64];
    CHECK(symlink("loop_b", path_in(a, sizeof a, "loop_a")) == 0);
    CHECK(symlink("loop_a", path_in(b, sizeof b, "loop_b")) == 0);
    errno = 0;
    CHECK(mg_mlp_save(m, a) == MG_ERR_IO && errno == ELOOP && message_contains("loop_a"));
    for (int i = 0; i <= MG_FILE_MAX_LINKS; i++) { /* hop_i -> hop_{i+1}; hop_{MAX+1} the file */
        snprintf(name, sizeof name, "hop_%d", i);
        snprintf(next, sizeof next, "hop_%d", i + 1);
        CHECK(symlink(next, path_in(a, sizeof a, name)) == 0);
    }
    CHECK(mg_mlp_save(m, path_in(a, sizeof a, "hop_1")) == MG_OK); /* MG_FILE_MAX_LINKS links */
    snprintf(name, sizeof name, "hop_%d", MG_FILE_MAX_LINKS + 1);
    CHECK(holds(path_in(b, sizeof b, name), m));
    errno = 0;
    CHECK(mg_mlp_save(m, path_in(a, sizeof a, "hop_0")) == MG_ERR_IO && errno == ELOOP);
    mg_clear_error();
}

/* A replaced file keeps its permissions whatever the umask (a private model stays private); a new file
 * gets 0666 less the umask; as root, the owner and group stay too. */
static void test_save_keeps_mode(mg_mlp *m) {
    char path[1024];
    path_in(path, sizeof path, "private.safetensors");
    mode_t old_mask = umask(022);
    CHECK(mg_mlp_save(m, path) == MG_OK && mode_of(path) == 0644);
    const mode_t modes[] = {0600, 0640, 0400, 0604, 0755};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        CHECK(chmod(path, modes[i]) == 0);
        CHECK(mg_mlp_save(m, path) == MG_OK);
        if (!CHECK(mode_of(path) == modes[i]))
            fprintf(stderr, "  a %o file became %o\n", (unsigned)modes[i], (unsigned)mode_of(path));
    }
    umask(077);
    CHECK(chmod(path, 0644) == 0 && mg_mlp_save(m, path) == MG_OK && mode_of(path) == 0644);
    unlink(path);
    CHECK(mg_mlp_save(m, path) == MG_OK && mode_of(path) == 0600);
    umask(old_mask);
    if (geteuid() == 0 && chown(path, 12345, 23456) == 0) {
        CHECK(mg_mlp_save(m, path) == MG_OK);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_uid == 12345 && st.st_gid == 23456 && (st.st_mode & 07777) == 0600);
    }
    CHECK(count_entries("private.safetensors") == 1);
    unlink(path);
}

/* A file name near NAME_MAX: the temporary name next to it must fit too. */
static void test_save_long_name(mg_mlp *m) {
    char name[256], path[1024];
    memset(name, 'n', 250);
    memcpy(name + 250 - 12, ".safetensors", 13);
    path_in(path, sizeof path, name);
    mg_clear_error();
    if (!CHECK(mg_mlp_save(m, path) == MG_OK)) fprintf(stderr, "  %s\n", mg_last_error());
    CHECK(holds(path, m) && count_entries("nnnn") == 1);
    unlink(path);
}

static void test_save_targets(void) {
    static const size_t sizes[] = {3, 1};
    mg_mlp *a = make_model(2, 2, sizes, NULL, 31), *b = make_model(2, 2, sizes, NULL, 32);
    test_save_special_targets(a);
    test_save_through_links(a, b);
    test_save_link_loops(a);
    test_save_keeps_mode(b);
    test_save_long_name(a);
    mg_mlp_free(a);
    mg_mlp_free(b);
}

/* Files are the same whatever the process locale: numbers are written with '.', and read back in a
 * locale whose decimal point is ','. Checked when such a locale is installed. */
static void test_locale(void) {
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "nl_NL.UTF-8", "ru_RU.UTF-8"};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !found; i++)
        if (setlocale(LC_NUMERIC, names[i]) && strcmp(localeconv()->decimal_point, ",") == 0) found = names[i];
    setlocale(LC_NUMERIC, "C");
    if (!found) {
        printf("test_modelfile: no locale with a decimal comma installed, locale check skipped\n");
        return;
    }
    char path[1024];
    path_in(path, sizeof path, "locale.safetensors");
    static const size_t sizes[] = {2};
    mg_mlp *m = make_model(2, 1, sizes, NULL, 6);
    mg_optim_config cfg = mg_optim_defaults(MG_OPTIM_ADAM);
    cfg.lr = 0.125, cfg.beta1 = 0.5;
    mg_optim *opt = make_optim(cfg, m, 2);
    mg_checkpoint c;
    /* written in C, read in the comma locale */
    CHECK(mg_checkpoint_save(m, opt, path, 1, NULL, 0) == MG_OK);
    setlocale(LC_NUMERIC, found);
    mg_status s = mg_checkpoint_load(path, &c);
    setlocale(LC_NUMERIC, "C");
    if (!CHECK(s == MG_OK)) fprintf(stderr, "  loading under %s: %s\n", found, mg_last_error());
    else {
        CHECK(same_optim(opt, c.optimizer));
        mg_checkpoint_free(&c);
    }
    /* written in the comma locale, read in C */
    setlocale(LC_NUMERIC, found);
    CHECK(mg_checkpoint_save(m, opt, path, 1, NULL, 0) == MG_OK);
    setlocale(LC_NUMERIC, "C");
    s = mg_checkpoint_load(path, &c);
    if (!CHECK(s == MG_OK)) fprintf(stderr, "  a file saved under %s, loaded in C: %s\n", found, mg_last_error());
    else {
        CHECK(same_optim(opt, c.optimizer));
        mg_checkpoint_free(&c);
    }
    mg_optim_free(opt);
    mg_mlp_free(m);
    unlink(path);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_modelfile_XXXXXX", base && *base ? base : ".");
    if (!mkdtemp(g_dir)) {
        snprintf(g_dir, sizeof g_dir, "test_modelfile_XXXXXX");
        if (!mkdtemp(g_dir)) {
            fprintf(stderr, "test_modelfile: cannot make a scratch folder\n");
            return 1;
        }
    }
    test_round_trips();
    test_optimizer_config_edges();
    test_metadata();
    test_mlp_save_load();
    test_resume();
    test_sizes_and_framing();
    test_bad_json();
    test_bad_tensors();
    test_bad_metadata();
    test_truncations_and_corruptions();
    test_files();
    test_fifo();
    test_wrong_optimizer();
    test_locale();
    test_save_layer_limit();
    test_save_metadata_limits();
    test_save_header_limit();
    test_save_optimizer_settings();
    test_save_targets();
    remove_tree(g_dir);
    return check_finish("test_modelfile");
}
