/* _csv.c: CSV files for micrograd_c over the C library's reader (mg_csv).
 *
 *     csv = _core.read_csv("data.csv")     # or _core.parse_csv(b"a,b\n1,2\n")
 *     csv.header                           # ['a', 'b']
 *     csv.column("b")                      # ['2']: cells are text
 *     csv.matrix(["a", "b"])               # [[1.0, 2.0]]: numbers on request
 *
 * Malformed input raises ValueError with the reader's message ("line 7: 3 fields, the header has 4"), a
 * file that cannot be read raises OSError (FileNotFoundError, ...). Reading and number conversion run
 * with the GIL released: they touch nothing but C memory. */
#include "_core.h"

#include <errno.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    mg_csv *csv;
} CsvObject;

static mg_csv *csv_of(PyObject *self) { return ((CsvObject *)self)->csv; }

/* A cell as str; where it is not UTF-8, a ValueError naming the line (0: the header) and the column. */
static PyObject *text_to_str(const char *text, size_t line, size_t col) {
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), NULL);
    if (!s && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        if (line)
            PyErr_Format(PyExc_ValueError, "line %zu, column %zu: the text is not UTF-8 (save the file as UTF-8)", line,
                         col + 1);
        else
            PyErr_Format(PyExc_ValueError, "the header, column %zu: the text is not UTF-8 (save the file as UTF-8)",
                         col + 1);
    }
    return s;
}

static PyObject *new_csv(PyTypeObject *type, mg_csv *csv) {
    CsvObject *self = (CsvObject *)type->tp_alloc(type, 0);
    if (!self) {
        mg_csv_free(csv);
        return NULL;
    }
    self->csv = csv;
    return (PyObject *)self;
}

static int read_options(Py_ssize_t max_bytes, Py_ssize_t max_field, int allow_no_rows, mg_csv_options *o) {
    if (max_bytes < 0 || max_field < 0) {
        PyErr_SetString(PyExc_ValueError, "max_bytes and max_field must be >= 0 (0: the default limit)");
        return -1;
    }
    *o = mg_csv_defaults();
    if (max_bytes) o->max_bytes = (size_t)max_bytes;
    if (max_field) o->max_field = (size_t)max_field;
    o->allow_no_rows = allow_no_rows;
    return 0;
}

/* Csv.read(path, *, max_bytes=0, max_field=0, allow_no_rows=False) */
static PyObject *Csv_read(PyObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"path", "max_bytes", "max_field", "allow_no_rows", NULL};
    PyObject *path_arg;
    Py_ssize_t max_bytes = 0, max_field = 0;
    int allow_no_rows = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$nnp:read_csv", keywords, &path_arg, &max_bytes, &max_field,
                                     &allow_no_rows))
        return NULL;
    mg_csv_options o;
    if (read_options(max_bytes, max_field, allow_no_rows, &o) < 0) return NULL;
    PyObject *path = PyOS_FSPath(path_arg), *encoded = NULL;
    if (!path) return NULL;
    if (!PyUnicode_FSConverter(path, &encoded)) {
        Py_DECREF(path);
        return NULL;
    }
    mg_csv *csv;
    int err;
    Py_BEGIN_ALLOW_THREADS
    csv = mg_csv_read_file(PyBytes_AS_STRING(encoded), &o);
    err = errno;
    Py_END_ALLOW_THREADS
    Py_DECREF(encoded);
    if (!csv) {
        if (err) {
            errno = err;
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
            mg_clear_error();
        } else {
            mgpy_raise_error();
        }
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    return new_csv((PyTypeObject *)type, csv);
}

/* Csv.parse(data, *, max_bytes=0, max_field=0, allow_no_rows=False): data is bytes-like or str */
static PyObject *Csv_parse(PyObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"data", "max_bytes", "max_field", "allow_no_rows", NULL};
    PyObject *data;
    Py_ssize_t max_bytes = 0, max_field = 0;
    int allow_no_rows = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$nnp:parse_csv", keywords, &data, &max_bytes, &max_field,
                                     &allow_no_rows))
        return NULL;
    mg_csv_options o;
    if (read_options(max_bytes, max_field, allow_no_rows, &o) < 0) return NULL;
    mg_csv *csv;
    if (PyUnicode_Check(data)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(data, &size);
        if (!text) return NULL;
        /* the str is immutable and we hold it: its UTF-8 stays put without the GIL */
        Py_BEGIN_ALLOW_THREADS
        csv = mg_csv_read_buffer(text, (size_t)size, &o);
        Py_END_ALLOW_THREADS
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
        /* an exported buffer cannot be resized or freed until released */
        Py_BEGIN_ALLOW_THREADS
        csv = mg_csv_read_buffer(view.buf, (size_t)view.len, &o);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&view);
    }
    if (!csv) return mgpy_raise_error();
    return new_csv((PyTypeObject *)type, csv);
}

