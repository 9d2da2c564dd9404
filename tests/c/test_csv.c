/* test_csv: the CSV reader on valid files (quotes, CRLF, a BOM, no trailing newline, blank lines) and
 * on every kind of malformed input, each failing with its line number in the message. A counting
 * allocator proves that every block goes back, and fails the k-th allocation on purpose for every k a
 * read makes: each such failure says "out of memory" and leaks nothing. */
#include "check.h"

#include <micrograd.h>

#include <errno.h>
#include <locale.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static mg_csv *parse(const char *text) { return mg_csv_read_buffer(text, strlen(text), NULL); }

static int cell_is(const mg_csv *csv, size_t row, size_t col, const char *want) {
    const char *got = mg_csv_cell(csv, row, col);
    if (got && strcmp(got, want) == 0) return 1;
    fprintf(stderr, "  cell (%zu, %zu) is \"%s\", expected \"%s\"\n", row, col, got ? got : "(NULL)", want);
    return 0;
}

static int message_has(const char *want) {
    const char *msg = mg_last_error();
    if (strstr(msg, want)) return 1;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, want);
    return 0;
}

/* text must fail to parse with a message containing want (which starts with the line number). */
static void check_bad(const char *text, size_t size, const mg_csv_options *o, const char *want) {
    mg_clear_error();
    mg_csv *csv = mg_csv_read_buffer(text, size, o);
    if (!CHECK(csv == NULL)) {
        fprintf(stderr, "  parsed, expected \"%s\"\n", want);
        mg_csv_free(csv);
        return;
    }
    CHECK(message_has(want));
    CHECK(strchr(mg_last_error(), '\n') == NULL); /* one line, fit for a terminal */
}

static void check_bad_str(const char *text, const char *want) { check_bad(text, strlen(text), NULL, want); }

static void check_bad_opts(const char *text, const mg_csv_options *o, const char *want) {
    check_bad(text, strlen(text), o, want);
}

/* The number in cell (0, 0) of "x\n<cell>\n" must fail with a message containing want. */
static void check_bad_number(const char *cell, const char *want) {
    char text[256];
    snprintf(text, sizeof text, "x,y\n1,2\n%s,3\n", cell);
    mg_csv *csv = parse(text);
    if (!CHECK(csv != NULL)) return;
    double v = 12345;
    CHECK(mg_csv_number(csv, 1, 0, &v) == MG_ERR_ARG);
    CHECK(v == 12345);
    CHECK(message_has(want));
    CHECK(strchr(mg_last_error(), '\n') == NULL);
    mg_csv_free(csv);
}

/* ---- valid files ---- */

static void test_simple(void) {
    mg_csv *csv = parse("a,b,label\n1,2.5,cat\n-3,4e2,dog\n");
    if (!CHECK(csv != NULL)) return;
    CHECK(mg_csv_num_rows(csv) == 2);
    CHECK(mg_csv_num_cols(csv) == 3);
    CHECK(strcmp(mg_csv_header(csv, 0), "a") == 0);
    CHECK(strcmp(mg_csv_header(csv, 2), "label") == 0);
    CHECK(mg_csv_header(csv, 3) == NULL);
    CHECK(cell_is(csv, 0, 2, "cat"));
    CHECK(cell_is(csv, 1, 1, "4e2"));
    CHECK(mg_csv_cell(csv, 2, 0) == NULL);
    CHECK(mg_csv_cell(csv, 0, 3) == NULL);
    CHECK(mg_csv_row_line(csv, 0) == 2);
    CHECK(mg_csv_row_line(csv, 1) == 3);
    CHECK(mg_csv_row_line(csv, 2) == 0);
    size_t col = 99;
    CHECK(mg_csv_find_column(csv, "label", &col) == MG_OK && col == 2);
    CHECK(mg_csv_find_column(csv, "age", &col) == MG_ERR_ARG && col == 2);
    CHECK(message_has("no column 'age': the columns are 'a', 'b', 'label'"));
    size_t cols[] = {1, 0};
    double x[4];
    CHECK(mg_csv_matrix(csv, cols, 2, x) == MG_OK);
    CHECK(x[0] == 2.5 && x[1] == 1 && x[2] == 400 && x[3] == -3);
    size_t label[] = {2};
    CHECK(mg_csv_matrix(csv, label, 1, x) == MG_ERR_ARG);
    CHECK(message_has("line 2, column 'label': 'cat' is not a number"));
    size_t outside[] = {3};
    CHECK(mg_csv_matrix(csv, outside, 1, x) == MG_ERR_ARG);
    CHECK(mg_csv_number(csv, 2, 0, x) == MG_ERR_ARG);
    mg_csv_free(csv);
    mg_csv_free(NULL);
}

