/* modelfile.c: models and checkpoints as safetensors files.
 *
 * The format: 8 bytes of little-endian header size N, N bytes of JSON, then the tensors' bytes. The
 * header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data
 * part) and "__metadata__" to a flat object of strings.
 *
 * The loader reads untrusted bytes, so it is written to fail cleanly: a capped header, a strict JSON
 * reader for exactly this shape of document (no recursion: the nesting is fixed), sizes multiplied with
 * overflow checks, and tensors that must tile the data part exactly. */
#define _POSIX_C_SOURCE 200809L
#include "nn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    MAX_HEADER = 100 * 1000 * 1000, /* safetensors' own cap */
    MAX_DIMS = 8,
    MAX_TENSORS = 4096,
    MAX_METADATA = 4096,
};
#define MAX_FILE ((uint64_t)4 << 30)

/* Numbers in the header are written and read in the C locale whatever the program set (a decimal comma
 * would make files unreadable elsewhere): uselocale() switches this thread only. */
typedef struct {
    locale_t c, previous;
} c_numbers;

static void c_numbers_begin(c_numbers *l) {
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    l->previous = l->c ? uselocale(l->c) : (locale_t)0;
}

static void c_numbers_end(c_numbers *l) {
    if (!l->c) return;
    uselocale(l->previous);
    freelocale(l->c);
}

/* ---- a growable text buffer for writing the header ---- */

typedef struct {
    char *data;
    size_t size, capacity;
    int failed;
} text;

static void text_add(text *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(t->data ? t->data + t->size : NULL, t->data ? t->capacity - t->size : 0, fmt, args);
        va_end(args);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->data && t->size + (size_t)n < t->capacity) {
            t->size += (size_t)n;
            return;
        }
        size_t capacity = (t->capacity + (size_t)n + 1) * 2;
        char *grown = mg__realloc(t->data, t->capacity, capacity);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->capacity = capacity;
    }
}

/* a JSON string literal, escaping what JSON requires */
static void text_add_string(text *t, const char *s) {
    text_add(t, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') text_add(t, "\\%c", c);
        else if (c < 0x20) text_add(t, "\\u%04x", c);
        else text_add(t, "%c", c);
    }
    text_add(t, "\"");
}

/* ---- what the file holds, as we describe it in the header ---- */

static const char *const our_keys[] = {
    "format", "format_version", "n_inputs", "sizes", "activations", "step", "optimizer", "optimizer.lr",
    "optimizer.momentum", "optimizer.dampening", "optimizer.nesterov", "optimizer.beta1", "optimizer.beta2",
    "optimizer.eps", "optimizer.weight_decay", "optimizer.steps",
};

static int is_our_key(const char *key) {
    for (size_t i = 0; i < sizeof our_keys / sizeof *our_keys; i++)
        if (strcmp(key, our_keys[i]) == 0) return 1;
    return 0;
}

/* the nn.Sequential index of each Linear: activations take an index of their own */
static size_t sequential_index(const mg_mlp *m, size_t layer) {
    size_t index = 0;
    for (size_t l = 0; l < layer; l++) index += 1 + (m->acts[l] != MG_ACT_LINEAR);
    return index;
}

static const char *optim_kind_name(mg_optim_kind kind) {
    return kind == MG_OPTIM_ADAM ? "adam" : kind == MG_OPTIM_ADAMW ? "adamw" : "sgd";
}

/* ---- saving ---- */

static mg_status write_all(int fd, const void *data, size_t size, const char *path) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return mg__fail(MG_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        p += n;
        size -= (size_t)n;
    }
    return MG_OK;
}

static void put_le64(unsigned char *out, uint64_t x) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(x >> (8 * i));
}

static mg_status write_doubles(int fd, const double *values, size_t count, const char *path) {
    unsigned char buffer[8 * 512];
    while (count > 0) {
        size_t n = count < 512 ? count : 512;
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, &values[i], 8);
            put_le64(buffer + 8 * i, bits);
        }
        mg_status status = write_all(fd, buffer, 8 * n, path);
        if (status != MG_OK) return status;
        values += n;
        count -= n;
    }
    return MG_OK;
}

/* The header: tensors in file order (weights and biases by layer, then the optimizer state), then the
 * metadata. Padded with spaces so the data starts 8-byte aligned, as the safetensors writer does. */
