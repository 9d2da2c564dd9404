/* modelfile_internal.h: what the four files of model files share, from the bottom up: JSON text (json.c),
 * the safetensors layout (safetensors.c) and the file I/O (fileio.c), which modelfile.c uses to turn a model
 * and its optimizer into a file and back. The lower three know nothing of models; modelfile.c knows the
 * model only through the public API. Each of the four defines _POSIX_C_SOURCE 200809L before any include
 * (locale_t, ssize_t). Nothing here is public API. */
#ifndef MG_MODELFILE_INTERNAL_H
#define MG_MODELFILE_INTERNAL_H

#include "internal.h"

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

/* The loaders' refusals of a bad file: MG_ERR_ARG with a message. */
#define MG__REFUSE(...) return mg__fail(MG_ERR_ARG, __VA_ARGS__)

/* ---- JSON text (json.c) ---- */

/* Numbers in the header are written and read in the C locale whatever the program set (a decimal comma
 * would make files unreadable elsewhere): between begin and end, this thread's numbers are C's. */
typedef struct {
    locale_t c, previous;
} mg__c_numbers;
void mg__c_numbers_begin(mg__c_numbers *l);
void mg__c_numbers_end(mg__c_numbers *l);

/* A growable text buffer, NUL-terminated; once a growth fails, failed is set and every later add is ignored. */
typedef struct {
    char *data;
    size_t size, capacity;
    int failed;
} mg__json_text;
void mg__json_add(mg__json_text *t, const char *fmt, ...) MG__PRINTF(2, 3);
void mg__json_add_string(mg__json_text *t, const char *s); /* a JSON string literal, escaped as JSON requires */
uint64_t mg__json_string_size(const char *s);              /* the bytes add_string writes, and a ':' or ',' */
void mg__json_text_free(mg__json_text *t);

/* Is s[0..n) well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF)? */
int mg__utf8_valid(const unsigned char *s, size_t n);

/* A strict reader of JSON tokens over [p, end): error keeps the first problem (NULL while there is none). */
typedef struct {
    const char *p, *end;
    const char *error;
} mg__json_reader;
void mg__json_skip_space(mg__json_reader *r);
int mg__json_expect(mg__json_reader *r, char c); /* c, after any space; else an error */
int mg__json_peek(mg__json_reader *r, char c);   /* is c next, after any space? */
char *mg__json_read_string(mg__json_reader *r);  /* decoded, new; free with mg__json_free_string */
int mg__json_read_uint(mg__json_reader *r, uint64_t *out); /* a non-negative integer up to 2^53 */
void mg__json_free_string(char *s);

/* ---- the safetensors layout (safetensors.c) ---- */

typedef struct {
    char *name;
    int is_f64;
    char *dtype;
    size_t ndim;
    uint64_t shape[MG_FILE_MAX_DIMS];
    uint64_t begin, end; /* data_offsets: bytes of the data part */
} mg__st_tensor;

/* A file as read: the tensor table, the metadata as key, value, key, value, ..., and the data part (in
 * the caller's buffer). */
typedef struct {
    mg__st_tensor *tensors;
    size_t n_tensors, tensors_capacity;
    char **meta;
    size_t n_meta, meta_capacity;
    const unsigned char *data;
    size_t data_size;
} mg__st_file;

/* The 8-byte size and the JSON header of the size bytes at bytes (at most max_meta metadata entries);
 * then check_tiling: every tensor F64, of the size its shape says, and all of them tiling the data part. */
mg_status mg__st_read_header(const unsigned char *bytes, size_t size, size_t max_meta, mg__st_file *f);
mg_status mg__st_check_tiling(const mg__st_file *f);
void mg__st_file_free(mg__st_file *f);
const char *mg__st_meta_get(const mg__st_file *f, const char *key);
const mg__st_tensor *mg__st_find_tensor(const mg__st_file *f, const char *name);
double mg__st_value(const mg__st_file *f, const mg__st_tensor *t, size_t i); /* element i of a checked t */

/* Writing a header: begin_header, the tensors in file order (*offset: where the next one's data starts,
 * 0 for the first), begin_metadata, the metadata as "key":"value" pairs between commas (written with
 * mg__json_add_string), and end_header, which pads the header with spaces so that the data starts 8-byte
 * aligned, as the safetensors writer does. */
void mg__st_begin_header(mg__json_text *h);
void mg__st_add_tensor(mg__json_text *h, const char *name, size_t ndim, const size_t *shape, size_t *offset);
void mg__st_begin_metadata(mg__json_text *h);
void mg__st_end_header(mg__json_text *h);
uint64_t mg__st_file_size(size_t header_size, uint64_t n_values); /* bytes of a file of n F64 values */
/* The file's bytes: the header with its size before it, then each tensor's values. */
mg_status mg__st_write_header(int fd, const mg__json_text *h, const char *path);
mg_status mg__st_write_f64(int fd, const double *values, size_t count, const char *path);

/* ---- file I/O (fileio.c) ---- */

/* MG_ERR_IO, "cannot <what> <path>: <strerror>", errno kept as the failed call left it for the bindings */
mg_status mg__file_fail_io(const char *what, const char *path);
mg_status mg__file_write_all(int fd, const void *data, size_t size, const char *path);

/* Replace the file at path (its symbolic links followed) by what writer puts in a new file descriptor:
 * the old file or the new one, never half. path is what messages name; errno is kept on a failure. */
typedef mg_status (*mg__file_writer)(int fd, const void *context, const char *path);
mg_status mg__file_replace(const char *path, mg__file_writer writer, const void *context);

/* A regular file of at most MG_FILE_MAX_BYTES, whole, in a new buffer freed with mg__file_data_free. */
mg_status mg__file_read(const char *path, unsigned char **data, size_t *size);
void mg__file_data_free(unsigned char *data, size_t size);

#endif
