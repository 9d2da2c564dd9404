/* csv.c: an RFC 4180 reader for data files. The whole input sits in memory; cells stay text until a
 * number is asked for.
 *
 * One pass over a copy of the input unquotes every field in place: a field never grows when unquoted,
 * and its NUL terminator takes the place of the separator that followed it, so the writing position
 * never passes the reading one and the text fits in size + 1 bytes. An offset per cell and a line number
 * per record go into two arrays that grow by doubling. Memory is linear in the input, time too. */
#include "internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mg_csv {
    char *text;        /* every cell unquoted and NUL-terminated: the header's, then row by row */
    size_t text_size;  /* bytes allocated */
    size_t *cells;     /* offset into text of each cell: n_records * n_cols of them */
    size_t cells_cap;
    size_t *lines;     /* the line on which each record starts: [0] the header, [1 + r] data row r */
    size_t lines_cap;
    size_t n_cols;
    size_t n_records;  /* the header included */
};

mg_csv_options mg_csv_defaults(void) {
    mg_csv_options o = {MG_CSV_MAX_BYTES, MG_CSV_MAX_FIELD, 0};
    return o;
}

void mg_csv_free(mg_csv *csv) {
    if (!csv) return;
    mg__free(csv->text, csv->text_size);
    mg__free(csv->cells, csv->cells_cap * sizeof(size_t));
    mg__free(csv->lines, csv->lines_cap * sizeof(size_t));
    mg__free(csv, sizeof *csv);
}

/* Appends value to an array of size_t that grows by doubling: 0 when out of memory. */
static int push(size_t **array, size_t *cap, size_t count, size_t value) {
    if (count == *cap) {
        size_t cap2 = 256, bytes; /* *cap * sizeof(size_t) fitted when *cap was allocated */
        if ((*cap && mg__mul_size(*cap, 2, &cap2)) || mg__mul_size(cap2, sizeof(size_t), &bytes)) return 0;
        size_t *grown = mg__realloc(*array, *cap * sizeof(size_t), bytes);
        if (!grown) return 0;
        *array = grown;
        *cap = cap2;
    }
    (*array)[count] = value;
    return 1;
}

/* ---- messages: cells and names quoted short, on one line, and cut on a UTF-8 character boundary ---- */

enum { QUOTE_MAX = 40 };