static int build_header(text *h, const mg_mlp *m, const mg_optim *opt, uint64_t step, const char *const *metadata,
                        size_t n_metadata) {
    c_numbers numbers;
    c_numbers_begin(&numbers);
    size_t offset = 0, width = m->n_in;
    text_add(h, "{");
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t index = sequential_index(m, l), out = m->sizes[l];
        text_add(h, "\"%zu.weight\":{\"dtype\":\"F64\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]},", index, out,
                 width, offset, offset + 8 * out * width);
        offset += 8 * out * width;
        text_add(h, "\"%zu.bias\":{\"dtype\":\"F64\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},", index, out, offset,
                 offset + 8 * out);
        offset += 8 * out;
        width = out;
    }
    if (opt) {
        size_t n = mg_optim_state_size(opt);
        text_add(h, "\"optimizer.state\":{\"dtype\":\"F64\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},", n, offset,
                 offset + 8 * n);
    }
    text_add(h, "\"__metadata__\":{\"format\":\"micrograd-c\",\"format_version\":\"1\",\"n_inputs\":\"%zu\",", m->n_in);
    text_add(h, "\"sizes\":\"");
    for (size_t l = 0; l < m->n_layers; l++) text_add(h, "%s%zu", l ? "," : "", m->sizes[l]);
    text_add(h, "\",\"activations\":\"");
    for (size_t l = 0; l < m->n_layers; l++) text_add(h, "%s%s", l ? "," : "", mg_activation_name(m->acts[l]));
    text_add(h, "\",\"step\":\"%" PRIu64 "\"", step);
    if (opt) {
        const mg_optim_config *c = mg_optim_get_config(opt);
        text_add(h, ",\"optimizer\":\"%s\",\"optimizer.lr\":\"%.17g\",\"optimizer.momentum\":\"%.17g\","
                    "\"optimizer.dampening\":\"%.17g\",\"optimizer.nesterov\":\"%d\",\"optimizer.beta1\":\"%.17g\","
                    "\"optimizer.beta2\":\"%.17g\",\"optimizer.eps\":\"%.17g\",\"optimizer.weight_decay\":\"%.17g\","
                    "\"optimizer.steps\":\"%" PRIu64 "\"",
                 optim_kind_name(c->kind), c->lr, c->momentum, c->dampening, c->nesterov, c->beta1, c->beta2, c->eps,
                 c->weight_decay, mg_optim_steps(opt));
    }
    for (size_t i = 0; i < n_metadata; i++) {
        text_add(h, ",");
        text_add_string(h, metadata[2 * i]);
        text_add(h, ":");
        text_add_string(h, metadata[2 * i + 1]);
    }
    text_add(h, "}}");
    while (!h->failed && (8 + h->size) % 8 != 0) text_add(h, " ");
    c_numbers_end(&numbers);
    return !h->failed;
}

