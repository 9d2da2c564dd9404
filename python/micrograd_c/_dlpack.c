/* _dlpack.c: DLPack, the array-exchange protocol of NumPy, PyTorch, JAX and CuPy: Tensor.__dlpack__,
 * Tensor.__dlpack_device__ and micrograd_c.from_dlpack, zero-copy both ways where the numbers allow.
 *
 * A producer hands over a capsule holding a DLManagedTensor (or, in protocol 1.x, a
 * DLManagedTensorVersioned): a description of the memory (pointer, device, dtype, shape, strides in
 * elements) and a deleter the consumer calls when done. The consumer renames the capsule "used_..." so the
 * capsule's own destructor knows the tensor is taken. The structures below are written from the DLPack
 * specification (dlpack.h, version 1.0); only the fields' layout matters for interchange.
 *
 * Exports keep the Python Tensor alive until the consumer calls the deleter, which may come from any thread:
 * it takes the GIL before letting go. Imports wrap the producer's memory with mg_tensor_from_external, whose
 * release calls the producer's deleter when the last tensor using it goes. */
#include "_core.h"

#include <string.h>

/* ---- the DLPack structures ---- */

enum { DL_CPU = 1 };                               /* DLDeviceType: kDLCPU */
enum { DL_INT = 0, DL_UINT = 1, DL_FLOAT = 2, DL_BOOL = 6 }; /* DLDataTypeCode */
#define DL_FLAG_READ_ONLY ((uint64_t)1)
#define DL_FLAG_IS_COPIED ((uint64_t)2)

typedef struct {
    int32_t device_type;
    int32_t device_id;
} DLDevice;

typedef struct {
    uint8_t code, bits;
    uint16_t lanes;
} DLDataType;

typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides; /* NULL: row-major */
    uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

typedef struct DLManagedTensorVersioned {
    struct {
        uint32_t major, minor;
    } version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

static const char *const CAPSULE = "dltensor", *const CAPSULE_USED = "used_dltensor";
static const char *const CAPSULE_V = "dltensor_versioned", *const CAPSULE_V_USED = "used_dltensor_versioned";

/* ---- export: Tensor.__dlpack__ ---- */

/* What an export owns: the managed tensor handed out (one of the two kinds), its shape and strides, and a
 * reference to the Tensor whose numbers it shows. One allocation. */
typedef struct {
    union {
        DLManagedTensor plain;
        DLManagedTensorVersioned versioned;
    } m;
    PyObject *owner;
    int64_t shape[MG_MAX_DIMS], strides[MG_MAX_DIMS];
} export_ctx;

static void export_free(export_ctx *ctx) {
    if (!Py_IsInitialized()) return; /* a consumer freeing after the interpreter is gone: nothing to give back */
    PyGILState_STATE gil = PyGILState_Ensure(); /* the consumer may call us from any thread */
    Py_DECREF(ctx->owner);
    PyMem_RawFree(ctx);
    PyGILState_Release(gil);
}

static void export_deleter(DLManagedTensor *self) { export_free(self->manager_ctx); }
static void export_deleter_versioned(DLManagedTensorVersioned *self) { export_free(self->manager_ctx); }

/* A capsule nobody consumed frees its tensor itself; a consumed one was renamed "used_..." */
static void capsule_destructor(PyObject *capsule) {
    if (PyCapsule_IsValid(capsule, CAPSULE)) {
        DLManagedTensor *m = PyCapsule_GetPointer(capsule, CAPSULE);
        if (m->deleter) m->deleter(m);
    } else if (PyCapsule_IsValid(capsule, CAPSULE_V)) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(capsule, CAPSULE_V);
        if (m->deleter) m->deleter(m);
    }
    PyErr_Clear(); /* a destructor must not leave an exception behind */
}