/* dst gets s, at most QUOTE_MAX bytes of it, with control characters escaped; cap >= 16. */
static void quote_text(char *dst, size_t cap, const char *s) {
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int starts = (c & 0xC0) != 0x80; /* cut before a character starts, never inside one */
        if ((starts && (i >= QUOTE_MAX || n + 12 > cap)) || n + 6 > cap) {
            memcpy(dst + n, "...", 3);
            n += 3;
            break;
        }
        if (c == '\n' || c == '\r' || c == '\t') {
            dst[n++] = '\\';
            dst[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else {
            dst[n++] = c < 0x20 ? '?' : (char)c;
        }
    }
    dst[n] = '\0';
}

/* ---- parsing ---- */

static mg_status fail_line(size_t line, const char *what) { return mg__fail(MG_ERR_ARG, "line %zu: %s", line, what); }

static int is_blank_line_start(char c) { return c == '\n' || c == '\r'; }

/* Where the parse is: b[0..size) read at r and written back, unquoted, at w (w <= r always); `line` is the
 * line of the file r is on. */
typedef struct {
    char *b;
    size_t size, r, w, line;
    const mg_csv_options *o;
} parser;

static mg_status fail_nul(size_t line) {
    return fail_line(line, "a NUL byte (is this a text file? UTF-16 is not supported)");
}

static mg_status fail_long(size_t line, size_t max_field) {
    return mg__fail(MG_ERR_ARG, "line %zu: a field is longer than the limit of %zu bytes", line, max_field);
}

static int at_field_end(const parser *p) {
    return p->r >= p->size || p->b[p->r] == ',' || p->b[p->r] == '\n' || p->b[p->r] == '\r';
}

/* A quoted field, from its opening quote to just past its closing one: "" is one quote, line breaks are
 * data (but still lines of the file, for the messages). */
static mg_status read_quoted(parser *p, size_t start) {
    char *b = p->b;
    size_t open_line = p->line;
    p->r++;
    for (;;) {
        if (p->r == p->size)
            return mg__fail(MG_ERR_ARG,
                            "line %zu: a quoted field is never closed (no closing quote before the end "
                            "of the file)",
                            open_line);
        char c = b[p->r];
        int more = p->r + 1 < p->size;
        if (c == '"') {
            if (!(more && b[p->r + 1] == '"')) break;
            p->r++; /* "" inside quotes: one quote, copied below */
        } else if (c == '\0') {
            return fail_nul(p->line);
        } else if (c == '\n' || (c == '\r' && !(more && b[p->r + 1] == '\n'))) {
            p->line++;
        }
        if (p->w - start == p->o->max_field) return fail_long(open_line, p->o->max_field);
        b[p->w++] = b[p->r++];
    }
    p->r++; /* the closing quote */
    if (!at_field_end(p))
        return fail_line(p->line, "text after the closing quote of a quoted field (a quote inside quotes is "
                                  "written twice: \"\")");
    return MG_OK;
}

/* An unquoted field: everything up to the next separator or line break. */
static mg_status read_plain(parser *p, size_t start) {
    while (!at_field_end(p)) {
        if (p->b[p->r] == '\0') return fail_nul(p->line);
        if (p->w - start == p->o->max_field) return fail_long(p->line, p->o->max_field);
        p->b[p->w++] = p->b[p->r++];
    }
    return MG_OK;
}

/* One record: its fields NUL-terminated in place, their offsets pushed to csv->cells (*n_cells of them so
 * far), *fields counted; r ends past the record's line break. */
static mg_status read_record(mg_csv *csv, parser *p, size_t *n_cells, size_t *fields) {
    for (;;) {
        size_t start = p->w;
        int quoted = p->r < p->size && p->b[p->r] == '"';
        mg_status status = quoted ? read_quoted(p, start) : read_plain(p, start);
        if (status != MG_OK) return status;
        char sep = p->r < p->size ? p->b[p->r] : '\n'; /* read before the terminator may overwrite it */
        p->b[p->w++] = '\0';
        if (!push(&csv->cells, &csv->cells_cap, *n_cells, start))
            return mg__fail(MG_ERR_NOMEM, "out of memory reading a CSV (%zu cells so far)", *n_cells);
        ++*n_cells;
        ++*fields;
        if (p->r < p->size) p->r++;
        if (sep == ',') continue;
        if (sep == '\r' && p->r < p->size && p->b[p->r] == '\n') p->r++;
        p->line++;
        return MG_OK;
    }
}

/* A record read: the header sets the column count, which every row must match. */
static mg_status end_record(mg_csv *csv, size_t record_line, size_t fields) {
    if (csv->n_records == 0) csv->n_cols = fields;
    else if (fields != csv->n_cols)
        return mg__fail(MG_ERR_ARG, "line %zu: %zu field%s, the header has %zu", record_line, fields,
                        fields == 1 ? "" : "s", csv->n_cols);
    if (!push(&csv->lines, &csv->lines_cap, csv->n_records, record_line))
        return mg__fail(MG_ERR_NOMEM, "out of memory reading a CSV (%zu rows so far)", csv->n_records);
    csv->n_records++;
    return MG_OK;
}

/* Parses csv->text[0..size) in place into cells and records. */
static mg_status parse(mg_csv *csv, size_t size, const mg_csv_options *o) {
    parser p = {csv->text, size, 0, 0, 1, o};
    size_t n_cells = 0;
    if (size >= 3 && memcmp(p.b, "\xEF\xBB\xBF", 3) == 0) p.r = 3;
    while (p.r < size) {
        if (is_blank_line_start(p.b[p.r])) { /* blank lines carry no record */
            p.r += (p.b[p.r] == '\r' && p.r + 1 < size && p.b[p.r + 1] == '\n') ? 2 : 1;
            p.line++;
            continue;
        }
        size_t record_line = p.line, fields = 0;
        mg_status status = read_record(csv, &p, &n_cells, &fields);
        if (status == MG_OK) status = end_record(csv, record_line, fields);
        if (status != MG_OK) return status;
    }
    if (csv->n_records == 0) return mg__fail(MG_ERR_ARG, "the file is empty: a CSV file starts with a header row");
    if (csv->n_records == 1 && !o->allow_no_rows)
        return mg__fail(MG_ERR_ARG, "line %zu: the header is the only row: there is no data", csv->lines[0]);
    return MG_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Column names must differ, or a name would not say which column it means. Sorted, so n log n. */
static mg_status check_header(mg_csv *csv) {
    size_t n = csv->n_cols;
    if (n < 2) return MG_OK;
    const char **names = mg__alloc(n * sizeof *names);
    if (!names) return mg__fail(MG_ERR_NOMEM, "out of memory checking a CSV header of %zu columns", n);
    for (size_t j = 0; j < n; j++) names[j] = csv->text + csv->cells[j];
    qsort(names, n, sizeof *names, compare_names);
    mg_status status = MG_OK;
    for (size_t j = 1; j < n; j++) {
        if (strcmp(names[j - 1], names[j]) == 0) {
            char quoted[64];
            quote_text(quoted, sizeof quoted, names[j]);
            status = mg__fail(MG_ERR_ARG, "line %zu: the column name '%s' appears twice in the header", csv->lines[0],
                              quoted);
            break;
        }
    }
    mg__free(names, n * sizeof *names);
    return status;
}

/* Takes text (size bytes of input, text_size allocated, text_size > size): parses it, or frees it. */
static mg_csv *csv_from_text(char *text, size_t text_size, size_t size, const mg_csv_options *o) {
    mg_csv *csv = mg__alloc(sizeof *csv);
    if (!csv) {
        mg__free(text, text_size);
        mg__fail(MG_ERR_NOMEM, "out of memory reading a CSV");
        return NULL;
    }
    memset(csv, 0, sizeof *csv);
    csv->text = text;
    csv->text_size = text_size;
    if (parse(csv, size, o) != MG_OK || check_header(csv) != MG_OK) {
        mg_csv_free(csv);
        return NULL;
    }
    return csv;
}

static mg_csv_options options_or_defaults(const mg_csv_options *options) {
    mg_csv_options o = options ? *options : mg_csv_defaults();
    if (o.max_bytes == 0) o.max_bytes = MG_CSV_MAX_BYTES;
    if (o.max_bytes > SIZE_MAX / 2) o.max_bytes = SIZE_MAX / 2; /* room for the buffer's extra byte */
    if (o.max_field == 0) o.max_field = MG_CSV_MAX_FIELD;
    return o;
}

mg_csv *mg_csv_read_buffer(const char *data, size_t size, const mg_csv_options *options) {
    mg_csv_options o = options_or_defaults(options);
    if (!data && size > 0) {
        mg__fail(MG_ERR_NULL, "mg_csv_read_buffer: data is NULL");
        return NULL;
    }
    if (size > o.max_bytes) {
        mg__fail(MG_ERR_ARG, "the input is %zu bytes, more than the limit of %zu", size, o.max_bytes);
        return NULL;
    }
    char *text = mg__alloc(size + 1);
    if (!text) {
        mg__fail(MG_ERR_NOMEM, "out of memory for a CSV of %zu bytes", size);
        return NULL;
    }
    if (size) memcpy(text, data, size);
    return csv_from_text(text, size + 1, size, &o);
}

/* Fails an I/O step, keeping errno for the caller. */
static mg_csv *fail_io(const char *what, const char *path, FILE *f, char *buf, size_t cap) {
    int err = errno ? errno : EIO;
    char quoted[64];
    quote_text(quoted, sizeof quoted, path);
    mg__fail(MG_ERR_ARG, "cannot %s '%s': %s", what, quoted, strerror(err));
    if (f) fclose(f);
    mg__free(buf, cap);
    errno = err;
    return NULL;
}

mg_csv *mg_csv_read_file(const char *path, const mg_csv_options *options) {
    mg_csv_options o = options_or_defaults(options);
    if (!path) {
        mg__fail(MG_ERR_NULL, "mg_csv_read_file: path is NULL");
        errno = 0;
        return NULL;
    }
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail_io("open", path, NULL, NULL, 0);
    /* the size is unknown (a pipe has none): read in chunks that double, up to the limit */
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            if (len > o.max_bytes) {
                fclose(f);
                mg__free(buf, cap);
                char quoted[64];
                quote_text(quoted, sizeof quoted, path);
                mg__fail(MG_ERR_ARG, "'%s' is larger than the limit of %zu bytes", quoted, o.max_bytes);
                errno = 0;
                return NULL;
            }
            size_t cap2 = cap ? 2 * cap : (size_t)1 << 16; /* cap <= max_bytes <= SIZE_MAX / 2 here */
            if (cap2 > o.max_bytes + 1) cap2 = o.max_bytes + 1;
            char *grown = mg__realloc(buf, cap, cap2);
            if (!grown) {
                fclose(f);
                mg__free(buf, cap);
                mg__fail(MG_ERR_NOMEM, "out of memory reading a CSV file (%zu bytes so far)", len);
                errno = 0;
                return NULL;
            }
            buf = grown;
            cap = cap2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) return fail_io("read", path, f, buf, cap);
            break;
        }
    }
    fclose(f);
    /* the loop ends on a read of 0 bytes into a buffer with room: len < cap <= max_bytes + 1 */
    mg_csv *csv = csv_from_text(buf, cap, len, &o);
    errno = 0;
    return csv;
}