mg_status mg_checkpoint_save(const char *path, const mg_mlp *m, const mg_optim *opt, uint64_t step,
                             const char *const *metadata, size_t n_metadata) {
    if (!path || !m || (n_metadata && !metadata)) return mg__fail(MG_ERR_NULL, "mg_checkpoint_save: an argument is NULL");
    for (size_t i = 0; i < 2 * n_metadata; i++)
        if (!metadata[i]) return mg__fail(MG_ERR_NULL, "mg_checkpoint_save: metadata string %zu is NULL", i);
    for (size_t i = 0; i < n_metadata; i++)
        if (is_our_key(metadata[2 * i]) || strcmp(metadata[2 * i], "__metadata__") == 0)
            return mg__fail(MG_ERR_ARG, "mg_checkpoint_save: metadata key '%.60s' is reserved", metadata[2 * i]);
    if (opt && mg_optim_state_size(opt) != (mg_optim_get_config(opt)->kind == MG_OPTIM_SGD ? 1 : 2) * m->n_params)
        return mg__fail(MG_ERR_ARG, "mg_checkpoint_save: the optimizer was made for another number of parameters");
    if (opt && mg_optim_skipped(opt))
        return mg__fail(MG_ERR_STATE, "mg_checkpoint_save: the optimizer skipped parameters that had no gradient, "
                                      "which a checkpoint cannot record");

    text header = {0};
    if (!build_header(&header, m, opt, step, metadata, n_metadata)) {
        mg__free(header.data, header.capacity);
        return mg__fail(MG_ERR_NOMEM, "mg_checkpoint_save: out of memory");
    }

    /* write a temporary file next to the target, then rename it into place; open() with mode 0666 lets
     * the umask decide the file's permissions, as for any file the program writes (mkstemp's are 0600) */
    size_t path_len = strlen(path), tmp_size = path_len + 48;
    char *tmp = mg__alloc(tmp_size);
    if (!tmp) {
        mg__free(header.data, header.capacity);
        return mg__fail(MG_ERR_NOMEM, "mg_checkpoint_save: out of memory");
    }
    mg_status status = MG_OK;
    static _Atomic unsigned long counter;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, tmp_size, "%s.tmp.%ld.%lu", path, (long)getpid(), (unsigned long)++counter);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        status = mg__fail(MG_ERR_IO, "cannot create a file next to %s: %s", path, strerror(errno));
        goto done;
    }
    unsigned char size_bytes[8];
    put_le64(size_bytes, header.size);
    status = write_all(fd, size_bytes, 8, path);
    if (status == MG_OK) status = write_all(fd, header.data, header.size, path);
    /* tensors in the header's order: per layer the weight [out, in] then the bias; our rows hold
     * a neuron's weights followed by its bias */
    size_t width = m->n_in;
    for (size_t l = 0; l < m->n_layers && status == MG_OK; l++) {
        const double *rows = m->params + m->offsets[l];
        for (size_t j = 0; j < m->sizes[l] && status == MG_OK; j++)
            status = write_doubles(fd, rows + j * (width + 1), width, path);
        for (size_t j = 0; j < m->sizes[l] && status == MG_OK; j++)
            status = write_doubles(fd, rows + j * (width + 1) + width, 1, path);
        width = m->sizes[l];
    }
    if (status == MG_OK && opt)
        status = write_doubles(fd, mg_optim_state((mg_optim *)opt), mg_optim_state_size(opt), path);
    if (status == MG_OK && fsync(fd) != 0) status = mg__fail(MG_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
    if (close(fd) != 0 && status == MG_OK) status = mg__fail(MG_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (status == MG_OK && rename(tmp, path) != 0)
        status = mg__fail(MG_ERR_IO, "cannot replace %s: %s", path, strerror(errno));
    if (status != MG_OK) {
        unlink(tmp);
        goto done;
    }
    /* make the rename itself durable: sync the folder */
    char *slash = strrchr(tmp, '/');
    if (slash) *(slash == tmp ? slash + 1 : slash) = '\0';
    int dir = open(slash ? tmp : ".", O_RDONLY);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
done:
    mg__free(tmp, tmp_size);
    mg__free(header.data, header.capacity);
    return status;
}

mg_status mg_mlp_save(const mg_mlp *m, const char *path) { return mg_checkpoint_save(path, m, NULL, 0, NULL, 0); }

/* ---- a strict reader for the header's JSON ---- */

typedef struct {
    const char *p, *end;
    const char *error; /* the first problem, or NULL */
} reader;

static void skip_space(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int expect(reader *r, char c) {
    skip_space(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    if (!r->error) r->error = "malformed JSON header";
    return 0;
}

static int peek(reader *r, char c) {
    skip_space(r);
    return r->p < r->end && *r->p == c;
}

static void utf8_put(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) out[(*n)++] = (char)cp;
    else if (cp < 0x800) out[(*n)++] = (char)(0xC0 | cp >> 6), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
        out[(*n)++] = (char)(0xE0 | cp >> 12), out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    else
        out[(*n)++] = (char)(0xF0 | cp >> 18), out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A JSON string, decoded into a new NUL-terminated buffer (the decoded form is never longer). */
static char *read_string(reader *r) {
    if (!expect(r, '"')) return NULL;
    const char *start = r->p;
    while (r->p < r->end && *r->p != '"') r->p += *r->p == '\\' ? 2 : 1;
    if (r->p >= r->end) {
        if (!r->error) r->error = "unterminated string in the JSON header";
        return NULL;
    }
    size_t raw = (size_t)(r->p - start), n = 0;
    r->p++;
    char *out = mg__alloc(raw + 1);
    if (!out) {
        if (!r->error) r->error = "out of memory reading the header";
        return NULL;
    }
    for (const char *p = start; p < start + raw; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) goto bad;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        switch (*++p) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (start + raw - p < 5 || !hex4(p + 1, &cp)) goto bad;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair: \uD83D\uDE00 */
                if (start + raw - p < 7 || p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, &low) || low < 0xDC00 ||
                    low >= 0xE000)
                    goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                goto bad;
            }
            if (cp == 0) goto bad; /* a NUL would cut the C string short */
            utf8_put(out, &n, cp);
            break;
        }
        default: goto bad;
        }
    }
    out[n] = '\0';
    return out;
bad:
    mg__free(out, raw + 1);
    if (!r->error) r->error = "bad string in the JSON header";
    return NULL;
}

static void free_string(char *s) {
    if (s) mg__free(s, strlen(s) + 1);
}

