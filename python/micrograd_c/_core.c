/* _core.c: the CPython extension module micrograd_c._core, a thin skin over libmicrograd.
 *
 * A Python Value is a 32-byte object holding one reference to a C node (and a label). The base type never
 * takes part in the cyclic garbage collector: a node only points at its inputs, so no reference cycle can
 * exist, and plain reference counting frees everything (through mg_value_release, which is iterative).
 * Subclasses defined in Python get a __dict__ and the collector, as any Python class does.
 *
 * Identity: a node remembers its wrapper in its user pointer (a borrowed pointer, cleared when the wrapper
 * dies), so `_prev` hands back the very same Python objects while they live, as micrograd's draw_dot
 * expects, and makes a new wrapper only for nodes nobody in Python holds any more.
 *
 * Layout follows CPython's Modules/xxlimited.c: multi-phase init, a heap type, module state. */
#include "_core.h"

#include <math.h>
#include <string.h>

static inline int is_value(PyObject *o) { return mgpy_is_value(o); }
static inline mg_value *node_of(PyObject *o) { return mgpy_node(o); }

/* The one table from the library's status codes to Python's exceptions. */
static PyObject *exception_for(mg_status status) {
    switch (status) {
    case MG_ERR_NOMEM: return PyExc_MemoryError;
    case MG_ERR_RANGE: return PyExc_IndexError;
    case MG_ERR_IO: return PyExc_OSError;
    case MG_ERR_STATE:
    case MG_ERR_BUSY:
    case MG_OK: return PyExc_RuntimeError; /* a failure that set no status: an internal error */
    case MG_ERR_NULL:
    case MG_ERR_ARG: return PyExc_ValueError;
    }
    return PyExc_RuntimeError;
}

/* "mg_mlp_fit: svm loss: ..." says "svm loss: ..." in Python: the C function's name helps a C caller, not
 * someone who called MLP.fit. */
static const char *without_c_function(const char *message) {
    if (strncmp(message, "mg_", 3) != 0) return message;
    const char *p = message + 3;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') p++;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : message;
}

PyObject *mgpy_raise_error(void) {
    const char *message = without_c_function(mg_last_error());
    mg_status status = mg_last_status();
    /* the message buffer may cut a UTF-8 character short: decode with replacement */
    PyObject *text = message[0] ? PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace")
                                : PyUnicode_FromString(mg_status_string(status));
    if (text) {
        PyErr_SetObject(exception_for(status), text);
        Py_DECREF(text);
    }
    mg_clear_error();
    return NULL;
}

PyObject *mgpy_raise_file_error(int saved_errno, PyObject *path) {
    if (mg_last_status() != MG_ERR_IO || saved_errno == 0) return mgpy_raise_error();
    mg_clear_error();
    PyObject *args = Py_BuildValue("(isO)", saved_errno, strerror(saved_errno), path);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args); /* OSError(errno, ...) picks the subclass: FileNotFoundError... */
        Py_DECREF(args);
    }
    return NULL;
}

/* Results are plain Values whatever the operands' types, as in micrograd (its ops call `Value(...)`): the
 * base type, found from a subclass by walking its bases (only subclasses walk). */
static PyTypeObject *value_type_of(PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    while (t->tp_dealloc != mgpy_value_dealloc) t = t->tp_base;
    return t;
}

/* Wrap a node we own one reference to (it is handed to the wrapper) in a new base Value. NULL: raise. */
static PyObject *wrap_new(PyTypeObject *type, mg_value *node) {
    if (!node) return mgpy_raise_error();
    ValueObject *self = PyObject_New(ValueObject, type);
    if (!self) {
        mg_value_release(node);
        return NULL;
    }
    self->node = node;
    self->label = NULL;
    mg_value_set_user(node, self);
    return (PyObject *)self;
}

/* The wrapper of a node owned elsewhere (an input): the existing one if it lives, else a new one. */
static PyObject *wrap_borrowed(PyTypeObject *type, mg_value *node) {
    PyObject *existing = mg_value_user(node);
    if (existing) return Py_NewRef(existing);
    return wrap_new(type, mg_value_retain(node));
}

