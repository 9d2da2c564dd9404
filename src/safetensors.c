/* safetensors.c: the layout of a safetensors file, both ways, knowing nothing of models. A file is 8
 * bytes of little-endian header size N, N bytes of JSON, then the tensors' bytes. The header maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data part) and
 * "__metadata__" to a flat object of strings. Reading takes untrusted bytes, so it fails cleanly: a capped
 * header of valid UTF-8 without NUL, a strict reader for exactly this shape of document (on json.c's
 * tokens; no recursion: the nesting is fixed), the table capped at MG_FILE_MAX_TENSORS entries of at most
 * MG_FILE_MAX_DIMS dimensions, sizes multiplied with overflow checks, and F64 tensors that tile the data
 * part exactly. Writing builds such a header, aligned as the safetensors writer aligns it, and encodes the
 * values. */
#define _POSIX_C_SOURCE 200809L
#include "modelfile_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the header ---- */

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

void mg__st_file_free(mg__st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++) {
        mg__json_free_string(f->tensors[i].name);
        mg__json_free_string(f->tensors[i].dtype);
    }
    for (size_t i = 0; i < 2 * f->n_meta; i++) mg__json_free_string(f->meta[i]);
    mg__free(f->tensors, f->tensors_capacity * sizeof *f->tensors);
    mg__free(f->meta, f->meta_capacity * 2 * sizeof *f->meta);
}

/* {"dtype": "F64", "shape": [..], "data_offsets": [b, e]} in any key order */
static int read_tensor_entry(mg__json_reader *r, mg__st_tensor *t) {
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!mg__json_expect(r, '{')) return 0;
    if (mg__json_peek(r, '}')) {
        r->p++;
        r->error = "a tensor entry lacks dtype, shape and data_offsets";
        return 0;
    }
    do {
        char *key = mg__json_read_string(r);
        if (!key || !mg__json_expect(r, ':')) {
            mg__json_free_string(key);
            return 0;
        }
        if (strcmp(key, "dtype") == 0 && !have_dtype) {
            have_dtype = 1;
            t->dtype = mg__json_read_string(r);
            if (!t->dtype) return mg__json_free_string(key), 0;
            t->is_f64 = strcmp(t->dtype, "F64") == 0;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            if (!mg__json_expect(r, '[')) return mg__json_free_string(key), 0;
            if (!mg__json_peek(r, ']')) {
                do {
                    if (t->ndim == MG_FILE_MAX_DIMS) {
                        r->error = "a tensor has too many dimensions";
                        return mg__json_free_string(key), 0;
                    }
                    if (!mg__json_read_uint(r, &t->shape[t->ndim++])) return mg__json_free_string(key), 0;
                } while (mg__json_peek(r, ',') && mg__json_expect(r, ','));
            }
            if (!mg__json_expect(r, ']')) return mg__json_free_string(key), 0;
        } else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
            have_offsets = 1;
            if (!mg__json_expect(r, '[') || !mg__json_read_uint(r, &t->begin) || !mg__json_expect(r, ',') ||
                !mg__json_read_uint(r, &t->end) || !mg__json_expect(r, ']'))
                return mg__json_free_string(key), 0;
        } else {
            r->error = "a tensor entry has an unknown or repeated key";
            return mg__json_free_string(key), 0;
        }
        mg__json_free_string(key);
    } while (mg__json_peek(r, ',') && mg__json_expect(r, ','));
    if (!mg__json_expect(r, '}')) return 0;
    if (!have_dtype || !have_shape || !have_offsets) {
        r->error = "a tensor entry lacks dtype, shape or data_offsets";
        return 0;
    }
    return 1;
}

