/* fuzz_csv: libFuzzer harness for the CSV reader. Any input must parse or fail with a message, never
 * crash, leak or hang; a parsed file must hold what the reader promises (checked by touching every cell).
 * Build and run: fuzz/run.sh (or make fuzz). */
#include <micrograd.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A broken promise is a crash, so libFuzzer keeps the input that shows it. */
#define EXPECT(cond)                   \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

/* Limits small enough for libFuzzer's inputs (4 KiB by default) to reach them. */
enum { MAX_FIELD = 64, MAX_BYTES = 3000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends s quoted ("" for each quote) and then `end` to out, which has room (see below). */
static size_t put_quoted(char *out, size_t n, const char *s, char end) {
    out[n++] = '"';
    for (; *s; s++) {
        if (*s == '"') out[n++] = '"';
        out[n++] = *s;
    }
    out[n++] = '"';
    out[n++] = end;
    return n;
}

/* Every cell written back quoted reads back the same: the parser and the format agree. */
static void check_round_trip(const mg_csv *csv) {
    size_t rows = mg_csv_num_rows(csv), cols = mg_csv_num_cols(csv), cap = 0;
    for (size_t i = 0; i <= rows; i++)
        for (size_t j = 0; j < cols; j++) {
            const char *cell = i ? mg_csv_cell(csv, i - 1, j) : mg_csv_header(csv, j);
            cap += 2 * strlen(cell) + 3; /* every byte a quote, plus two quotes and a separator */
        }
    char *text = malloc(cap);
    EXPECT(text);
    size_t n = 0;
    for (size_t i = 0; i <= rows; i++)
        for (size_t j = 0; j < cols; j++)
            n = put_quoted(text, n, i ? mg_csv_cell(csv, i - 1, j) : mg_csv_header(csv, j), j + 1 < cols ? ',' : '\n');
    EXPECT(n <= cap);
    mg_csv_options o = mg_csv_defaults();
    o.max_field = MAX_FIELD;
    o.allow_no_rows = 1;
    mg_csv *again = mg_csv_read_buffer(text, n, &o);
    EXPECT(again && mg_csv_num_rows(again) == rows && mg_csv_num_cols(again) == cols);
    for (size_t j = 0; j < cols; j++) EXPECT(strcmp(mg_csv_header(again, j), mg_csv_header(csv, j)) == 0);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) EXPECT(strcmp(mg_csv_cell(again, i, j), mg_csv_cell(csv, i, j)) == 0);
    mg_csv_free(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mg_csv_options o = mg_csv_defaults();
    o.max_field = MAX_FIELD;
    o.max_bytes = MAX_BYTES;
    o.allow_no_rows = size & 1; /* both settings, chosen by the input */
    mg_clear_error();
    mg_csv *csv = mg_csv_read_buffer((const char *)data, size, &o);
    if (!csv) {
        EXPECT(mg_last_error()[0] != '\0');
        EXPECT(strchr(mg_last_error(), '\n') == NULL);
        return 0;
    }
    size_t rows = mg_csv_num_rows(csv), cols = mg_csv_num_cols(csv);
    EXPECT(cols >= 1);
    EXPECT(rows >= 1 || o.allow_no_rows);
    size_t *all = malloc(cols * sizeof *all);
    double *x = malloc((rows ? rows : 1) * cols * sizeof *x);
    EXPECT(all && x);
    for (size_t j = 0; j < cols; j++) {
        const char *name = mg_csv_header(csv, j);
        EXPECT(name && strlen(name) <= MAX_FIELD);
        size_t found = cols;
        EXPECT(mg_csv_find_column(csv, name, &found) == MG_OK && found == j); /* names are unique */
        all[j] = j;
    }
    size_t previous_line = 0;
    for (size_t i = 0; i < rows; i++) {
        size_t line = mg_csv_row_line(csv, i);
        EXPECT(line > previous_line);
        previous_line = line;
        for (size_t j = 0; j < cols; j++) {
            const char *cell = mg_csv_cell(csv, i, j);
            EXPECT(cell && strlen(cell) <= MAX_FIELD);
            double v;
            mg_status status = mg_csv_number(csv, i, j, &v);
            EXPECT(status == MG_OK || status == MG_ERR_ARG);
            EXPECT(status != MG_OK || isfinite(v));
        }
    }
    EXPECT(mg_csv_cell(csv, rows, 0) == NULL && mg_csv_header(csv, cols) == NULL);
    mg_status status = mg_csv_matrix(csv, all, cols, x);
    EXPECT(status == MG_OK || status == MG_ERR_ARG);
    check_round_trip(csv);
    free(all);
    free(x);
    mg_csv_free(csv);
    return 0;
}
