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

/* The limits are the header's MG_FILE_MAX_*, one table for save and load. A checkpoint's tensors (two a
 * layer and the optimizer state) fit in the tensor limit; the metadata limit counts the caller's keys, and
 * the loader takes ours on top. */
_Static_assert(2 * MG_FILE_MAX_LAYERS + 1 <= MG_FILE_MAX_TENSORS, "a checkpoint of the most layers must load");

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

/* n bytes as they are (no printf: metadata may be megabytes) */
static void text_add_bytes(text *t, const char *s, size_t n) {
    if (t->failed || n == 0) return;
    if (t->size + n >= t->capacity) {
        size_t capacity = (t->size + n + 1) * 2;
        char *grown = mg__realloc(t->data, t->capacity, capacity);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->capacity = capacity;
    }
    memcpy(t->data + t->size, s, n);
    t->size += n;
    t->data[t->size] = '\0';
}

/* a JSON string literal, escaping what JSON requires; runs of plain bytes copied at once */
static void text_add_string(text *t, const char *s) {
    text_add(t, "\"");
    while (*s) {
        size_t plain = 0;
        while (s[plain] && s[plain] != '"' && s[plain] != '\\' && (unsigned char)s[plain] >= 0x20) plain++;
        text_add_bytes(t, s, plain);
        s += plain;
        if (!*s) break;
        unsigned char c = (unsigned char)*s++;
        if (c == '"' || c == '\\') text_add(t, "\\%c", c);
        else text_add(t, "\\u%04x", c);
    }
    text_add(t, "\"");
}

/* ---- what the file holds, as we describe it in the header ---- */

static const char *const our_keys[] = {
    "format", "format_version", "n_inputs", "sizes", "activations", "step", "optimizer", "optimizer.lr",
    "optimizer.momentum", "optimizer.dampening", "optimizer.nesterov", "optimizer.beta1", "optimizer.beta2",
    "optimizer.eps", "optimizer.weight_decay", "optimizer.steps",
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
    for (size_t l = 0; l < layer; l++) index += 1 + (m->acts[l] != MG_ACT_LINEAR);
    return index;
}

static const char *optim_kind_name(mg_optim_kind kind) {
    return kind == MG_OPTIM_ADAM ? "adam" : kind == MG_OPTIM_ADAMW ? "adamw" : "sgd";
}

/* MG_ERR_IO with errno kept as the failed call left it, for bindings to report (FileNotFoundError...) */
static mg_status fail_io(const char *what, const char *path) {
    int saved = errno;
    mg__fail(MG_ERR_IO, "cannot %s %s: %s", what, path, strerror(saved));
    errno = saved;
    return MG_ERR_IO;
}

/* Is s[0..n) well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF)? safetensors
 * headers must be; the loader checks the whole header, save each metadata string. */
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

/* ---- saving, first: everything load checks, refused before anything is written ---- */

/* the bytes text_add_string writes for s, and the ':' or ',' after it */
static uint64_t json_string_size(const char *s) {
    uint64_t n = 3;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        n += c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;
    }
    return n;
}

static mg_status check_metadata(const char *const *metadata, size_t n) {
    if (n > MG_FILE_MAX_METADATA)
        return mg__fail(MG_ERR_ARG, "%zu metadata keys: a model file holds at most %d", n, MG_FILE_MAX_METADATA);
    uint64_t bytes = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        /* the string itself is not quoted in the message: it is not valid text */
        if (!valid_utf8((const unsigned char *)metadata[i], strlen(metadata[i])))
            return mg__fail(MG_ERR_ARG, "metadata %s #%zu is not valid UTF-8", i % 2 ? "value" : "key", i / 2);
        bytes += json_string_size(metadata[i]);
    }
    if (bytes > MG_FILE_MAX_HEADER)
        return mg__fail(MG_ERR_ARG, "metadata of %" PRIu64 " bytes (as JSON) is over the %d-byte limit of a model "
                        "file's header", bytes, MG_FILE_MAX_HEADER);
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
    if (mg_optim_state_size(opt) != (c->kind == MG_OPTIM_SGD ? 1 : 2) * m->n_params)
        return mg__fail(MG_ERR_ARG, "the optimizer was made for another number of parameters");
    if (mg_optim_skipped(opt))
        return mg__fail(MG_ERR_STATE, "the optimizer skipped parameters that had no gradient, which a checkpoint "
                                      "cannot record");
    if (mg_optim_check_config(c) == MG_OK && mg__optim_check_state(opt) == MG_OK) return MG_OK;
    char why[200]; /* a copy: the message is rewritten from it */
    snprintf(why, sizeof why, "%s", mg_last_error());
    return mg__fail(MG_ERR_ARG, "the optimizer would not load: %s", why);
}