int mgpy_as_real(PyObject *o, double *out, int flags) {
    if (PyFloat_Check(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 1;
    }
    if (PyLong_Check(o)) {
        *out = PyLong_AsDouble(o);
        return *out == -1.0 && PyErr_Occurred() ? -1 : 1;
    }
    /* arrays and tensors have __float__ too (of one element): for tensor ops they are operands to
     * broadcast, not numbers */
    if ((flags & MGPY_REAL_NO_ARRAYS) && (mgpy_tensor_of(o) || PyObject_CheckBuffer(o))) return 0;
    /* numpy scalars and other real numbers: anything with __float__ or __index__; what has them but is
     * not one number (a NumPy array of several) is not ours: NotImplemented lets its own operator run */
    PyNumberMethods *nb = Py_TYPE(o)->tp_as_number;
    if (nb && (nb->nb_float || nb->nb_index)) {
        *out = PyFloat_AsDouble(o);
        if (*out != -1.0 || !PyErr_Occurred()) return 1;
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear();
    }
    return 0;
}

int mgpy_parse_real(PyObject *o, double *out, const char *what) {
    int found = mgpy_as_real(o, out, MGPY_REAL_ANY);
    if (found == 0)
        PyErr_Format(PyExc_TypeError, "%s must be a real number (int or float), not '%.100s'", what,
                     Py_TYPE(o)->tp_name);
    return found == 1 ? 0 : -1;
}

/* ---- construction ---- */

static int set_label(PyObject *self, PyObject *label) {
    if (label == Py_None || (PyUnicode_Check(label) && PyUnicode_GET_LENGTH(label) == 0)) label = NULL;
    else if (!PyUnicode_Check(label)) {
        PyErr_Format(PyExc_TypeError, "a Value's label must be a str, not '%.100s'", Py_TYPE(label)->tp_name);
        return -1;
    }
    Py_XSETREF(((ValueObject *)self)->label, Py_XNewRef(label));
    return 0;
}

/* Value(data, _children=(), _op='', label='', *, device=None): micrograd's signature, with the lecture
 * version's label and micrograd_rs's device. _children and _op are accepted for compatibility; a Value
 * built from Python is always a leaf here, as the graph is recorded by the operators themselves. */
static int parse_value_args(PyObject *args, PyObject *kwargs, double *data, PyObject **label) {
    static char *keywords[] = {"data", "_children", "_op", "label", "device", NULL};
    PyObject *data_obj, *children = NULL, *op = NULL, *device = Py_None;
    *label = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OOO$O:Value", keywords, &data_obj, &children, &op, label,
                                     &device))
        return -1;
    return mgpy_parse_real(data_obj, data, "Value() data") < 0 || mgpy_check_device(device) < 0 ? -1 : 0;
}

/* A subclass: its allocator makes room for its __dict__ and the collector's header. Its __init__ may take
 * other arguments, so only `data` (first, or by name) is read here; Value.__init__ reads the rest. */
static PyObject *new_subclass_instance(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *data_obj = PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0)
                         : kwargs               ? PyDict_GetItemString(kwargs, "data")
                                                : NULL;
    double data = 0.0;
    if (!data_obj) return PyErr_Format(PyExc_TypeError, "%s() needs the data argument", type->tp_name);
    if (mgpy_parse_real(data_obj, &data, "Value() data") < 0) return NULL;
    mg_value *node = mg_value_new(data);
    if (!node) return mgpy_raise_error();
    PyObject *self = type->tp_alloc(type, 0);
    if (!self) {
        mg_value_release(node);
        return NULL;
    }
    ((ValueObject *)self)->node = node;
    mg_value_set_user(node, self);
    return self;
}

static PyObject *Value_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (type->tp_dealloc != mgpy_value_dealloc) return new_subclass_instance(type, args, kwargs);
    double data;
    PyObject *label;
    if (parse_value_args(args, kwargs, &data, &label) < 0) return NULL;
    PyObject *self = wrap_new(type, mg_value_new(data));
    if (self && set_label(self, label) < 0) Py_CLEAR(self);
    return self;
}

/* Value.__init__: nothing for a Value (its __new__ did it all); for a subclass instance, what its own
 * __init__ passes on (super().__init__(data, label=...)), checked as Value() checks it. */
static int Value_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    if (Py_TYPE(self)->tp_dealloc == mgpy_value_dealloc) return 0;
    double data;
    PyObject *label;
    if (parse_value_args(args, kwargs, &data, &label) < 0 || set_label(self, label) < 0) return -1;
    mg_value_set_data(node_of(self), data);
    return 0;
}

void mgpy_value_dealloc(PyObject *self) {
    mg_value *node = node_of(self);
    mg_value_set_user(node, NULL);
    mg_value_release(node);
    Py_CLEAR(((ValueObject *)self)->label);
    mgpy_free_object(self); /* a subclass's type too: Python's subtype_dealloc leaves that to its base */
}

/* ---- operators: each accepts a Value or a real number on either side ---- */

typedef mg_value *(*binary_fn)(mg_value *, mg_value *);
typedef mg_value *(*const_fn)(mg_value *, double);
typedef mg_value *(*rconst_fn)(double, mg_value *);

static PyObject *binary(PyObject *a, PyObject *b, binary_fn both, const_fn right, rconst_fn left) {
    double c;
    int found;
    if (is_value(a)) {
        if (is_value(b)) return wrap_new(value_type_of(a), both(node_of(a), node_of(b)));
        if ((found = mgpy_as_real(b, &c, MGPY_REAL_ANY)) <= 0) return found < 0 ? NULL : Py_NewRef(Py_NotImplemented);
        return wrap_new(value_type_of(a), right(node_of(a), c));
    }
    if ((found = mgpy_as_real(a, &c, MGPY_REAL_ANY)) <= 0) return found < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    return wrap_new(value_type_of(b), left(c, node_of(b)));
}