static void Csv_dealloc(PyObject *self) {
    mg_csv_free(csv_of(self));
    mgpy_free_object(self);
}

/* ---- indexing: rows by number, columns by number or name; negative numbers count from the end ---- */

static int index_arg(PyObject *arg, size_t count, const char *what, size_t *out) {
    Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return -1;
    if (i < 0) i += (Py_ssize_t)count;
    if (i < 0 || (size_t)i >= count) {
        PyErr_Format(PyExc_IndexError, "%s index %R out of range (%zu %ss)", what, arg, count, what);
        return -1;
    }
    *out = (size_t)i;
    return 0;
}

static int column_arg(PyObject *self, PyObject *arg, size_t *col) {
    mg_csv *csv = csv_of(self);
    if (!PyUnicode_Check(arg)) {
        if (!PyIndex_Check(arg)) {
            PyErr_Format(PyExc_TypeError, "a column is an int or a name, not '%.100s'", Py_TYPE(arg)->tp_name);
            return -1;
        }
        return index_arg(arg, mg_csv_num_cols(csv), "column", col);
    }
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return -1;
    if (mg_csv_find_column(csv, name, col) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

static PyObject *row_list(PyObject *self, size_t row) {
    mg_csv *csv = csv_of(self);
    size_t cols = mg_csv_num_cols(csv), line = mg_csv_row_line(csv, row);
    PyObject *list = PyList_New((Py_ssize_t)cols);
    if (!list) return NULL;
    for (size_t j = 0; j < cols; j++) {
        PyObject *s = text_to_str(mg_csv_cell(csv, row, j), line, j);
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)j, s);
    }
    return list;
}

/* ---- methods ---- */

static PyObject *Csv_get_header(PyObject *self, void *Py_UNUSED(closure)) {
    mg_csv *csv = csv_of(self);
    size_t cols = mg_csv_num_cols(csv);
    PyObject *list = PyList_New((Py_ssize_t)cols);
    if (!list) return NULL;
    for (size_t j = 0; j < cols; j++) {
        PyObject *s = text_to_str(mg_csv_header(csv, j), 0, j);
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)j, s);
    }
    return list;
}

static PyObject *Csv_get_num_rows(PyObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSize_t(mg_csv_num_rows(csv_of(self)));
}

static PyObject *Csv_get_num_cols(PyObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSize_t(mg_csv_num_cols(csv_of(self)));
}

static Py_ssize_t Csv_len(PyObject *self) { return (Py_ssize_t)mg_csv_num_rows(csv_of(self)); }

static PyObject *Csv_line(PyObject *self, PyObject *arg) {
    size_t row;
    if (index_arg(arg, mg_csv_num_rows(csv_of(self)), "row", &row) < 0) return NULL;
    return PyLong_FromSize_t(mg_csv_row_line(csv_of(self), row));
}

static PyObject *Csv_row(PyObject *self, PyObject *arg) {
    size_t row;
    if (index_arg(arg, mg_csv_num_rows(csv_of(self)), "row", &row) < 0) return NULL;
    return row_list(self, row);
}

static PyObject *Csv_rows(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    size_t rows = mg_csv_num_rows(csv_of(self));
    PyObject *list = PyList_New((Py_ssize_t)rows);
    if (!list) return NULL;
    for (size_t i = 0; i < rows; i++) {
        PyObject *row = row_list(self, i);
        if (!row) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, row);
    }
    return list;
}

static PyObject *Csv_column_index(PyObject *self, PyObject *arg) {
    size_t col;
    if (column_arg(self, arg, &col) < 0) return NULL;
    return PyLong_FromSize_t(col);
}

