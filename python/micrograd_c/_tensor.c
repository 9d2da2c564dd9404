/* _tensor.c: micrograd_c.Tensor, Device and no_grad, a thin skin over the library's mg_tensor.
 *
 * A Python Tensor holds one reference to a C tensor and nothing else: like Value it takes no part in the
 * cyclic garbage collector, as a C tensor never points back at Python objects. Results of operators are
 * new Tensors of the operand's type. Errors of the library become exceptions by status: a bad argument is a
 * ValueError (an IndexError when it is out of range), a disallowed state a RuntimeError, out-of-memory a
 * MemoryError.
 *
 * Long kernels (matmul, big elementwise ops) run with the GIL released: the library calls the hooks set in
 * mgpy_tensor_exec around code that touches nothing but raw numbers. Data from nested lists or from any
 * buffer (NumPy arrays, array.array, memoryview) is read in C; Tensor exports its own numbers through the
 * buffer protocol, so numpy.asarray(t) is a view and t.numpy() one copy. */
#include "_core.h"

#include <limits.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    mg_tensor *t;
    Py_ssize_t buf_shape[MG_MAX_DIMS], buf_strides[MG_MAX_DIMS]; /* for buffer exports */
} TensorObject;

typedef struct {
    PyObject_HEAD
} DeviceObject;

typedef struct {
    PyObject_HEAD
    int previous;
} NoGradObject;

typedef struct {
    PyObject_HEAD
    PyObject *func;
} NoGradFunctionObject;

static void Tensor_dealloc(PyObject *self);

/* The Tensor type is final, so its deallocator identifies it (one compare, no module-state lookup). */
static inline int is_tensor(PyObject *o) { return Py_TYPE(o)->tp_dealloc == Tensor_dealloc; }
static inline mg_tensor *tensor_of(PyObject *o) { return ((TensorObject *)o)->t; }

/* ---- errors ---- */

static PyObject *raise_status(mg_status status) {
    if (status == MG_OK) Py_RETURN_NONE;
    return mgpy_raise_error();
}

/* Wrap a tensor we own one reference to; NULL: raise the library's error. */
static PyObject *wrap(PyTypeObject *type, mg_tensor *t) {
    if (!t) return mgpy_raise_error();
    TensorObject *self = PyObject_New(TensorObject, type);
    if (!self) {
        mg_tensor_release(t);
        return NULL;
    }
    self->t = t;
    return (PyObject *)self;
}

mg_tensor *mgpy_tensor_of(PyObject *o) { return is_tensor(o) ? tensor_of(o) : NULL; }

PyObject *mgpy_wrap_tensor(PyTypeObject *type, mg_tensor *t) { return wrap(type, t); }

static void Tensor_dealloc(PyObject *self) {
    mg_tensor_release(tensor_of(self));
    mgpy_free_object(self);
}

/* ---- reading numbers ---- */

/* A dtype argument: None (*dtype unchanged), Python's float type (float64), or a name that
 * mg_dtype_from_name knows ("float64", "double", "float32", "float"); ValueError otherwise. */
static int parse_dtype(PyObject *o, int *dtype) {
    if (!o || o == Py_None) return 0;
    if (o == (PyObject *)&PyFloat_Type) {
        *dtype = MG_FLOAT64;
        return 0;
    }
    if (PyUnicode_Check(o)) {
        Py_ssize_t len;
        const char *name = PyUnicode_AsUTF8AndSize(o, &len);
        if (!name) return -1;
        mg_dtype d;
        if (strlen(name) == (size_t)len && mg_dtype_from_name(name, &d) == MG_OK) {
            *dtype = (int)d;
            return 0;
        }
        mg_clear_error();
    }
    PyErr_Format(PyExc_ValueError, "dtype must be '%s' or '%s', not %R", mg_dtype_name(MG_FLOAT64),
                 mg_dtype_name(MG_FLOAT32), o);
    return -1;
}

/* o is a dtype's own name ("float64", "float32"), as torch's to('float32') takes in the device's place */
static int is_dtype_name(PyObject *o) {
    return PyUnicode_Check(o) && (PyUnicode_CompareWithASCIIString(o, mg_dtype_name(MG_FLOAT64)) == 0 ||
                                  PyUnicode_CompareWithASCIIString(o, mg_dtype_name(MG_FLOAT32)) == 0);
}