static void test_quotes(void) {
    /* commas, doubled quotes, a line break (LF and CRLF) inside quotes, an empty quoted field */
    const char *text = "name,text,n\n"
                       "\"x,y\",\"he said \"\"hi\"\"\nbye\",1\n"
                       "\"\",\"a\r\nb\",\"2\"\n"
                       "plain,5'11\",3\n";
    mg_csv *csv = parse(text);
    if (!CHECK(csv != NULL)) return;
    CHECK(mg_csv_num_rows(csv) == 3);
    CHECK(cell_is(csv, 0, 0, "x,y"));
    CHECK(cell_is(csv, 0, 1, "he said \"hi\"\nbye"));
    CHECK(cell_is(csv, 1, 0, ""));
    CHECK(cell_is(csv, 1, 1, "a\r\nb"));
    CHECK(cell_is(csv, 2, 1, "5'11\"")); /* a quote inside an unquoted field is kept as it is */
    CHECK(mg_csv_row_line(csv, 0) == 2);
    CHECK(mg_csv_row_line(csv, 1) == 4); /* the line break inside quotes counts */
    CHECK(mg_csv_row_line(csv, 2) == 6);
    double v;
    CHECK(mg_csv_number(csv, 1, 2, &v) == MG_OK && v == 2); /* a quoted number is a number */
    mg_csv_free(csv);

    /* a quoted header name with a comma, found by its name */
    csv = parse("\"a,b\",c\n1,2");
    if (!CHECK(csv != NULL)) return;
    size_t col;
    CHECK(mg_csv_find_column(csv, "a,b", &col) == MG_OK && col == 0);
    mg_csv_free(csv);
}

static void test_line_endings(void) {
    const char *texts[] = {
        "a,b\n1,2\n3,4\n",          /* LF */
        "a,b\r\n1,2\r\n3,4\r\n",    /* CRLF */
        "a,b\r1,2\r3,4\r",          /* CR */
        "a,b\n1,2\n3,4",            /* no trailing newline */
        "a,b\r\n1,2\r\n3,4",        /* CRLF, no trailing newline */
        ("\xEF\xBB\xBF"
         "a,b\n1,2\n3,4\n"), /* a UTF-8 byte order mark (split: "\xBFa" is one escape) */
        "\n\na,b\n\n1,2\r\n\r\n3,4\n\n\n", /* blank lines anywhere */
    };
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
        mg_csv *csv = parse(texts[t]);
        if (!CHECK(csv != NULL)) {
            fprintf(stderr, "  text %zu: %s\n", t, mg_last_error());
            continue;
        }
        CHECK(mg_csv_num_rows(csv) == 2 && mg_csv_num_cols(csv) == 2);
        CHECK(strcmp(mg_csv_header(csv, 0), "a") == 0);
        CHECK(cell_is(csv, 0, 0, "1") && cell_is(csv, 0, 1, "2"));
        CHECK(cell_is(csv, 1, 0, "3") && cell_is(csv, 1, 1, "4"));
        size_t cols[] = {0, 1};
        double x[4];
        CHECK(mg_csv_matrix(csv, cols, 2, x) == MG_OK && x[0] == 1 && x[3] == 4);
        mg_csv_free(csv);
    }
    mg_csv *csv = parse("\n\na,b\n\n1,2\r\n\r\n3,4\n");
    if (CHECK(csv != NULL)) {
        CHECK(mg_csv_row_line(csv, 0) == 5 && mg_csv_row_line(csv, 1) == 7);
        mg_csv_free(csv);
    }
}