/* ---- reading ---- */

size_t mg_csv_num_rows(const mg_csv *csv) { return csv ? csv->n_records - 1 : 0; }

size_t mg_csv_num_cols(const mg_csv *csv) { return csv ? csv->n_cols : 0; }

const char *mg_csv_header(const mg_csv *csv, size_t col) {
    if (!csv || col >= csv->n_cols) return NULL;
    return csv->text + csv->cells[col];
}

const char *mg_csv_cell(const mg_csv *csv, size_t row, size_t col) {
    if (!csv || row >= csv->n_records - 1 || col >= csv->n_cols) return NULL;
    return csv->text + csv->cells[(row + 1) * csv->n_cols + col];
}

size_t mg_csv_row_line(const mg_csv *csv, size_t row) {
    if (!csv || row >= csv->n_records - 1) return 0;
    return csv->lines[row + 1];
}

mg_status mg_csv_find_column(const mg_csv *csv, const char *name, size_t *col) {
    if (!csv || !name || !col) return mg__fail(MG_ERR_NULL, "mg_csv_find_column: an argument is NULL");
    for (size_t j = 0; j < csv->n_cols; j++) {
        if (strcmp(mg_csv_header(csv, j), name) == 0) {
            *col = j;
            return MG_OK;
        }
    }
    /* list the names the file has, as many as fit */
    char list[160], quoted[64];
    size_t n = 0;
    list[0] = '\0';
    for (size_t j = 0; j < csv->n_cols; j++) {
        quote_text(quoted, sizeof quoted, mg_csv_header(csv, j));
        size_t len = strlen(quoted);
        if (n + len + 8 >= sizeof list) {
            memcpy(list + n, ", ...", 6);
            break;
        }
        n += (size_t)snprintf(list + n, sizeof list - n, "%s'%s'", j ? ", " : "", quoted);
    }
    quote_text(quoted, sizeof quoted, name);
    return mg__fail(MG_ERR_ARG, "no column '%s': the columns are %s", quoted, list);
}