/* Nested lists: the shape follows the first elements down; every list must then match it. */
static int nested_shape(PyObject *obj, size_t *shape, int *nd) {
    *nd = 0;
    PyObject *cur = obj;
    while (PyList_Check(cur) || PyTuple_Check(cur)) {
        if (*nd == MG_MAX_DIMS) {
            PyErr_Format(PyExc_ValueError,
                         "Tensor data is nested more than %d deep: at most %d dimensions are supported", MG_MAX_DIMS,
                         MG_MAX_DIMS);
            return -1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(cur);
        shape[(*nd)++] = (size_t)n;
        if (n == 0) break;
        cur = PySequence_Fast_GET_ITEM(cur, 0);
    }
    return 0;
}

/* Fills out[*k...] from obj at the given depth (recursion bounded by MG_MAX_DIMS levels). */
static int nested_fill(PyObject *obj, int depth, const size_t *shape, int nd, double *out, size_t *k) {
    if (depth == nd) {
        if (PyList_Check(obj) || PyTuple_Check(obj)) {
            PyErr_Format(PyExc_ValueError, "ragged nested list: expected a number at depth %d, got a sequence", depth);
            return -1;
        }
        double x;
        int found = mgpy_as_real(obj, &x, MGPY_REAL_NO_ARRAYS);
        if (found == 0)
            PyErr_Format(PyExc_TypeError, "Tensor data must be real numbers, not '%.100s'", Py_TYPE(obj)->tp_name);
        if (found <= 0) return -1;
        out[(*k)++] = x;
        return 0;
    }
    if (!(PyList_Check(obj) || PyTuple_Check(obj))) {
        PyErr_Format(PyExc_ValueError,
                     "ragged nested list: expected a sequence of length %zu at depth %d, got '%.100s'", shape[depth],
                     depth, Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
    if ((size_t)n != shape[depth]) {
        PyErr_Format(PyExc_ValueError, "ragged nested list: expected length %zu at depth %d, got %zd", shape[depth],
                     depth, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (nested_fill(PySequence_Fast_GET_ITEM(obj, i), depth + 1, shape, nd, out, k) < 0) return -1;
    return 0;
}

static mg_tensor *from_nested(PyObject *obj, int dtype) {
    size_t shape[MG_MAX_DIMS];
    int nd;
    if (nested_shape(obj, shape, &nd) < 0) return NULL;
    size_t numel = 1, k = 0;
    for (int d = 0; d < nd; d++) {
        /* lists can repeat one inner list: the sizes are not bounded by memory, check the product */
        if (shape[d] && numel > (size_t)PY_SSIZE_T_MAX / sizeof(double) / shape[d]) {
            PyErr_SetString(PyExc_MemoryError, "Tensor data has too many elements");
            return NULL;
        }
        numel *= shape[d];
    }
    double *data = PyMem_Malloc((numel + 1) * sizeof *data);
    if (!data) return (mg_tensor *)PyErr_NoMemory();
    mg_tensor *t = NULL;
    if (nested_fill(obj, 0, shape, nd, data, &k) == 0 && !(t = mg_tensor_from_data(data, shape, nd, (mg_dtype)dtype)))
        mgpy_raise_error();
    PyMem_Free(data);
    return t;
}

/* One element of a buffer as a double, by kind ('f' float, 'i' signed, 'u' unsigned, 'b' bool) and size. */
/* clang-format off */
static double buffer_elem(const char *p, char kind, Py_ssize_t size) {
    switch (kind) {
    case 'f':
        if (size == 8) { double v; memcpy(&v, p, 8); return v; }
        { float v; memcpy(&v, p, 4); return (double)v; }
    case 'i':
        if (size == 1) return (double)*(const int8_t *)p;
        if (size == 2) { int16_t v; memcpy(&v, p, 2); return (double)v; }
        if (size == 4) { int32_t v; memcpy(&v, p, 4); return (double)v; }
        { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case 'u':
        if (size == 1) return (double)*(const uint8_t *)p;
        if (size == 2) { uint16_t v; memcpy(&v, p, 2); return (double)v; }
        if (size == 4) { uint32_t v; memcpy(&v, p, 4); return (double)v; }
        { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    default: return *p ? 1.0 : 0.0;
    }
}
/* clang-format on */

/* A tensor from any buffer (NumPy arrays, array.array, memoryview...), strides and all, in C loops. */
static mg_tensor *from_buffer(PyObject *obj, int dtype) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_RECORDS_RO) < 0) return NULL;
    mg_tensor *t = NULL;
    const char *fmt = view.format ? view.format : "B";
    if (*fmt == '@' || *fmt == '=' || *fmt == '<') fmt++;
    else if (*fmt == '>' || *fmt == '!') {
        PyErr_SetString(PyExc_ValueError, "big-endian buffers are not supported");
        goto done;
    }
    char kind = 0;
    if (strlen(fmt) == 1) {
        if (strchr("fd", *fmt)) kind = 'f';
        else if (strchr("bhilqn", *fmt)) kind = 'i';
        else if (strchr("BHILQN", *fmt)) kind = 'u';
        else if (*fmt == '?') kind = 'b';
    }
    Py_ssize_t size = view.itemsize;
    int size_ok = kind == 'f' ? size == 4 || size == 8 : size == 1 || size == 2 || size == 4 || size == 8;
    if (!kind || !size_ok) {
        PyErr_Format(PyExc_TypeError, "unsupported buffer format '%s' (itemsize %zd): use float, int or bool data",
                     view.format ? view.format : "B", size);
        goto done;
    }
    if (view.ndim > MG_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "the array has %d dimensions, at most %d are supported", view.ndim, MG_MAX_DIMS);
        goto done;
    }
    if (dtype < 0) dtype = kind == 'f' && size == 4 ? MG_FLOAT32 : MG_FLOAT64;
    size_t shape[MG_MAX_DIMS];
    Py_ssize_t strides[MG_MAX_DIMS];
    for (int d = 0; d < view.ndim; d++) shape[d] = (size_t)view.shape[d];
    if (view.strides) memcpy(strides, view.strides, (size_t)view.ndim * sizeof *strides);
    else
        for (int d = view.ndim - 1, s = (int)size; d >= 0; s *= (int)view.shape[d], d--) strides[d] = s;
    if (!(t = mg_tensor_new(shape, view.ndim, (mg_dtype)dtype))) {
        mgpy_raise_error();
        goto done;
    }
    size_t numel = mg_tensor_numel(t), inner = view.ndim ? shape[view.ndim - 1] : 1;
    if (numel == 0) goto done;
    Py_ssize_t idx[MG_MAX_DIMS] = {0}, istride = view.ndim ? strides[view.ndim - 1] : 0;
    const char *base = view.buf;
    double *out64 = dtype == MG_FLOAT64 ? mg_tensor_data_ptr(t) : NULL;
    float *out32 = dtype == MG_FLOAT32 ? mg_tensor_data_ptr(t) : NULL;
    size_t k = 0;
    for (size_t o = 0; o < numel / inner; o++) {
        Py_ssize_t off = 0;
        for (int d = 0; d < view.ndim - 1; d++) off += idx[d] * strides[d];
        const char *row = base + off;
        if (kind == 'f' && size == 8 && dtype == MG_FLOAT64 && istride == 8) {
            memcpy(out64 + k, row, inner * sizeof(double));
            k += inner;
        } else {
            for (size_t j = 0; j < inner; j++, k++) {
                double v = buffer_elem(row + (Py_ssize_t)j * istride, kind, size);
                if (out64) out64[k] = v;
                else out32[k] = (float)v;
            }
        }
        for (int d = view.ndim - 2; d >= 0; d--) {
            if (++idx[d] < view.shape[d]) break;
            idx[d] = 0;
        }
    }
done:
    PyBuffer_Release(&view);
    return t;
}

/* A new C tensor (requiring grad) from a Tensor (copied), nested lists, a buffer or a number. dtype -1:
 * the data's own (float32 for float32 buffers and tensors, else float64). */
static mg_tensor *tensor_from_object(PyObject *obj, int dtype) {
    double x;
    if (is_tensor(obj)) {
        mg_tensor *src = tensor_of(obj);
        mg_dtype want = dtype < 0 ? mg_tensor_dtype(src) : (mg_dtype)dtype;
        mg_tensor *t = mg_tensor_new(mg_tensor_shape(src), mg_tensor_ndim(src), want);
        mg_tensor *detached = t ? mg_tensor_detach(src) : NULL;
        if (!detached || mg_tensor_add_(t, detached, 1.0) != MG_OK) {
            mg_tensor_release(detached);
            mg_tensor_release(t);
            return (mg_tensor *)mgpy_raise_error();
        }
        mg_tensor_release(detached);
        return t;
    }
    if (PyList_Check(obj) || PyTuple_Check(obj)) return from_nested(obj, dtype < 0 ? MG_FLOAT64 : dtype);
    if (PyObject_CheckBuffer(obj) && !PyBytes_Check(obj) && !PyByteArray_Check(obj)) return from_buffer(obj, dtype);
    int found = mgpy_as_real(obj, &x, MGPY_REAL_NO_ARRAYS);
    if (found < 0) return NULL;
    if (found == 0) {
        PyErr_Format(PyExc_TypeError,
                     "Tensor data must be a number, a nested list of numbers or an array, not '%.100s'",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    mg_tensor *t = mg_tensor_from_data(&x, NULL, 0, dtype < 0 ? MG_FLOAT64 : (mg_dtype)dtype);
    if (!t) mgpy_raise_error();
    return t;
}

/* ---- devices ---- */

static const char *NO_CUDA = "CUDA is not available: micrograd_c is built for the CPU only";

PyObject *mgpy_no_cuda(void) {
    PyErr_SetString(PyExc_RuntimeError, NO_CUDA);
    return NULL;
}

int mgpy_check_device(PyObject *device) {
    if (!device || device == Py_None) return 0;
    PyObject *text = PyObject_Str(device);
    if (!text) return -1;
    const char *name = PyUnicode_AsUTF8(text);
    if (!name) {
        Py_DECREF(text);
        return -1;
    }
    int cpu = strcmp(name, "cpu") == 0, cuda = strncmp(name, "cuda", 4) == 0;
    Py_DECREF(text);
    if (cpu) return 0;
    if (cuda) mgpy_no_cuda();
    else PyErr_Format(PyExc_ValueError, "unknown device %R: only 'cpu' is available", device);
    return -1;
}

/* ---- Tensor: construction ---- */

static int parse_shape(PyObject *o, int64_t *shape, int *nd, const char *what) {
    PyObject *seq = PySequence_Fast(o, "a shape must be a list or tuple of ints");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MG_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: %zd dimensions, at most %d are supported", what, n, MG_MAX_DIMS);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyIndex_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: sizes must be ints, not '%.100s'", what, Py_TYPE(item)->tp_name);
            Py_DECREF(seq);
            return -1;
        }
        long long v = PyLong_AsLongLong(item);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        shape[i] = v;
    }
    *nd = (int)n;
    Py_DECREF(seq);
    return 0;
}

static PyObject *Tensor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"data", "shape", "device", "dtype", "requires_grad", NULL};
    PyObject *data, *shape_obj = Py_None, *device = Py_None, *dtype_obj = Py_None;
    int requires_grad = 1, dtype = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OOOp:Tensor", keywords, &data, &shape_obj, &device, &dtype_obj,
                                     &requires_grad))
        return NULL;
    if (mgpy_check_device(device) < 0 || parse_dtype(dtype_obj, &dtype) < 0) return NULL;
    mg_tensor *t = tensor_from_object(data, dtype);
    if (!t) return NULL;
    if (shape_obj != Py_None) {
        int64_t shape[MG_MAX_DIMS];
        int nd;
        if (parse_shape(shape_obj, shape, &nd, "Tensor") < 0) {
            mg_tensor_release(t);
            return NULL;
        }
        mg_tensor *r = mg_tensor_reshape(t, shape, nd);
        mg_tensor *c = r ? mg_tensor_detach(r) : NULL; /* a leaf of its own, not a view node */
        mg_tensor_release(r);
        mg_tensor_release(t);
        if (!c) return mgpy_raise_error();
        t = c;
    }
    mg_tensor_set_requires_grad(t, requires_grad);
    return wrap(type, t);
}

/* ---- attributes ---- */