static DLTensor describe(PyObject *tensor, export_ctx *ctx) {
    mg_tensor *t = mgpy_tensor_of(tensor);
    DLTensor d = {.data = mg_tensor_data_ptr(t),
                  .device = {DL_CPU, 0},
                  .ndim = mg_tensor_ndim(t),
                  .dtype = {DL_FLOAT, (uint8_t)(8 * mg_dtype_size(mg_tensor_dtype(t))), 1},
                  .shape = ctx->shape,
                  .strides = ctx->strides,
                  .byte_offset = 0};
    for (int i = 0; i < d.ndim; i++) {
        ctx->shape[i] = (int64_t)mg_tensor_shape(t)[i];
        ctx->strides[i] = mg_tensor_strides(t)[i];
    }
    return d;
}

/* The capsule for `tensor` (already a copy when the caller asked for one). */
static PyObject *export_capsule(PyObject *tensor, int versioned, int copied) {
    export_ctx *ctx = PyMem_RawCalloc(1, sizeof *ctx);
    if (!ctx) return PyErr_NoMemory();
    ctx->owner = Py_NewRef(tensor);
    DLTensor d = describe(tensor, ctx);
    if (versioned) {
        int broadcast = 0; /* a stride-0 view repeats elements: writing through it is not allowed here either */
        for (int i = 0; i < d.ndim; i++) broadcast |= d.strides[i] == 0 && d.shape[i] > 1;
        ctx->m.versioned = (DLManagedTensorVersioned){{1, 0},
                                                      ctx,
                                                      export_deleter_versioned,
                                                      (broadcast ? DL_FLAG_READ_ONLY : 0) |
                                                          (copied ? DL_FLAG_IS_COPIED : 0),
                                                      d};
    } else {
        ctx->m.plain = (DLManagedTensor){d, ctx, export_deleter};
    }
    PyObject *capsule = PyCapsule_New(&ctx->m, versioned ? CAPSULE_V : CAPSULE, capsule_destructor);
    if (!capsule) {
        Py_DECREF(ctx->owner);
        PyMem_RawFree(ctx);
    }
    return capsule;
}

/* dl_device: None, or (device_type, device_id) naming this tensor's device, the CPU */
static int check_dl_device(PyObject *dl_device) {
    if (dl_device == Py_None) return 0;
    int type, id;
    if (!PyTuple_Check(dl_device) || !PyArg_ParseTuple(dl_device, "ii", &type, &id)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "dl_device must be a (device_type, device_id) tuple, not %R", dl_device);
        return -1;
    }
    if (type == DL_CPU && id == 0) return 0;
    PyErr_Format(PyExc_BufferError,
                 "cannot export to device (%d, %d): micrograd_c tensors here are on the CPU "
                 "(1, 0)",
                 type, id);
    return -1;
}

/* A fresh contiguous leaf with t's numbers and dtype (float32 goes through double exactly); NULL with the
 * exception set */
static mg_tensor *copy_of(mg_tensor *t) {
    size_t n = mg_tensor_numel(t);
    double *numbers = PyMem_RawMalloc((n ? n : 1) * sizeof *numbers);
    if (!numbers) {
        PyErr_NoMemory();
        return NULL;
    }
    mg_tensor *copy = mg_tensor_copy_data(t, numbers) == MG_OK
                          ? mg_tensor_from_data(numbers, mg_tensor_shape(t), mg_tensor_ndim(t), mg_tensor_dtype(t))
                          : NULL;
    PyMem_RawFree(numbers);
    if (!copy) mgpy_raise_error();
    else mg_tensor_set_requires_grad(copy, 0);
    return copy;
}

PyObject *mgpy_tensor_dlpack(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"stream", "max_version", "dl_device", "copy", NULL};
    PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOO:__dlpack__", keywords, &stream, &max_version, &dl_device,
                                     &copy))
        return NULL;
    (void)stream; /* for CPU memory there is no stream to synchronise with */
    if (check_dl_device(dl_device) < 0) return NULL;
    int major = 0, minor = 0;
    if (max_version != Py_None && (!PyTuple_Check(max_version) || !PyArg_ParseTuple(max_version, "ii", &major, &minor)))
        return PyErr_Clear(),
               PyErr_Format(PyExc_TypeError, "max_version must be a (major, minor) tuple, not %R", max_version);
    int make_copy = copy == Py_None ? 0 : PyObject_IsTrue(copy);
    if (make_copy < 0) return NULL;
    mg_tensor *fresh = make_copy ? copy_of(mgpy_tensor_of(self)) : NULL;
    if (make_copy && !fresh) return NULL;
    PyObject *exported = make_copy ? mgpy_wrap_tensor(Py_TYPE(self), fresh) : Py_NewRef(self);
    if (!exported) return NULL;
    PyObject *capsule = export_capsule(exported, major >= 1, make_copy);
    Py_DECREF(exported);
    return capsule;
}