static mg_status check_model(const mg_mlp *m) {
    if (m->n_layers > MG_FILE_MAX_LAYERS)
        return mg__fail(MG_ERR_ARG, "the model has %zu layers: a model file holds at most %d", m->n_layers,
                        MG_FILE_MAX_LAYERS);
    if (m->n_in > MG_FILE_MAX_WIDTH)
        return mg__fail(MG_ERR_ARG, "the model has %zu inputs: a model file holds at most %d", m->n_in,
                        MG_FILE_MAX_WIDTH);
    for (size_t l = 0; l < m->n_layers; l++)
        if (m->sizes[l] > MG_FILE_MAX_WIDTH)
            return mg__fail(MG_ERR_ARG, "layer %zu has %zu neurons: a model file holds at most %d", l, m->sizes[l],
                            MG_FILE_MAX_WIDTH);
    return MG_OK;
}

/* the sizes known once the header is built: the header's own and the whole file's */
static mg_status check_file_size(const mg_mlp *m, const mg_optim *opt, size_t header_size) {
    if (header_size > MG_FILE_MAX_HEADER)
        return mg__fail(MG_ERR_ARG, "the file's header would be %zu bytes, over the %d-byte limit", header_size,
                        MG_FILE_MAX_HEADER);
    uint64_t doubles = (uint64_t)m->n_params + (opt ? mg_optim_state_size(opt) : 0);
    uint64_t bytes = 8 + (uint64_t)header_size + 8 * doubles;
    if (bytes > MG_FILE_MAX_BYTES)
        return mg__fail(MG_ERR_ARG, "the file would be %" PRIu64 " bytes, over the %" PRIu64 "-byte limit of a model "
                        "file", bytes, MG_FILE_MAX_BYTES);
    return MG_OK;
}

/* ---- saving: where the file goes ---- */

typedef struct {
    char *path; /* the file to replace: the caller's path with its symbolic links followed */
    size_t capacity;
    int exists;
    struct stat st; /* when it exists */
} save_target;

static const char *file_kind(mode_t mode) {
    return S_ISCHR(mode)    ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
                            : "something other than a file";
}

static mg_status set_target_path(save_target *t, const char *dir, size_t dir_len, const char *name) {
    size_t capacity = dir_len + strlen(name) + 2;
    char *path = mg__alloc(capacity);
    if (!path) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    snprintf(path, capacity, "%.*s%s", (int)dir_len, dir, name);
    mg__free(t->path, t->capacity);
    t->path = path;
    t->capacity = capacity;
    return MG_OK;
}

/* t->path becomes the target of the link at t->path: an absolute path, or one relative to the link's folder */
static mg_status follow_link(save_target *t, const char *path) {
    size_t size = t->st.st_size > 0 ? (size_t)t->st.st_size + 1 : 256;
    for (;;) {
        char *target = mg__alloc(size);
        if (!target) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
        ssize_t n = readlink(t->path, target, size);
        if (n < 0 || (size_t)n >= size) {
            int saved = errno;
            mg__free(target, size);
            errno = saved;
            if (n < 0) return fail_io("follow the symbolic link", path);
            if (size > 65536) {
                errno = ENAMETOOLONG;
                return fail_io("follow the symbolic link", path);
            }
            size *= 2; /* the link changed since lstat, or its size was not reported: try again larger */
            continue;
        }
        target[n] = '\0';
        const char *slash = strrchr(t->path, '/');
        size_t dir_len = target[0] == '/' || !slash ? 0 : (size_t)(slash - t->path) + 1;
        mg_status status = set_target_path(t, t->path, dir_len, target);
        mg__free(target, size);
        return status;
    }
}