/* A non-negative integer that fits in 2^53, as JSON writers can represent exactly. */
static int read_uint(reader *r, uint64_t *out) {
    skip_space(r);
    uint64_t v = 0;
    const char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        v = v * 10 + (uint64_t)(*r->p - '0');
        if (v > ((uint64_t)1 << 53)) {
            if (!r->error) r->error = "a number in the header is too large";
            return 0;
        }
        r->p++;
    }
    if (r->p == start || (r->p - start > 1 && *start == '0')) {
        if (!r->error) r->error = "expected a non-negative integer in the header";
        return 0;
    }
    *out = v;
    return 1;
}

typedef struct {
    char *name;
    int is_f64;
    char *dtype;
    size_t ndim;
    uint64_t shape[MAX_DIMS];
    uint64_t begin, end;
} tensor_info;

typedef struct {
    tensor_info *tensors;
    size_t n_tensors, tensors_capacity;
    char **meta; /* key, value, key, value, ... */
    size_t n_meta, meta_capacity;
} header_info;

/* Room for one more tensor or metadata pair, growing by doubling up to the limits. */
static int grow(void **items, size_t *capacity, size_t used, size_t item_size, size_t limit) {
    if (used < *capacity) return 1;
    if (used >= limit) return 0;
    size_t wanted = *capacity ? 2 * *capacity : 16;
    if (wanted > limit) wanted = limit;
    void *grown = mg__realloc(*items, *capacity * item_size, wanted * item_size);
    if (!grown) return 0;
    memset((char *)grown + *capacity * item_size, 0, (wanted - *capacity) * item_size);
    *items = grown;
    *capacity = wanted;
    return 1;
}

static void header_free(header_info *h) {
    for (size_t i = 0; i < h->n_tensors; i++) {
        free_string(h->tensors[i].name);
        free_string(h->tensors[i].dtype);
    }
    for (size_t i = 0; i < 2 * h->n_meta; i++) free_string(h->meta[i]);
    mg__free(h->tensors, h->tensors_capacity * sizeof *h->tensors);
    mg__free(h->meta, h->meta_capacity * 2 * sizeof *h->meta);
}

/* {"dtype": "F64", "shape": [..], "data_offsets": [b, e]} in any key order */
static int read_tensor_info(reader *r, tensor_info *t) {
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!expect(r, '{')) return 0;
    if (peek(r, '}')) {
        r->p++;
        r->error = "a tensor entry lacks dtype, shape and data_offsets";
        return 0;
    }
    do {
        char *key = read_string(r);
        if (!key || !expect(r, ':')) {
            free_string(key);
            return 0;
        }
        if (strcmp(key, "dtype") == 0 && !have_dtype) {
            have_dtype = 1;
            t->dtype = read_string(r);
            if (!t->dtype) return free_string(key), 0;
            t->is_f64 = strcmp(t->dtype, "F64") == 0;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            if (!expect(r, '[')) return free_string(key), 0;
            if (!peek(r, ']')) {
                do {
                    if (t->ndim == MAX_DIMS) {
                        r->error = "a tensor has too many dimensions";
                        return free_string(key), 0;
                    }
                    if (!read_uint(r, &t->shape[t->ndim++])) return free_string(key), 0;
                } while (peek(r, ',') && expect(r, ','));
            }
            if (!expect(r, ']')) return free_string(key), 0;
        } else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
            have_offsets = 1;
            if (!expect(r, '[') || !read_uint(r, &t->begin) || !expect(r, ',') || !read_uint(r, &t->end) ||
                !expect(r, ']'))
                return free_string(key), 0;
        } else {
            r->error = "a tensor entry has an unknown or repeated key";
            return free_string(key), 0;
        }
        free_string(key);
    } while (peek(r, ',') && expect(r, ','));
    if (!expect(r, '}')) return 0;
    if (!have_dtype || !have_shape || !have_offsets) {
        r->error = "a tensor entry lacks dtype, shape or data_offsets";
        return 0;
    }
    return 1;
}