PyObject *mgpy_tensor_dlpack_device(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(ii)", DL_CPU, 0);
}

/* ---- import: micrograd_c.from_dlpack ---- */

/* The producer's managed tensor, of either kind, with what the import needs to know of it. */
typedef struct {
    void *managed;
    int versioned;
    DLTensor *dl;
    uint64_t flags;
} imported;

static void release_imported(void *ctx) {
    imported *im = ctx;
    if (im->versioned) {
        DLManagedTensorVersioned *m = im->managed;
        if (m->deleter) m->deleter(m);
    } else {
        DLManagedTensor *m = im->managed;
        if (m->deleter) m->deleter(m);
    }
    PyMem_RawFree(im);
}

/* Take the managed tensor out of the capsule (renaming it "used_..."); NULL with an exception. */
static imported *take_capsule(PyObject *capsule) {
    int versioned = PyCapsule_IsValid(capsule, CAPSULE_V);
    if (!versioned && !PyCapsule_IsValid(capsule, CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "__dlpack__() did not give a DLPack capsule (a used one, or another object)");
        return NULL;
    }
    void *managed = PyCapsule_GetPointer(capsule, versioned ? CAPSULE_V : CAPSULE);
    if (versioned && ((DLManagedTensorVersioned *)managed)->version.major != 1) {
        PyErr_Format(PyExc_BufferError, "DLPack version %u.%u is not supported: micrograd_c reads 1.x",
                     ((DLManagedTensorVersioned *)managed)->version.major,
                     ((DLManagedTensorVersioned *)managed)->version.minor);
        return NULL;
    }
    imported *im = PyMem_RawMalloc(sizeof *im);
    if (!im) return (imported *)PyErr_NoMemory();
    im->managed = managed;
    im->versioned = versioned;
    im->dl = versioned ? &((DLManagedTensorVersioned *)managed)->dl_tensor : &((DLManagedTensor *)managed)->dl_tensor;
    im->flags = versioned ? ((DLManagedTensorVersioned *)managed)->flags : 0;
    if (PyCapsule_SetName(capsule, versioned ? CAPSULE_V_USED : CAPSULE_USED) < 0) {
        PyMem_RawFree(im);
        return NULL;
    }
    return im;
}

/* Element i (in row-major order) of a DLPack tensor of any real dtype, as a double. */
static double element(const DLTensor *dl, const int64_t *strides, size_t i) {
    int64_t offset = 0;
    for (int d = dl->ndim - 1; d >= 0; d--) {
        offset += (int64_t)(i % (size_t)dl->shape[d]) * strides[d];
        i /= (size_t)dl->shape[d];
    }
    const char *p = (const char *)dl->data + dl->byte_offset + offset * (dl->dtype.bits / 8);
    switch (dl->dtype.code * 1000 + dl->dtype.bits) {
    case DL_FLOAT * 1000 + 64: return *(const double *)p;
    case DL_FLOAT * 1000 + 32: return *(const float *)p;
    case DL_INT * 1000 + 64: return (double)*(const int64_t *)p;
    case DL_INT * 1000 + 32: return *(const int32_t *)p;
    case DL_INT * 1000 + 16: return *(const int16_t *)p;
    case DL_INT * 1000 + 8: return *(const int8_t *)p;
    case DL_UINT * 1000 + 64: return (double)*(const uint64_t *)p;
    case DL_UINT * 1000 + 32: return *(const uint32_t *)p;
    case DL_UINT * 1000 + 16: return *(const uint16_t *)p;
    case DL_UINT * 1000 + 8:
    case DL_BOOL * 1000 + 8: return *(const uint8_t *)p;
    }
    return 0.0; /* not reached: readable() checked the dtype */
}