static void test_empty_fields(void) {
    mg_csv *csv = parse("a,b,c\n,,\n1,,\"\"\n4,5,");
    if (!CHECK(csv != NULL)) return;
    CHECK(mg_csv_num_rows(csv) == 3);
    CHECK(cell_is(csv, 0, 0, "") && cell_is(csv, 0, 2, ""));
    CHECK(cell_is(csv, 1, 2, ""));
    CHECK(cell_is(csv, 2, 1, "5") && cell_is(csv, 2, 2, "")); /* a trailing comma at the end of the file */
    double v;
    CHECK(mg_csv_number(csv, 0, 1, &v) == MG_ERR_ARG);
    CHECK(message_has("line 2, column 'b': the cell is empty, a number is needed"));
    mg_csv_free(csv);

    /* one column: a single field per line, spaces kept */
    csv = parse("only\n x \n\"\"\n");
    if (!CHECK(csv != NULL)) return;
    CHECK(mg_csv_num_rows(csv) == 2 && cell_is(csv, 0, 0, " x ") && cell_is(csv, 1, 0, ""));
    mg_csv_free(csv);
}

static void test_numbers(void) {
    const char *cells[] = {"0", "-2", " 1.5 ", "\t+.5", "5.", "-2e3", "1E-2", "007", "1e-400", "\"3\""};
    const double want[] = {0, -2, 1.5, 0.5, 5, -2000, 0.01, 7, 0, 3};
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++) {
        char text[64];
        snprintf(text, sizeof text, "x\n%s\n", cells[i]);
        mg_csv *csv = parse(text);
        double v = -1;
        if (!CHECK(csv != NULL && mg_csv_number(csv, 0, 0, &v) == MG_OK && v == want[i]))
            fprintf(stderr, "  cell \"%s\": %.17g, %s\n", cells[i], v, mg_last_error());
        mg_csv_free(csv);
    }
    check_bad_number("abc", "line 3, column 'x': 'abc' is not a number");
    check_bad_number("nan", "line 3, column 'x': 'nan' is not a finite number (NaN and infinity are not allowed)");
    check_bad_number("NaN", "'NaN' is not a finite number");
    check_bad_number("-inf", "'-inf' is not a finite number");
    check_bad_number("+Infinity", "'+Infinity' is not a finite number");
    check_bad_number("1e999", "line 3, column 'x': '1e999' is too large for a double");
    check_bad_number("-1e400", "'-1e400' is too large for a double");
    check_bad_number("0x10", "'0x10' is not a number");
    check_bad_number("\"1,5\"", "'1,5' is not a number");
    check_bad_number("1.2.3", "'1.2.3' is not a number");
    check_bad_number("1e", "'1e' is not a number");
    check_bad_number("-", "'-' is not a number");
    check_bad_number("1 2", "'1 2' is not a number");
    check_bad_number("", "line 3, column 'x': the cell is empty, a number is needed");
    check_bad_number("  ", "the cell is empty");
    /* control characters are escaped and long text cut, so the message stays one short line */
    check_bad_number("\"a\nb\"", "line 3, column 'x': 'a\\nb' is not a number");
    check_bad_number("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
                     "'abcdefghijklmnopqrstuvwxyzabcdefghijklmn...' is not a number");

    /* a locale whose decimal point is a comma must not change how a file reads */
    const char *locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8"};
    for (size_t i = 0; i < sizeof locales / sizeof *locales; i++) {
        if (!setlocale(LC_NUMERIC, locales[i])) continue;
        mg_csv *csv = parse("x\n2.5\n");
        double v = 0;
        CHECK(csv && mg_csv_number(csv, 0, 0, &v) == MG_OK && v == 2.5);
        mg_csv_free(csv);
        setlocale(LC_NUMERIC, "C");
    }
}