static int read_header(reader *r, header_info *h) {
    int have_meta = 0;
    if (!expect(r, '{')) return 0;
    if (peek(r, '}')) {
        r->p++;
        return 1;
    }
    do {
        char *name = read_string(r);
        if (!name || !expect(r, ':')) return free_string(name), 0;
        if (strcmp(name, "__metadata__") == 0) {
            free_string(name);
            if (have_meta) return r->error = "__metadata__ appears twice", 0;
            have_meta = 1;
            if (!expect(r, '{')) return 0;
            if (peek(r, '}')) {
                r->p++;
                continue;
            }
            do {
                if (!grow((void **)&h->meta, &h->meta_capacity, h->n_meta, 2 * sizeof *h->meta, MAX_METADATA))
                    return r->error = h->n_meta == MAX_METADATA ? "too many metadata entries"
                                                                : "out of memory reading the header", 0;
                char *key = read_string(r);
                if (!key) return 0;
                for (size_t i = 0; i < h->n_meta; i++)
                    if (strcmp(h->meta[2 * i], key) == 0)
                        return free_string(key), r->error = "a metadata key appears twice", 0;
                h->meta[2 * h->n_meta] = key;
                h->meta[2 * h->n_meta + 1] = NULL;
                h->n_meta++;
                if (!expect(r, ':')) return 0;
                if (!(h->meta[2 * h->n_meta - 1] = read_string(r))) return 0;
            } while (peek(r, ',') && expect(r, ','));
            if (!expect(r, '}')) return 0;
            continue;
        }
        if (!grow((void **)&h->tensors, &h->tensors_capacity, h->n_tensors, sizeof *h->tensors, MAX_TENSORS))
            return free_string(name), r->error = h->n_tensors == MAX_TENSORS ? "too many tensors"
                                                                             : "out of memory reading the header", 0;
        tensor_info *t = &h->tensors[h->n_tensors++];
        t->name = name;
        if (!read_tensor_info(r, t)) return 0;
    } while (peek(r, ',') && expect(r, ','));
    if (!expect(r, '}')) return 0;
    skip_space(r);
    if (r->p != r->end) return r->error = "unexpected text after the JSON header", 0;
    return 1;
}

/* ---- loading ---- */

/* Is s[0..n) well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF)? safetensors
 * headers must be; checking once here keeps every string we hand out valid. */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || n - i < len) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        static const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        i += len;
    }
    return 1;
}

static const char *meta_get(const header_info *h, const char *key) {
    for (size_t i = 0; i < h->n_meta; i++)
        if (strcmp(h->meta[2 * i], key) == 0) return h->meta[2 * i + 1];
    return NULL;
}

static const tensor_info *find_tensor(const header_info *h, const char *name) {
    for (size_t i = 0; i < h->n_tensors; i++)
        if (strcmp(h->tensors[i].name, name) == 0) return &h->tensors[i];
    return NULL;
}

static double get_f64(const unsigned char *p) {
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = bits << 8 | p[i];
    double x;
    memcpy(&x, &bits, 8);
    return x;
}

/* a comma-separated list of positive sizes, at most `max` of them */
static int parse_sizes(const char *text_in, size_t *out, size_t max, size_t *count) {
    *count = 0;
    const char *p = text_in;
    while (*p) {
        if (*count == max) return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno || v == 0 || v > ((size_t)1 << 24) || *p == '-' || *p == '+' || *p == ' ') return 0;
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
    c_numbers numbers;
    c_numbers_begin(&numbers);
    errno = 0;
    *out = strtod(s, &end);
    int range_error = errno == ERANGE;
    c_numbers_end(&numbers);
    /* ERANGE also flags subnormal results, which are exact enough to keep; only overflow is an error */
    return end != s && *end == '\0' && (!range_error || fabs(*out) <= DBL_MIN);
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    *out = v;
    return *end == '\0' && errno == 0;
}

