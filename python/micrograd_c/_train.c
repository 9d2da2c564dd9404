/* _train.c: optimizers and fit() for micrograd_c, over the C library's mg_optim and mg_mlp_fit.
 *
 * fit() copies the model's parameters out of their Values into one array, trains with the GIL released
 * (nothing Python is touched meanwhile), and copies them back: the Values stay the model's truth. */
#include "_core.h"

#include <errno.h>
#include <math.h>
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

int mgpy_read_matrix(PyObject *obj, const char *what, int flat_ok, double **data, Py_ssize_t *rows,
                     Py_ssize_t *cols) {
    Py_buffer view;
    *data = NULL;
    if (read_buffer(obj, &view)) {
        *rows = view.shape[0];
        *cols = view.ndim == 2 ? view.shape[1] : 1;
        if (view.ndim == 1 && !flat_ok) {
            PyBuffer_Release(&view);
            PyErr_Format(PyExc_ValueError, "%s must be 2-D (rows of features), got a 1-D array", what);
            return -1;
        }
        size_t bytes = (size_t)*rows * (size_t)*cols * sizeof(double);
        if (!(*data = PyMem_Malloc(bytes ? bytes : 1))) {
            PyBuffer_Release(&view);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(*data, view.buf, bytes);
        PyBuffer_Release(&view);
        return 0;
    }
    PyObject *seq = PySequence_Fast(obj, "data must be a list of rows or an array");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), width = -1;
    *rows = n;
    *cols = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, r);
        int is_row = PyList_Check(row) || PyTuple_Check(row) || (PySequence_Check(row) && !PyUnicode_Check(row) &&
                                                                  !PyBytes_Check(row) && !PyFloat_Check(row) &&
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

/* ---- Optimizer: a Python object owning an mg_optim ---- */

/* `busy` is set while fit() trains with it or a save writes it (the GIL released, or in fit's callback):
 * every call that reads or changes the optimizer's state refuses then, instead of mixing two trainings'
 * state or saving half of one. Set and tested under the GIL only. */
typedef struct {
    PyObject_HEAD
    mg_optim *opt;
    int busy;
} OptimizerObject;

static int optimizer_is_free(PyObject *self) {
    if (!((OptimizerObject *)self)->busy) return 1;
    PyErr_SetString(PyExc_RuntimeError, "the optimizer is in use by fit() or a save (in another thread, or "
                                        "this is fit's callback): wait for it to return");
    return 0;
}

static PyObject *Optimizer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"kind", "n_params", "lr", "momentum", "dampening", "nesterov", "beta1", "beta2",
                               "eps", "weight_decay", NULL};
    const char *kind;
    Py_ssize_t n_params;
    mg_optim_config c = mg_optim_defaults(MG_OPTIM_SGD);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sn|dddpdddd:Optimizer", keywords, &kind, &n_params, &c.lr,
                                     &c.momentum, &c.dampening, &c.nesterov, &c.beta1, &c.beta2, &c.eps,
                                     &c.weight_decay))
        return NULL;
    if (mg_optim_kind_from_name(kind, &c.kind) != MG_OK) return mgpy_raise_error();
    if (n_params < 0) return PyErr_Format(PyExc_ValueError, "n_params must be >= 0, got %zd", n_params);
    if (mg_optim_check_config(&c) != MG_OK) return mgpy_raise_error();
    mg_optim *opt = mg_optim_new(&c, (size_t)n_params);
    if (!opt) return mgpy_raise_error();
    OptimizerObject *self = (OptimizerObject *)type->tp_alloc(type, 0);
    if (!self) {
        mg_optim_free(opt);
        return NULL;
    }
    self->opt = opt;
    return (PyObject *)self;
}

static void Optimizer_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    mg_optim_free(((OptimizerObject *)self)->opt);
    type->tp_free(self);
    Py_DECREF(type);
}

/* The nodes of a sequence of Values (PyMem_Malloc'd) and, in *keep, a tuple of the Values: the nodes live
 * as long as the caller holds that tuple, whatever becomes of `params` (a generator, or a list that a
 * callback or another thread empties). NULL with an exception if any item is not a Value. */
