/* _model.c: what micrograd_c.nn's MLP runs in C: fit(), predict(), save_model() and load_model(), over
 * the C library's mg_mlp, mg_mlp_fit and model files, and the matrix reader they share.
 *
 * fit() copies the model's parameters out of their Values into one array, trains with the GIL released
 * (nothing Python is touched meanwhile), and copies them back: the Values stay the model's truth. */
#include "_core.h"

#include <errno.h>
#include <string.h>

/* ---- reading data ---- */

static int read_buffer(PyObject *obj, Py_buffer *view) {
    if (!PyObject_CheckBuffer(obj)) return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear(); /* not contiguous: read it as nested sequences instead */
        return 0;
    }
    const char *f = view->format ? view->format : "B";
    if ((strcmp(f, "d") == 0 || strcmp(f, "<d") == 0 || strcmp(f, "=d") == 0) && view->itemsize == 8 &&
        view->ndim >= 1 && view->ndim <= 2)
        return 1;
    PyBuffer_Release(view);
    return 0;
}

static int read_number(PyObject *item, double *out, const char *what, Py_ssize_t row, Py_ssize_t col) {
    if (mgpy_parse_real(item, out, what) == 0) return 0;
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s[%zd][%zd] is not a number: '%.100s'", what, row, col, Py_TYPE(item)->tp_name);
    return -1;
}

void mgpy_matrix_release(mgpy_matrix *m) {
    if (m->has_view) PyBuffer_Release(&m->view);
    else PyMem_Free(m->data);
    m->data = NULL;
    m->has_view = 0;
}

/* nested sequences of numbers, copied */
static int read_rows(PyObject *obj, const char *what, int flat_ok, double **data, Py_ssize_t *rows, Py_ssize_t *cols);

int mgpy_read_matrix(PyObject *obj, const char *what, int flat_ok, mgpy_matrix *out) {
    out->data = NULL;
    out->has_view = 0;
    if (!read_buffer(obj, &out->view)) return read_rows(obj, what, flat_ok, &out->data, &out->rows, &out->cols);
    if (out->view.ndim == 1 && !flat_ok) {
        PyBuffer_Release(&out->view);
        PyErr_Format(PyExc_ValueError, "%s must be 2-D (rows of features), got a 1-D array", what);
        return -1;
    }
    out->has_view = 1; /* the numbers in place: no copy of a data set that may be most of memory */
    out->data = out->view.buf;
    out->rows = out->view.shape[0];
    out->cols = out->view.ndim == 2 ? out->view.shape[1] : 1;
    return 0;
}

static int read_rows(PyObject *obj, const char *what, int flat_ok, double **data, Py_ssize_t *rows, Py_ssize_t *cols) {
    *data = NULL;
    PyObject *seq = PySequence_Fast(obj, "data must be a list of rows or an array");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), width = -1;
    *rows = n;
    *cols = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, r);
        int is_row = PyList_Check(row) || PyTuple_Check(row) ||
                     (PySequence_Check(row) && !PyUnicode_Check(row) && !PyBytes_Check(row) && !PyFloat_Check(row) &&
                      !PyLong_Check(row) && PyObject_CheckBuffer(row));
        if (!is_row && !flat_ok) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] must be a row (a list of numbers), got '%.100s'", what, r,
                         Py_TYPE(row)->tp_name);
            goto error;
        }
        PyObject *row_seq = is_row ? PySequence_Fast(row, "a row must be a sequence") : NULL;
        if (is_row && !row_seq) goto error;
        Py_ssize_t len = is_row ? PySequence_Fast_GET_SIZE(row_seq) : 1;
        if (width < 0) {
            width = len;
            *cols = width;
            if (!(*data = PyMem_Malloc((size_t)(n > 0 && width > 0 ? n * width : 1) * sizeof(double)))) {
                Py_XDECREF(row_seq);
                PyErr_NoMemory();
                goto error;
            }
        } else if (len != width) {
            PyErr_Format(PyExc_ValueError, "%s is ragged: row %zd has %zd values, row 0 has %zd", what, r, len, width);
            Py_XDECREF(row_seq);
            goto error;
        }
        for (Py_ssize_t c = 0; c < len; c++) {
            PyObject *item = is_row ? PySequence_Fast_GET_ITEM(row_seq, c) : row;
            if (read_number(item, &(*data)[r * width + c], what, r, c) < 0) {
                Py_XDECREF(row_seq);
                goto error;
            }
        }
        Py_XDECREF(row_seq);
    }
    Py_DECREF(seq);
    return 0;
