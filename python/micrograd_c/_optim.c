/* _optim.c: the Optimizer type of micrograd_c._core (micrograd_c.optim's engine), over the C library's
 * mg_optim: steps on Values and leaf Tensors, state and config for checkpoints, parameter_count(). */
#include "_core.h"

#include <string.h>

/* ---- Optimizer: a Python object owning an mg_optim ---- */

int mgpy_optimizer_is_free(PyObject *self) {
    if (!((OptimizerObject *)self)->busy) return 1;
    PyErr_SetString(PyExc_RuntimeError, "the optimizer is in use by fit() or a save (in another thread, or "
                                        "this is fit's callback): wait for it to return");
    return 0;
}

static PyObject *Optimizer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"kind",  "n_params", "lr",  "momentum",     "dampening", "nesterov",
                               "beta1", "beta2",    "eps", "weight_decay", NULL};
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
    mg_optim_free(((OptimizerObject *)self)->opt);
    mgpy_free_object(self);
}

mg_value **mgpy_value_nodes(PyObject *params, Py_ssize_t *n, PyObject **keep) {
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
            return PyErr_Format(PyExc_ValueError,
                                "parameter %zd is a Tensor computed from others (or a view): "
                                "an optimizer updates leaf tensors",
                                i);
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
    if (!mgpy_optimizer_is_free(self)) return NULL;
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
        mg_value **nodes = mgpy_value_nodes(seq, &n, &keep);
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
    if (!mgpy_optimizer_is_free(self)) return NULL;
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
    if (!mgpy_optimizer_is_free(self)) return NULL;
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    mgpy_matrix state;
    uint64_t *skipped;
    size_t n = mg_optim_num_params(opt);
    if (read_skipped(skipped_obj, n, &skipped) < 0) return NULL;
    if (mgpy_read_matrix(buffers, "optimizer state", 1, &state) < 0) {
        PyMem_Free(skipped);
        return NULL;
    }
    mg_status status = mg_optim_set_state(opt, steps, state.data, (size_t)(state.rows * state.cols), skipped);
    mgpy_matrix_release(&state);
    PyMem_Free(skipped);
    if (status != MG_OK) return mgpy_raise_error();
    Py_RETURN_NONE;
}

/* set_config(lr=..., momentum=..., ...): the fields given change, validated as the constructor's */
static PyObject *Optimizer_set_config(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"lr",    "momentum", "dampening",    "nesterov", "beta1",
                               "beta2", "eps",      "weight_decay", NULL};
    mg_optim *opt = ((OptimizerObject *)self)->opt;
    mg_optim_config c = *mg_optim_get_config(opt);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$dddpdddd:set_config", keywords, &c.lr, &c.momentum, &c.dampening,
                                     &c.nesterov, &c.beta1, &c.beta2, &c.eps, &c.weight_decay))
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
    if (mgpy_parse_real(value, &lr, "lr") < 0 || !mgpy_optimizer_is_free(self)) return -1;
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
    {"step", Optimizer_step, METH_O, "step($self, params, /)\n--\n\nOne update of the Values' data from their grads."},
    {"state", Optimizer_state, METH_NOARGS,
     "state($self, /)\n--\n\n(steps, buffers, skipped): what a checkpoint "
     "needs to resume."},
    {"set_state", Optimizer_set_state, METH_VARARGS,
     "set_state($self, steps, buffers, skipped=None, /)\n--\n\nRestore state()."},
    {"set_config", (PyCFunction)(void (*)(void))Optimizer_set_config, METH_VARARGS | METH_KEYWORDS,
     "set_config($self, /, **settings)\n--\n\nChange the hyperparameters given by keyword (lr, momentum, dampening, "
     "nesterov, beta1, beta2, eps, weight_decay), validated as the constructor's; the others stay."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Optimizer_getset[] = {
    {"lr", Optimizer_get_lr, Optimizer_set_lr, "The learning rate.", NULL},
    {"steps", Optimizer_get_steps, NULL, "Updates made so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Optimizer_slots[] = {
    {Py_tp_doc, "Optimizer(kind, n_params, lr=0.001, momentum=0.0, dampening=0.0, nesterov=False, beta1=0.9, "
                "beta2=0.999, eps=1e-08, weight_decay=0.0)\n--\n\nThe C optimizer behind micrograd_c.optim."},
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

static PyMethodDef optim_methods[] = {
    {"parameter_count", core_parameter_count, METH_O,
     "parameter_count(params, /)\n--\n\nThe numbers an optimizer updates (a Value counts 1, a Tensor its elements)."},
    {NULL, NULL, 0, NULL},
};

int mgpy_optim_exec(PyObject *module, module_state *state) {
    if (mgpy_add_type(module, &Optimizer_spec, &state->optimizer_type) < 0) return -1;
    return PyModule_AddFunctions(module, optim_methods);
}