static PyObject *list_of_sizes(const size_t *v, int n) {
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *x = PyLong_FromSize_t(v[i]);
        if (!x) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

static PyObject *Tensor_get_shape(PyObject *self, void *Py_UNUSED(closure)) {
    mg_tensor *t = tensor_of(self);
    return list_of_sizes(mg_tensor_shape(t), mg_tensor_ndim(t));
}

static PyObject *Tensor_get_strides(PyObject *self, void *Py_UNUSED(closure)) {
    mg_tensor *t = tensor_of(self);
    int n = mg_tensor_ndim(t);
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *x = PyLong_FromLongLong((long long)mg_tensor_strides(t)[i]);
        if (!x) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

static PyObject *Tensor_get_ndim(PyObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLong(mg_tensor_ndim(tensor_of(self)));
}

static PyObject *Tensor_get_dtype(PyObject *self, void *Py_UNUSED(closure)) {
    return PyUnicode_FromString(mg_dtype_name(mg_tensor_dtype(tensor_of(self))));
}

static PyObject *Tensor_item(PyObject *self, PyObject *Py_UNUSED(ignored));
static PyObject *Tensor_tolist(PyObject *self, PyObject *Py_UNUSED(ignored));

static PyObject *Tensor_get_device(PyObject *self, void *Py_UNUSED(closure)) { return mgpy_cpu_device(self); }

static PyObject *Tensor_get_requires_grad(PyObject *self, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(mg_tensor_requires_grad(tensor_of(self)));
}

static int Tensor_set_requires_grad(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete requires_grad");
        return -1;
    }
    int flag = PyObject_IsTrue(value);
    if (flag < 0) return -1;
    if (mg_tensor_set_requires_grad(tensor_of(self), flag) != MG_OK) {
        mgpy_raise_error();
        return -1;
    }
    return 0;
}

static PyObject *Tensor_get_is_leaf(PyObject *self, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(mg_tensor_op(tensor_of(self)) == MG_TENSOR_OP_LEAF);
}

static PyObject *Tensor_get_op(PyObject *self, void *Py_UNUSED(closure)) {
    return PyUnicode_FromString(mg_tensor_op_name(mg_tensor_op(tensor_of(self))));
}

/* grad: a new Tensor (of this tensor's dtype, not requiring grad) holding a copy, or None */
static PyObject *Tensor_get_grad(PyObject *self, void *Py_UNUSED(closure)) {
    mg_tensor *t = tensor_of(self);
    const double *g = mg_tensor_grad_data(t);
    if (!g) Py_RETURN_NONE;
    mg_tensor *copy = mg_tensor_from_data(g, mg_tensor_shape(t), mg_tensor_ndim(t), mg_tensor_dtype(t));
    if (copy) mg_tensor_set_requires_grad(copy, 0);
    return wrap(Py_TYPE(self), copy);
}

static int Tensor_set_grad(PyObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (value && value != Py_None) {
        PyErr_SetString(PyExc_TypeError, "grad can only be set to None (use zero_grad() to zero it)");
        return -1;
    }
    mg_tensor_clear_grad(tensor_of(self));
    return 0;
}

/* data: a view sharing the numbers, detached from the graph (writes through it are not recorded) */
static PyObject *Tensor_get_data(PyObject *self, void *Py_UNUSED(closure)) {
    return wrap(Py_TYPE(self), mg_tensor_detach(tensor_of(self)));
}

/* ---- methods ---- */

static PyObject *Tensor_is_contiguous(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(mg_tensor_is_contiguous(tensor_of(self)));
}

static PyObject *Tensor_numel(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSize_t(mg_tensor_numel(tensor_of(self)));
}

/* A shape given as sizes (t.reshape(2, 3)), as one list or tuple (t.reshape([2, 3]), micrograd_rs's form)
 * or by keyword (t.reshape(shape=[2, 3])), as PyTorch accepts all three. */
static int shape_argument(PyObject *args, PyObject *kwargs, const char *keyword, const char *func, int64_t *shape,
                          int *nd) {
    PyObject *spec = args, *named = kwargs ? PyDict_GetItemString(kwargs, keyword) : NULL;
    Py_ssize_t n_kwargs = kwargs ? PyDict_GET_SIZE(kwargs) : 0;
    if (n_kwargs > (named != NULL) || (named && PyTuple_GET_SIZE(args))) {
        PyErr_Format(PyExc_TypeError, "%s() takes the shape as sizes, one sequence or %s=, not more", func, keyword);
        return -1;
    }
    if (named) spec = named;
    else if (PyTuple_GET_SIZE(args) == 1 && !PyIndex_Check(PyTuple_GET_ITEM(args, 0))) spec = PyTuple_GET_ITEM(args, 0);
    return parse_shape(spec, shape, nd, func);
}

static PyObject *Tensor_reshape(PyObject *self, PyObject *args, PyObject *kwargs) {
    int64_t shape[MG_MAX_DIMS];
    int nd;
    if (shape_argument(args, kwargs, "shape", "reshape", shape, &nd) < 0) return NULL;
    return wrap(Py_TYPE(self), mg_tensor_reshape(tensor_of(self), shape, nd));
}

static PyObject *Tensor_expand(PyObject *self, PyObject *args, PyObject *kwargs) {
    int64_t shape[MG_MAX_DIMS];
    size_t sizes[MG_MAX_DIMS];
    int nd;
    if (shape_argument(args, kwargs, "size", "expand", shape, &nd) < 0) return NULL;
    mg_tensor *t = tensor_of(self);
    for (int d = 0; d < nd; d++) {
        int src = d - (nd - mg_tensor_ndim(t));
        if (shape[d] < -1 || (shape[d] == -1 && src < 0)) {
            PyErr_Format(PyExc_ValueError,
                         "expand: size %lld for dimension %d is not allowed (-1 keeps an "
                         "existing dimension's size; new dimensions need a size >= 0)",
                         (long long)shape[d], d);
            return NULL;
        }
        sizes[d] = shape[d] == -1 ? mg_tensor_shape(t)[src] : (size_t)shape[d];
    }
    return wrap(Py_TYPE(self), mg_tensor_expand(t, sizes, nd));
}

/* "O&" converters. A dim: any int; one that does not fit a C int is out of range for every tensor, and
 * the message keeps the number as given. */
static int dim_converter(PyObject *o, void *out) {
    if (!PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "a dimension must be an int, not '%.100s'", Py_TYPE(o)->tp_name);
        return 0;
    }
    int overflow;
    PyObject *index = PyNumber_Index(o);
    long d = index ? PyLong_AsLongAndOverflow(index, &overflow) : -1;
    Py_XDECREF(index);
    if (!index || (d == -1 && PyErr_Occurred())) return 0;
    if (overflow || d <= INT_MIN || d > INT_MAX) { /* INT_MIN is MG_DIM_ALL, no dimension */
        PyErr_Format(PyExc_IndexError, "dimension %R is out of range (a tensor has at most %d dimensions)", o,
                     MG_MAX_DIMS);
        return 0;
    }
    *(int *)out = (int)d;
    return 1;
}

/* A position for slicing: any int, clamped to Py_ssize_t as Python's own slices clamp. */
static int position_converter(PyObject *o, void *out) {
    Py_ssize_t n = PyIndex_Check(o) ? PyNumber_AsSsize_t(o, NULL) : -1;
    if (n == -1 && (PyErr_Occurred() || !PyIndex_Check(o))) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "a slice position must be an int, not '%.100s'", Py_TYPE(o)->tp_name);
        return 0;
    }
    *(Py_ssize_t *)out = n;
    return 1;
}

static PyObject *Tensor_transpose(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"dim0", "dim1", NULL};
    int d0, d1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&:transpose", keywords, dim_converter, &d0, dim_converter, &d1))
        return NULL;
    return wrap(Py_TYPE(self), mg_tensor_transpose(tensor_of(self), d0, d1));
}

/* Python's rules for one index: negative counts from the end; out of range is an IndexError. */
static int normalize_index(Py_ssize_t i, size_t size, int dim, size_t *out) {
    Py_ssize_t n = (Py_ssize_t)size;
    if (i < -n || i >= n) {
        PyErr_Format(PyExc_IndexError, "index %zd is out of range for dimension %d of size %zd", i, dim, n);
        return -1;
    }
    *out = (size_t)(i < 0 ? i + n : i);
    return 0;
}