error:
    PyMem_Free(*data);
    *data = NULL;
    Py_DECREF(seq);
    return -1;
}

/* ---- fit ---- */

typedef struct {
    PyObject *callback;       /* called with (epoch, loss, accuracy), may be None */
    PyThreadState *thread;    /* the GIL is released while C trains: take it back to call Python */
    int failed;
} fit_callback;

static int on_epoch(void *user, size_t epoch, double loss, double accuracy) {
    fit_callback *cb = user;
    if (cb->callback == Py_None) return 0;
    PyEval_RestoreThread(cb->thread);
    PyObject *result = PyObject_CallFunction(cb->callback, "ndd", (Py_ssize_t)epoch, loss, accuracy);
    int stop = 0;
    if (!result) cb->failed = stop = 1;
    else stop = PyObject_IsTrue(result) == 1; /* a true return stops training early */
    Py_XDECREF(result);
    cb->thread = PyEval_SaveThread();
    return stop;
}

/* A dense mg_mlp with the shape (n_inputs, sizes, activation names) and the parameters (a list of Values
 * in micrograd's order) of a Python model. NULL with an exception on a bad shape. When nodes_out is not
 * NULL the Values' nodes go there (PyMem_Malloc'd), so results can be written back, and *keep_out gets
 * the tuple of Values that keeps those nodes alive until the caller drops it. */
static mg_mlp *build_mlp(PyObject *params, Py_ssize_t n_inputs, PyObject *sizes_obj, PyObject *acts_obj,
                         mg_value ***nodes_out, PyObject **keep_out) {
    mg_mlp *m = NULL;
    mg_value **nodes = NULL;
    PyObject *keep = NULL;
    size_t *sizes = NULL;
    mg_activation *acts = NULL;
    Py_ssize_t n_params, n_layers = PySequence_Length(sizes_obj);
    if (n_layers < 0) goto error;
    if (n_layers == 0 || PySequence_Length(acts_obj) != n_layers) {
        PyErr_SetString(PyExc_ValueError, "a model needs at least one layer and one activation per layer");
        goto error;
    }
    if (n_inputs < 1) {
        PyErr_Format(PyExc_ValueError, "a model needs at least one input, got %zd", n_inputs);
        goto error;
    }
    sizes = PyMem_Malloc((size_t)n_layers * sizeof *sizes);
    acts = PyMem_Malloc((size_t)n_layers * sizeof *acts);
    if (!sizes || !acts) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t l = 0; l < n_layers; l++) {
        PyObject *size = PySequence_GetItem(sizes_obj, l), *act = PySequence_GetItem(acts_obj, l);
        Py_ssize_t n = size ? PyNumber_AsSsize_t(size, PyExc_OverflowError) : -1;
        const char *name = act ? PyUnicode_AsUTF8(act) : NULL;
        Py_XDECREF(size);
        if (n < 1 || !name) {
            Py_XDECREF(act);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "layer sizes must be positive ints");
            goto error;
        }
        sizes[l] = (size_t)n;
        mg_status found = mg_activation_from_name(name, &acts[l]);
        Py_DECREF(act);
        if (found != MG_OK) {
            mgpy_raise_error();
            goto error;
        }
    }
    if (!(m = mg_mlp_new((size_t)n_inputs, (size_t)n_layers, sizes, acts))) {
        mgpy_raise_error();
        goto error;
    }
    if (!(nodes = mgpy_value_nodes(params, &n_params, &keep))) goto error;
    if ((size_t)n_params != mg_mlp_num_params(m)) {
        PyErr_Format(PyExc_ValueError, "the model has %zd parameters, its shape needs %zu", n_params,
                     mg_mlp_num_params(m));
        goto error;
    }
    double *p = mg_mlp_params(m);
    for (Py_ssize_t i = 0; i < n_params; i++) p[i] = mg_value_data(nodes[i]);
    PyMem_Free(sizes);
    PyMem_Free(acts);
    if (nodes_out) {
        *nodes_out = nodes;
        *keep_out = keep;
    } else {
        PyMem_Free(nodes);
        Py_DECREF(keep);
    }
    return m;