/* Only a regular file is replaced, or a new one made; a folder is an I/O error as for open() (EISDIR) */
static mg_status check_replaceable(const struct stat *st, const char *path) {
    if (S_ISREG(st->st_mode)) return MG_OK;
    if (S_ISDIR(st->st_mode)) {
        mg__fail(MG_ERR_IO, "cannot save to %s: it is a folder", path);
        errno = EISDIR;
        return MG_ERR_IO;
    }
    return mg__fail(MG_ERR_ARG, "cannot save to %s: it is %s, not a regular file, and save replaces only regular files",
                    path, file_kind(st->st_mode));
}

static mg_status resolve_target(const char *path, save_target *t) {
    if (!*path) {
        errno = ENOENT; /* as open("") */
        return fail_io("save to", "''");
    }
    mg_status status = set_target_path(t, "", 0, path);
    for (int links = 0; status == MG_OK; links++) {
        if (lstat(t->path, &t->st) != 0) {
            if (errno == ENOENT) return MG_OK; /* a new file (a dangling link's target too, as open() makes) */
            return fail_io("save to", path);
        }
        if (!S_ISLNK(t->st.st_mode)) {
            t->exists = 1;
            return check_replaceable(&t->st, path);
        }
        if (links == MG_FILE_MAX_LINKS) {
            errno = ELOOP;
            return fail_io("save to", path);
        }
        status = follow_link(t, path);
    }
    return status;
}

/* ---- saving ---- */

static mg_status write_all(int fd, const void *data, size_t size, const char *path) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = EIO; /* write() made no progress and said nothing */
        if (n <= 0) return fail_io("write", path);
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
                 optim_kind_name(c->kind), c->lr, c->momentum, c->dampening, c->nesterov != 0, /* any true: 1 */
                 c->beta1, c->beta2, c->eps, c->weight_decay, mg_optim_steps(opt));
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

/* the temporary file next to the target; a replaced file's permissions from the start, so the data is
 * never readable by more people than before. A new file: 0666 less the umask, as for any file the program
 * writes (mkstemp's would be 0600). */
static int create_temp(const save_target *t, char *tmp, size_t tmp_size) {
    static _Atomic unsigned long counter;
    mode_t mode = t->exists ? t->st.st_mode & 0777 : 0666;
    const char *slash = strrchr(t->path, '/');
    int dir_len = slash ? (int)(slash - t->path) + 1 : 0;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        /* the target's name, cut so that the temporary name stays within NAME_MAX (255) */
        snprintf(tmp, tmp_size, "%.*s%.200s.tmp.%ld.%lu", dir_len, t->path, t->path + dir_len, (long)getpid(),
                 (unsigned long)++counter);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) break;
    }
    return fd;
}

/* A replaced file keeps its owner and group where the process may set them (root may; others keep
 * their own) and then its mode, which the umask may have cut and a chown clears the set-id bits of. */
static mg_status keep_owner_and_mode(int fd, const save_target *t, const char *path) {
    if (!t->exists) return MG_OK;
    struct stat now;
    if (fstat(fd, &now) == 0 && (now.st_uid != t->st.st_uid || now.st_gid != t->st.st_gid))
        if (fchown(fd, t->st.st_uid, t->st.st_gid) != 0 && fchown(fd, (uid_t)-1, t->st.st_gid) != 0)
            errno = 0; /* not allowed: the new file is the saver's, as with any save by rename */
    if (fchmod(fd, t->st.st_mode & 07777) != 0) return fail_io("keep the permissions of", path);
    return MG_OK;
}

static mg_status write_body(int fd, const text *header, const mg_mlp *m, const mg_optim *opt, const char *path) {
    unsigned char size_bytes[8];
    put_le64(size_bytes, header->size);
    mg_status status = write_all(fd, size_bytes, 8, path);
    if (status == MG_OK) status = write_all(fd, header->data, header->size, path);
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
    return status;
}