static mg_value **value_nodes(PyObject *params, Py_ssize_t *n, PyObject **keep) {
    PyObject *values = PySequence_Tuple(params);
    if (!values) return NULL;
    *n = PyTuple_GET_SIZE(values);
    mg_value **nodes = PyMem_Malloc((size_t)(*n ? *n : 1) * sizeof *nodes);
    if (!nodes) {
        Py_DECREF(values);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *item = PyTuple_GET_ITEM(values, i);
        if (!mgpy_is_value(item)) {
            PyErr_Format(PyExc_TypeError, "parameter %zd is not a Value but '%.100s'", i, Py_TYPE(item)->tp_name);
            PyMem_Free(nodes);
            Py_DECREF(values);
            return NULL;
        }
        nodes[i] = mgpy_node(item);
    }
    *keep = values;
    return nodes;
}

/* The numbers a parameter holds: 1 for a Value, every element for a Tensor; 0 with TypeError otherwise. */
static size_t parameter_size(PyObject *p, Py_ssize_t index) {
    if (mgpy_is_value(p)) return 1;
    mg_tensor *t = mgpy_tensor_of(p);
    if (t) return mg_tensor_numel(t);
    PyErr_Format(PyExc_TypeError, "parameter %zd is not a Value or a Tensor but '%.100s'", index, Py_TYPE(p)->tp_name);
    return 0;
}

/* parameter_count(params): how many numbers the optimizer of these parameters updates */
static PyObject *core_parameter_count(PyObject *Py_UNUSED(module), PyObject *params) {
    PyObject *seq = PySequence_Fast(params, "parameters must be a list of Values or Tensors");
    if (!seq) return NULL;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        size_t n = parameter_size(PySequence_Fast_GET_ITEM(seq, i), i);
        if (n == 0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
        total += n;
    }
    Py_DECREF(seq);
    return PyLong_FromSize_t(total);
}

/* Tensors in the list: gather every number and its gradient into flat arrays, step, scatter back. A tensor
 * with no gradient yet is skipped, as torch.optim skips a parameter whose grad is None (no weight decay, no
 * momentum, no step counted for it). The tensors are leaves (their data is theirs), stored contiguously;
 * float32 ones are rounded back after the float64 update. */
static PyObject *step_mixed(mg_optim *opt, PyObject *seq) {
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    size_t total = 0;
    int missing = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        size_t n = parameter_size(p, i);
        if (n == 0 && PyErr_Occurred()) return NULL;
        mg_tensor *t = mgpy_tensor_of(p);
        if (t && (mg_tensor_num_inputs(t) != 0 || !mg_tensor_is_contiguous(t)))
            return PyErr_Format(PyExc_ValueError, "parameter %zd is a Tensor computed from others (or a view): "
                                "an optimizer updates leaf tensors", i);
        missing |= t && !mg_tensor_grad_data(t);
        total += n;
    }
    double *data = PyMem_Malloc((total ? total : 1) * (2 * sizeof *data + 1)), *grads = data + total;
    if (!data) return PyErr_NoMemory();
    unsigned char *has_grad = (unsigned char *)(grads + total);
    size_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        mg_tensor *t = mgpy_tensor_of(p);
        if (!t) {
            data[at] = mg_value_data(mgpy_node(p));
            has_grad[at] = 1;
            grads[at++] = mg_value_grad(mgpy_node(p));
            continue;
        }
        size_t n = mg_tensor_numel(t);
        const double *g = mg_tensor_grad_data(t);
        mg_tensor_copy_data(t, data + at);
        for (size_t k = 0; k < n; k++) grads[at + k] = g ? g[k] : 0.0;
        memset(has_grad + at, g != NULL, n);
        at += n;
    }
    mg_status status = missing ? mg_optim_step_masked(opt, data, grads, has_grad, total)
                               : mg_optim_step(opt, data, grads, total);
    if (status != MG_OK) {
        PyMem_Free(data);
        return mgpy_raise_error();
    }
    at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        mg_tensor *t = mgpy_tensor_of(p);
        if (!t) {
            mg_value_set_data(mgpy_node(p), data[at++]);
            continue;
        }
        size_t n = mg_tensor_numel(t);
        void *out = mg_tensor_data_ptr(t);
        for (size_t k = 0; k < n && has_grad[at]; k++) {
            if (mg_tensor_dtype(t) == MG_FLOAT32) ((float *)out)[k] = (float)data[at + k];
            else ((double *)out)[k] = data[at + k];
        }
        at += n;
    }
    PyMem_Free(data);
    Py_RETURN_NONE;
}