static PyObject *Csv_column(PyObject *self, PyObject *arg) {
    mg_csv *csv = csv_of(self);
    size_t col;
    if (column_arg(self, arg, &col) < 0) return NULL;
    size_t rows = mg_csv_num_rows(csv);
    PyObject *list = PyList_New((Py_ssize_t)rows);
    if (!list) return NULL;
    for (size_t i = 0; i < rows; i++) {
        PyObject *s = text_to_str(mg_csv_cell(csv, i, col), mg_csv_row_line(csv, i), col);
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    return list;
}

/* The column indices named by `arg` (a sequence of ints or names), in a PyMem block the caller frees. */
static int columns_arg(PyObject *self, PyObject *arg, size_t **cols, size_t *n_cols) {
    PyObject *seq = PySequence_Fast(arg, "a list of columns (ints or names) is needed");
    if (!seq) return -1;
    size_t n = (size_t)PySequence_Fast_GET_SIZE(seq);
    *cols = PyMem_Malloc((n ? n : 1) * sizeof **cols);
    *n_cols = n;
    int rc = 0;
    if (!*cols) {
        PyErr_NoMemory();
        rc = -1;
    }
    for (size_t j = 0; rc == 0 && j < n; j++)
        if (column_arg(self, PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)j), &(*cols)[j]) < 0) rc = -1;
    Py_DECREF(seq);
    if (rc < 0) {
        PyMem_Free(*cols);
        *cols = NULL;
    }
    return rc;
}