/* slice(dim, start, end, step=1), as micrograd_rs: negative start/end count from the end and are clamped
 * to the dimension; end before start or step < 1 is a ValueError. */
static PyObject *Tensor_slice(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"dim", "start", "end", "step", NULL};
    int dim;
    Py_ssize_t start, end, step = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&O&|n:slice", keywords, dim_converter, &dim, position_converter,
                                     &start, position_converter, &end, &step))
        return NULL;
    mg_tensor *t = tensor_of(self);
    int nd = mg_tensor_ndim(t);
    if (dim < -nd || dim >= nd) {
        PyErr_Format(PyExc_IndexError, "slice: dimension %d is out of range for a tensor of %d dimensions", dim, nd);
        return NULL;
    }
    if (step < 1) {
        PyErr_Format(PyExc_ValueError, "slice: step must be at least 1, got %zd", step);
        return NULL;
    }
    Py_ssize_t n = (Py_ssize_t)mg_tensor_shape(t)[dim < 0 ? dim + nd : dim];
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < 0 ? 0 : end > n ? n : end;
    if (end < start) {
        PyErr_Format(PyExc_ValueError, "slice: end (%zd) is before start (%zd)", end, start);
        return NULL;
    }
    return wrap(Py_TYPE(self), mg_tensor_slice(t, dim, (size_t)start, (size_t)end, (size_t)step));
}

#define TENSOR_UNARY(name, fn)                                                     \
    static PyObject *Tensor_##name(PyObject *self, PyObject *Py_UNUSED(ignored)) { \
        return wrap(Py_TYPE(self), fn(tensor_of(self)));                           \
    }
TENSOR_UNARY(contiguous, mg_tensor_contiguous)
TENSOR_UNARY(detach, mg_tensor_detach)
TENSOR_UNARY(relu, mg_tensor_relu)
TENSOR_UNARY(exp, mg_tensor_exp)
TENSOR_UNARY(log, mg_tensor_log)
TENSOR_UNARY(tanh, mg_tensor_tanh)
TENSOR_UNARY(sigmoid, mg_tensor_sigmoid)

static PyObject *Tensor_float(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return wrap(Py_TYPE(self), mg_tensor_to_dtype(tensor_of(self), MG_FLOAT32));
}

static PyObject *Tensor_double(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return wrap(Py_TYPE(self), mg_tensor_to_dtype(tensor_of(self), MG_FLOAT64));
}

/* dim=None (everything) or an int; keepdim */
static int parse_reduction(PyObject *args, PyObject *kwargs, const char *name, int *dim, int *keepdim) {
    static char *keywords[] = {"dim", "keepdim", NULL};
    PyObject *dim_obj = Py_None;
    *keepdim = 0;
    char format[32];
    snprintf(format, sizeof format, "|Op:%s", name);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &dim_obj, keepdim)) return -1;
    if (dim_obj == Py_None) {
        *dim = MG_DIM_ALL;
        return 0;
    }
    if (!PyLong_Check(dim_obj)) {
        PyErr_Format(PyExc_TypeError, "%s: dim must be an int or None, not '%.100s'", name, Py_TYPE(dim_obj)->tp_name);
        return -1;
    }
    return dim_converter(dim_obj, dim) ? 0 : -1;
}

#define TENSOR_REDUCTION(name, fn)                                                     \
    static PyObject *Tensor_##name(PyObject *self, PyObject *args, PyObject *kwargs) { \
        int dim, keepdim;                                                              \
        if (parse_reduction(args, kwargs, #name, &dim, &keepdim) < 0) return NULL;     \
        return wrap(Py_TYPE(self), fn(tensor_of(self), dim, keepdim));                 \
    }
TENSOR_REDUCTION(sum, mg_tensor_sum)
TENSOR_REDUCTION(mean, mg_tensor_mean)
TENSOR_REDUCTION(max, mg_tensor_max)
TENSOR_REDUCTION(argmax, mg_tensor_argmax)

static PyObject *Tensor_log_softmax(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"dim", NULL};
    int dim;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&:log_softmax", keywords, dim_converter, &dim)) return NULL;
    return wrap(Py_TYPE(self), mg_tensor_log_softmax(tensor_of(self), dim));
}

static PyObject *Tensor_backward(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return raise_status(mg_tensor_backward(tensor_of(self)));
}

static PyObject *Tensor_zero_grad(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_tensor_zero_grad(tensor_of(self));
    Py_RETURN_NONE;
}

static PyObject *Tensor_item(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    double x;
    if (mg_tensor_item(tensor_of(self), &x) != MG_OK) return mgpy_raise_error();
    return PyFloat_FromDouble(x);
}

/* Nested lists of floats, built from one row-major copy (recursion bounded by MG_MAX_DIMS levels). */
static PyObject *build_list(const double *x, const size_t *shape, int nd, int depth, size_t *k) {
    if (depth == nd) return PyFloat_FromDouble(x[(*k)++]);
    PyObject *list = PyList_New((Py_ssize_t)shape[depth]);
    for (size_t i = 0; list && i < shape[depth]; i++) {
        PyObject *item = build_list(x, shape, nd, depth + 1, k);
        if (!item) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

static PyObject *Tensor_tolist(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_tensor *t = tensor_of(self);
    double *x = PyMem_Malloc((mg_tensor_numel(t) + 1) * sizeof *x);
    if (!x) return PyErr_NoMemory();
    mg_tensor_copy_data(t, x);
    size_t k = 0;
    PyObject *list = build_list(x, mg_tensor_shape(t), mg_tensor_ndim(t), 0, &k);
    PyMem_Free(x);
    return list;
}

/* numpy(): a float64 ndarray holding a copy (one copy: the bytes go straight into the array's buffer) */
static PyObject *Tensor_numpy(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_tensor *t = tensor_of(self);
    PyObject *np = NULL, *bytes = NULL, *flat = NULL, *shape = NULL, *result = NULL;
    if (!(np = PyImport_ImportModule("numpy"))) return NULL;
    size_t n = mg_tensor_numel(t);
    if (!(bytes = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(double))))) goto done;
    if (n) mg_tensor_copy_data(t, (double *)PyByteArray_AS_STRING(bytes));
    if (!(flat = PyObject_CallMethod(np, "frombuffer", "Os", bytes, "float64"))) goto done;
    if (!(shape = Tensor_get_shape(self, NULL))) goto done;
    result = PyObject_CallMethod(flat, "reshape", "O", shape);
done:
    Py_XDECREF(shape);
    Py_XDECREF(flat);
    Py_XDECREF(bytes);
    Py_DECREF(np);
    return result;
}

static PyObject *Tensor_to(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"device", "dtype", NULL};
    PyObject *device = Py_None, *dtype_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:to", keywords, &device, &dtype_obj)) return NULL;
    int dtype = -1;
    /* to('float32') as torch allows: a dtype name in the device's place */
    if (is_dtype_name(device)) {
        dtype_obj = device;
        device = Py_None;
    }
    if (mgpy_check_device(device) < 0 || parse_dtype(dtype_obj, &dtype) < 0) return NULL;
    if (dtype < 0) return Py_NewRef(self);
    return wrap(Py_TYPE(self), mg_tensor_to_dtype(tensor_of(self), (mg_dtype)dtype));
}

static PyObject *Tensor_cpu(PyObject *self, PyObject *Py_UNUSED(ignored)) { return Py_NewRef(self); }

static PyObject *Tensor_cuda(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) { return mgpy_no_cuda(); }

/* ---- operators: Tensor, a real number, or an array on either side ---- */

/* A constant operand: 0-d for numbers, else from a buffer (NumPy array). NULL and no error: not ours. */
static mg_tensor *constant_of(PyObject *o, mg_dtype like) {
    if (!PyObject_CheckBuffer(o) || PyBytes_Check(o) || PyByteArray_Check(o)) return NULL;
    mg_tensor *t = from_buffer(o, (int)like);
    if (t) mg_tensor_set_requires_grad(t, 0);
    return t;
}

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MATMUL, OP_MATMUL_EXACT } binop;

static mg_tensor *apply_tensors(binop op, mg_tensor *a, mg_tensor *b) {
    switch (op) {
    case OP_ADD: return mg_tensor_add(a, b);
    case OP_SUB: return mg_tensor_sub(a, b);
    case OP_MUL: return mg_tensor_mul(a, b);
    case OP_DIV: return mg_tensor_div(a, b);
    case OP_MATMUL_EXACT: return mg_tensor_matmul_prec(a, b, MG_PRECISION_EXACT);
    default: return mg_tensor_matmul(a, b);
    }
}