static PyObject *Optimizer_step(PyObject *self, PyObject *params) {
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    if (!optimizer_is_free(self)) return NULL;
    /* a tuple: its items stay alive while we hold their nodes and data, whatever happens to `params` */
    PyObject *seq = PySequence_Tuple(params);
    if (!seq) return NULL;
    int all_values = 1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq) && all_values; i++)
        all_values = mgpy_is_value(PyTuple_GET_ITEM(seq, i));
    PyObject *result = NULL;
    if (all_values) { /* the common case: Values only, straight from their nodes */
        Py_ssize_t n;
        PyObject *keep;
        mg_value **nodes = value_nodes(seq, &n, &keep);
        if (nodes) {
            mg_status status = mg_optim_step_values(opt, nodes, (size_t)n);
            PyMem_Free(nodes);
            Py_DECREF(keep);
            result = status == MG_OK ? Py_NewRef(Py_None) : mgpy_raise_error();
        }
    } else {
        result = step_mixed(opt, seq);
    }
    Py_DECREF(seq);
    return result;
}

/* state(): (steps, [buffers...], [skipped...] or None); set_state(steps, buffers, skipped=None) */
static PyObject *Optimizer_state(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    if (!optimizer_is_free(self)) return NULL;
    size_t size = mg_optim_state_size(opt);
    const double *state = mg_optim_state(opt);
    PyObject *buffers = PyList_New((Py_ssize_t)size);
    if (!buffers) return NULL;
    for (size_t i = 0; i < size; i++) {
        PyObject *x = PyFloat_FromDouble(state[i]);
        if (!x) {
            Py_DECREF(buffers);
            return NULL;
        }
        PyList_SET_ITEM(buffers, (Py_ssize_t)i, x);
    }
    const uint64_t *skipped = mg_optim_skipped(opt);
    size_t n = mg_optim_num_params(opt);
    PyObject *skips = skipped ? PyList_New((Py_ssize_t)n) : Py_NewRef(Py_None);
    for (size_t i = 0; skips && skipped && i < n; i++) {
        PyObject *k = PyLong_FromUnsignedLongLong(skipped[i]);
        if (!k) Py_CLEAR(skips);
        else PyList_SET_ITEM(skips, (Py_ssize_t)i, k);
    }
    if (!skips) {
        Py_DECREF(buffers);
        return NULL;
    }
    return Py_BuildValue("(KNN)", (unsigned long long)mg_optim_steps(opt), buffers, skips);
}

/* The skipped counts of set_state: None, or one int >= 0 per parameter; *out NULL for None. */
static int read_skipped(PyObject *obj, size_t n, uint64_t **out) {
    *out = NULL;
    if (obj == Py_None) return 0;
    PyObject *seq = PySequence_Fast(obj, "skipped must be None or a list of ints");
    if (!seq) return -1;
    if ((size_t)PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "skipped has %zd counts, this optimizer has %zu parameters",
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return -1;
    }
    if (!(*out = PyMem_Malloc((n ? n : 1) * sizeof **out))) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i);
        unsigned long long k = PyLong_Check(item) ? PyLong_AsUnsignedLongLong(item) : (unsigned long long)-1;
        if (k == (unsigned long long)-1 && (PyErr_Occurred() || !PyLong_Check(item))) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "skipped[%zu] must be an int in [0, 2**64), got %R", i, item);
            PyMem_Free(*out);
            *out = NULL;
            Py_DECREF(seq);
            return -1;
        }
        (*out)[i] = k;
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *Optimizer_set_state(PyObject *self, PyObject *args) {
    unsigned long long steps;
    PyObject *steps_obj, *buffers, *skipped_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O:set_state", &steps_obj, &buffers, &skipped_obj)) return NULL;
    steps = PyLong_Check(steps_obj) && !PyBool_Check(steps_obj) ? PyLong_AsUnsignedLongLong(steps_obj)
                                                                : (unsigned long long)-1;
    if (steps == (unsigned long long)-1 && (PyErr_Occurred() || !PyLong_Check(steps_obj))) {
        PyErr_Clear(); /* "K" would wrap -1 around to 2**64 - 1 */
        return PyErr_Format(PyExc_ValueError, "steps must be an int in [0, 2**64), got %R", steps_obj);
    }
    if (!optimizer_is_free(self)) return NULL;
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    double *data;
    uint64_t *skipped;
    Py_ssize_t rows, cols;
    size_t n = mg_optim_num_params(opt);
    if (read_skipped(skipped_obj, n, &skipped) < 0) return NULL;
    if (mgpy_read_matrix(buffers, "optimizer state", 1, &data, &rows, &cols) < 0) {
        PyMem_Free(skipped);
        return NULL;
    }
    mg_status status = mg_optim_set_state(opt, steps, data, (size_t)(rows * cols), skipped);
    PyMem_Free(data);
    PyMem_Free(skipped);
    if (status != MG_OK) return mgpy_raise_error();
    Py_RETURN_NONE;
}