/* + and * commute exactly in IEEE arithmetic, so the constant's side does not matter */
static mg_value *radd_c(double c, mg_value *a) { return mg_add_scalar(a, c); }
static mg_value *rmul_c(double c, mg_value *a) { return mg_mul_scalar(a, c); }

static PyObject *Value_add(PyObject *a, PyObject *b) { return binary(a, b, mg_add, mg_add_scalar, radd_c); }
static PyObject *Value_sub(PyObject *a, PyObject *b) { return binary(a, b, mg_sub, mg_sub_scalar, mg_rsub_scalar); }
static PyObject *Value_mul(PyObject *a, PyObject *b) { return binary(a, b, mg_mul, mg_mul_scalar, rmul_c); }
static PyObject *Value_div(PyObject *a, PyObject *b) { return binary(a, b, mg_div, mg_div_scalar, mg_rdiv_scalar); }

static PyObject *Value_pow(PyObject *a, PyObject *b, PyObject *mod) {
    if (mod != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pow() with a modulus is not supported for Value");
        return NULL;
    }
    return binary(a, b, mg_pow, mg_pow_scalar, mg_rpow_scalar);
}

static PyObject *Value_neg(PyObject *a) { return wrap_new(value_type_of(a), mg_neg(node_of(a))); }

#define UNARY_METHOD(name, fn)                                                    \
    static PyObject *Value_##name(PyObject *self, PyObject *Py_UNUSED(ignored)) { \
        return wrap_new(value_type_of(self), fn(node_of(self)));                  \
    }
UNARY_METHOD(relu, mg_relu)
UNARY_METHOD(tanh, mg_tanh)
UNARY_METHOD(exp, mg_exp)
UNARY_METHOD(log, mg_log)
UNARY_METHOD(sigmoid, mg_sigmoid)

static PyObject *Value_backward(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    if (mg_backward(node_of(self)) != MG_OK) return mgpy_raise_error();
    Py_RETURN_NONE;
}

/* ---- attributes ---- */

static PyObject *Value_get_data(PyObject *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(mg_value_data(node_of(self)));
}

static int Value_set_data(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    double x;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete Value.data");
        return -1;
    }
    if (mgpy_parse_real(value, &x, "Value.data") < 0) return -1;
    mg_value_set_data(node_of(self), x);
    return 0;
}

static PyObject *Value_get_grad(PyObject *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(mg_value_grad(node_of(self)));
}

static int Value_set_grad(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    double x;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete Value.grad");
        return -1;
    }
    if (mgpy_parse_real(value, &x, "Value.grad") < 0) return -1;
    mg_value_set_grad(node_of(self), x);
    return 0;
}

static PyObject *Value_get_prev(PyObject *self, void *Py_UNUSED(closure)) {
    mg_value *node = node_of(self);
    PyObject *prev = PySet_New(NULL);
    if (!prev) return NULL;
    for (size_t i = 0; i < mg_value_num_inputs(node); i++) {
        PyObject *input = wrap_borrowed(value_type_of(self), mg_value_input(node, i));
        if (!input || PySet_Add(prev, input) < 0) {
            Py_XDECREF(input);
            Py_DECREF(prev);
            return NULL;
        }
        Py_DECREF(input);
    }
    return prev;
}

/* micrograd's op strings: '+', '*', 'ReLU', and '**k' with the exponent written out. */
static PyObject *Value_get_op(PyObject *self, void *Py_UNUSED(closure)) {
    mg_value *node = node_of(self);
    mg_opcode op = mg_value_op(node);
    if (op == MG_OP_POW_SCALAR) {
        double k = mg_value_constant(node);
        if (k == floor(k) && fabs(k) < 1e15) return PyUnicode_FromFormat("**%lld", (long long)k);
        PyObject *number = PyFloat_FromDouble(k);
        if (!number) return NULL;
        PyObject *text = PyUnicode_FromFormat("**%R", number);
        Py_DECREF(number);
        return text;
    }
    return PyUnicode_FromString(mg_op_name(op));
}

static PyObject *Value_get_label(PyObject *self, void *Py_UNUSED(closure)) {
    PyObject *label = ((ValueObject *)self)->label;
    return label ? Py_NewRef(label) : PyUnicode_FromString("");
}

static int Value_set_label(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    return set_label(self, value ? value : Py_None);
}

static PyObject *Value_get_inputs(PyObject *self, void *Py_UNUSED(closure)) {
    mg_value *node = node_of(self);
    PyObject *inputs = PyTuple_New((Py_ssize_t)mg_value_num_inputs(node));
    for (size_t i = 0; inputs && i < mg_value_num_inputs(node); i++) {
        PyObject *input = wrap_borrowed(value_type_of(self), mg_value_input(node, i));
        if (!input) Py_CLEAR(inputs);
        else PyTuple_SET_ITEM(inputs, (Py_ssize_t)i, input);
    }
    return inputs;
}