/* make the rename itself durable: sync the folder (tmp is cut to the folder's name) */
static void sync_folder(char *tmp) {
    char *slash = strrchr(tmp, '/');
    if (slash) *(slash == tmp ? slash + 1 : slash) = '\0';
    int dir = open(slash ? tmp : ".", O_RDONLY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
}

/* Just before the rename, the target once more: something not a regular file put there meanwhile stays. */
static mg_status still_replaceable(const save_target *t, const char *path) {
    struct stat st;
    if (lstat(t->path, &st) != 0) return errno == ENOENT ? MG_OK : fail_io("save to", path);
    if (S_ISLNK(st.st_mode))
        return mg__fail(MG_ERR_IO, "cannot save to %s: it was replaced by a symbolic link while saving", path);
    return check_replaceable(&st, path);
}

/* temporary file, data, sync, rename over the target, sync the folder: the old file or the new, never half */
static mg_status write_and_replace(const save_target *t, const text *header, const mg_mlp *m, const mg_optim *opt,
                                   const char *path) {
    size_t tmp_size = strlen(t->path) + 48;
    char *tmp = mg__alloc(tmp_size);
    if (!tmp) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    int fd = create_temp(t, tmp, tmp_size);
    if (fd < 0) {
        mg_status failed = fail_io("create a file next to", t->path);
        mg__free(tmp, tmp_size);
        return failed;
    }
    mg_status status = write_body(fd, header, m, opt, path);
    if (status == MG_OK) status = keep_owner_and_mode(fd, t, path);
    if (status == MG_OK && fsync(fd) != 0) status = fail_io("sync", path);
    if (close(fd) != 0 && status == MG_OK) status = fail_io("write", path);
    if (status == MG_OK) status = still_replaceable(t, path);
    if (status == MG_OK && rename(tmp, t->path) != 0) status = fail_io("replace", path);
    if (status != MG_OK) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    } else {
        sync_folder(tmp);
    }
    mg__free(tmp, tmp_size);
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

    text header = {0};
    if (!build_header(&header, m, opt, step, metadata, n_metadata)) {
        mg__free(header.data, header.capacity);
        return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    }
    save_target target = {0};
    status = check_file_size(m, opt, header.size);
    if (status == MG_OK) status = resolve_target(path, &target);
    if (status == MG_OK) status = write_and_replace(&target, &header, m, opt, path);
    int saved = errno; /* for the bindings: FileNotFoundError, IsADirectoryError, ... */
    mg__free(target.path, target.capacity);
    mg__free(header.data, header.capacity);
    errno = saved;
    return status;
}