static PyObject *tensor_binary(PyObject *a, PyObject *b, binop op) {
    int left = is_tensor(a);
    PyObject *self = left ? a : b, *other = left ? b : a;
    PyTypeObject *type = Py_TYPE(self);
    mg_tensor *t = tensor_of(self);
    if (is_tensor(other)) return wrap(type, apply_tensors(op, tensor_of(a), tensor_of(b)));
    double c;
    int found = op >= OP_MATMUL ? 0 : mgpy_as_real(other, &c, MGPY_REAL_NO_ARRAYS);
    if (found < 0) return NULL;
    if (found) {
        switch (op) {
        case OP_ADD: return wrap(type, mg_tensor_add_scalar(t, c));
        case OP_SUB: return wrap(type, left ? mg_tensor_add_scalar(t, -c) : mg_tensor_rsub_scalar(c, t));
        case OP_MUL: return wrap(type, mg_tensor_mul_scalar(t, c));
        case OP_DIV: return wrap(type, left ? mg_tensor_div_scalar(t, c) : mg_tensor_rdiv_scalar(c, t));
        default: break;
        }
    }
    mg_tensor *k = constant_of(other, mg_tensor_dtype(t));
    if (!k) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    mg_tensor *r = left ? apply_tensors(op, t, k) : apply_tensors(op, k, t);
    mg_tensor_release(k);
    return wrap(type, r);
}

static PyObject *Tensor_add(PyObject *a, PyObject *b) { return tensor_binary(a, b, OP_ADD); }
static PyObject *Tensor_sub(PyObject *a, PyObject *b) { return tensor_binary(a, b, OP_SUB); }
static PyObject *Tensor_mul(PyObject *a, PyObject *b) { return tensor_binary(a, b, OP_MUL); }
static PyObject *Tensor_div(PyObject *a, PyObject *b) { return tensor_binary(a, b, OP_DIV); }
static PyObject *Tensor_matmul_op(PyObject *a, PyObject *b) { return tensor_binary(a, b, OP_MATMUL); }

static PyObject *Tensor_matmul(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"other", "precision", NULL};
    PyObject *other;
    const char *name = "fast";
    mg_precision precision;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|s:matmul", keywords, &other, &name)) return NULL;
    if (mg_precision_from_name(name, &precision) != MG_OK) return mgpy_raise_error();
    PyObject *r = tensor_binary(self, other, precision == MG_PRECISION_EXACT ? OP_MATMUL_EXACT : OP_MATMUL);
    if (r == Py_NotImplemented) {
        Py_DECREF(r);
        PyErr_Format(PyExc_TypeError, "matmul: expected a Tensor or an array, not '%.100s'", Py_TYPE(other)->tp_name);
        return NULL;
    }
    return r;
}

/* Tensor ** number only (as micrograd_rs); a number ** Tensor is not supported. */
static PyObject *Tensor_pow(PyObject *a, PyObject *b, PyObject *mod) {
    if (mod != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pow() with a modulus is not supported for Tensor");
        return NULL;
    }
    if (!is_tensor(a)) Py_RETURN_NOTIMPLEMENTED;
    double c;
    int found = mgpy_as_real(b, &c, MGPY_REAL_NO_ARRAYS);
    if (found < 0) return NULL;
    if (found == 0) {
        PyErr_Format(PyExc_TypeError, "Tensor ** x needs a real number x, not '%.100s'", Py_TYPE(b)->tp_name);
        return NULL;
    }
    return wrap(Py_TYPE(a), mg_tensor_pow_scalar(tensor_of(a), c));
}

/* bool(t) and float(t) for one-element tensors, as PyTorch */
static int Tensor_bool(PyObject *self) {
    double x;
    if (mg_tensor_numel(tensor_of(self)) != 1) {
        PyErr_SetString(PyExc_ValueError, "the truth value of a tensor with more than one element is ambiguous");
        return -1;
    }
    mg_tensor_item(tensor_of(self), &x);
    return x != 0.0;
}

static PyObject *Tensor_as_float(PyObject *self) { return Tensor_item(self, NULL); }

static PyObject *Tensor_neg(PyObject *a) { return wrap(Py_TYPE(a), mg_tensor_neg(tensor_of(a))); }
static PyObject *Tensor_pos(PyObject *a) { return Py_NewRef(a); }

/* add_(other, alpha=1): self += alpha * other in place, not recorded (for optimizer steps) */
static PyObject *Tensor_add_(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"other", "alpha", NULL};
    PyObject *other;
    double alpha = 1.0, c;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|d:add_", keywords, &other, &alpha)) return NULL;
    mg_tensor *t = tensor_of(self), *k = NULL;
    int found = mgpy_as_real(other, &c, MGPY_REAL_NO_ARRAYS);
    if (found < 0) return NULL;
    if (is_tensor(other)) k = mg_tensor_retain(tensor_of(other));
    else if (found) k = mg_tensor_from_data(&c, NULL, 0, MG_FLOAT64);
    else if (!(k = constant_of(other, mg_tensor_dtype(t)))) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "add_: expected a Tensor, an array or a number, not '%.100s'",
                         Py_TYPE(other)->tp_name);
        return NULL;
    }
    if (!k) return mgpy_raise_error();
    mg_status status = mg_tensor_add_(t, k, alpha);
    mg_tensor_release(k);
    if (status != MG_OK) return mgpy_raise_error();
    return Py_NewRef(self);
}

/* ---- indexing: ints, slices (step >= 1) and ..., each giving a view that takes part in autograd ---- */

static PyObject *Tensor_getitem(PyObject *self, PyObject *key) {
    PyObject *items = PyTuple_Check(key) ? Py_NewRef(key) : PyTuple_Pack(1, key);
    if (!items) return NULL;
    mg_tensor *cur = mg_tensor_retain(tensor_of(self));
    Py_ssize_t count = PyTuple_GET_SIZE(items), consuming = 0;
    int ellipsis = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (item == Py_Ellipsis) ellipsis++;
        else if (PySlice_Check(item) || PyIndex_Check(item)) consuming++;
        else {
            PyErr_Format(PyExc_TypeError, "Tensor indices must be ints, slices or ..., not '%.100s'",
                         Py_TYPE(item)->tp_name);
            goto error;
        }
    }
    if (ellipsis > 1) {
        PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
        goto error;
    }
    if (consuming > mg_tensor_ndim(cur)) {
        PyErr_Format(PyExc_IndexError, "too many indices for a tensor of %d dimensions: %zd", mg_tensor_ndim(cur),
                     consuming);
        goto error;
    }
    int dim = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        mg_tensor *next;
        if (item == Py_Ellipsis) { /* the items left (`consuming`) index the last dimensions */
            dim = mg_tensor_ndim(cur) - (int)consuming;
            continue;
        }
        if (PySlice_Check(item)) {
            Py_ssize_t start, stop, step;
            if (PySlice_Unpack(item, &start, &stop, &step) < 0) goto error;
            if (step < 1) {
                PyErr_SetString(PyExc_ValueError, "negative slice steps are not supported");
                goto error;
            }
            Py_ssize_t len = PySlice_AdjustIndices((Py_ssize_t)mg_tensor_shape(cur)[dim], &start, &stop, step);
            size_t end = len > 0 ? (size_t)(start + (len - 1) * step + 1) : (size_t)start;
            next = mg_tensor_slice(cur, dim, (size_t)start, end, (size_t)step);
            dim++;
        } else {
            Py_ssize_t index = PyNumber_AsSsize_t(item, PyExc_IndexError);
            size_t at;
            if (index == -1 && PyErr_Occurred()) goto error;
            if (normalize_index(index, mg_tensor_shape(cur)[dim], dim, &at) < 0) goto error;
            next = mg_tensor_select(cur, dim, at);
        }
        mg_tensor_release(cur);
        if (!(cur = next)) {
            mgpy_raise_error();
            goto error;
        }
        consuming--;
    }
    Py_DECREF(items);
    return wrap(Py_TYPE(self), cur);
error:
    mg_tensor_release(cur);
    Py_DECREF(items);
    return NULL;
}