static void test_no_rows_allowed(void) {
    mg_csv_options o = mg_csv_defaults();
    o.allow_no_rows = 1;
    mg_csv *csv = mg_csv_read_buffer("a,b\n", 4, &o);
    if (!CHECK(csv != NULL)) return;
    CHECK(mg_csv_num_rows(csv) == 0 && mg_csv_num_cols(csv) == 2);
    size_t cols[] = {0};
    CHECK(mg_csv_matrix(csv, cols, 1, NULL) == MG_ERR_NULL);
    CHECK(mg_csv_matrix(csv, NULL, 0, NULL) == MG_OK);
    mg_csv_free(csv);
}

/* ---- malformed input ---- */

static void test_malformed(void) {
    check_bad_str("a,b,c,d\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3\n1,2,3,4\n",
                  "line 7: 3 fields, the header has 4");
    check_bad_str("a,b,c,d\n1,2,3,4\n1,2,3,4,5\n", "line 3: 5 fields, the header has 4");
    check_bad_str("a,b\n1\n", "line 2: 1 field, the header has 2");
    check_bad_str("a,b\n\"x\ny\",1\n1,2,3\n", "line 4: 3 fields, the header has 2");
    check_bad_str("a,b\n1,\"abc\n2,3\n", "line 2: a quoted field is never closed");
    check_bad_str("a,b\n1,2\n\"", "line 3: a quoted field is never closed");
    check_bad_str("a,b\n\"x\"y,2\n", "line 2: text after the closing quote of a quoted field");
    check_bad_str("a,b\n\"x\" ,2\n", "line 2: text after the closing quote");
    check_bad_str("", "the file is empty");
    check_bad_str("\xEF\xBB\xBF", "the file is empty");
    check_bad_str("\n\r\n\n", "the file is empty");
    check_bad_str("a,b\n", "line 1: the header is the only row: there is no data");
    check_bad_str("a,b", "line 1: the header is the only row");
    check_bad_str("\n\na,b\n\n", "line 3: the header is the only row");
    check_bad_str("a,b,a\n1,2,3\n", "line 1: the column name 'a' appears twice in the header");
    check_bad_str(",x,\n1,2,3\n", "line 1: the column name '' appears twice");
    check_bad("a,b\n1,\0\n", 8, NULL, "line 2: a NUL byte");
    check_bad("a,b\n1,2\n\"x\ny\0\",2\n", 17, NULL, "line 4: a NUL byte");
    check_bad("a\0b\0\n\0", 6, NULL, "line 1: a NUL byte"); /* UTF-16 */

    mg_csv_options o = mg_csv_defaults();
    o.max_field = 8;
    check_bad_opts("a,b\n12345678,1\n123456789,2\n", &o, "line 3: a field is longer than the limit of 8 bytes");
    check_bad_opts("a,b\n1,2\n\"12\n45678\"\"\",2\n", &o, "line 3: a field is longer than the limit of 8 bytes");
    mg_csv *csv = mg_csv_read_buffer("a,b\n\"1\"\"345678\",1\n", 18, &o); /* 8 bytes once unquoted */
    CHECK(csv != NULL && cell_is(csv, 0, 0, "1\"345678"));
    mg_csv_free(csv);
    o = mg_csv_defaults();
    o.max_bytes = 10;
    check_bad_opts("a,b\n1,2\n3,4\n", &o, "the input is 12 bytes, more than the limit of 10");
    CHECK(mg_csv_read_buffer(NULL, 1, NULL) == NULL);
    CHECK(mg_csv_read_buffer(NULL, 0, NULL) == NULL && message_has("the file is empty"));

    /* the default limit: a field of 1 MiB reads, one byte more does not */
    size_t big = MG_CSV_MAX_FIELD + 1;
    char *text = malloc(big + 16);
    if (!CHECK(text != NULL)) return;
    memcpy(text, "a\n", 2);
    memset(text + 2, 'x', big);
    check_bad(text, 2 + big, NULL, "line 2: a field is longer than the limit of 1048576 bytes");
    csv = mg_csv_read_buffer(text, 1 + big, NULL);
    CHECK(csv != NULL && strlen(mg_csv_cell(csv, 0, 0)) == MG_CSV_MAX_FIELD);
    mg_csv_free(csv);
    free(text);
}