static PyObject *Value_get_constant(PyObject *self, void *Py_UNUSED(closure)) {
    double c = mg_value_constant(node_of(self));
    if (isnan(c)) Py_RETURN_NONE; /* NAN marks "no constant": a NaN constant itself reads as None too */
    return PyFloat_FromDouble(c);
}

/* The op as a drawing shows it: the plain number of a * 2.0 written out on its side ("* 2", "1 -");
 * a power's _op already has it ("**2"). */
static PyObject *Value_get_op_label(PyObject *self, void *Py_UNUSED(closure)) {
    mg_value *node = node_of(self);
    mg_opcode op = mg_value_op(node);
    double c = mg_value_constant(node);
    int left = op == MG_OP_RSUB_SCALAR || op == MG_OP_RDIV_SCALAR || op == MG_OP_RPOW_SCALAR;
    if (isnan(c) || op == MG_OP_POW_SCALAR) return Value_get_op(self, NULL);
    PyObject *number = PyFloat_FromDouble(c), *text = NULL;
    if (number) /* %R of a float: its shortest exact text, as Python prints it */
        text = left ? PyUnicode_FromFormat("%R %s", number, mg_op_name(op))
                    : PyUnicode_FromFormat("%s %R", mg_op_name(op), number);
    Py_XDECREF(number);
    return text;
}

static PyObject *Value_repr(PyObject *self) {
    PyObject *data = Value_get_data(self, NULL), *grad = NULL, *text = NULL;
    if (data && (grad = Value_get_grad(self, NULL))) text = PyUnicode_FromFormat("Value(data=%R, grad=%R)", data, grad);
    Py_XDECREF(data);
    Py_XDECREF(grad);
    return text;
}

/* Pickling and copying give a detached leaf with the same data, grad and label (and a subclass's
 * __dict__): never the graph, whose depth would be unbounded. */
static PyObject *Value_reduce(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_value *node = node_of(self);
    PyObject *label = ((ValueObject *)self)->label;
    PyObject *dict = Py_TYPE(self)->tp_dictoffset ? PyObject_GenericGetDict(self, NULL) : Py_NewRef(Py_None);
    if (!dict) return NULL;
    return Py_BuildValue("O(d)(NdO)", (PyObject *)Py_TYPE(self), mg_value_data(node), dict, mg_value_grad(node),
                         label ? label : Py_None);
}

static PyObject *Value_setstate(PyObject *self, PyObject *state) {
    PyObject *dict, *label = Py_None;
    double grad;
    if (!PyTuple_Check(state)) /* PyArg_ParseTuple would call that a SystemError */
        return PyErr_Format(PyExc_TypeError,
                            "Value.__setstate__ takes the (dict, grad, label) tuple that "
                            "__reduce__ gives, not '%.100s'",
                            Py_TYPE(state)->tp_name);
    if (!PyArg_ParseTuple(state, "Od|O:__setstate__", &dict, &grad, &label) || set_label(self, label) < 0) return NULL;
    if (dict != Py_None) {
        if (!Py_TYPE(self)->tp_dictoffset || !PyDict_Check(dict))
            return PyErr_Format(PyExc_TypeError, "Value.__setstate__: this Value has no __dict__ for %R", dict);
        PyObject *own = PyObject_GenericGetDict(self, NULL);
        int failed = !own || PyDict_Update(own, dict) < 0;
        Py_XDECREF(own);
        if (failed) return NULL;
    }
    mg_value_set_grad(node_of(self), grad);
    Py_RETURN_NONE;
}

/* ---- devices, as micrograd_rs: a Value lives on the CPU; on a CUDA device it would be a label only ---- */

static PyObject *Value_get_device(PyObject *self, void *Py_UNUSED(closure)) { return mgpy_cpu_device(self); }

static PyObject *Value_to(PyObject *self, PyObject *device) {
    return mgpy_check_device(device) < 0 ? NULL : Py_NewRef(self);
}

static PyObject *Value_cpu(PyObject *self, PyObject *Py_UNUSED(ignored)) { return Py_NewRef(self); }

static PyObject *Value_cuda(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) { return mgpy_no_cuda(); }