static int read_header(mg__json_reader *r, mg__st_file *f, size_t max_meta) {
    int have_meta = 0;
    if (!mg__json_expect(r, '{')) return 0;
    if (mg__json_peek(r, '}')) {
        r->p++;
        return 1;
    }
    do {
        char *name = mg__json_read_string(r);
        if (!name || !mg__json_expect(r, ':')) return mg__json_free_string(name), 0;
        if (strcmp(name, "__metadata__") == 0) {
            mg__json_free_string(name);
            if (have_meta) return r->error = "__metadata__ appears twice", 0;
            have_meta = 1;
            if (!mg__json_expect(r, '{')) return 0;
            if (mg__json_peek(r, '}')) {
                r->p++;
                continue;
            }
            do {
                if (!grow((void **)&f->meta, &f->meta_capacity, f->n_meta, 2 * sizeof *f->meta, max_meta))
                    return r->error = f->n_meta == max_meta ? "too many metadata entries"
                                                            : "out of memory reading the header",
                           0;
                char *key = mg__json_read_string(r);
                if (!key) return 0;
                for (size_t i = 0; i < f->n_meta; i++)
                    if (strcmp(f->meta[2 * i], key) == 0)
                        return mg__json_free_string(key), r->error = "a metadata key appears twice", 0;
                f->meta[2 * f->n_meta] = key;
                f->meta[2 * f->n_meta + 1] = NULL;
                f->n_meta++;
                if (!mg__json_expect(r, ':')) return 0;
                if (!(f->meta[2 * f->n_meta - 1] = mg__json_read_string(r))) return 0;
            } while (mg__json_peek(r, ',') && mg__json_expect(r, ','));
            if (!mg__json_expect(r, '}')) return 0;
            continue;
        }
        if (!grow((void **)&f->tensors, &f->tensors_capacity, f->n_tensors, sizeof *f->tensors, MG_FILE_MAX_TENSORS))
            return mg__json_free_string(name),
                   r->error = f->n_tensors == MG_FILE_MAX_TENSORS ? "too many tensors"
                                                                  : "out of memory reading the header",
                   0;
        mg__st_tensor *t = &f->tensors[f->n_tensors++];
        t->name = name;
        if (!read_tensor_entry(r, t)) return 0;
    } while (mg__json_peek(r, ',') && mg__json_expect(r, ','));
    if (!mg__json_expect(r, '}')) return 0;
    mg__json_skip_space(r);
    if (r->p != r->end) return r->error = "unexpected text after the JSON header", 0;
    return 1;
}