error:
    mg_mlp_free(m);
    PyMem_Free(nodes);
    Py_XDECREF(keep);
    PyMem_Free(sizes);
    PyMem_Free(acts);
    return NULL;
}

/* a non-negative int that fits 64 bits (OverflowError otherwise, never a silent wrap-around) */
static int parse_u64(PyObject *obj, const char *what, unsigned long long *out) {
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.100s'", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyLong_AsUnsignedLongLong(obj);
    if (*out == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_OverflowError, "%s must be between 0 and 2**64 - 1, got %R", what, obj);
        return -1;
    }
    return 0;
}

/* an int in [0, max] named `what` (ValueError naming it, never a bare OverflowError); None reads as 0
 * when none_ok */
static int parse_count(PyObject *obj, const char *what, unsigned long long max, int none_ok, size_t *out) {
    *out = 0;
    if (obj == NULL || (none_ok && obj == Py_None)) return 0;
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.100s'", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < 0 || (unsigned long long)v > max) {
        PyErr_Format(PyExc_ValueError, "%s must be an int between 0 and %llu, got %R", what, max, obj);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* fit()'s arguments: the model (params, its shape), the data, the optimizer and callback, and every
 * option read into o, each checked and named in its error (counts are ints, None meaning a default where
 * it has one; threads above the core count are capped there, as MLP.fit says). */
typedef struct {
    mg_precision precision;
    mg_dtype dtype;
} compute;

typedef struct {
    PyObject *params, *sizes, *acts, *X, *Y, *optimizer, *callback;
    Py_ssize_t n_inputs;
    mg_fit_options o;
    compute compute;
} fit_args;

/* precision and dtype by name ("exact" or "fast"; "float64" or "float32"), NULL keeping the default */
static int read_compute(const char *precision_name, const char *dtype_name, compute *c) {
    c->precision = MG_PRECISION_EXACT;
    c->dtype = MG_FLOAT64;
    if ((precision_name && mg_precision_from_name(precision_name, &c->precision) != MG_OK) ||
        (dtype_name && mg_dtype_from_name(dtype_name, &c->dtype) != MG_OK)) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

static int read_fit_args(PyObject *module, PyObject *args, PyObject *kwargs, fit_args *a) {
    static char *keywords[] = {"params", "n_inputs", "sizes",      "activations",  "X",         "y",     "optimizer",
                               "loss",   "epochs",   "batch_size", "l2",           "shuffle",   "seed",  "schedule",
                               "lr_end", "threads",  "callback",   "total_epochs", "precision", "dtype", NULL};
    PyObject *epochs_obj, *batch_obj = NULL, *threads_obj = NULL, *total_obj = NULL, *seed_obj = NULL;
    const char *loss_name, *schedule_name = NULL, *precision_name = NULL, *dtype_name = NULL;
    mg_fit_options *o = &a->o;
    size_t threads;
    unsigned long long seed = 0;
    *o = mg_fit_defaults();
    a->callback = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOOOOOsO|OdpOsdOOOzz:fit", keywords, &a->params, &a->n_inputs,
                                     &a->sizes, &a->acts, &a->X, &a->Y, &a->optimizer, &loss_name, &epochs_obj,
                                     &batch_obj, &o->l2, &o->shuffle, &seed_obj, &schedule_name, &o->lr_end,
                                     &threads_obj, &a->callback, &total_obj, &precision_name, &dtype_name) ||
        read_compute(precision_name, dtype_name, &a->compute) < 0)
        return -1;
    if ((seed_obj && parse_u64(seed_obj, "seed", &seed) < 0) ||
        parse_count(epochs_obj, "epochs", PY_SSIZE_T_MAX, 0, &o->epochs) < 0 ||
        parse_count(batch_obj, "batch_size", PY_SSIZE_T_MAX, 1, &o->batch_size) < 0 ||
        parse_count(threads_obj, "threads", PY_SSIZE_T_MAX, 1, &threads) < 0 ||
        parse_count(total_obj, "total_epochs", PY_SSIZE_T_MAX, 1, &o->total_epochs) < 0)
        return -1;
    o->seed = seed;
    o->threads = threads > (size_t)mg_num_cores() ? mg_num_cores() : (int)threads;
    if (schedule_name && mg_schedule_from_name(schedule_name, &o->schedule) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    module_state *state = PyModule_GetState(module);
    if (!PyObject_TypeCheck(a->optimizer, state->optimizer_type)) {
        PyErr_Format(PyExc_TypeError, "optimizer must be a micrograd_c optimizer, not '%.100s'",
                     Py_TYPE(a->optimizer)->tp_name);
        return -1;
    }
    if (a->callback != Py_None && !PyCallable_Check(a->callback)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable or None");
        return -1;
    }
    if (mg_loss_from_name(loss_name, &o->loss) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

/* X (rows of n_inputs features, at least one) and y (one target per row, or one per output for MSE) */
/* X and y, read and checked against the model; on failure what was read is released */
static int read_fit_data(const fit_args *a, const mg_mlp *m, mgpy_matrix *x, mgpy_matrix *y) {
    if (mgpy_read_matrix(a->X, "X", 0, x) < 0) return -1;
    if (mgpy_read_matrix(a->Y, "y", 1, y) < 0) {
        mgpy_matrix_release(x);
        return -1;
    }
    Py_ssize_t want_cols = a->o.loss == MG_LOSS_MSE ? (Py_ssize_t)mg_mlp_num_outputs(m) : 1;
    if (x->rows == 0) PyErr_SetString(PyExc_ValueError, "X is empty: nothing to train on");
    else if (x->cols != a->n_inputs)
        PyErr_Format(PyExc_ValueError, "X has %zd features per row, the model takes %zd", x->cols, a->n_inputs);
    else if (y->rows != x->rows || y->cols != want_cols)
        PyErr_Format(PyExc_ValueError,
                     "y has shape (%zd, %zd) but X has %zd rows and the %s loss needs %zd "
                     "target(s) per row",
                     y->rows, y->cols, x->rows, mg_loss_name(a->o.loss), want_cols);
    else return 0;
    mgpy_matrix_release(x);
    mgpy_matrix_release(y);
    return -1;
}

static PyObject *core_fit(PyObject *module, PyObject *args, PyObject *kwargs) {
    fit_args a;
    if (read_fit_args(module, args, kwargs, &a) < 0) return NULL;
    /* claimed from here to the end (reading X may run Python code, and other threads with it): no other
     * call may touch the optimizer's state until we are back, neither another thread nor our callback */
    if (!mgpy_optimizer_is_free(a.optimizer)) return NULL;
    ((OptimizerObject *)a.optimizer)->busy = 1;
    PyObject *result = NULL, *keep = NULL;
    mg_value **nodes = NULL;
    mgpy_matrix x = {0}, y = {0};
    mg_mlp *m = build_mlp(a.params, a.n_inputs, a.sizes, a.acts, &nodes, &keep);
    if (!m || read_fit_data(&a, m, &x, &y) < 0) goto done;
    mg_mlp_set_compute(m, a.compute.precision, a.compute.dtype); /* both read and checked */
    fit_callback cb = {.callback = a.callback};
    a.o.on_epoch = on_epoch;
    a.o.user = &cb;
    mg_optim *opt = ((OptimizerObject *)a.optimizer)->opt;
    cb.thread = PyEval_SaveThread(); /* the caller holds the optimizer object: it stays alive */
    mg_status status = mg_mlp_fit(m, opt, x.data, y.data, (size_t)x.rows, &a.o);
    PyEval_RestoreThread(cb.thread);
    if (status != MG_OK) {
        mgpy_raise_error();
        goto done;
    }
    /* the model keeps what was trained, also when the callback raised (KeyboardInterrupt, say): the
     * optimizer has taken those steps, and the two must stay in step */
    const double *p = mg_mlp_params(m);
    for (size_t i = 0; i < mg_mlp_num_params(m); i++) mg_value_set_data(nodes[i], p[i]);
    if (!cb.failed) result = Py_NewRef(Py_None);
done:
    ((OptimizerObject *)a.optimizer)->busy = 0;
    mg_mlp_free(m);
    PyMem_Free(nodes);
    Py_XDECREF(keep);
    mgpy_matrix_release(&x);
    mgpy_matrix_release(&y);
    return result;
}

/* predict(params, n_inputs, sizes, activations, X, precision=, dtype=) -> list of output rows, computed in C */
static PyObject *core_predict(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"", "", "", "", "", "precision", "dtype", NULL};
    PyObject *params, *sizes_obj, *acts_obj, *X, *result = NULL;
    Py_ssize_t n_inputs;
    const char *precision_name = NULL, *dtype_name = NULL;
    compute c;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOOO|$zz:predict", keywords, &params, &n_inputs, &sizes_obj,
                                     &acts_obj, &X, &precision_name, &dtype_name) ||
        read_compute(precision_name, dtype_name, &c) < 0)
        return NULL;
    double *out = NULL;
    mgpy_matrix x = {0};
    mg_mlp *m = build_mlp(params, n_inputs, sizes_obj, acts_obj, NULL, NULL);
    if (!m) return NULL;
    mg_mlp_set_compute(m, c.precision, c.dtype);
    if (mgpy_read_matrix(X, "X", 0, &x) < 0) goto done;
    Py_ssize_t rows = x.rows;
    if (x.cols != n_inputs && rows > 0) {
        PyErr_Format(PyExc_ValueError, "X has %zd features per row, the model takes %zd", x.cols, n_inputs);
        goto done;
    }
    size_t k = mg_mlp_num_outputs(m);
    if (!(out = PyMem_Malloc((size_t)(rows ? rows : 1) * k * sizeof *out))) {
        PyErr_NoMemory();
        goto done;
    }
    mg_status status;
    Py_BEGIN_ALLOW_THREADS
    status = mg_mlp_predict(m, x.data, (size_t)rows, out);
    Py_END_ALLOW_THREADS
    if (status != MG_OK) {
        mgpy_raise_error();
        goto done;
    }
    if (!(result = PyList_New(rows))) goto done;
    for (Py_ssize_t r = 0; r < rows; r++) {
        PyObject *row = PyList_New((Py_ssize_t)k);
        if (!row) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, r, row);
        for (size_t j = 0; j < k; j++) {
            PyObject *v = PyFloat_FromDouble(out[(size_t)r * k + j]);
            if (!v) {
                Py_CLEAR(result);
                goto done;
            }
            PyList_SET_ITEM(row, (Py_ssize_t)j, v);
        }
    }