/* A cell's text as a finite double: NULL on success, else what is wrong with it. Decimal only (strtod
 * alone would take hex and "nan"), and with '.' as the point whatever LC_NUMERIC says. */
static const char *parse_number(const char *s, double *out) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 0) return "empty";
    char tmp[128];
    if (n >= sizeof tmp) return "not a number";
    const char *point = localeconv()->decimal_point;
    int plain_point = point[0] == '.' && point[1] == '\0';
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (strchr("0123456789+-eE", c)) {
            tmp[m++] = c;
        } else if (c == '.') {
            if (plain_point) {
                tmp[m++] = '.';
            } else { /* a program changed the locale: give strtod the point it now expects */
                size_t len = strlen(point);
                if (m + len + (n - i) >= sizeof tmp) return "not a number";
                memcpy(tmp + m, point, len);
                m += len;
            }
        } else {
            /* not decimal: say so clearly for the words strtod would have taken */
            size_t k = s[0] == '+' || s[0] == '-' ? 1 : 0;
            const char *words[] = {"nan", "inf", "infinity"};
            for (size_t w = 0; w < 3; w++) {
                size_t len = strlen(words[w]), i2 = 0;
                while (i2 < len && k + i2 < n && (s[k + i2] | 0x20) == words[w][i2]) i2++;
                if (i2 == len && k + len == n) return "not finite";
            }
            return "not a number";
        }
    }
    tmp[m] = '\0';
    int saved = errno;
    char *end;
    double v = strtod(tmp, &end);
    errno = saved;
    if (end == tmp || *end != '\0') return "not a number";
    if (!isfinite(v)) return "too large";
    *out = v;
    return NULL;
}