/* What the import can do with these numbers: 2 share them (float32/64, strides >= 0, writable), 1 copy them
 * (other real dtypes, negative strides, read-only memory), 0 neither (with an exception). */
static int readable(const imported *im, const int64_t *strides, const char **why) {
    const DLTensor *dl = im->dl;
    if (dl->device.device_type != DL_CPU) {
        PyErr_Format(PyExc_BufferError,
                     "from_dlpack: the tensor is on DLPack device %d, not the CPU (1): move it "
                     "to the CPU first (.cpu())",
                     dl->device.device_type);
        return 0;
    }
    if (dl->ndim < 0 || dl->ndim > MG_MAX_DIMS) {
        PyErr_Format(PyExc_BufferError, "from_dlpack: %d dimensions, at most %d are supported", dl->ndim, MG_MAX_DIMS);
        return 0;
    }
    int code = dl->dtype.code, bits = dl->dtype.bits;
    int whole_bits = bits == 8 || bits == 16 || bits == 32 || bits == 64;
    int real = dl->dtype.lanes == 1 &&
               (((code == DL_INT || code == DL_UINT) && whole_bits) ||
                (code == DL_FLOAT && (bits == 32 || bits == 64)) || (code == DL_BOOL && bits == 8));
    if (!real) {
        PyErr_Format(PyExc_BufferError,
                     "from_dlpack: DLPack dtype (code %d, %d bits, %d lanes) is not a real number "
                     "type micrograd_c reads",
                     code, bits, dl->dtype.lanes);
        return 0;
    }
    for (int d = 0; d < dl->ndim; d++)
        if (dl->shape[d] < 0) {
            PyErr_Format(PyExc_BufferError, "from_dlpack: size %lld of dimension %d is negative",
                         (long long)dl->shape[d], d);
            return 0;
        }
    *why = code != DL_FLOAT                ? "its dtype is not float32 or float64"
           : im->flags & DL_FLAG_READ_ONLY ? "it is read-only"
                                           : NULL;
    for (int d = 0; d < dl->ndim && !*why; d++)
        if (strides[d] < 0) *why = "it has negative strides";
    return *why ? 1 : 2;
}

static mg_tensor *shared_tensor(imported *im, const int64_t *strides) {
    const DLTensor *dl = im->dl;
    size_t shape[MG_MAX_DIMS];
    for (int d = 0; d < dl->ndim; d++) shape[d] = (size_t)dl->shape[d];
    mg_tensor *t = mg_tensor_from_external((char *)dl->data + dl->byte_offset, shape, strides, dl->ndim,
                                           dl->dtype.bits == 64 ? MG_FLOAT64 : MG_FLOAT32, release_imported, im);
    if (!t) {
        mgpy_raise_error();
        release_imported(im); /* on failure the memory is still ours to give back */
    }
    return t;
}

/* The numbers copied into a new tensor (float32 stays float32, everything else becomes float64); the
 * producer's memory is given back at once. */
static mg_tensor *copied_tensor(imported *im, const int64_t *strides) {
    const DLTensor *dl = im->dl;
    size_t shape[MG_MAX_DIMS], n = 1;
    for (int d = 0; d < dl->ndim; d++) {
        shape[d] = (size_t)dl->shape[d];
        if (__builtin_mul_overflow(n, shape[d], &n) || n > PY_SSIZE_T_MAX / sizeof(double)) {
            release_imported(im);
            PyErr_SetString(PyExc_MemoryError, "from_dlpack: the tensor has too many elements to copy");
            return NULL;
        }
    }
    double *numbers = PyMem_RawMalloc((n ? n : 1) * sizeof *numbers);
    mg_tensor *t = NULL;
    if (numbers) {
        for (size_t i = 0; i < n; i++) numbers[i] = element(dl, strides, i);
        int f32 = dl->dtype.code == DL_FLOAT && dl->dtype.bits == 32;
        if (!(t = mg_tensor_from_data(numbers, shape, dl->ndim, f32 ? MG_FLOAT32 : MG_FLOAT64))) mgpy_raise_error();
        else mg_tensor_set_requires_grad(t, 0);
    } else {
        PyErr_NoMemory();
    }
    PyMem_RawFree(numbers);
    release_imported(im);
    return t;
}