static Py_ssize_t Tensor_length(PyObject *self) {
    mg_tensor *t = tensor_of(self);
    if (mg_tensor_ndim(t) == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
        return -1;
    }
    return (Py_ssize_t)mg_tensor_shape(t)[0];
}

/* t[i] for iteration */
static PyObject *Tensor_item_at(PyObject *self, Py_ssize_t i) {
    mg_tensor *t = tensor_of(self);
    if (mg_tensor_ndim(t) == 0) {
        PyErr_SetString(PyExc_TypeError, "iteration over a 0-d tensor");
        return NULL;
    }
    size_t at;
    if (normalize_index(i, mg_tensor_shape(t)[0], 0, &at) < 0) return NULL;
    return wrap(Py_TYPE(self), mg_tensor_select(t, 0, at));
}

/* ---- buffer protocol: the numbers in place, with their strides (numpy.asarray(t) is a view) ---- */

static int Tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    TensorObject *o = (TensorObject *)self;
    mg_tensor *t = o->t;
    int nd = mg_tensor_ndim(t), broadcast = 0;
    size_t item = mg_dtype_size(mg_tensor_dtype(t));
    for (int d = 0; d < nd; d++) {
        o->buf_shape[d] = (Py_ssize_t)mg_tensor_shape(t)[d];
        o->buf_strides[d] = (Py_ssize_t)(mg_tensor_strides(t)[d] * (int64_t)item);
        broadcast |= mg_tensor_strides(t)[d] == 0 && mg_tensor_shape(t)[d] > 1;
    }
    if ((flags & PyBUF_WRITABLE) && broadcast) {
        PyErr_SetString(PyExc_BufferError, "a broadcast (expanded) tensor cannot be exported writable");
        return -1;
    }
    if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !mg_tensor_is_contiguous(t)) {
        PyErr_SetString(PyExc_BufferError, "the tensor is not contiguous: ask for a strided buffer");
        return -1;
    }
    view->buf = mg_tensor_data_ptr(t);
    view->obj = Py_NewRef(self);
    view->len = (Py_ssize_t)(mg_tensor_numel(t) * item);
    view->itemsize = (Py_ssize_t)item;
    view->readonly = broadcast;
    view->ndim = nd;
    view->format = (flags & PyBUF_FORMAT) ? (mg_tensor_dtype(t) == MG_FLOAT32 ? "f" : "d") : NULL;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? o->buf_shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? o->buf_strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

/* Pickling and copying give a new leaf with the same numbers, dtype and requires_grad (never the graph). */
static PyObject *Tensor_reduce(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    mg_tensor *t = tensor_of(self);
    PyObject *data = Tensor_tolist(self, NULL);
    if (!data) return NULL;
    PyObject *result = Py_BuildValue("O(OOOsO)", (PyObject *)Py_TYPE(self), data, Py_None, Py_None,
                                     mg_dtype_name(mg_tensor_dtype(t)),
                                     mg_tensor_requires_grad(t) ? Py_True : Py_False);
    Py_DECREF(data);
    return result;
}

/* ---- repr ---- */

static PyObject *Tensor_repr(PyObject *self) {
    mg_tensor *t = tensor_of(self);
    PyObject *shape = Tensor_get_shape(self, NULL), *data = NULL, *text = NULL;
    if (!shape) return NULL;
    const char *dtype = mg_tensor_dtype(t) == MG_FLOAT32 ? ", dtype=float32" : "";
    if (mg_tensor_numel(t) > 1000) {
        text = PyUnicode_FromFormat("Tensor(shape=%R%s, device=cpu)", shape, dtype);
    } else if ((data = Tensor_tolist(self, NULL))) {
        text = PyUnicode_FromFormat("Tensor(%R, shape=%R%s, device=cpu)", data, shape, dtype);
    }
    Py_XDECREF(data);
    Py_DECREF(shape);
    return text;
}

/* Methods taking keywords, cast once for the method table. The docstrings open with the signature
 * (`name($self, ...)\n--\n\n`): CPython turns it into __text_signature__, for inspect.signature and help(). */
#define KW(fn) (PyCFunction)(void (*)(void))(fn)