static mg_status number_at(const mg_csv *csv, size_t row, size_t col, double *out) {
    const char *text = mg_csv_cell(csv, row, col);
    const char *problem = parse_number(text, out);
    if (!problem) return MG_OK;
    char name[64], cell[64];
    quote_text(name, sizeof name, mg_csv_header(csv, col));
    quote_text(cell, sizeof cell, text);
    size_t line = mg_csv_row_line(csv, row);
    if (strcmp(problem, "empty") == 0)
        return mg__fail(MG_ERR_ARG, "line %zu, column '%s': the cell is empty, a number is needed", line, name);
    if (strcmp(problem, "not finite") == 0)
        return mg__fail(MG_ERR_ARG,
                        "line %zu, column '%s': '%s' is not a finite number (NaN and infinity are "
                        "not allowed)",
                        line, name, cell);
    if (strcmp(problem, "too large") == 0)
        return mg__fail(MG_ERR_ARG, "line %zu, column '%s': '%s' is too large for a double", line, name, cell);
    return mg__fail(MG_ERR_ARG, "line %zu, column '%s': '%s' is not a number", line, name, cell);
}

mg_status mg_csv_number(const mg_csv *csv, size_t row, size_t col, double *out) {
    if (!csv || !out) return mg__fail(MG_ERR_NULL, "mg_csv_number: an argument is NULL");
    if (row >= mg_csv_num_rows(csv) || col >= csv->n_cols)
        return mg__fail(MG_ERR_ARG, "mg_csv_number: cell (%zu, %zu) is out of range (%zu rows, %zu columns)", row, col,
                        mg_csv_num_rows(csv), csv->n_cols);
    return number_at(csv, row, col, out);
}

mg_status mg_csv_matrix(const mg_csv *csv, const size_t *cols, size_t n_cols, double *out) {
    if (!csv || (n_cols && (!cols || !out))) return mg__fail(MG_ERR_NULL, "mg_csv_matrix: an argument is NULL");
    /* out holds rows x n_cols numbers: a count whose bytes overflow cannot be (checked before cols is read) */
    size_t rows = mg_csv_num_rows(csv), cells;
    if (mg__mul_size(rows, n_cols, &cells) || mg__mul_size(cells, sizeof(double), &cells))
        return mg__fail(MG_ERR_ARG, "mg_csv_matrix: %zu rows of %zu columns are more numbers than memory can hold",
                        rows, n_cols);
    for (size_t j = 0; j < n_cols; j++)
        if (cols[j] >= csv->n_cols)
            return mg__fail(MG_ERR_ARG, "mg_csv_matrix: column %zu is out of range (%zu columns)", cols[j],
                            csv->n_cols);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n_cols; j++) {
            mg_status status = number_at(csv, i, cols[j], &out[i * n_cols + j]);
            if (status != MG_OK) return status;
        }
    return MG_OK;
}