static PyMethodDef Value_methods[] = {
    {"relu", Value_relu, METH_NOARGS, "relu($self, /)\n--\n\nmax(x, 0): a new Value (nan stays nan; gradient 0 at 0)."},
    {"tanh", Value_tanh, METH_NOARGS, "tanh($self, /)\n--\n\nA new Value."},
    {"exp", Value_exp, METH_NOARGS, "exp($self, /)\n--\n\nA new Value."},
    {"log", Value_log, METH_NOARGS, "log($self, /)\n--\n\nNatural logarithm: a new Value."},
    {"sigmoid", Value_sigmoid, METH_NOARGS, "sigmoid($self, /)\n--\n\n1 / (1 + exp(-x)): a new Value."},
    {"backward", Value_backward, METH_NOARGS,
     "backward($self, /)\n--\n\nSet this Value's grad to 1 and add its gradient into every Value it depends on.\n\n"
     "Gradients accumulate across calls, as in micrograd: zero them (model.zero_grad()) in between."},
    {"__reduce__", Value_reduce, METH_NOARGS,
     "__reduce__($self, /)\n--\n\nPickle support: a detached leaf with the "
     "same data and grad."},
    {"__setstate__", Value_setstate, METH_O, NULL},
    {"to", Value_to, METH_O,
     "to($self, device, /)\n--\n\nThis Value on the device ('cpu', or a Device); CUDA raises "
     "RuntimeError when no GPU is usable."},
    {"cpu", Value_cpu, METH_NOARGS, "cpu($self, /)\n--\n\nThis Value on the CPU (itself: Values live there)."},
    {"cuda", Value_cuda, METH_NOARGS,
     "cuda($self, /)\n--\n\nThis Value on the GPU: RuntimeError when no GPU is "
     "usable."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Value_getset[] = {
    {"data", Value_get_data, Value_set_data, "The number this Value holds (a float).", NULL},
    {"grad", Value_get_grad, Value_set_grad, "d(root)/d(this Value) after root.backward().", NULL},
    {"_prev", Value_get_prev, NULL, "The set of Values this one was computed from (micrograd's _prev).", NULL},
    {"_op", Value_get_op, NULL, "The op that made this Value: '+', '*', '**2', 'ReLU', ... ('' for a leaf).", NULL},
    {"label", Value_get_label, Value_set_label,
     "A name for drawings (draw_dot shows it), as in micrograd's "
     "lecture: '' unless set.",
     NULL},
    {"device", Value_get_device, NULL, "The Device this Value is on: the CPU.", NULL},
    {"_inputs", Value_get_inputs, NULL, "The inputs in order, repeats kept (an affine node: b, w..., x...).", NULL},
    {"_constant", Value_get_constant, NULL, "The plain number of an op with one (the 2.0 of a * 2.0), else None.",
     NULL},
    {"_op_label", Value_get_op_label, NULL, "The op as draw_dot shows it: '* 2.0', '1.0 -', '**2', '+'.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Value_slots[] = {
    {Py_tp_doc, "Value(data, _children=(), _op='', label='', *, device=None)\n--\n\nA scalar that records the ops "
                "applied to it, for backward().\n\nA drop-in for micrograd.engine.Value with the core in C."},
    {Py_tp_new, MGPY_SLOT(Value_new)},
    {Py_tp_init, MGPY_SLOT(Value_init)},
    {Py_tp_dealloc, MGPY_SLOT(mgpy_value_dealloc)},
    {Py_tp_repr, MGPY_SLOT(Value_repr)},
    {Py_tp_methods, Value_methods},
    {Py_tp_getset, Value_getset},
    {Py_nb_add, MGPY_SLOT(Value_add)},
    {Py_nb_subtract, MGPY_SLOT(Value_sub)},
    {Py_nb_multiply, MGPY_SLOT(Value_mul)},
    {Py_nb_true_divide, MGPY_SLOT(Value_div)},
    {Py_nb_power, MGPY_SLOT(Value_pow)},
    {Py_nb_negative, MGPY_SLOT(Value_neg)},
    {0, NULL},
};

static PyType_Spec Value_spec = {
    .name = "micrograd_c.engine.Value",
    .basicsize = sizeof(ValueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
    .slots = Value_slots,
};

/* ---- nn: neurons and layers in one call ----
 *
 * micrograd's Neuron builds 2n + 1 nodes from Python, one operator at a time. Here a neuron is one affine
 * node (b + w[0]*x[0] + ..., summed in micrograd's order, so values are bit for bit the same) plus a ReLU
 * node, and a layer is one call from Python. */

/* An input vector as C nodes: Values as they are, plain numbers as new leaves that `release_inputs`
 * drops once the graph holds them. */
typedef struct {
    PyObject *seq;             /* the input, as a list or tuple (PySequence_Fast) */
    mg_value *small[64], **nodes;
    Py_ssize_t n, converted;   /* converted: entries filled so far (leaves made among them) */
} inputs;

static void release_inputs(inputs *in) {
    for (Py_ssize_t i = 0; i < in->converted; i++)
        if (!is_value(PySequence_Fast_GET_ITEM(in->seq, i))) mg_value_release(in->nodes[i]);
    if (in->nodes != in->small) PyMem_Free(in->nodes);
    Py_XDECREF(in->seq);
}

static int convert_inputs(inputs *in, PyObject *x) {
    in->nodes = in->small;
    in->converted = 0;
    if (!(in->seq = PySequence_Fast(x, "a neuron's input must be a sequence of numbers or Values"))) return -1;
    in->n = PySequence_Fast_GET_SIZE(in->seq);
    if (in->n > (Py_ssize_t)(sizeof in->small / sizeof *in->small) &&
        !(in->nodes = PyMem_Malloc(in->n * sizeof *in->nodes))) {
        PyErr_NoMemory();
        return -1;
    }
    for (; in->converted < in->n; in->converted++) {
        PyObject *item = PySequence_Fast_GET_ITEM(in->seq, in->converted);
        double number;
        if (is_value(item)) {
            in->nodes[in->converted] = node_of(item);
            continue;
        }
        if (mgpy_parse_real(item, &number, "a neuron input") < 0) return -1;
        if (!(in->nodes[in->converted] = mg_value_new(number))) {
            mgpy_raise_error();
            return -1;
        }
    }
    return 0;
}

/* relu(b + w . x) or b + w . x: a new Value, or NULL with an exception. */
static PyObject *neuron_forward(PyObject *w, PyObject *b, int nonlin, const inputs *x) {
    if (!is_value(b)) {
        PyErr_Format(PyExc_TypeError, "a neuron's bias must be a Value, not '%.100s'", Py_TYPE(b)->tp_name);
        return NULL;
    }
    PyObject *w_seq = PySequence_Fast(w, "a neuron's weights must be a list of Values");
    if (!w_seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(w_seq);
    mg_value *small[64], **weights = small, *out = NULL;
    PyObject *result = NULL;
    if (x->n != n) {
        PyErr_Format(PyExc_ValueError, "the neuron takes %zd inputs, got %zd", n, x->n);
        goto done;
    }
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "the neuron has no weights");
        goto done;
    }
    if (n > (Py_ssize_t)(sizeof small / sizeof *small) && !(weights = PyMem_Malloc(n * sizeof *weights))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *wi = PySequence_Fast_GET_ITEM(w_seq, i);
        if (!is_value(wi)) {
            PyErr_Format(PyExc_TypeError, "a neuron's weight must be a Value, not '%.100s'", Py_TYPE(wi)->tp_name);
            goto done;
        }
        weights[i] = node_of(wi);
    }
    out = mg_affine(node_of(b), weights, x->nodes, (size_t)n);
    if (out && nonlin) {
        mg_value *activated = mg_relu(out);
        mg_value_release(out);
        out = activated;
    }
    result = wrap_new(value_type_of(b), out);
done:
    if (weights != small) PyMem_Free(weights);
    Py_DECREF(w_seq);
    return result;
}

/* neuron(w, b, x, nonlin) */
static PyObject *core_neuron(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "neuron() takes 4 arguments (w, b, x, nonlin), got %zd", nargs);
        return NULL;
    }
    int nonlin = PyObject_IsTrue(args[3]);
    if (nonlin < 0) return NULL;
    inputs x;
    PyObject *result = convert_inputs(&x, args[2]) < 0 ? NULL : neuron_forward(args[0], args[1], nonlin, &x);
    release_inputs(&x);
    return result;
}

/* layer(neurons, x): [neuron(x) for neuron in neurons], with the input converted once, and each neuron
 * of exactly the registered Neuron class run in C; any other callable (a subclass with its own
 * __call__, say) is called as it is. */
static PyObject *core_layer(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    module_state *state = PyModule_GetState(module);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "layer() takes 2 arguments (neurons, x), got %zd", nargs);
        return NULL;
    }
    PyObject *neurons = PySequence_Fast(args[0], "a layer's neurons must be a list");
    if (!neurons) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(neurons);
    PyObject *out = PyList_New(count);
    inputs x;
    int ok = out && convert_inputs(&x, args[1]) == 0;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        PyObject *neuron = PySequence_Fast_GET_ITEM(neurons, i), *result = NULL;
        if ((PyObject *)Py_TYPE(neuron) == state->neuron_class) {
            PyObject *w = PyObject_GetAttr(neuron, state->str_w);
            PyObject *b = w ? PyObject_GetAttr(neuron, state->str_b) : NULL;
            PyObject *nonlin_obj = b ? PyObject_GetAttr(neuron, state->str_nonlin) : NULL;
            int nonlin = nonlin_obj ? PyObject_IsTrue(nonlin_obj) : -1;
            if (nonlin >= 0) result = neuron_forward(w, b, nonlin, &x);
            Py_XDECREF(w);
            Py_XDECREF(b);
            Py_XDECREF(nonlin_obj);
        } else {
            result = PyObject_CallOneArg(neuron, args[1]);
        }
        if (!result) ok = 0;
        else PyList_SET_ITEM(out, i, result);
    }
    if (out) release_inputs(&x);
    Py_DECREF(neurons);
    if (!ok) Py_CLEAR(out);
    return out;
}