const char *mg__st_meta_get(const mg__st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

const mg__st_tensor *mg__st_find_tensor(const mg__st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* little-endian, as the header said F64 and the tiling check made sure the bytes are there */
double mg__st_value(const mg__st_file *f, const mg__st_tensor *t, size_t i) {
    const unsigned char *p = f->data + t->begin + 8 * i;
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--) bits = bits << 8 | p[k];
    double x;
    memcpy(&x, &bits, 8);
    return x;
}

static int compare_begin(const void *a, const void *b) {
    const mg__st_tensor *x = *(const mg__st_tensor *const *)a, *y = *(const mg__st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* the 8-byte size, the JSON header (capped, no NUL, UTF-8, our strict grammar), where the data part is */
mg_status mg__st_read_header(const unsigned char *bytes, size_t size, size_t max_meta, mg__st_file *f) {
    if (size < 8) MG__REFUSE("not a safetensors file: %zu bytes, shorter than the 8-byte header size", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
    if (n > MG_FILE_MAX_HEADER)
        MG__REFUSE("safetensors header of %" PRIu64 " bytes is over the %d-byte limit", n, MG_FILE_MAX_HEADER);
    if (n > size - 8) MG__REFUSE("truncated file: the header needs %" PRIu64 " bytes, %zu are there", n, size - 8);
    if (n == 0 || bytes[8] != '{') MG__REFUSE("the safetensors header is not a JSON object");
    if (memchr(bytes + 8, 0, (size_t)n)) MG__REFUSE("the safetensors header contains a NUL byte");
    if (!mg__utf8_valid(bytes + 8, (size_t)n)) MG__REFUSE("the safetensors header is not valid UTF-8");
    mg__json_reader r = {.p = (const char *)bytes + 8, .end = (const char *)bytes + 8 + n};
    if (!read_header(&r, f, max_meta))
        MG__REFUSE("bad safetensors header: %s (near byte %zu)", r.error ? r.error : "malformed",
                   (size_t)(r.p - (const char *)bytes));
    f->data = bytes + 8 + n;
    f->data_size = size - 8 - (size_t)n;
    return MG_OK;
}

/* one tensor: unique, F64, a size that matches its shape, inside the data */
static mg_status check_tensor(const mg__st_file *f, size_t i) {
    const mg__st_tensor *t = &f->tensors[i];
    for (size_t j = 0; j < i; j++)
        if (strcmp(f->tensors[j].name, t->name) == 0) MG__REFUSE("tensor '%.60s' appears twice", t->name);
    if (!t->is_f64) MG__REFUSE("tensor '%.60s' has dtype %.20s; micrograd-c models are F64", t->name, t->dtype);
    uint64_t elements = 1;
    for (size_t d = 0; d < t->ndim; d++) {
        if (t->shape[d] != 0 && elements > UINT64_MAX / 8 / t->shape[d])
            MG__REFUSE("tensor '%.60s' is impossibly large", t->name);
        elements *= t->shape[d];
    }
    if (t->begin > t->end || t->end > f->data_size)
        MG__REFUSE("tensor '%.60s' has data_offsets [%" PRIu64 ", %" PRIu64 "] outside the %zu data bytes", t->name,
                   t->begin, t->end, f->data_size);
    if (t->end - t->begin != 8 * elements)
        MG__REFUSE("tensor '%.60s' has %" PRIu64 " bytes for %" PRIu64 " float64 values", t->name, t->end - t->begin,
                   elements);
    return MG_OK;
}

/* every tensor checked; together they tile the data part exactly */
mg_status mg__st_check_tiling(const mg__st_file *f) {
    if (f->n_tensors == 0) MG__REFUSE("the file holds no tensors");
    const mg__st_tensor **order = mg__alloc(f->n_tensors * sizeof *order);
    if (!order) return mg__fail(MG_ERR_NOMEM, "out of memory loading a model");
    mg_status status = MG_OK;
    for (size_t i = 0; i < f->n_tensors && status == MG_OK; i++) {
        status = check_tensor(f, i);
        order[i] = &f->tensors[i];
    }
    if (status == MG_OK) qsort(order, f->n_tensors, sizeof *order, compare_begin);
    uint64_t expected = 0;
    for (size_t i = 0; i < f->n_tensors && status == MG_OK; i++) {
        if (order[i]->begin != expected)
            status = mg__fail(MG_ERR_ARG,
                              "tensor '%.60s' starts at byte %" PRIu64 " of the data, expected %" PRIu64
                              " (tensors must not overlap or leave gaps)",
                              order[i]->name, order[i]->begin, expected);
        expected = order[i]->end;
    }
    if (status == MG_OK && expected != f->data_size)
        status = mg__fail(MG_ERR_ARG, "%" PRIu64 " trailing bytes after the last tensor",
                          (uint64_t)f->data_size - expected);
    mg__free(order, f->n_tensors * sizeof *order);
    return status;
}

/* ---- writing ---- */

void mg__st_begin_header(mg__json_text *h) { mg__json_add(h, "{"); }

/* "name":{"dtype":"F64","shape":[...],"data_offsets":[begin,end]}, and the next tensor's data after it */
void mg__st_add_tensor(mg__json_text *h, const char *name, size_t ndim, const size_t *shape, size_t *offset) {
    size_t bytes = 8;
    mg__json_add_string(h, name);
    mg__json_add(h, ":{\"dtype\":\"F64\",\"shape\":[");
    for (size_t d = 0; d < ndim; d++) {
        mg__json_add(h, "%s%zu", d ? "," : "", shape[d]);
        bytes *= shape[d];
    }
    mg__json_add(h, "],\"data_offsets\":[%zu,%zu]},", *offset, *offset + bytes);
    *offset += bytes;
}

void mg__st_begin_metadata(mg__json_text *h) { mg__json_add(h, "\"__metadata__\":{"); }

void mg__st_end_header(mg__json_text *h) {
    mg__json_add(h, "}}");
    while (!h->failed && (8 + h->size) % 8 != 0) mg__json_add(h, " ");
}

uint64_t mg__st_file_size(size_t header_size, uint64_t n_values) { return 8 + (uint64_t)header_size + 8 * n_values; }

static void put_le64(unsigned char *out, uint64_t x) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(x >> (8 * i));
}

mg_status mg__st_write_header(int fd, const mg__json_text *h, const char *path) {
    unsigned char size_bytes[8];
    put_le64(size_bytes, h->size);
    mg_status status = mg__file_write_all(fd, size_bytes, 8, path);
    if (status == MG_OK) status = mg__file_write_all(fd, h->data, h->size, path);
    return status;
}

mg_status mg__st_write_f64(int fd, const double *values, size_t count, const char *path) {
    unsigned char buffer[8 * 512];
    while (count > 0) {
        size_t n = count < 512 ? count : 512;
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, &values[i], 8);
            put_le64(buffer + 8 * i, bits);
        }
        mg_status status = mg__file_write_all(fd, buffer, 8 * n, path);
        if (status != MG_OK) return status;
        values += n;
        count -= n;
    }
    return MG_OK;
}