/* Many cells and a wide header: linear time (a quadratic duplicate check would not finish). */
static void test_big(void) {
    enum { COLS = 200000, ROWS = 3 };
    size_t cap = (size_t)COLS * 8 * (ROWS + 1);
    char *text = malloc(cap);
    if (!CHECK(text != NULL)) return;
    size_t n = 0;
    for (int j = 0; j < COLS; j++) n += (size_t)snprintf(text + n, cap - n, j ? ",c%d" : "c%d", j);
    text[n++] = '\n';
    for (int r = 0; r < ROWS; r++) {
        for (int j = 0; j < COLS; j++) n += (size_t)snprintf(text + n, cap - n, j ? ",%d" : "%d", j % 10);
        text[n++] = '\n';
    }
    mg_csv *csv = mg_csv_read_buffer(text, n, NULL);
    if (CHECK(csv != NULL)) {
        CHECK(mg_csv_num_rows(csv) == ROWS && mg_csv_num_cols(csv) == COLS);
        CHECK(strcmp(mg_csv_header(csv, COLS - 1), "c199999") == 0 && cell_is(csv, 2, COLS - 1, "9"));
        size_t col;
        CHECK(mg_csv_find_column(csv, "c123456", &col) == MG_OK && col == 123456);
        mg_csv_free(csv);
    }
    text[1] = '1'; /* c0 -> c1: a duplicate far from its twin */
    check_bad(text, n, NULL, "line 1: the column name 'c1' appears twice");
    free(text);
}

/* Limits at the edge of size_t: the largest limits still parse (the buffer's extra byte cannot overflow),
 * a size past the limit is refused before anything is read, and a matrix whose bytes overflow is refused
 * before cols or out are touched. */
static void test_size_limits(void) {
    mg_csv_options o = {SIZE_MAX, SIZE_MAX, 0};
    const char *text = "a,b\n1,2\n";
    mg_csv *csv = mg_csv_read_buffer(text, strlen(text), &o);
    if (CHECK(csv != NULL)) {
        size_t cols[] = {0, 1};
        double out[2] = {0, 0};
        CHECK(mg_csv_matrix(csv, cols, 2, out) == MG_OK && out[0] == 1.0 && out[1] == 2.0);
        mg_clear_error();
        CHECK(mg_csv_matrix(csv, cols, SIZE_MAX / 4, out) == MG_ERR_ARG); /* cols has 2: must not be read */
        CHECK(message_has("more numbers than memory can hold"));
        CHECK(out[0] == 1.0 && out[1] == 2.0);
        mg_csv_free(csv);
    }
    mg_csv_options small = {4, 0, 0};
    mg_clear_error();
    CHECK(mg_csv_read_buffer(text, SIZE_MAX, &small) == NULL && mg_last_status() == MG_ERR_ARG);
    CHECK(message_has("more than the limit of 4"));
    CHECK(mg_csv_read_buffer(text, SIZE_MAX, NULL) == NULL && mg_last_status() == MG_ERR_ARG);
}

/* ---- files ---- */

static const char *tmp_path = "test_csv_tmp.csv";