/* One layer of an MLP: in C for exactly the registered Layer class, whose one-neuron output is a bare
 * Value as in micrograd; any other layer object is called. */
static PyObject *run_layer(PyObject *module, module_state *state, PyObject *layer, PyObject *x) {
    if ((PyObject *)Py_TYPE(layer) != state->layer_class) return PyObject_CallOneArg(layer, x);
    PyObject *neurons = PyObject_GetAttr(layer, state->str_neurons);
    if (!neurons) return NULL;
    PyObject *args[2] = {neurons, x};
    PyObject *out = core_layer(module, args, 2);
    Py_DECREF(neurons);
    if (out && PyList_GET_SIZE(out) == 1) {
        PyObject *only = Py_NewRef(PyList_GET_ITEM(out, 0));
        Py_DECREF(out);
        return only;
    }
    return out;
}

/* mlp(layers, x): micrograd's MLP.__call__, x = layer(x) layer by layer, in one call from Python. A bare
 * Value between layers (a one-neuron hidden layer) goes to the next one as [x]. */
static PyObject *core_mlp(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    module_state *state = PyModule_GetState(module);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "mlp() takes 2 arguments (layers, x), got %zd", nargs);
        return NULL;
    }
    PyObject *layers = PySequence_Fast(args[0], "an MLP's layers must be a list");
    if (!layers) return NULL;
    PyObject *x = Py_NewRef(args[1]);
    for (Py_ssize_t i = 0; x && i < PySequence_Fast_GET_SIZE(layers); i++) {
        if (is_value(x)) {
            PyObject *wrapped = PyList_New(1);
            if (!wrapped) {
                Py_CLEAR(x);
                break;
            }
            PyList_SET_ITEM(wrapped, 0, x);
            x = wrapped;
        }
        PyObject *next = run_layer(module, state, PySequence_Fast_GET_ITEM(layers, i), x);
        Py_SETREF(x, next);
    }
    Py_DECREF(layers);
    return x;
}