static PyMethodDef Tensor_methods[] = {
    {"is_contiguous", Tensor_is_contiguous, METH_NOARGS,
     "is_contiguous($self, /)\n--\n\nTrue when the elements are in row-major order."},
    {"numel", Tensor_numel, METH_NOARGS, "numel($self, /)\n--\n\nNumber of elements."},
    {"reshape", KW(Tensor_reshape), METH_VARARGS | METH_KEYWORDS,
     "reshape($self, /, *shape, **kwargs)\n--\n\nA view with this shape (sizes, one list, or shape=[...]; one size "
     "may be -1); a copy if the tensor is not contiguous."},
    {"view", KW(Tensor_reshape), METH_VARARGS | METH_KEYWORDS,
     "view($self, /, *shape, **kwargs)\n--\n\nSame as "
     "reshape()."},
    {"expand", KW(Tensor_expand), METH_VARARGS | METH_KEYWORDS,
     "expand($self, /, *size, **kwargs)\n--\n\nA broadcast view (size-1 dims repeated, stride 0); -1 keeps a size."},
    {"transpose", KW(Tensor_transpose), METH_VARARGS | METH_KEYWORDS,
     "transpose($self, /, dim0, dim1)\n--\n\nA view with two dimensions swapped."},
    {"slice", KW(Tensor_slice), METH_VARARGS | METH_KEYWORDS,
     "slice($self, /, dim, start, end, step=1)\n--\n\nA view of elements start, start+step, ... before end "
     "along dim."},
    {"contiguous", Tensor_contiguous, METH_NOARGS,
     "contiguous($self, /)\n--\n\nself if contiguous, else a contiguous copy (in the graph)."},
    {"detach", Tensor_detach, METH_NOARGS,
     "detach($self, /)\n--\n\nA tensor sharing the numbers, out of the graph, not requiring grad."},
    {"relu", Tensor_relu, METH_NOARGS, "relu($self, /)\n--\n\nmax(x, 0) elementwise."},
    {"exp", Tensor_exp, METH_NOARGS, "exp($self, /)\n--\n\nexp(x) elementwise."},
    {"log", Tensor_log, METH_NOARGS, "log($self, /)\n--\n\nNatural logarithm elementwise."},
    {"tanh", Tensor_tanh, METH_NOARGS, "tanh($self, /)\n--\n\ntanh(x) elementwise."},
    {"sigmoid", Tensor_sigmoid, METH_NOARGS, "sigmoid($self, /)\n--\n\n1 / (1 + exp(-x)) elementwise."},
    {"float", Tensor_float, METH_NOARGS, "float($self, /)\n--\n\nA float32 copy (in the graph)."},
    {"double", Tensor_double, METH_NOARGS, "double($self, /)\n--\n\nA float64 copy (in the graph)."},
    {"sum", KW(Tensor_sum), METH_VARARGS | METH_KEYWORDS,
     "sum($self, /, dim=None, keepdim=False)\n--\n\nThe sum over dim (None: every element)."},
    {"mean", KW(Tensor_mean), METH_VARARGS | METH_KEYWORDS,
     "mean($self, /, dim=None, keepdim=False)\n--\n\nThe mean over dim (None: every element)."},
    {"max", KW(Tensor_max), METH_VARARGS | METH_KEYWORDS,
     "max($self, /, dim=None, keepdim=False)\n--\n\nThe values (the gradient goes to the first maximum along "
     "dim; shared evenly between ties for dim=None, as in PyTorch)."},
    {"argmax", KW(Tensor_argmax), METH_VARARGS | METH_KEYWORDS,
     "argmax($self, /, dim=None, keepdim=False)\n--\n\nIndex of the first maximum (the one max() sends "
     "gradients to), as float64 numbers."},
    {"log_softmax", KW(Tensor_log_softmax), METH_VARARGS | METH_KEYWORDS,
     "log_softmax($self, /, dim)\n--\n\nlog(softmax(x)) along dim, computed stably."},
    {"matmul", KW(Tensor_matmul), METH_VARARGS | METH_KEYWORDS,
     "matmul($self, /, other, precision='fast')\n--\n\nself @ other (NumPy's matmul rules, batch dims broadcast).\n\n"
     "precision: 'fast' (fused multiply-adds, as @) or 'exact' (each product rounded, then added in order: the\n"
     "bits of a plain loop), for the result and its gradients."},
    {"add_", KW(Tensor_add_), METH_VARARGS | METH_KEYWORDS,
     "add_($self, /, other, alpha=1.0)\n--\n\nself += alpha * other in place, not recorded; returns self."},
    {"backward", Tensor_backward, METH_NOARGS,
     "backward($self, /)\n--\n\nGradient of this one-element tensor with respect to every tensor it depends on "
     "(leaves accumulate)."},
    {"zero_grad", Tensor_zero_grad, METH_NOARGS,
     "zero_grad($self, /)\n--\n\nSet this tensor's gradient to zeros (if it has one)."},
    {"item", Tensor_item, METH_NOARGS, "item($self, /)\n--\n\nThe number held by a one-element tensor."},
    {"tolist", Tensor_tolist, METH_NOARGS, "tolist($self, /)\n--\n\nThe elements as nested lists of floats."},
    {"numpy", Tensor_numpy, METH_NOARGS,
     "numpy($self, /)\n--\n\nA float64 NumPy array holding a copy of the elements."},
    {"to", KW(Tensor_to), METH_VARARGS | METH_KEYWORDS,
     "to($self, /, device=None, dtype=None)\n--\n\nOn device ('cpu' gives self; 'cuda' raises RuntimeError "
     "when no GPU is usable) and/or as dtype; to('float32') works too."},
    {"cpu", Tensor_cpu, METH_NOARGS, "cpu($self, /)\n--\n\nself (tensors live on the CPU)."},
    {"cuda", Tensor_cuda, METH_NOARGS, "cuda($self, /)\n--\n\nOn the GPU: RuntimeError when no GPU is usable."},
    {"__reduce__", Tensor_reduce, METH_NOARGS, "__reduce__($self, /)\n--\n\nPickle support: a new leaf."},
    {"__dlpack__", KW(mgpy_tensor_dlpack), METH_VARARGS | METH_KEYWORDS,
     "__dlpack__($self, /, *, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\nThe DLPack capsule "
     "of this tensor's numbers, shared (copy=True: of a copy); versioned when max_version >= (1, 0)."},
    {"__dlpack_device__", mgpy_tensor_dlpack_device, METH_NOARGS,
     "__dlpack_device__($self, /)\n--\n\n(device_type, device_id) for DLPack: (1, 0), the CPU."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tensor_getset[] = {
    {"shape", Tensor_get_shape, NULL, "The sizes, as a list.", NULL},
    {"strides", Tensor_get_strides, NULL, "The strides in elements, as a list.", NULL},
    {"ndim", Tensor_get_ndim, NULL, "Number of dimensions.", NULL},
    {"dtype", Tensor_get_dtype, NULL, "'float64' or 'float32'.", NULL},
    {"device", Tensor_get_device, NULL, "Device(cpu).", NULL},
    {"requires_grad", Tensor_get_requires_grad, Tensor_set_requires_grad,
     "Whether ops on this tensor are recorded for backward (settable on leaves).", NULL},
    {"is_leaf", Tensor_get_is_leaf, NULL, "True unless the tensor was computed by a recorded op.", NULL},
    {"grad", Tensor_get_grad, Tensor_set_grad, "The gradient (a new Tensor) after backward(), or None.", NULL},
    {"data", Tensor_get_data, NULL, "The same numbers, detached from the graph.", NULL},
    {"_op", Tensor_get_op, NULL, "The op that made this tensor ('' for a leaf).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Tensor_slots[] = {
    {Py_tp_doc, "Tensor(data, shape=None, device=None, dtype=None, requires_grad=True)\n--\n\nAn N-D array of float64\n"
                "(or float32) numbers with reverse-mode autograd. data: nested lists, a NumPy array or any\n"
                "buffer, a Tensor, or a number."},
    {Py_tp_new, MGPY_SLOT(Tensor_new)},
    {Py_tp_dealloc, MGPY_SLOT(Tensor_dealloc)},
    {Py_tp_repr, MGPY_SLOT(Tensor_repr)},
    {Py_tp_methods, Tensor_methods},
    {Py_tp_getset, Tensor_getset},
    {Py_nb_add, MGPY_SLOT(Tensor_add)},
    {Py_nb_subtract, MGPY_SLOT(Tensor_sub)},
    {Py_nb_multiply, MGPY_SLOT(Tensor_mul)},
    {Py_nb_true_divide, MGPY_SLOT(Tensor_div)},
    {Py_nb_power, MGPY_SLOT(Tensor_pow)},
    {Py_nb_negative, MGPY_SLOT(Tensor_neg)},
    {Py_nb_positive, MGPY_SLOT(Tensor_pos)},
    {Py_nb_bool, MGPY_SLOT(Tensor_bool)},
    {Py_nb_float, MGPY_SLOT(Tensor_as_float)},
    {Py_nb_matrix_multiply, MGPY_SLOT(Tensor_matmul_op)},
    {Py_mp_subscript, MGPY_SLOT(Tensor_getitem)},
    {Py_mp_length, MGPY_SLOT(Tensor_length)},
    {Py_sq_length, MGPY_SLOT(Tensor_length)},
    {Py_sq_item, MGPY_SLOT(Tensor_item_at)},
    {Py_bf_getbuffer, MGPY_SLOT(Tensor_getbuffer)},
    {0, NULL},
};

static PyType_Spec Tensor_spec = {
    .name = "micrograd_c.Tensor",
    .basicsize = sizeof(TensorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Tensor_slots,
};

/* ---- Device: the CPU, always (micrograd_rs's API) ---- */

PyObject *mgpy_cpu_device(PyObject *any) {
    module_state *state = PyType_GetModuleState(Py_TYPE(any));
    return state ? PyObject_CallNoArgs((PyObject *)state->device_type) : NULL;
}

static PyObject *Device_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"type", NULL};
    PyObject *kind = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Device", keywords, &kind)) return NULL;
    if (mgpy_check_device(kind) < 0) return NULL;
    return type->tp_alloc(type, 0);
}

static void Device_dealloc(PyObject *self) { mgpy_free_object(self); }

static PyObject *Device_cpu(PyObject *cls, PyObject *Py_UNUSED(ignored)) { return PyObject_CallNoArgs(cls); }

static PyObject *Device_cuda(PyObject *Py_UNUSED(cls), PyObject *Py_UNUSED(ignored)) { return mgpy_no_cuda(); }

static PyObject *Device_is_cuda_available(PyObject *Py_UNUSED(cls), PyObject *Py_UNUSED(ignored)) { Py_RETURN_FALSE; }
static PyObject *Device_is_cpu(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) { Py_RETURN_TRUE; }
static PyObject *Device_is_cuda(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) { Py_RETURN_FALSE; }
static PyObject *Device_repr(PyObject *Py_UNUSED(self)) { return PyUnicode_FromString("Device(cpu)"); }
static PyObject *Device_str(PyObject *Py_UNUSED(self)) { return PyUnicode_FromString("cpu"); }
static PyObject *Device_get_type(PyObject *Py_UNUSED(self), void *Py_UNUSED(closure)) {
    return PyUnicode_FromString("cpu");
}

static PyObject *Device_richcompare(PyObject *a, PyObject *b, int op) {
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) Py_RETURN_NOTIMPLEMENTED;
    return PyBool_FromLong(op == Py_EQ); /* every Device is the CPU */
}

static Py_hash_t Device_hash(PyObject *Py_UNUSED(self)) { return 0x6370; }

static PyMethodDef Device_methods[] = {
    {"cpu", Device_cpu, METH_NOARGS | METH_CLASS, "cpu($type, /)\n--\n\nThe CPU."},
    {"cuda", Device_cuda, METH_NOARGS | METH_CLASS,
     "cuda($type, /)\n--\n\nThe GPU: RuntimeError saying why when no GPU is usable."},
    {"is_cuda_available", Device_is_cuda_available, METH_NOARGS | METH_STATIC,
     "is_cuda_available()\n--\n\nWhether a GPU is usable (False: this build runs on the CPU)."},
    {"is_cpu", Device_is_cpu, METH_NOARGS, "is_cpu($self, /)\n--\n\nTrue for the CPU."},
    {"is_cuda", Device_is_cuda, METH_NOARGS, "is_cuda($self, /)\n--\n\nTrue for a GPU."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Device_getset[] = {
    {"type", Device_get_type, NULL, "'cpu'.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Device_slots[] = {
    {Py_tp_doc, "Device(type='cpu')\n--\n\nWhere tensors live. Device.cpu(); Device.cuda() raises RuntimeError when "
                "no GPU is usable."},
    {Py_tp_new, MGPY_SLOT(Device_new)},
    {Py_tp_dealloc, MGPY_SLOT(Device_dealloc)},
    {Py_tp_repr, MGPY_SLOT(Device_repr)},
    {Py_tp_str, MGPY_SLOT(Device_str)},
    {Py_tp_richcompare, MGPY_SLOT(Device_richcompare)},
    {Py_tp_hash, MGPY_SLOT(Device_hash)},
    {Py_tp_methods, Device_methods},
    {Py_tp_getset, Device_getset},
    {0, NULL},
};

static PyType_Spec Device_spec = {
    .name = "micrograd_c.Device",
    .basicsize = sizeof(DeviceObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Device_slots,
};

/* ---- no_grad: a context manager over the calling thread's grad mode ---- */

static PyObject *NoGrad_enter(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    ((NoGradObject *)self)->previous = mg_set_grad_enabled(0);
    return Py_NewRef(self);
}

static PyObject *NoGrad_exit(PyObject *self, PyObject *Py_UNUSED(args)) {
    mg_set_grad_enabled(((NoGradObject *)self)->previous);
    Py_RETURN_FALSE;
}

static void NoGrad_dealloc(PyObject *self) { mgpy_free_object(self); }

static PyObject *NoGrad_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "no_grad() takes no arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, ":no_grad")) return NULL;
    PyObject *self = type->tp_alloc(type, 0);
    if (self) ((NoGradObject *)self)->previous = 1;
    return self;
}

/* @no_grad() as a decorator: a callable that runs func with recording off (and binds as a method). */
static PyObject *NoGradFunction_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    int previous = mg_set_grad_enabled(0);
    PyObject *result = PyObject_Call(((NoGradFunctionObject *)self)->func, args, kwargs);
    mg_set_grad_enabled(previous);
    return result;
}

static PyObject *NoGradFunction_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type)) {
    if (!obj || obj == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static int NoGradFunction_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((NoGradFunctionObject *)self)->func);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int NoGradFunction_clear(PyObject *self) {
    Py_CLEAR(((NoGradFunctionObject *)self)->func);
    return 0;
}

static void NoGradFunction_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    NoGradFunction_clear(self);
    mgpy_free_object(self);
}

static PyObject *NoGradFunction_get_name(PyObject *self, void *Py_UNUSED(closure)) {
    return PyObject_GetAttrString(((NoGradFunctionObject *)self)->func, "__name__");
}

static PyObject *NoGradFunction_get_doc(PyObject *self, void *Py_UNUSED(closure)) {
    return PyObject_GetAttrString(((NoGradFunctionObject *)self)->func, "__doc__");
}

static PyObject *NoGradFunction_get_wrapped(PyObject *self, void *Py_UNUSED(closure)) {
    return Py_NewRef(((NoGradFunctionObject *)self)->func);
}

static PyGetSetDef NoGradFunction_getset[] = {
    {"__name__", NoGradFunction_get_name, NULL, NULL, NULL},
    {"__doc__", NoGradFunction_get_doc, NULL, NULL, NULL},
    {"__wrapped__", NoGradFunction_get_wrapped, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot NoGradFunction_slots[] = {
    {Py_tp_call, MGPY_SLOT(NoGradFunction_call)},
    {Py_tp_descr_get, MGPY_SLOT(NoGradFunction_get)},
    {Py_tp_traverse, MGPY_SLOT(NoGradFunction_traverse)},
    {Py_tp_clear, MGPY_SLOT(NoGradFunction_clear)},
    {Py_tp_dealloc, MGPY_SLOT(NoGradFunction_dealloc)},
    {Py_tp_getset, NoGradFunction_getset},
    {0, NULL},
};

static PyType_Spec NoGradFunction_spec = {
    .name = "micrograd_c._core._NoGradFunction",
    .basicsize = sizeof(NoGradFunctionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = NoGradFunction_slots,
};

static PyObject *NoGrad_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *func;
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "no_grad()(func) takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:no_grad", &func)) return NULL;
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "no_grad() decorates a callable, not '%.100s'", Py_TYPE(func)->tp_name);
        return NULL;
    }
    module_state *state = PyType_GetModuleState(Py_TYPE(self));
    if (!state) return NULL;
    NoGradFunctionObject *wrapper = PyObject_GC_New(NoGradFunctionObject, state->no_grad_function_type);
    if (!wrapper) return NULL;
    wrapper->func = Py_NewRef(func);
    PyObject_GC_Track(wrapper);
    return (PyObject *)wrapper;
}