done:
    mg_mlp_free(m);
    mgpy_matrix_release(&x);
    PyMem_Free(out);
    return result;
}

/* save_model(path, params, n_inputs, sizes, activations, optimizer=None, step=0, metadata=None) */
static PyObject *core_save_model(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"path",      "params", "n_inputs", "sizes", "activations",
                               "optimizer", "step",   "metadata", NULL};
    module_state *state = PyModule_GetState(module);
    PyObject *path_obj, *params, *sizes_obj, *acts_obj, *optimizer = Py_None, *metadata = Py_None, *path = NULL;
    PyObject *step_obj = NULL;
    Py_ssize_t n_inputs;
    unsigned long long step = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnOO|OOO:save_model", keywords, &path_obj, &params, &n_inputs,
                                     &sizes_obj, &acts_obj, &optimizer, &step_obj, &metadata))
        return NULL;
    if (step_obj && parse_u64(step_obj, "step", &step) < 0) return NULL;
    if (optimizer != Py_None && !PyObject_TypeCheck(optimizer, state->optimizer_type))
        return PyErr_Format(PyExc_TypeError, "optimizer must be a micrograd_c optimizer or None");
    if (metadata != Py_None && !PyDict_Check(metadata))
        return PyErr_Format(PyExc_TypeError, "metadata must be a dict of str to str or None");
    if (optimizer != Py_None && !mgpy_optimizer_is_free(optimizer)) return NULL;
    /* a copy: the strings must outlive the save, and the count must stay true while Python code runs */
    metadata = metadata == Py_None ? PyDict_New() : PyDict_Copy(metadata);
    if (!metadata) return NULL;
    if (!PyUnicode_FSConverter(path_obj, &path)) {
        Py_DECREF(metadata);
        return NULL;
    }
    PyObject *result = NULL;
    const char **pairs = NULL;
    Py_ssize_t n_meta = PyDict_GET_SIZE(metadata);
    mg_mlp *m = build_mlp(params, n_inputs, sizes_obj, acts_obj, NULL, NULL);
    if (!m) goto done;
    if (!(pairs = PyMem_Malloc((size_t)(2 * n_meta + 1) * sizeof *pairs))) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0, i = 0;
    while (n_meta && PyDict_Next(metadata, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || !PyUnicode_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "metadata keys and values must be str");
            goto done;
        }
        Py_ssize_t key_len, value_len;
        if (!(pairs[2 * i] = PyUnicode_AsUTF8AndSize(key, &key_len)) ||
            !(pairs[2 * i + 1] = PyUnicode_AsUTF8AndSize(value, &value_len)))
            goto done;
        if (strlen(pairs[2 * i]) != (size_t)key_len || strlen(pairs[2 * i + 1]) != (size_t)value_len) {
            PyErr_SetString(PyExc_ValueError, "metadata must not contain NUL characters");
            goto done;
        }
        i++;
    }
    mg_optim *opt = optimizer == Py_None ? NULL : ((OptimizerObject *)optimizer)->opt;
    mg_status status;
    int saved_errno;
    const char *file = PyBytes_AS_STRING(path);
    if (optimizer != Py_None && !mgpy_optimizer_is_free(optimizer)) goto done;
    if (optimizer != Py_None) ((OptimizerObject *)optimizer)->busy = 1; /* no fit may change it meanwhile */
    Py_BEGIN_ALLOW_THREADS
    status = mg_checkpoint_save(m, opt, file, step, pairs, (size_t)n_meta);
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    if (optimizer != Py_None) ((OptimizerObject *)optimizer)->busy = 0;
    if (status != MG_OK) {
        mgpy_raise_file_error(saved_errno, path_obj);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    mg_mlp_free(m);
    PyMem_Free(pairs);
    Py_XDECREF(path);
    Py_DECREF(metadata);
    return result;
}