/* _set_nn_classes(Neuron, Layer): the classes whose calls layer() and mlp() run in C */
static PyObject *core_set_nn_classes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    module_state *state = PyModule_GetState(module);
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_set_nn_classes() takes two classes (Neuron, Layer)");
        return NULL;
    }
    Py_XSETREF(state->neuron_class, Py_NewRef(args[0]));
    Py_XSETREF(state->layer_class, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

/* ---- module ---- */

static PyObject *live_values(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLongLong((long long)mg_live_values());
}

static PyObject *value_size(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSize_t(mg_value_size());
}

static PyObject *version(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyUnicode_FromString(mg_version());
}

/* init_bound(init, activation, fan_in, fan_out): the C library's formula, so that Python's Layer, which draws
 * its weights with `random` as micrograd does, scales them exactly as mg_mlp_init does. */
static PyObject *init_bound(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"init", "activation", "fan_in", "fan_out", NULL};
    const char *init_text, *act_text;
    Py_ssize_t fan_in, fan_out;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ssnn:init_bound", keywords, &init_text, &act_text, &fan_in,
                                     &fan_out))
        return NULL;
    if (fan_in < 1 || fan_out < 1)
        return PyErr_Format(PyExc_ValueError, "init_bound: fan_in and fan_out must be >= 1, got %zd and %zd", fan_in,
                            fan_out);
    mg_init init;
    mg_activation act;
    double bound;
    if (mg_init_from_name(init_text, &init) != MG_OK || mg_activation_from_name(act_text, &act) != MG_OK ||
        mg_init_bound(init, act, (size_t)fan_in, (size_t)fan_out, &bound) != MG_OK)
        return mgpy_raise_error();
    return PyFloat_FromDouble(bound);
}

static PyMethodDef module_methods[] = {
    {"neuron", (PyCFunction)(void (*)(void))core_neuron, METH_FASTCALL,
     "neuron(w, b, x, nonlin, /)\n--\n\nRelu(b + sum(w[i] * x[i])) (no relu if not nonlin) as one node."},
    {"layer", (PyCFunction)(void (*)(void))core_layer, METH_FASTCALL,
     "layer(neurons, x, /)\n--\n\n[n(x) for n in neurons], run in C for micrograd_c.nn.Neuron objects."},
    {"mlp", (PyCFunction)(void (*)(void))core_mlp, METH_FASTCALL,
     "mlp(layers, x, /)\n--\n\nMicrograd's MLP call, run in C for micrograd_c.nn.Layer objects."},
    {"_set_nn_classes", (PyCFunction)(void (*)(void))core_set_nn_classes, METH_FASTCALL,
     "_set_nn_classes(neuron_class, layer_class, /)\n--\n\nThe classes whose calls layer() and mlp() run in C."},
    {"live_values", live_values, METH_NOARGS,
     "live_values()\n--\n\nNumber of C value nodes alive now (tests use it to prove nothing leaks)."},
    {"value_size", value_size, METH_NOARGS, "value_size()\n--\n\nBytes one C value node takes."},
    {"version", version, METH_NOARGS, "version()\n--\n\nThe C library's version (mg_version())."},
    {"init_bound", (PyCFunction)(void (*)(void))init_bound, METH_VARARGS | METH_KEYWORDS,
     "init_bound(init, activation, fan_in, fan_out)\n--\n\nThe bound b of a layer's weights, drawn uniform in "
     "[-b, b]: 1 for\n\"micrograd\", PyTorch's formulas for \"kaiming_uniform\" (mode fan_in) and "
     "\"xavier_uniform\", with\nthe activation's gain (torch.nn.init.calculate_gain)."},
    {NULL, NULL, 0, NULL},
};

int mgpy_add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot) {
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    return *slot ? PyModule_AddType(module, *slot) : -1;
}

/* The C library's names of an enum as a tuple of str, module attribute `attr`: name(0), name(1), ... up
 * to the first "?" (the name of a number out of range), so the Python side never keeps its own copy. */