/* Converts the cells of cols into x (rows * n_cols doubles, row-major) with the GIL released. */
static int fill_numbers(mg_csv *csv, const size_t *cols, size_t n_cols, double *x) {
    mg_status status;
    Py_BEGIN_ALLOW_THREADS
    status = mg_csv_matrix(csv, cols, n_cols, x);
    Py_END_ALLOW_THREADS
    if (status != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

/* `out` as a writable, C-contiguous buffer of exactly `count` float64 items. */
static int float64_out(PyObject *out, size_t count, const char *what, Py_buffer *view) {
    if (PyObject_GetBuffer(out, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    int is_double = (strcmp(f, "d") == 0 || strcmp(f, "<d") == 0 || strcmp(f, "=d") == 0) && view->itemsize == 8;
    if (!is_double || (size_t)view->len != count * sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: out must be a writable float64 array of %zu items", what, count);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* matrix(columns): rows of floats, the cells of `columns` (ints or names) converted in C */
static PyObject *Csv_matrix(PyObject *self, PyObject *arg) {
    mg_csv *csv = csv_of(self);
    size_t *cols, n_cols, rows = mg_csv_num_rows(csv);
    if (columns_arg(self, arg, &cols, &n_cols) < 0) return NULL;
    PyObject *result = NULL;
    double *x = NULL;
    if (n_cols && rows > PY_SSIZE_T_MAX / sizeof(double) / n_cols) {
        PyErr_NoMemory();
        goto done;
    }
    if (!(x = PyMem_RawMalloc(rows && n_cols ? rows * n_cols * sizeof *x : 1))) {
        PyErr_NoMemory();
        goto done;
    }
    if (fill_numbers(csv, cols, n_cols, x) < 0) goto done;
    PyObject *list = PyList_New((Py_ssize_t)rows);
    if (!list) goto done;
    for (size_t i = 0; i < rows; i++) {
        PyObject *row = PyList_New((Py_ssize_t)n_cols);
        if (!row) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, row);
        for (size_t j = 0; j < n_cols; j++) {
            PyObject *v = PyFloat_FromDouble(x[i * n_cols + j]);
            if (!v) {
                Py_DECREF(list);
                goto done;
            }
            PyList_SET_ITEM(row, (Py_ssize_t)j, v);
        }
    }
    result = list;
done:
    PyMem_RawFree(x);
    PyMem_Free(cols);
    return result;
}

/* fill_matrix(columns, out): the same numbers written straight into `out`, a float64 array of
 * (rows, len(columns)): no Python object per cell, so a large file costs 8 bytes a cell. */
static PyObject *Csv_fill_matrix(PyObject *self, PyObject *args) {
    mg_csv *csv = csv_of(self);
    PyObject *columns, *out;
    if (!PyArg_ParseTuple(args, "OO:fill_matrix", &columns, &out)) return NULL;
    size_t *cols, n_cols, rows = mg_csv_num_rows(csv);
    if (columns_arg(self, columns, &cols, &n_cols) < 0) return NULL;
    Py_buffer view;
    if (n_cols && rows > PY_SSIZE_T_MAX / sizeof(double) / n_cols) {
        PyMem_Free(cols);
        return PyErr_NoMemory();
    }
    if (float64_out(out, rows * n_cols, "fill_matrix", &view) < 0) {
        PyMem_Free(cols);
        return NULL;
    }
    /* the exported buffer cannot be resized or freed until released */
    int rc = fill_numbers(csv, cols, n_cols, view.buf);
    PyBuffer_Release(&view);
    PyMem_Free(cols);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

/* fill_lines(out): the line each data row starts on, into a float64 array of one item per row. */
static PyObject *Csv_fill_lines(PyObject *self, PyObject *out) {
    mg_csv *csv = csv_of(self);
    size_t rows = mg_csv_num_rows(csv);
    Py_buffer view;
    if (float64_out(out, rows, "fill_lines", &view) < 0) return NULL;
    double *lines = view.buf;
    for (size_t i = 0; i < rows; i++) lines[i] = (double)mg_csv_row_line(csv, i);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* One row's cell: its index among the distinct texts seen so far (a new one is added), or -1. */
static Py_ssize_t distinct_index(PyObject *self, size_t row, size_t col, PyObject *index, PyObject *distinct,
                                 Py_ssize_t max_distinct) {
    mg_csv *csv = csv_of(self);
    PyObject *s = text_to_str(mg_csv_cell(csv, row, col), mg_csv_row_line(csv, row), col);
    if (!s) return -1;
    PyObject *known = PyDict_GetItemWithError(index, s);
    Py_ssize_t k = -1;
    if (known) {
        k = PyLong_AsSsize_t(known);
    } else if (!PyErr_Occurred()) {
        k = PyList_GET_SIZE(distinct);
        if (k >= max_distinct) {
            PyErr_Format(PyExc_ValueError, "column '%.100s' has more than %zd distinct values", mg_csv_header(csv, col),
                         max_distinct);
            k = -1;
        } else {
            PyObject *number = PyLong_FromSsize_t(k);
            if (!number || PyDict_SetItem(index, s, number) < 0 || PyList_Append(distinct, s) < 0) k = -1;
            Py_XDECREF(number);
        }
    }
    Py_DECREF(s);
    return k;
}

/* factorize(column, out, max_distinct): the distinct texts of a column, in the order they first appear,
 * and in `out` (a float64 array of one item per row) each row's index into them. ValueError when there
 * are more than max_distinct. One str per distinct text, none per row. */
static PyObject *Csv_factorize(PyObject *self, PyObject *args) {
    mg_csv *csv = csv_of(self);
    PyObject *column, *out;
    Py_ssize_t max_distinct;
    if (!PyArg_ParseTuple(args, "OOn:factorize", &column, &out, &max_distinct)) return NULL;
    size_t col, rows = mg_csv_num_rows(csv);
    if (column_arg(self, column, &col) < 0) return NULL;
    Py_buffer view;
    if (float64_out(out, rows, "factorize", &view) < 0) return NULL;
    PyObject *index = PyDict_New(), *distinct = PyList_New(0);
    double *codes = view.buf;
    int ok = index && distinct;
    for (size_t i = 0; ok && i < rows; i++) {
        Py_ssize_t k = distinct_index(self, i, col, index, distinct, max_distinct);
        if (k < 0) ok = 0;
        else codes[i] = (double)k;
    }
    PyBuffer_Release(&view);
    Py_XDECREF(index);
    if (!ok) {
        Py_XDECREF(distinct);
        return NULL;
    }
    return distinct;
}

static PyObject *Csv_repr(PyObject *self) {
    mg_csv *csv = csv_of(self);
    return PyUnicode_FromFormat("<Csv: %zu rows, %zu columns>", mg_csv_num_rows(csv), mg_csv_num_cols(csv));
}

static PyMethodDef Csv_methods[] = {
    {"read", (PyCFunction)(void (*)(void))Csv_read, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "read($type, /, path, *, max_bytes=0, max_field=0, allow_no_rows=False)\n--\n\nRead a CSV file (0: the default "
     "limits, 1 GiB and 1 MiB). ValueError with the line number on malformed input, OSError when the file cannot be "
     "read."},
    {"parse", (PyCFunction)(void (*)(void))Csv_parse, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "parse($type, /, data, *, max_bytes=0, max_field=0, allow_no_rows=False)\n--\n\nThe same from bytes or str."},
    {"line", Csv_line, METH_O, "line($self, row, /)\n--\n\nThe line of the file on which data row `row` starts."},
    {"row", Csv_row, METH_O, "row($self, i, /)\n--\n\nData row i as a list of str."},
    {"rows", Csv_rows, METH_NOARGS, "rows($self, /)\n--\n\nEvery data row as a list of str."},
    {"column", Csv_column, METH_O,
     "column($self, col, /)\n--\n\nThe cells of a column (int or name) as a list of "
     "str."},
    {"column_index", Csv_column_index, METH_O,
     "column_index($self, name, /)\n--\n\nThe index of a column; "
     "ValueError if none."},
    {"matrix", Csv_matrix, METH_O,
     "matrix($self, columns, /)\n--\n\nRows of floats from the given columns (ints or names); ValueError naming the "
     "line, the column and the text of the first cell that is not a finite number."},
    {"fill_matrix", Csv_fill_matrix, METH_VARARGS,
     "fill_matrix($self, columns, out, /)\n--\n\nThe numbers of matrix(columns) written into out, a writable float64 "
     "array of shape (rows, len(columns)); no Python object per cell."},
    {"fill_lines", Csv_fill_lines, METH_O,
     "fill_lines($self, out, /)\n--\n\nThe line of the file each data row starts on, into a float64 array of one "
     "item per row."},
    {"factorize", Csv_factorize, METH_VARARGS,
     "factorize($self, column, out, max_distinct, /)\n--\n\nThe distinct texts of a column in the order they first "
     "appear; out (a float64 array, one item per row) gets each row's index into them. ValueError beyond "
     "max_distinct."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Csv_getset[] = {
    {"header", Csv_get_header, NULL, "The column names, a list of str.", NULL},
    {"num_rows", Csv_get_num_rows, NULL, "Data rows (the header not counted).", NULL},
    {"num_cols", Csv_get_num_cols, NULL, "Columns.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Csv_slots[] = {
    {Py_tp_doc, "A parsed CSV file: a header and rows of text cells. Made by read_csv() or parse_csv()."},
    {Py_tp_dealloc, MGPY_SLOT(Csv_dealloc)},
    {Py_tp_repr, MGPY_SLOT(Csv_repr)},
    {Py_tp_methods, Csv_methods},
    {Py_tp_getset, Csv_getset},
    {Py_sq_length, MGPY_SLOT(Csv_len)},
    {0, NULL},
};

static PyType_Spec Csv_spec = {
    .name = "micrograd_c._core.Csv",
    .basicsize = sizeof(CsvObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Csv_slots,
};

/* read_csv and parse_csv: Csv.read and Csv.parse on the module's Csv type */
static PyObject *core_read_csv(PyObject *module, PyObject *args, PyObject *kwargs) {
    module_state *state = PyModule_GetState(module);
    return Csv_read((PyObject *)state->csv_type, args, kwargs);
}

static PyObject *core_parse_csv(PyObject *module, PyObject *args, PyObject *kwargs) {
    module_state *state = PyModule_GetState(module);
    return Csv_parse((PyObject *)state->csv_type, args, kwargs);
}

static PyMethodDef csv_functions[] = {
    {"read_csv", (PyCFunction)(void (*)(void))core_read_csv, METH_VARARGS | METH_KEYWORDS,
     "read_csv(path, *, max_bytes=0, max_field=0, allow_no_rows=False)\n--\n\nCsv.read."},
    {"parse_csv", (PyCFunction)(void (*)(void))core_parse_csv, METH_VARARGS | METH_KEYWORDS,
     "parse_csv(data, *, max_bytes=0, max_field=0, allow_no_rows=False)\n--\n\nCsv.parse."},
    {NULL, NULL, 0, NULL},
};

int mgpy_csv_exec(PyObject *module, module_state *state) {
    if (mgpy_add_type(module, &Csv_spec, &state->csv_type) < 0) return -1;
    if (PyModule_AddFunctions(module, csv_functions) < 0) return -1;
    PyObject *max_bytes = PyLong_FromSize_t(MG_CSV_MAX_BYTES);
    int rc = max_bytes ? PyModule_AddObjectRef(module, "CSV_MAX_BYTES", max_bytes) : -1;
    Py_XDECREF(max_bytes);
    return rc;
}