static int write_file(const char *path, const char *text, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(text, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static void test_files(void) {
    const char *text = "x,y\r\n1,\"2\"\r\n3,4";
    if (!CHECK(write_file(tmp_path, text, strlen(text)))) return;
    errno = 0;
    mg_csv *csv = mg_csv_read_file(tmp_path, NULL);
    if (CHECK(csv != NULL)) {
        CHECK(errno == 0);
        CHECK(mg_csv_num_rows(csv) == 2 && cell_is(csv, 0, 1, "2") && cell_is(csv, 1, 1, "4"));
        mg_csv_free(csv);
    }
    mg_csv_options o = mg_csv_defaults();
    o.max_bytes = 8;
    errno = 1;
    CHECK(mg_csv_read_file(tmp_path, &o) == NULL && errno == 0);
    CHECK(message_has("'test_csv_tmp.csv' is larger than the limit of 8 bytes"));
    o.max_bytes = strlen(text); /* exactly at the limit */
    csv = mg_csv_read_file(tmp_path, &o);
    CHECK(csv != NULL);
    mg_csv_free(csv);

    /* a malformed file: errno 0, the line in the message */
    CHECK(write_file(tmp_path, "x,y\n1,2\n3\n", 10));
    errno = 1;
    CHECK(mg_csv_read_file(tmp_path, NULL) == NULL && errno == 0);
    CHECK(message_has("line 3: 1 field, the header has 2"));
    remove(tmp_path);

    /* a file larger than the first read buffer (64 KiB) */
    size_t rows = 40000, cap = 16 + rows * 8, n = 0;
    char *big = malloc(cap);
    if (!CHECK(big != NULL)) return;
    n += (size_t)snprintf(big, cap, "a,b\n");
    for (size_t r = 0; r < rows; r++) n += (size_t)snprintf(big + n, cap - n, "%zu,%zu\n", r % 100, r % 7);
    CHECK(write_file(tmp_path, big, n));
    free(big);
    csv = mg_csv_read_file(tmp_path, NULL);
    if (CHECK(csv != NULL)) {
        CHECK(mg_csv_num_rows(csv) == rows && cell_is(csv, rows - 1, 0, "99"));
        CHECK(mg_csv_row_line(csv, rows - 1) == rows + 1);
        mg_csv_free(csv);
    }
    remove(tmp_path);

    errno = 0;
    CHECK(mg_csv_read_file("no/such/file.csv", NULL) == NULL && errno == ENOENT);
    CHECK(message_has("cannot open 'no/such/file.csv': "));
    errno = 0;
    CHECK(mg_csv_read_file(".", NULL) == NULL && errno != 0); /* a folder: opens, but cannot be read */
    CHECK(message_has("cannot read '.'"));
    CHECK(mg_csv_read_file(NULL, NULL) == NULL);
}

/* ---- memory: every block returned; every allocation failure reported, nothing leaked ---- */

static char *workload_text(size_t *size) {
    size_t rows = 700, cap = 64 + rows * 32, n = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    n += (size_t)snprintf(text, cap,
                          "\xEF\xBB\xBF"
                          "a,\"b\",label\r\n");
    for (size_t r = 0; r < rows; r++)
        n += (size_t)snprintf(text + n, cap - n, "%zu,\"%zu.5\",\"c\"\"%zu\"\r\n", r, r * 3, r % 3);
    *size = n;
    return text;
}

static void test_allocator(void) {
    size_t size = 0;
    char *text = workload_text(&size);
    if (!CHECK(text != NULL)) return;
    if (!CHECK(write_file(tmp_path, text, size))) {
        free(text);
        return;
    }
    counting count = {0};
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_OK);
    for (int from_file = 0; from_file < 2; from_file++) {
        /* a clean run, then one run failing each allocation it makes in turn */
        count = (counting){0};
        mg_csv *csv = from_file ? mg_csv_read_file(tmp_path, NULL) : mg_csv_read_buffer(text, size, NULL);
        if (!CHECK(csv != NULL)) break;
        CHECK(mg_csv_num_rows(csv) == 700 && cell_is(csv, 699, 2, "c\"0"));
        CHECK(count.blocks > 0);
        mg_csv_free(csv);
        CHECK(count.blocks == 0 && count.bad_sizes == 0);
        long long needed = count.calls;
        CHECK(needed >= 4); /* the text, the struct, and the growing cell and line arrays */
        for (long long k = 1; k <= needed; k++) {
            count = (counting){.fail_at = k};
            mg_clear_error();
            errno = 0;
            csv = from_file ? mg_csv_read_file(tmp_path, NULL) : mg_csv_read_buffer(text, size, NULL);
            if (!CHECK(csv == NULL)) {
                mg_csv_free(csv);
                continue;
            }
            CHECK(message_has("out of memory"));
            CHECK(errno == 0);
            CHECK(count.blocks == 0 && count.bad_sizes == 0);
        }
    }
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK);
    remove(tmp_path);
    free(text);
}

int main(void) {
    test_simple();
    test_quotes();
    test_line_endings();
    test_empty_fields();
    test_numbers();
    test_no_rows_allowed();
    test_malformed();
    test_big();
    test_size_limits();
    test_files();
    test_allocator();
    return check_finish("test_csv");
}