typedef const char *(*name_fn)(int);
static const char *optim_kind_name(int i) { return mg_optim_kind_name((mg_optim_kind)i); }
static const char *schedule_name(int i) { return mg_schedule_name((mg_schedule)i); }
static const char *activation_name(int i) { return mg_activation_name((mg_activation)i); }
static const char *loss_name(int i) { return mg_loss_name((mg_loss)i); }
static const char *dtype_name(int i) { return mg_dtype_name((mg_dtype)i); }
static const char *init_name(int i) { return mg_init_name((mg_init)i); }

static int add_names(PyObject *module, const char *attr, name_fn name) {
    Py_ssize_t n = 0;
    while (strcmp(name((int)n), "?") != 0) n++;
    PyObject *names = PyTuple_New(n);
    for (Py_ssize_t i = 0; names && i < n; i++) {
        PyObject *item = PyUnicode_FromString(name((int)i));
        if (!item) Py_CLEAR(names);
        else PyTuple_SET_ITEM(names, i, item);
    }
    int rc = names ? PyModule_AddObjectRef(module, attr, names) : -1;
    Py_XDECREF(names);
    return rc;
}

/* Value.__array_priority__ = -1: a NumPy scalar's operator gives up (NotImplemented) when the other operand's
 * priority is above a scalar's (-1e6), so np.int64(2) * v runs Value's operator instead of first making an
 * object array of v (1.8 us before, 0.4 us now: the demo's -yi*scorei); an array's gives up only above an
 * array's (0), so array op Value stays NumPy's, element by element, and ufuncs still take Values. Most of
 * the 0.4 us is NumPy looking for __array_ufunc__ on the type and not finding it; __array_ufunc__ = None
 * would end that search but make arrays and ufuncs refuse Values. Set in the type's dict: the type is
 * immutable from Python. */
static int set_array_priority(PyTypeObject *type) {
    PyObject *priority = PyFloat_FromDouble(-1.0);
    int rc = priority ? PyDict_SetItemString(type->tp_dict, "__array_priority__", priority) : -1;
    Py_XDECREF(priority);
    PyType_Modified(type);
    return rc;
}

static int module_exec(PyObject *module) {
    module_state *state = PyModule_GetState(module);
    if (mgpy_add_type(module, &Value_spec, &state->value_type) < 0) return -1;
    if (set_array_priority(state->value_type) < 0) return -1;
    if (add_names(module, "OPTIMIZERS", optim_kind_name) < 0 || add_names(module, "SCHEDULES", schedule_name) < 0 ||
        add_names(module, "ACTIVATIONS", activation_name) < 0 || add_names(module, "LOSSES", loss_name) < 0 ||
        add_names(module, "DTYPES", dtype_name) < 0 || add_names(module, "INITS", init_name) < 0)
        return -1;
    if (!(state->str_w = PyUnicode_InternFromString("w"))) return -1;
    if (!(state->str_b = PyUnicode_InternFromString("b"))) return -1;
    if (!(state->str_nonlin = PyUnicode_InternFromString("nonlin"))) return -1;
    if (!(state->str_neurons = PyUnicode_InternFromString("neurons"))) return -1;
    if (mgpy_optim_exec(module, state) < 0 || mgpy_model_exec(module) < 0) return -1;
    if (mgpy_csv_exec(module, state) < 0 || mgpy_dlpack_exec(module) < 0) return -1;
    return mgpy_tensor_exec(module, state);
}

static int module_traverse(PyObject *module, visitproc visit, void *arg) {
    module_state *state = PyModule_GetState(module);
    Py_VISIT(state->value_type);
    Py_VISIT(state->neuron_class);
    Py_VISIT(state->layer_class);
    Py_VISIT(state->optimizer_type);
    Py_VISIT(state->tensor_type);
    Py_VISIT(state->device_type);
    Py_VISIT(state->no_grad_type);
    Py_VISIT(state->no_grad_function_type);
    Py_VISIT(state->csv_type);
    return 0;
}

static int module_clear(PyObject *module) {
    module_state *state = PyModule_GetState(module);
    Py_CLEAR(state->value_type);
    Py_CLEAR(state->neuron_class);
    Py_CLEAR(state->layer_class);
    Py_CLEAR(state->str_neurons);
    Py_CLEAR(state->optimizer_type);
    Py_CLEAR(state->str_w);
    Py_CLEAR(state->str_b);
    Py_CLEAR(state->str_nonlin);
    Py_CLEAR(state->tensor_type);
    Py_CLEAR(state->device_type);
    Py_CLEAR(state->no_grad_type);
    Py_CLEAR(state->no_grad_function_type);
    Py_CLEAR(state->csv_type);
    return 0;
}

static void module_free(void *module) { module_clear((PyObject *)module); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, MGPY_SLOT(module_exec)},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "micrograd_c._core",
    .m_doc = "The C core of micrograd_c: Value and the engine's counters.",
    .m_size = sizeof(module_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&module_def); }