/* set_config(lr=..., momentum=..., ...): the fields given change, validated as the constructor's */
static PyObject *Optimizer_set_config(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"lr", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps", "weight_decay",
                               NULL};
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    mg_optim_config c = *mg_optim_get_config(opt);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$dddpdddd:set_config", keywords, &c.lr, &c.momentum,
                                     &c.dampening, &c.nesterov, &c.beta1, &c.beta2, &c.eps, &c.weight_decay))
        return NULL;
    if (mg_optim_set_config(opt, &c) != MG_OK) return mgpy_raise_error();
    Py_RETURN_NONE;
}

static PyObject *Optimizer_get_lr(PyObject *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(mg_optim_lr(((OptimizerObject *)self)->opt));
}

static int Optimizer_set_lr(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    double lr;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete lr");
        return -1;
    }
    if (mgpy_parse_real(value, &lr, "lr") < 0 || !optimizer_is_free(self)) return -1;
    if (mg_optim_set_lr(((OptimizerObject *)self)->opt, lr) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

static PyObject *Optimizer_get_steps(PyObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(mg_optim_steps(((OptimizerObject *)self)->opt));
}

static PyMethodDef Optimizer_methods[] = {
    {"step", Optimizer_step, METH_O, "step(params): one update of the Values' data from their grads."},
    {"state", Optimizer_state, METH_NOARGS, "(steps, buffers): what a checkpoint needs to resume."},
    {"set_state", Optimizer_set_state, METH_VARARGS, "set_state(steps, buffers, skipped=None): restore state()."},
    {"set_config", (PyCFunction)(void (*)(void))Optimizer_set_config, METH_VARARGS | METH_KEYWORDS,
     "set_config(lr=, momentum=, ...): change hyperparameters, validated as the constructor's."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Optimizer_getset[] = {
    {"lr", Optimizer_get_lr, Optimizer_set_lr, "The learning rate.", NULL},
    {"steps", Optimizer_get_steps, NULL, "Updates made so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Optimizer_slots[] = {
    {Py_tp_doc, "Optimizer(kind, n_params, lr, ...): the C optimizer behind micrograd_c.optim."},
    {Py_tp_new, MGPY_SLOT(Optimizer_new)},
    {Py_tp_dealloc, MGPY_SLOT(Optimizer_dealloc)},
    {Py_tp_methods, Optimizer_methods},
    {Py_tp_getset, Optimizer_getset},
    {0, NULL},
};

static PyType_Spec Optimizer_spec = {
    .name = "micrograd_c._core.Optimizer",
    .basicsize = sizeof(OptimizerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Optimizer_slots,
};

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
    if (!(nodes = value_nodes(params, &n_params, &keep))) goto error;
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

/* fit's counts, seed and schedule into o: each count an int (None: 0 where that means a default), named
 * in its error; threads above the core count are capped there (MLP.fit says so) */
static int read_fit_options(PyObject *epochs_obj, PyObject *batch_obj, PyObject *threads_obj, PyObject *total_obj,
                            PyObject *seed_obj, const char *schedule_name, mg_fit_options *o) {
    size_t threads;
    unsigned long long seed = 0;
    if ((seed_obj && parse_u64(seed_obj, "seed", &seed) < 0) ||
        parse_count(epochs_obj, "epochs", PY_SSIZE_T_MAX, 0, &o->epochs) < 0 ||
        parse_count(batch_obj, "batch_size", PY_SSIZE_T_MAX, 1, &o->batch_size) < 0 ||
        parse_count(threads_obj, "threads", PY_SSIZE_T_MAX, 1, &threads) < 0 ||
        parse_count(total_obj, "total_epochs", PY_SSIZE_T_MAX, 1, &o->total_epochs) < 0)
        return -1;
    o->seed = seed;
    o->threads = threads > (size_t)mg_num_cores() ? mg_num_cores() : (int)threads;
    if (mg_schedule_from_name(schedule_name, &o->schedule) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

static PyObject *core_fit(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"params", "n_inputs", "sizes", "activations", "X", "y", "optimizer", "loss",
                               "epochs", "batch_size", "l2", "shuffle", "seed", "schedule", "lr_end", "threads",
                               "callback", "total_epochs", NULL};
    module_state *state = PyModule_GetState(module);
    PyObject *params, *sizes_obj, *acts_obj, *X, *Y, *optimizer, *callback = Py_None;
    PyObject *epochs_obj, *batch_obj = NULL, *threads_obj = NULL, *total_obj = NULL;
    Py_ssize_t n_inputs;
    const char *loss_name, *schedule_name = "constant";
    double l2 = 0.0, lr_end = 0.0;
    int shuffle = 1;
    PyObject *seed_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOOOOOsO|OdpOsdOOO:fit", keywords, &params, &n_inputs,
                                     &sizes_obj, &acts_obj, &X, &Y, &optimizer, &loss_name, &epochs_obj, &batch_obj,
                                     &l2, &shuffle, &seed_obj, &schedule_name, &lr_end, &threads_obj, &callback,
                                     &total_obj))
        return NULL;
    mg_fit_options o = mg_fit_defaults();
    if (read_fit_options(epochs_obj, batch_obj, threads_obj, total_obj, seed_obj, schedule_name, &o) < 0)
        return NULL;
    if (!PyObject_TypeCheck(optimizer, state->optimizer_type))
        return PyErr_Format(PyExc_TypeError, "optimizer must be a micrograd_c optimizer, not '%.100s'",
                            Py_TYPE(optimizer)->tp_name);
    if (callback != Py_None && !PyCallable_Check(callback))
        return PyErr_Format(PyExc_TypeError, "callback must be callable or None");
    mg_loss loss;
    if (mg_loss_from_name(loss_name, &loss) != MG_OK) return mgpy_raise_error();
    /* claimed from here to the end (reading X may run Python code, and other threads with it): no other
     * call may touch the optimizer's state until we are back, neither another thread nor our callback */
    if (!optimizer_is_free(optimizer)) return NULL;
    ((OptimizerObject *)optimizer)->busy = 1;
    PyObject *result = NULL, *keep = NULL;
    mg_value **nodes = NULL;
    double *x = NULL, *y = NULL;
    Py_ssize_t rows, cols, y_rows, y_cols;
    mg_mlp *m = build_mlp(params, n_inputs, sizes_obj, acts_obj, &nodes, &keep);
    if (!m) goto done;
    if (mgpy_read_matrix(X, "X", 0, &x, &rows, &cols) < 0) goto done;
    if (mgpy_read_matrix(Y, "y", 1, &y, &y_rows, &y_cols) < 0) goto done;
    if (rows == 0) {
        PyErr_SetString(PyExc_ValueError, "X is empty: nothing to train on");
        goto done;
    }
    if (cols != n_inputs) {
        PyErr_Format(PyExc_ValueError, "X has %zd features per row, the model takes %zd", cols, n_inputs);
        goto done;
    }
    Py_ssize_t want_cols = loss == MG_LOSS_MSE ? (Py_ssize_t)mg_mlp_num_outputs(m) : 1;
    if (y_rows != rows || y_cols != want_cols) {
        PyErr_Format(PyExc_ValueError, "y has shape (%zd, %zd) but X has %zd rows and the %s loss needs %zd "
                     "target(s) per row", y_rows, y_cols, rows, loss_name, want_cols);
        goto done;
    }

    o.loss = loss;
    o.l2 = l2;
    o.shuffle = shuffle;
    o.lr_end = lr_end;
    fit_callback cb = {.callback = callback};
    o.on_epoch = on_epoch;
    o.user = &cb;
    mg_optim *opt = ((OptimizerObject *)optimizer)->opt;
    cb.thread = PyEval_SaveThread(); /* the caller holds the optimizer object: it stays alive */
    mg_status status = mg_mlp_fit(m, opt, x, y, (size_t)rows, &o);
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
    ((OptimizerObject *)optimizer)->busy = 0;
    mg_mlp_free(m);
    PyMem_Free(nodes);
    Py_XDECREF(keep);
    PyMem_Free(x);
    PyMem_Free(y);
    return result;
}

/* predict(params, n_inputs, sizes, activations, X) -> list of output rows, computed in C */
static PyObject *core_predict(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *params, *sizes_obj, *acts_obj, *X, *result = NULL;
    Py_ssize_t n_inputs, rows, cols;
    if (!PyArg_ParseTuple(args, "OnOOO:predict", &params, &n_inputs, &sizes_obj, &acts_obj, &X)) return NULL;
    double *x = NULL, *out = NULL;
    mg_mlp *m = build_mlp(params, n_inputs, sizes_obj, acts_obj, NULL, NULL);
    if (!m) return NULL;
    if (mgpy_read_matrix(X, "X", 0, &x, &rows, &cols) < 0) goto done;
    if (cols != n_inputs && rows > 0) {
        PyErr_Format(PyExc_ValueError, "X has %zd features per row, the model takes %zd", cols, n_inputs);
        goto done;
    }
    size_t k = mg_mlp_num_outputs(m);
    if (!(out = PyMem_Malloc((size_t)(rows ? rows : 1) * k * sizeof *out))) {
        PyErr_NoMemory();
        goto done;
    }
    mg_status status;
    Py_BEGIN_ALLOW_THREADS
    status = mg_mlp_predict(m, x, (size_t)rows, out);
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
    PyMem_Free(x);
    PyMem_Free(out);
    return result;
}

/* save_model(path, params, n_inputs, sizes, activations, optimizer=None, step=0, metadata=None) */
static PyObject *core_save_model(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"path", "params", "n_inputs", "sizes", "activations", "optimizer", "step",
                               "metadata", NULL};
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
    if (optimizer != Py_None && !optimizer_is_free(optimizer)) return NULL;
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
    if (optimizer != Py_None && !optimizer_is_free(optimizer)) goto done;
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
        PyObject *value = PyUnicode_DecodeUTF8(c.metadata[2 * i + 1], (Py_ssize_t)strlen(c.metadata[2 * i + 1]), "replace");
        int failed = !value || PyDict_SetItemString(meta, c.metadata[2 * i], value) < 0;
        Py_XDECREF(value);
        if (failed) goto done;
    }
    if (c.optimizer) {
        const mg_optim_config *k = mg_optim_get_config(c.optimizer);
        PyObject *buffers = doubles_list(mg_optim_state(c.optimizer), mg_optim_state_size(c.optimizer));
        if (!buffers) goto done;
        opt = Py_BuildValue("{s:s,s:d,s:d,s:d,s:O,s:d,s:d,s:d,s:d,s:K,s:N}", "kind",
                            mg_optim_kind_name(k->kind), "lr",
                            k->lr, "momentum", k->momentum, "dampening", k->dampening, "nesterov",
                            k->nesterov ? Py_True : Py_False, "beta1", k->beta1, "beta2", k->beta2, "eps", k->eps,
                            "weight_decay", k->weight_decay, "steps", (unsigned long long)mg_optim_steps(c.optimizer),
                            "buffers", buffers);
        if (!opt) goto done;
    } else {
        opt = Py_NewRef(Py_None);
    }
    if (!(params = doubles_list(mg_mlp_params(c.model), mg_mlp_num_params(c.model)))) goto done;
    result = Py_BuildValue("{s:n,s:O,s:O,s:O,s:K,s:O,s:O}", "n_inputs", (Py_ssize_t)mg_mlp_num_inputs(c.model),
                           "sizes", sizes, "activations", acts, "params", params, "step", (unsigned long long)c.step,
                           "metadata", meta, "optimizer", opt);
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

static PyMethodDef train_methods[] = {
    {"fit", (PyCFunction)(void (*)(void))core_fit, METH_VARARGS | METH_KEYWORDS,
     "fit(params, n_inputs, sizes, activations, X, y, optimizer, loss, epochs, ...): train in C."},
    {"num_cores", core_num_cores, METH_NOARGS, "Number of cores the training threads default to."},
    {"parameter_count", core_parameter_count, METH_O,
     "parameter_count(params): the numbers an optimizer updates (a Value counts 1, a Tensor its elements)."},
    {"predict", core_predict, METH_VARARGS, "predict(params, n_inputs, sizes, activations, X): output rows."},
    {"save_model", (PyCFunction)(void (*)(void))core_save_model, METH_VARARGS | METH_KEYWORDS,
     "save_model(path, params, n_inputs, sizes, activations, optimizer=None, step=0, metadata=None)."},
    {"load_model", core_load_model, METH_O, "load_model(path) -> dict of the model file's contents."},
    {NULL, NULL, 0, NULL},
};

int mgpy_train_exec(PyObject *module, module_state *state) {
    if (mgpy_add_type(module, &Optimizer_spec, &state->optimizer_type) < 0) return -1;
    return PyModule_AddFunctions(module, train_methods);
}