mg_status mg_mlp_save(const mg_mlp *m, const char *path) { return mg_checkpoint_save(m, NULL, path, 0, NULL, 0); }

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
    uint64_t shape[MG_FILE_MAX_DIMS];
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
                    if (t->ndim == MG_FILE_MAX_DIMS) {
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
                if (!grow((void **)&h->meta, &h->meta_capacity, h->n_meta, 2 * sizeof *h->meta, MAX_ALL_METADATA))
                    return r->error = h->n_meta == MAX_ALL_METADATA ? "too many metadata entries"
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
        if (!grow((void **)&h->tensors, &h->tensors_capacity, h->n_tensors, sizeof *h->tensors, MG_FILE_MAX_TENSORS))
            return free_string(name), r->error = h->n_tensors == MG_FILE_MAX_TENSORS ? "too many tensors"
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
    c_numbers numbers;
    c_numbers_begin(&numbers);
    errno = 0;
    *out = strtod(s, &end);
    int range_error = errno == ERANGE;
    c_numbers_end(&numbers);
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

static int compare_begin(const void *a, const void *b) {
    const tensor_info *x = *(const tensor_info *const *)a, *y = *(const tensor_info *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* the loader's refusals: MG_ERR_ARG with a message */
#define REFUSE(...) return mg__fail(MG_ERR_ARG, __VA_ARGS__)

/* the 8-byte size, the JSON header (capped, no NUL, UTF-8, our strict grammar), the user's key count */
static mg_status read_framing(const unsigned char *bytes, size_t size, header_info *h, uint64_t *header_size) {
    if (size < 8) REFUSE("not a safetensors file: %zu bytes, shorter than the 8-byte header size", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
    if (n > MG_FILE_MAX_HEADER) REFUSE("safetensors header of %" PRIu64 " bytes is over the %d-byte limit", n,
                                       MG_FILE_MAX_HEADER);
    if (n > size - 8) REFUSE("truncated file: the header needs %" PRIu64 " bytes, %zu are there", n, size - 8);
    if (n == 0 || bytes[8] != '{') REFUSE("the safetensors header is not a JSON object");
    if (memchr(bytes + 8, 0, (size_t)n)) REFUSE("the safetensors header contains a NUL byte");
    if (!valid_utf8(bytes + 8, (size_t)n)) REFUSE("the safetensors header is not valid UTF-8");
    reader r = {.p = (const char *)bytes + 8, .end = (const char *)bytes + 8 + n};
    if (!read_header(&r, h))
        REFUSE("bad safetensors header: %s (near byte %zu)", r.error ? r.error : "malformed",
               (size_t)(r.p - (const char *)bytes));
    size_t n_user = 0;
    for (size_t i = 0; i < h->n_meta; i++) n_user += !is_our_key(h->meta[2 * i]);
    if (n_user > MG_FILE_MAX_METADATA)
        REFUSE("too many metadata entries: %zu of the caller's own, at most %d", n_user, MG_FILE_MAX_METADATA);
    *header_size = n;
    return MG_OK;
}

/* one tensor: unique, F64, a size that matches its shape, inside the data */
static mg_status check_tensor(const header_info *h, size_t i, size_t payload_size) {
    const tensor_info *t = &h->tensors[i];
    for (size_t j = 0; j < i; j++)
        if (strcmp(h->tensors[j].name, t->name) == 0) REFUSE("tensor '%.60s' appears twice", t->name);
    if (!t->is_f64) REFUSE("tensor '%.60s' has dtype %.20s; micrograd-c models are F64", t->name, t->dtype);
    uint64_t elements = 1;
    for (size_t d = 0; d < t->ndim; d++) {
        if (t->shape[d] != 0 && elements > UINT64_MAX / 8 / t->shape[d])
            REFUSE("tensor '%.60s' is impossibly large", t->name);
        elements *= t->shape[d];
    }
    if (t->begin > t->end || t->end > payload_size)
        REFUSE("tensor '%.60s' has data_offsets [%" PRIu64 ", %" PRIu64 "] outside the %zu data bytes", t->name,
               t->begin, t->end, payload_size);
    if (t->end - t->begin != 8 * elements)
        REFUSE("tensor '%.60s' has %" PRIu64 " bytes for %" PRIu64 " float64 values", t->name, t->end - t->begin,
               elements);
    return MG_OK;
}

/* every tensor checked; together they tile the data part exactly */
static mg_status check_tiling(const header_info *h, size_t payload_size) {
    if (h->n_tensors == 0) REFUSE("the file holds no tensors");
    const tensor_info **order = mg__alloc(h->n_tensors * sizeof *order);
    if (!order) return mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
    mg_status status = MG_OK;
    for (size_t i = 0; i < h->n_tensors && status == MG_OK; i++) {
        status = check_tensor(h, i, payload_size);
        order[i] = &h->tensors[i];
    }
    if (status == MG_OK) qsort(order, h->n_tensors, sizeof *order, compare_begin);
    uint64_t expected = 0;
    for (size_t i = 0; i < h->n_tensors && status == MG_OK; i++) {
        if (order[i]->begin != expected)
            status = mg__fail(MG_ERR_ARG, "tensor '%.60s' starts at byte %" PRIu64 " of the data, expected %" PRIu64
                              " (tensors must not overlap or leave gaps)", order[i]->name, order[i]->begin, expected);
        expected = order[i]->end;
    }
    if (status == MG_OK && expected != payload_size)
        status = mg__fail(MG_ERR_ARG, "%" PRIu64 " trailing bytes after the last tensor",
                          (uint64_t)payload_size - expected);
    mg__free(order, h->n_tensors * sizeof *order);
    return status;
}

typedef struct {
    size_t n_inputs, n_layers, sizes[MG_FILE_MAX_LAYERS];
    mg_activation acts[MG_FILE_MAX_LAYERS];
} network_shape;

/* the layers read off the tensor names: Linear layers at nn.Sequential indices 0, then +1 or +2 (an
 * activation module between) */
static mg_status read_layers(const header_info *h, network_shape *s) {
    for (size_t seq = 0;; seq++) {
        char name[64];
        snprintf(name, sizeof name, "%zu.weight", seq);
        const tensor_info *w = find_tensor(h, name);
        if (!w) {
            snprintf(name, sizeof name, "%zu.weight", seq + 1);
            if (s->n_layers > 0 && (w = find_tensor(h, name))) {
                seq++;
                s->acts[s->n_layers - 1] = MG_ACT_RELU; /* an activation module sat between: ReLU unless told */
            }
        }
        if (!w) break;
        if (s->n_layers == MG_FILE_MAX_LAYERS) REFUSE("more than %d layers", MG_FILE_MAX_LAYERS);
        if (w->ndim != 2 || w->shape[0] == 0 || w->shape[1] == 0 || w->shape[0] > MG_FILE_MAX_WIDTH ||
            w->shape[1] > MG_FILE_MAX_WIDTH)
            REFUSE("tensor '%.60s' must be a non-empty 2-D weight [out, in]", w->name);
        if (s->n_layers > 0 && w->shape[1] != s->sizes[s->n_layers - 1])
            REFUSE("tensor '%.60s' takes %" PRIu64 " inputs but the layer before has %zu outputs", w->name,
                   w->shape[1], s->sizes[s->n_layers - 1]);
        if (s->n_layers == 0) s->n_inputs = (size_t)w->shape[1];
        s->sizes[s->n_layers] = (size_t)w->shape[0];
        s->acts[s->n_layers] = MG_ACT_LINEAR;
        s->n_layers++;
    }
    if (s->n_layers == 0) REFUSE("no layer found: expected tensors named 0.weight, 0.bias, ...");
    return MG_OK;
}

/* ours: the metadata must agree with the tensors, and names the activations */
static mg_status read_shape_metadata(const header_info *h, network_shape *s) {
    const char *n_inputs_text = meta_get(h, "n_inputs"), *sizes_text = meta_get(h, "sizes");
    const char *acts_text = meta_get(h, "activations");
    if (!n_inputs_text && !sizes_text && !acts_text) return MG_OK; /* a plain state_dict */
    size_t meta_sizes[MG_FILE_MAX_LAYERS], count = 0;
    uint64_t meta_inputs;
    if (!parse_u64(n_inputs_text, &meta_inputs) || meta_inputs != s->n_inputs)
        REFUSE("metadata n_inputs '%.20s' does not match the first weight (%zu inputs)",
               n_inputs_text ? n_inputs_text : "(missing)", s->n_inputs);
    if (!sizes_text || !parse_sizes(sizes_text, meta_sizes, MG_FILE_MAX_LAYERS, &count) || count != s->n_layers ||
        memcmp(meta_sizes, s->sizes, s->n_layers * sizeof *s->sizes) != 0)
        REFUSE("metadata sizes '%.60s' do not match the weight tensors", sizes_text ? sizes_text : "(missing)");
    const char *p = acts_text ? acts_text : "";
    for (size_t l = 0; l < s->n_layers; l++) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int a = 0; a < MG_ACT_COUNT && !found; a++) {
            const char *name = mg_activation_name((mg_activation)a);
            if (strlen(name) == len && strncmp(p, name, len) == 0) s->acts[l] = (mg_activation)a, found = 1;
        }
        if (!found || (l + 1 < s->n_layers && p[len] != ',') || (l + 1 == s->n_layers && p[len] != '\0'))
            REFUSE("metadata activations '%.60s' do not name %zu activations", acts_text ? acts_text : "(missing)",
                   s->n_layers);
        p += len + (p[len] == ',');
    }
    return MG_OK;
}

/* the weights, named by the Sequential numbering recomputed from the activations */
static mg_status read_params(const header_info *h, const unsigned char *payload, mg_mlp *m) {
    size_t width = m->n_in;
    for (size_t l = 0; l < m->n_layers; l++) {
        char name[64];
        size_t index = sequential_index(m, l), out = m->sizes[l];
        snprintf(name, sizeof name, "%zu.weight", index);
        const tensor_info *w = find_tensor(h, name);
        snprintf(name, sizeof name, "%zu.bias", index);
        const tensor_info *b = find_tensor(h, name);
        if (!w || w->shape[0] != out || w->shape[1] != width)
            REFUSE("layer %zu: expected tensor '%zu.weight' of shape [%zu, %zu]", l, index, out, width);
        if (!b || b->ndim != 1 || b->shape[0] != out)
            REFUSE("layer %zu: expected tensor '%s' of shape [%zu]", l, name, out);
        double *rows = m->params + m->offsets[l];
        for (size_t j = 0; j < out; j++) {
            for (size_t i = 0; i < width; i++)
                rows[j * (width + 1) + i] = get_f64(payload + w->begin + 8 * (j * width + i));
            rows[j * (width + 1) + width] = get_f64(payload + b->begin + 8 * j);
        }
        width = out;
    }
    return MG_OK;
}

/* the optimizer's settings, each named when it is missing, not a number or not finite */
static mg_status read_optim_config(const header_info *h, const char *kind, mg_optim_config *c, uint64_t *steps) {
    if (strcmp(kind, "sgd") == 0) c->kind = MG_OPTIM_SGD;
    else if (strcmp(kind, "adam") == 0) c->kind = MG_OPTIM_ADAM;
    else if (strcmp(kind, "adamw") == 0) c->kind = MG_OPTIM_ADAMW;
    else REFUSE("unknown optimizer '%.20s' in the metadata", kind);
    const struct {
        const char *key;
        double *out;
    } reals[] = {{"optimizer.lr", &c->lr},       {"optimizer.momentum", &c->momentum},
                 {"optimizer.dampening", &c->dampening}, {"optimizer.beta1", &c->beta1},
                 {"optimizer.beta2", &c->beta2}, {"optimizer.eps", &c->eps},
                 {"optimizer.weight_decay", &c->weight_decay}};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        const char *text_value = meta_get(h, reals[i].key);
        if (!parse_double(text_value, reals[i].out))
            REFUSE("the checkpoint's optimizer: %s must be a finite number, got '%.30s'",
                   reals[i].key + strlen("optimizer."), text_value ? text_value : "(missing)");
    }
    uint64_t nesterov = 0;
    if (!parse_u64(meta_get(h, "optimizer.nesterov"), &nesterov) || !parse_u64(meta_get(h, "optimizer.steps"), steps))
        REFUSE("the optimizer metadata optimizer.nesterov or optimizer.steps is missing or not a count");
    if (nesterov > 1) REFUSE("the checkpoint's optimizer: nesterov must be 0 or 1, got %" PRIu64, nesterov);
    c->nesterov = (int)nesterov;
    /* the same rules as every other way of setting an optimizer */
    if (mg_optim_check_config(c) == MG_OK) return MG_OK;
    char why[200]; /* a copy: the message is rewritten from it */
    snprintf(why, sizeof why, "%s", mg_last_error());
    REFUSE("the checkpoint's optimizer: %s", why);
}

/* a checkpoint: the optimizer (settings, steps, state); *opt stays NULL for a plain model */
static mg_status read_optimizer(const header_info *h, const unsigned char *payload, const mg_mlp *m, mg_optim **opt) {
    const tensor_info *state = find_tensor(h, "optimizer.state");
    const char *kind = meta_get(h, "optimizer");
    if (!state && !kind) return MG_OK;
    if (!kind || !state) REFUSE("a checkpoint needs both the optimizer metadata and the optimizer.state tensor");
    mg_optim_config c = {0};
    uint64_t steps = 0;
    mg_status status = read_optim_config(h, kind, &c, &steps);
    if (status != MG_OK) return status;
    if (!(*opt = mg_optim_new(&c, m->n_params))) return mg__status(); /* out of memory: the config passed */
    if (state->ndim != 1 || state->shape[0] != mg_optim_state_size(*opt))
        REFUSE("optimizer.state has the wrong size for a %s optimizer of %zu parameters", kind, m->n_params);
    double *buffers = mg_optim_state(*opt); /* read in place, then checked as mg_optim_set_state checks */
    for (size_t i = 0; i < mg_optim_state_size(*opt); i++) buffers[i] = get_f64(payload + state->begin + 8 * i);
    if (mg_optim_set_state(*opt, steps, buffers, mg_optim_state_size(*opt), NULL) == MG_OK) return MG_OK;
    char why[200];
    snprintf(why, sizeof why, "%s", mg_last_error());
    REFUSE("the checkpoint's %s", why);
}

/* hand over the caller's metadata: every key that is not ours, moved out of h */
static mg_status take_user_metadata(header_info *h, mg_checkpoint *out) {
    size_t n_user = 0;
    for (size_t i = 0; i < h->n_meta; i++) n_user += !is_our_key(h->meta[2 * i]);
    if (!n_user) return MG_OK;
    out->metadata = mg__alloc(2 * n_user * sizeof *out->metadata);
    if (!out->metadata) return mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
    for (size_t i = 0; i < h->n_meta; i++) {
        if (is_our_key(h->meta[2 * i])) continue;
        out->metadata[2 * out->n_metadata] = h->meta[2 * i];
        out->metadata[2 * out->n_metadata + 1] = h->meta[2 * i + 1];
        h->meta[2 * i] = h->meta[2 * i + 1] = NULL; /* moved */
        out->n_metadata++;
    }
    return MG_OK;
}

/* the model and optimizer from a checked header: shape, weights, optimizer, the step, the tensor count */
static mg_status read_contents(const header_info *h, const unsigned char *payload, mg_mlp **m, mg_optim **opt,
                               uint64_t *step) {
    const char *version = meta_get(h, "format_version");
    if (version && strcmp(version, "1") != 0)
        REFUSE("the file is format version %.20s of micrograd-c; this library reads version 1", version);
    network_shape s = {0};
    mg_status status = read_layers(h, &s);
    if (status == MG_OK) status = read_shape_metadata(h, &s);
    if (status != MG_OK) return status;
    if (!(*m = mg_mlp_new(s.n_inputs, s.n_layers, s.sizes, s.acts))) return MG_ERR_ARG;
    status = read_params(h, payload, *m);
    if (status == MG_OK) status = read_optimizer(h, payload, *m, opt);
    if (status != MG_OK) return status;
    size_t expected_tensors = 2 * s.n_layers + (*opt != NULL);
    if (h->n_tensors != expected_tensors)
        REFUSE("the file holds %zu tensors, a model of this shape has %zu", h->n_tensors, expected_tensors);
    const char *step_text = meta_get(h, "step");
    if (step_text && !parse_u64(step_text, step)) REFUSE("metadata step '%.30s' is not a number", step_text);
    return MG_OK;
}

mg_status mg_checkpoint_load_buffer(const void *data, size_t size, mg_checkpoint *out) {
    if (!data || !out) return mg__fail(MG_ERR_NULL, "mg_checkpoint_load_buffer: an argument is NULL");
    memset(out, 0, sizeof *out);
    const unsigned char *bytes = data;
    header_info h = {0};
    mg_mlp *m = NULL;
    mg_optim *opt = NULL;
    uint64_t header_size = 0, step = 0;
    mg_status status = read_framing(bytes, size, &h, &header_size);
    if (status == MG_OK) status = check_tiling(&h, size - 8 - (size_t)header_size);
    if (status == MG_OK) status = read_contents(&h, bytes + 8 + header_size, &m, &opt, &step);
    if (status == MG_OK) status = take_user_metadata(&h, out);
    if (status == MG_OK) {
        out->model = m;
        out->optimizer = opt;
        out->step = step;
    } else {
        mg_mlp_free(m);
        mg_optim_free(opt);
    }
    header_free(&h);
    return status;
}

#undef REFUSE

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
    if ((uint64_t)st.st_size > MG_FILE_MAX_BYTES) {
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