static PyMethodDef NoGrad_methods[] = {
    {"__enter__", NoGrad_enter, METH_NOARGS, "__enter__($self, /)\n--\n\nTurn recording off in this thread."},
    {"__exit__", NoGrad_exit, METH_VARARGS,
     "__exit__($self, /, *exc_info)\n--\n\nRestore the recording setting found at __enter__."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot NoGrad_slots[] = {
    {Py_tp_doc, "no_grad()\n--\n\nwith no_grad(): ops record no graph in this thread, for Values and Tensors (results\n"
                "are leaves that do not require grad). @no_grad() on a function does the same for each of its calls."},
    {Py_tp_new, MGPY_SLOT(NoGrad_new)},
    {Py_tp_call, MGPY_SLOT(NoGrad_call)},
    {Py_tp_dealloc, MGPY_SLOT(NoGrad_dealloc)},
    {Py_tp_methods, NoGrad_methods},
    {0, NULL},
};

static PyType_Spec NoGrad_spec = {
    .name = "micrograd_c.no_grad",
    .basicsize = sizeof(NoGradObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = NoGrad_slots,
};

/* ---- module functions ---- */

static PyObject *live_tensors(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLongLong((long long)mg_live_tensors());
}

static PyObject *set_num_threads(PyObject *Py_UNUSED(module), PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "set_num_threads: n must be >= 1 (or 0 for every core)");
        return NULL;
    }
    mg_set_num_threads((int)(n > 256 ? 256 : n));
    Py_RETURN_NONE;
}

static PyObject *get_num_threads(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(mg_get_num_threads());
}

static PyObject *is_grad_enabled(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(mg_is_grad_enabled());
}

static PyObject *set_grad_enabled(PyObject *Py_UNUSED(module), PyObject *arg) {
    int flag = PyObject_IsTrue(arg);
    if (flag < 0) return NULL;
    return PyBool_FromLong(mg_set_grad_enabled(flag));
}

static PyMethodDef tensor_functions[] = {
    {"live_tensors", live_tensors, METH_NOARGS,
     "live_tensors()\n--\n\nNumber of C tensors alive now (tests use it to prove nothing leaks)."},
    {"set_num_threads", set_num_threads, METH_O,
     "set_num_threads(n, /)\n--\n\nThreads for big tensor kernels and for fit (0: every core, the default); "
     "fit(threads=...) overrides it for one call."},
    {"get_num_threads", get_num_threads, METH_NOARGS,
     "get_num_threads()\n--\n\nThreads big tensor kernels and fit use."},
    {"is_grad_enabled", is_grad_enabled, METH_NOARGS,
     "is_grad_enabled()\n--\n\nFalse inside no_grad() (in this thread)."},
    {"set_grad_enabled", set_grad_enabled, METH_O,
     "set_grad_enabled(mode, /)\n--\n\nTurn graph recording on or off in this thread; returns the old setting."},
    {NULL, NULL, 0, NULL},
};

/* The GIL goes away around long pure-number kernels and comes back after. */
static void *leave_interpreter(void) { return PyEval_SaveThread(); }
static void enter_interpreter(void *token) { PyEval_RestoreThread(token); }

int mgpy_tensor_exec(PyObject *module, module_state *state) {
    if (mgpy_add_type(module, &Tensor_spec, &state->tensor_type) < 0 ||
        mgpy_add_type(module, &Device_spec, &state->device_type) < 0 ||
        mgpy_add_type(module, &NoGrad_spec, &state->no_grad_type) < 0 ||
        mgpy_add_type(module, &NoGradFunction_spec, &state->no_grad_function_type) < 0)
        return -1;
    if (PyModule_AddFunctions(module, tensor_functions) < 0) return -1;
    mg_set_compute_hooks(leave_interpreter, enter_interpreter);
    return 0;
}