static PyObject *doubles_list(const double *values, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *v = PyFloat_FromDouble(values[i]);
        if (!v) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

/* load_model(path) -> {"n_inputs", "sizes", "activations", "params", "step", "metadata", "optimizer"}
 * where "optimizer" is None or {"kind", "lr", "momentum", ..., "steps", "buffers"}. */
static PyObject *core_load_model(PyObject *Py_UNUSED(module), PyObject *path_obj) {
    PyObject *path = NULL, *result = NULL, *sizes = NULL, *acts = NULL, *meta = NULL, *opt = NULL, *params = NULL;
    if (!PyUnicode_FSConverter(path_obj, &path)) return NULL;
    mg_checkpoint c;
    mg_status status;
    int saved_errno;
    const char *file = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    status = mg_checkpoint_load(file, &c);
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (status != MG_OK) return mgpy_raise_file_error(saved_errno, path_obj);
    size_t n_layers = mg_mlp_num_layers(c.model);
    if (!(sizes = PyList_New((Py_ssize_t)n_layers)) || !(acts = PyList_New((Py_ssize_t)n_layers))) goto done;
    for (size_t l = 0; l < n_layers; l++) {
        PyObject *size = PyLong_FromSize_t(mg_mlp_layer_size(c.model, l));
        PyObject *act = PyUnicode_FromString(mg_activation_name(mg_mlp_layer_activation(c.model, l)));
        if (size) PyList_SET_ITEM(sizes, (Py_ssize_t)l, size);
        if (act) PyList_SET_ITEM(acts, (Py_ssize_t)l, act);
        if (!size || !act) goto done;
    }
    if (!(meta = PyDict_New())) goto done;
    for (size_t i = 0; i < c.n_metadata; i++) {
        const char *text = c.metadata[2 * i + 1];
        PyObject *value = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
        int failed = !value || PyDict_SetItemString(meta, c.metadata[2 * i], value) < 0;
        Py_XDECREF(value);
        if (failed) goto done;
    }
    if (c.optimizer) {
        const mg_optim_config *k = mg_optim_get_config(c.optimizer);
        PyObject *buffers = doubles_list(mg_optim_state(c.optimizer), mg_optim_state_size(c.optimizer));
        if (!buffers) goto done;
        opt = Py_BuildValue("{s:s,s:d,s:d,s:d,s:O,s:d,s:d,s:d,s:d,s:K,s:N}", "kind", mg_optim_kind_name(k->kind), "lr",
                            k->lr, "momentum", k->momentum, "dampening", k->dampening, "nesterov",
                            k->nesterov ? Py_True : Py_False, "beta1", k->beta1, "beta2", k->beta2, "eps", k->eps,
                            "weight_decay", k->weight_decay, "steps", (unsigned long long)mg_optim_steps(c.optimizer),
                            "buffers", buffers);
        if (!opt) goto done;
    } else {
        opt = Py_NewRef(Py_None);
    }
    if (!(params = doubles_list(mg_mlp_params(c.model), mg_mlp_num_params(c.model)))) goto done;
    result = Py_BuildValue("{s:n,s:O,s:O,s:O,s:K,s:O,s:O}", "n_inputs", (Py_ssize_t)mg_mlp_num_inputs(c.model), "sizes",
                           sizes, "activations", acts, "params", params, "step", (unsigned long long)c.step, "metadata",
                           meta, "optimizer", opt);
done:
    Py_XDECREF(sizes);
    Py_XDECREF(acts);
    Py_XDECREF(meta);
    Py_XDECREF(opt);
    Py_XDECREF(params);
    mg_checkpoint_free(&c);
    return result;
}

static PyObject *core_num_cores(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(mg_num_cores());
}

static PyMethodDef model_methods[] = {
    {"fit", (PyCFunction)(void (*)(void))core_fit, METH_VARARGS | METH_KEYWORDS,
     "fit(params, n_inputs, sizes, activations, X, y, optimizer, loss, epochs, batch_size=None, l2=0.0, "
     "shuffle=True, seed=None, schedule='constant', lr_end=0.0, threads=None, callback=None, total_epochs=None, "
     "precision=None, dtype=None)\n--\n\nTrain in C (MLP.fit's engine)."},
    {"num_cores", core_num_cores, METH_NOARGS, "num_cores()\n--\n\nNumber of cores the training threads default to."},
    {"predict", (PyCFunction)(void (*)(void))core_predict, METH_VARARGS | METH_KEYWORDS,
     "predict(params, n_inputs, sizes, activations, X, /, *, precision=None, dtype=None)\n--\n\nOutput rows."},
    {"save_model", (PyCFunction)(void (*)(void))core_save_model, METH_VARARGS | METH_KEYWORDS,
     "save_model(path, params, n_inputs, sizes, activations, optimizer=None, step=0, metadata=None)\n--\n\n"
     "Write a model (a checkpoint with an optimizer) to a safetensors file, atomically."},
    {"load_model", core_load_model, METH_O, "load_model(path, /)\n--\n\nA dict of the model file's contents."},
    {NULL, NULL, 0, NULL},
};

int mgpy_model_exec(PyObject *module) { return PyModule_AddFunctions(module, model_methods); }