static int compare_begin(const void *a, const void *b) {
    const tensor_info *x = *(const tensor_info *const *)a, *y = *(const tensor_info *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

#define FAIL(...)                                                                                                 \
    do {                                                                                                          \
        status = mg__fail(MG_ERR_ARG, __VA_ARGS__);                                                               \
        goto done;                                                                                                \
    } while (0)

mg_status mg_checkpoint_load_buffer(const void *data, size_t size, mg_checkpoint *out) {
    if (!data || !out) return mg__fail(MG_ERR_NULL, "mg_checkpoint_load_buffer: an argument is NULL");
    memset(out, 0, sizeof *out);
    const unsigned char *bytes = data;
    mg_status status = MG_OK;
    header_info h = {0};
    const tensor_info **order = NULL;
    mg_mlp *m = NULL;
    mg_optim *opt = NULL;

    if (size < 8) FAIL("not a safetensors file: %zu bytes, shorter than the 8-byte header size", size);
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; i--) header_size = header_size << 8 | bytes[i];
    if (header_size > MAX_HEADER) FAIL("safetensors header of %" PRIu64 " bytes is over the %d-byte limit", header_size, MAX_HEADER);
    if (header_size > size - 8) FAIL("truncated file: the header needs %" PRIu64 " bytes, %zu are there", header_size, size - 8);
    if (header_size == 0 || bytes[8] != '{') FAIL("the safetensors header is not a JSON object");
    for (uint64_t i = 0; i < header_size; i++)
        if (bytes[8 + i] == 0) FAIL("the safetensors header contains a NUL byte");
    if (!valid_utf8(bytes + 8, (size_t)header_size)) FAIL("the safetensors header is not valid UTF-8");

    reader r = {.p = (const char *)bytes + 8, .end = (const char *)bytes + 8 + header_size};
    if (!read_header(&r, &h)) FAIL("bad safetensors header: %s (near byte %zu)", r.error ? r.error : "malformed",
                                   (size_t)(r.p - (const char *)bytes));
    const unsigned char *payload = bytes + 8 + header_size;
    size_t payload_size = size - 8 - (size_t)header_size;

    /* every tensor: F64, a size that matches its shape, inside the data; together they tile it exactly */
    if (h.n_tensors == 0) FAIL("the file holds no tensors");
    order = mg__alloc(h.n_tensors * sizeof *order);
    if (!order) {
        status = mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
        goto done;
    }
    for (size_t i = 0; i < h.n_tensors; i++) {
        const tensor_info *t = &h.tensors[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(h.tensors[j].name, t->name) == 0) FAIL("tensor '%.60s' appears twice", t->name);
        if (!t->is_f64) FAIL("tensor '%.60s' has dtype %.20s; micrograd-c models are F64", t->name, t->dtype);
        uint64_t elements = 1;
        for (size_t d = 0; d < t->ndim; d++) {
            if (t->shape[d] != 0 && elements > UINT64_MAX / 8 / t->shape[d])
                FAIL("tensor '%.60s' is impossibly large", t->name);
            elements *= t->shape[d];
        }
        if (t->begin > t->end || t->end > payload_size)
            FAIL("tensor '%.60s' has data_offsets [%" PRIu64 ", %" PRIu64 "] outside the %zu data bytes", t->name,
                 t->begin, t->end, payload_size);
        if (t->end - t->begin != 8 * elements)
            FAIL("tensor '%.60s' has %" PRIu64 " bytes for %" PRIu64 " float64 values", t->name, t->end - t->begin,
                 elements);
        order[i] = t;
    }
    qsort(order, h.n_tensors, sizeof *order, compare_begin);
    uint64_t expected = 0;
    for (size_t i = 0; i < h.n_tensors; i++) {
        if (order[i]->begin != expected)
            FAIL("tensor '%.60s' starts at byte %" PRIu64 " of the data, expected %" PRIu64 " (tensors must not "
                 "overlap or leave gaps)", order[i]->name, order[i]->begin, expected);
        expected = order[i]->end;
    }
    if (expected != payload_size)
        FAIL("%" PRIu64 " trailing bytes after the last tensor", (uint64_t)payload_size - expected);

    const char *version = meta_get(&h, "format_version");
    if (version && strcmp(version, "1") != 0)
        FAIL("the file is format version %.20s of micrograd-c; this library reads version 1", version);

    /* the network's shape: from our metadata, or read off the tensors of a plain state_dict */
    size_t sizes[256], n_layers = 0, n_inputs = 0;
    mg_activation acts[256];
    const char *n_inputs_text = meta_get(&h, "n_inputs"), *sizes_text = meta_get(&h, "sizes");
    const char *acts_text = meta_get(&h, "activations");
    size_t seq = 0;
    for (;;) { /* Linear layers at nn.Sequential indices 0, then +1 or +2 (an activation between) */
        char name[64];
        snprintf(name, sizeof name, "%zu.weight", seq);
        const tensor_info *w = find_tensor(&h, name);
        if (!w) {
            snprintf(name, sizeof name, "%zu.weight", seq + 1);
            if (n_layers > 0 && (w = find_tensor(&h, name))) {
                seq++;
                acts[n_layers - 1] = MG_ACT_RELU; /* an activation module sat between: ReLU unless told */
            }
        }
        if (!w) break;
        if (n_layers == 256) FAIL("more than 256 layers");
        if (w->ndim != 2 || w->shape[0] == 0 || w->shape[1] == 0 || w->shape[0] > (1u << 24) || w->shape[1] > (1u << 24))
            FAIL("tensor '%.60s' must be a non-empty 2-D weight [out, in]", w->name);
        if (n_layers > 0 && w->shape[1] != sizes[n_layers - 1])
            FAIL("tensor '%.60s' takes %" PRIu64 " inputs but the layer before has %zu outputs", w->name, w->shape[1],
                 sizes[n_layers - 1]);
        if (n_layers == 0) n_inputs = (size_t)w->shape[1];
        sizes[n_layers] = (size_t)w->shape[0];
        acts[n_layers] = MG_ACT_LINEAR;
        n_layers++;
        seq++;
    }
    if (n_layers == 0) FAIL("no layer found: expected tensors named 0.weight, 0.bias, ...");
    if (n_inputs_text || sizes_text || acts_text) { /* ours: the metadata must agree with the tensors */
        size_t meta_sizes[256], count = 0;
        uint64_t meta_inputs;
        if (!parse_u64(n_inputs_text, &meta_inputs) || meta_inputs != n_inputs)
            FAIL("metadata n_inputs '%.20s' does not match the first weight (%zu inputs)",
                 n_inputs_text ? n_inputs_text : "(missing)", n_inputs);
        if (!sizes_text || !parse_sizes(sizes_text, meta_sizes, 256, &count) || count != n_layers ||
            memcmp(meta_sizes, sizes, n_layers * sizeof *sizes) != 0)
            FAIL("metadata sizes '%.60s' do not match the weight tensors", sizes_text ? sizes_text : "(missing)");
        const char *p = acts_text ? acts_text : "";
        for (size_t l = 0; l < n_layers; l++) {
            size_t len = strcspn(p, ",");
            int found = 0;
            for (int a = 0; a < MG_ACT_COUNT && !found; a++) {
                const char *name = mg_activation_name((mg_activation)a);
                if (strlen(name) == len && strncmp(p, name, len) == 0) acts[l] = (mg_activation)a, found = 1;
            }
            if (!found || (l + 1 < n_layers && p[len] != ',') || (l + 1 == n_layers && p[len] != '\0'))
                FAIL("metadata activations '%.60s' do not name %zu activations", acts_text ? acts_text : "(missing)",
                     n_layers);
            p += len + (p[len] == ',');
        }
    }
    /* recompute the Sequential numbering from the activations and check the names match it */
    if (!(m = mg_mlp_new(n_inputs, n_layers, sizes, acts))) {
        status = MG_ERR_ARG;
        goto done;
    }
    size_t expected_tensors = 2 * n_layers, width = n_inputs;
    for (size_t l = 0; l < n_layers; l++) {
        char name[64];
        size_t index = sequential_index(m, l);
        snprintf(name, sizeof name, "%zu.weight", index);
        const tensor_info *w = find_tensor(&h, name);
        snprintf(name, sizeof name, "%zu.bias", index);
        const tensor_info *b = find_tensor(&h, name);
        if (!w || w->shape[0] != sizes[l] || w->shape[1] != width)
            FAIL("layer %zu: expected tensor '%zu.weight' of shape [%zu, %zu]", l, index, sizes[l], width);
        if (!b || b->ndim != 1 || b->shape[0] != sizes[l])
            FAIL("layer %zu: expected tensor '%s' of shape [%zu]", l, name, sizes[l]);
        double *rows = m->params + m->offsets[l];
        for (size_t j = 0; j < sizes[l]; j++) {
            for (size_t i = 0; i < width; i++)
                rows[j * (width + 1) + i] = get_f64(payload + w->begin + 8 * (j * width + i));
            rows[j * (width + 1) + width] = get_f64(payload + b->begin + 8 * j);
        }
        width = sizes[l];
    }

    /* a checkpoint: the optimizer and the step */
    const tensor_info *state = find_tensor(&h, "optimizer.state");
    const char *kind = meta_get(&h, "optimizer");
    if (state || kind) {
        mg_optim_config c = {0};
        uint64_t steps = 0, nesterov = 0;
        if (!kind || !state) FAIL("a checkpoint needs both the optimizer metadata and the optimizer.state tensor");
        if (strcmp(kind, "sgd") == 0) c.kind = MG_OPTIM_SGD;
        else if (strcmp(kind, "adam") == 0) c.kind = MG_OPTIM_ADAM;
        else if (strcmp(kind, "adamw") == 0) c.kind = MG_OPTIM_ADAMW;
        else FAIL("unknown optimizer '%.20s' in the metadata", kind);
        if (!parse_double(meta_get(&h, "optimizer.lr"), &c.lr) ||
            !parse_double(meta_get(&h, "optimizer.momentum"), &c.momentum) ||
            !parse_double(meta_get(&h, "optimizer.dampening"), &c.dampening) ||
            !parse_u64(meta_get(&h, "optimizer.nesterov"), &nesterov) ||
            !parse_double(meta_get(&h, "optimizer.beta1"), &c.beta1) ||
            !parse_double(meta_get(&h, "optimizer.beta2"), &c.beta2) ||
            !parse_double(meta_get(&h, "optimizer.eps"), &c.eps) ||
            !parse_double(meta_get(&h, "optimizer.weight_decay"), &c.weight_decay) ||
            !parse_u64(meta_get(&h, "optimizer.steps"), &steps))
            FAIL("the optimizer metadata is incomplete or not numeric");
        if (nesterov > 1) FAIL("the checkpoint's optimizer: nesterov must be 0 or 1, got %llu",
                               (unsigned long long)nesterov);
        c.nesterov = (int)nesterov;
        /* the same rules as every other way of setting an optimizer */
        char why[256]; /* a copy: the message is rewritten from it */
        if (mg_optim_check_config(&c) != MG_OK) {
            snprintf(why, sizeof why, "%s", mg_last_error());
            FAIL("the checkpoint's optimizer: %s", why);
        }
        if (!(opt = mg_optim_new(&c, m->n_params))) {
            status = mg_last_status();
            goto done;
        }
        if (state->ndim != 1 || state->shape[0] != mg_optim_state_size(opt))
            FAIL("optimizer.state has the wrong size for a %s optimizer of %zu parameters", kind, m->n_params);
        double *buffers = mg_optim_state(opt); /* read in place, then checked as mg_optim_set_state checks */
        for (size_t i = 0; i < mg_optim_state_size(opt); i++) buffers[i] = get_f64(payload + state->begin + 8 * i);
        if (mg_optim_set_state(opt, steps, buffers, mg_optim_state_size(opt), NULL) != MG_OK) {
            snprintf(why, sizeof why, "%s", mg_last_error());
            FAIL("the checkpoint's %s", why);
        }
        expected_tensors++;
    }
    if (h.n_tensors != expected_tensors) FAIL("the file holds %zu tensors, a model of this shape has %zu",
                                              h.n_tensors, expected_tensors);
    const char *step_text = meta_get(&h, "step");
    if (step_text && !parse_u64(step_text, &out->step)) FAIL("metadata step '%.30s' is not a number", step_text);

    /* hand over the caller's metadata: every key that is not ours */
    size_t n_user = 0;
    for (size_t i = 0; i < h.n_meta; i++) n_user += !is_our_key(h.meta[2 * i]);
    if (n_user) {
        out->metadata = mg__alloc(2 * n_user * sizeof *out->metadata);
        if (!out->metadata) {
            status = mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
            goto done;
        }
        for (size_t i = 0; i < h.n_meta; i++) {
            if (is_our_key(h.meta[2 * i])) continue;
            out->metadata[2 * out->n_metadata] = h.meta[2 * i];
            out->metadata[2 * out->n_metadata + 1] = h.meta[2 * i + 1];
            h.meta[2 * i] = h.meta[2 * i + 1] = NULL; /* moved */
            out->n_metadata++;
        }
    }
    out->model = m;
    out->optimizer = opt;
    m = NULL;
    opt = NULL;
done:
    if (status != MG_OK) out->step = 0;
    mg_mlp_free(m);
    mg_optim_free(opt);
    mg__free(order, h.n_tensors * sizeof *order);
    header_free(&h);
    return status;
}

/* MG_ERR_IO with errno kept as the failed call left it, for bindings to report (FileNotFoundError...) */
static mg_status fail_io(const char *what, const char *path) {
    int saved = errno;
    mg__fail(MG_ERR_IO, "cannot %s %s: %s", what, path, strerror(saved));
    errno = saved;
    return MG_ERR_IO;
}

mg_status mg_checkpoint_load(const char *path, mg_checkpoint *out) {
    if (!path || !out) return mg__fail(MG_ERR_NULL, "mg_checkpoint_load: an argument is NULL");
    memset(out, 0, sizeof *out);
    /* non-blocking, so a FIFO or a device cannot hang us before we see it is not a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail_io("open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        mg_status failed = fail_io("examine", path);
        close(fd);
        return failed;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mg__fail(MG_ERR_ARG, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_FILE) {
        close(fd);
        return mg__fail(MG_ERR_ARG, "%s is %lld bytes, over the 4 GiB limit for a model file", path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *data = mg__alloc(size ? size : 1);
    if (!data) {
        close(fd);
        return mg__fail(MG_ERR_NOMEM, "out of memory reading %s", path);
    }
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    mg_status status = got == size ? mg_checkpoint_load_buffer(data, size, out) : fail_io("read", path);
    close(fd);
    mg__free(data, size ? size : 1);
    if (status != MG_OK && status != MG_ERR_IO) { /* name the file in the loader's message */
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
    for (size_t i = 0; i < 2 * c->n_metadata; i++) free_string(c->metadata[i]);
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