/* x.__dlpack__(...): the versioned protocol first, then the plain call older producers know; a capsule is
 * taken as it is (the old from_dlpack(capsule) form). */
static PyObject *capsule_of(PyObject *x, PyObject *copy) {
    if (PyCapsule_CheckExact(x)) return Py_NewRef(x);
    PyObject *method = PyObject_GetAttrString(x, "__dlpack__");
    if (!method) {
        PyErr_Clear();
        return PyErr_Format(PyExc_TypeError,
                            "from_dlpack needs an object with __dlpack__ (a NumPy array, a torch "
                            "tensor, ...), not '%.100s'",
                            Py_TYPE(x)->tp_name);
    }
    PyObject *kwargs = Py_BuildValue("{s:(ii)}", "max_version", 1, 0), *empty = PyTuple_New(0), *capsule = NULL;
    if (kwargs && empty && (copy == Py_None || PyDict_SetItemString(kwargs, "copy", copy) == 0)) {
        capsule = PyObject_Call(method, empty, kwargs);
        if (!capsule && copy == Py_None && PyErr_ExceptionMatches(PyExc_TypeError)) { /* a pre-1.0 producer */
            PyErr_Clear();
            capsule = PyObject_CallNoArgs(method);
        }
    }
    Py_XDECREF(kwargs);
    Py_XDECREF(empty);
    Py_DECREF(method);
    return capsule;
}

/* from_dlpack(x, /, *, device=None, copy=None): a Tensor over x's numbers (copy=None: shared when the dtype
 * and layout allow, else a copy; True: always a copy; False: shared or BufferError). */
static PyObject *from_dlpack(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"", "device", "copy", NULL};
    PyObject *x, *device = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$OO:from_dlpack", keywords, &x, &device, &copy)) return NULL;
    int want_copy = copy == Py_None ? -1 : PyObject_IsTrue(copy);
    if (mgpy_check_device(device) < 0 || (copy != Py_None && want_copy < 0)) return NULL;
    PyObject *capsule = capsule_of(x, copy == Py_None ? Py_None : want_copy ? Py_True : Py_False);
    if (!capsule) return NULL;
    imported *im = take_capsule(capsule);
    Py_DECREF(capsule);
    if (!im) return NULL;
    int64_t strides[MG_MAX_DIMS];
    const DLTensor *dl = im->dl;
    const char *why = NULL;
    for (int d = dl->ndim - 1; d >= 0 && dl->ndim <= MG_MAX_DIMS; d--) /* none given: row-major */
        strides[d] = dl->strides ? dl->strides[d] : d == dl->ndim - 1 ? 1 : strides[d + 1] * dl->shape[d + 1];
    int kind = readable(im, strides, &why);
    if (kind == 1 && want_copy == 0) {
        PyErr_Format(PyExc_BufferError, "from_dlpack(copy=False): the numbers cannot be shared: %s", why);
        kind = 0;
    }
    if (kind == 0) {
        release_imported(im);
        return NULL;
    }
    mg_tensor *t = kind == 2 && want_copy != 1 ? shared_tensor(im, strides) : copied_tensor(im, strides);
    if (!t) return NULL;
    module_state *state = PyModule_GetState(module);
    return mgpy_wrap_tensor(state->tensor_type, t);
}

static PyMethodDef dlpack_functions[] = {
    {"from_dlpack", (PyCFunction)(void (*)(void))from_dlpack, METH_VARARGS | METH_KEYWORDS,
     "from_dlpack(x, /, *, device=None, copy=None)\n--\n\nA Tensor over the numbers of x (a NumPy array, a torch "
     "tensor, anything with __dlpack__): shared, no copy, when they are float32 or float64 on the CPU (writes "
     "through either are seen by both); otherwise, or with copy=True, a copy. copy=False refuses to copy "
     "(BufferError). The Tensor does not require grad."},
    {NULL, NULL, 0, NULL},
};

int mgpy_dlpack_exec(PyObject *module) { return PyModule_AddFunctions(module, dlpack_functions); }
