/* _core.h: what the C files of the micrograd_c._core extension module share. */
#ifndef MICROGRAD_C_CORE_H
#define MICROGRAD_C_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "micrograd.h"

#include <stdint.h>

/* CPython's slot tables keep functions in `void *`, a conversion ISO C leaves undefined and -Wpedantic
 * flags; going through an integer is the defined, warning-free route on every platform CPython runs on. */
#define MGPY_SLOT(fn) ((void *)(uintptr_t)(fn))

/* A Python Value: one reference to a C node, and the label notebooks give it (NULL: none). 32 bytes, the
 * size pymalloc would round a 24-byte object up to anyway. */
typedef struct {
    PyObject_HEAD
    mg_value *node;
    PyObject *label;
} ValueObject;

/* The module's state (xxlimited.c's pattern): its types and the objects its C code needs, found from any
 * of its objects through PyType_GetModuleState(Py_TYPE(obj)), never by attribute lookups at call time. */
typedef struct {
    PyTypeObject *value_type;
    PyObject *neuron_class, *layer_class; /* micrograd_c.nn's, whose calls layer() and mlp() run in C */
    PyObject *str_w, *str_b, *str_nonlin, *str_neurons;
    PyTypeObject *optimizer_type;
    PyTypeObject *tensor_type, *device_type, *no_grad_type, *no_grad_function_type;
    PyTypeObject *csv_type;
} module_state;

/* _core.c */
void mgpy_value_dealloc(PyObject *self);
/* Our Value type's deallocator identifies it: one load and compare, cheaper than a module-state lookup on
 * every operator. A subclass (a heap type defined in Python) has Python's own deallocator: its bases are
 * walked, which only heap types need. */
static inline int mgpy_is_value(PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    if (t->tp_dealloc == mgpy_value_dealloc) return 1;
    if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) return 0;
    for (t = t->tp_base; t; t = t->tp_base)
        if (t->tp_dealloc == mgpy_value_dealloc) return 1;
    return 0;
}
static inline mg_value *mgpy_node(PyObject *o) { return ((ValueObject *)o)->node; }
/* Raise the library's last error as the exception its status maps to (MemoryError, IndexError,
 * RuntimeError, OSError, else ValueError) and clear it; returns NULL. The one error mapper. */
PyObject *mgpy_raise_error(void);
/* The same for a file: an I/O failure with errno becomes OSError(errno, strerror, path), whose subclass
 * (FileNotFoundError, PermissionError, ...) follows errno. */
PyObject *mgpy_raise_file_error(int saved_errno, PyObject *path);
/* The one reader of plain-number operands: 1 and *out for a real number (float, int, bool, NumPy scalar:
 * anything with __float__ or __index__ that converts), 0 if o is not one (no error set), -1 on error (an
 * int too large for a double). MGPY_REAL_NO_ARRAYS: Tensors and buffer objects (arrays) are never
 * numbers, even of one element (tensor ops broadcast them instead); Value ops take them as numbers. */
enum { MGPY_REAL_ANY = 0, MGPY_REAL_NO_ARRAYS = 1 };
int mgpy_as_real(PyObject *o, double *out, int flags);
/* A real number (int, float, NumPy scalar) as a double: 0, or -1 with TypeError naming `what`. */
int mgpy_parse_real(PyObject *o, double *out, const char *what);

/* A matrix of doubles read from Python: a C-contiguous float64 buffer (a NumPy array) is used in place, its
 * view held (so its memory stays) until mgpy_matrix_release; nested sequences of numbers are copied into
 * PyMem memory. 1-D input gives cols = 1 when flat_ok, else is an error. On failure -1, nothing to release. */
typedef struct {
    double *data;
    Py_ssize_t rows, cols;
    Py_buffer view;
    int has_view;
} mgpy_matrix;
int mgpy_read_matrix(PyObject *obj, const char *what, int flat_ok, mgpy_matrix *out);
void mgpy_matrix_release(mgpy_matrix *m);

/* The one dealloc discipline of this module's heap types: a deallocator untracks the object first if its
 * type is GC, releases what it holds (its tp_clear where it has one), and ends here: freed through its
 * type's tp_free (PyObject_Free or PyObject_GC_Del, whichever allocated it), then the reference to the
 * heap type that every instance holds is dropped. */
static inline void mgpy_free_object(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

/* Make a heap type of this module from spec, keep it in *slot (module state) and add it to the module. */
int mgpy_add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot);

/* _optim.c: the Optimizer type and parameter_count(); called from the module's exec slot.
 * `busy` is set while fit() trains with it or a save writes it (the GIL released, or in fit's callback):
 * every call that reads or changes the optimizer's state refuses then (mgpy_optimizer_is_free: 0 with
 * RuntimeError), instead of mixing two trainings' state or saving half of one. Set and tested under the
 * GIL only. */
typedef struct {
    PyObject_HEAD
    mg_optim *opt;
    int busy;
} OptimizerObject;
int mgpy_optim_exec(PyObject *module, module_state *state);
int mgpy_optimizer_is_free(PyObject *self);
/* The nodes of a sequence of Values (PyMem_Malloc'd) and, in *keep, a tuple of the Values: the nodes live
 * as long as the caller holds that tuple, whatever becomes of `params` (a generator, or a list that a
 * callback or another thread empties). NULL with an exception if any item is not a Value. */
mg_value **mgpy_value_nodes(PyObject *params, Py_ssize_t *n, PyObject **keep);

/* _model.c: fit(), predict(), save_model(), load_model(); called from the module's exec slot */
int mgpy_model_exec(PyObject *module);

/* _tensor.c: Tensor, Device, no_grad and the tensor functions; called from the module's exec slot */
int mgpy_tensor_exec(PyObject *module, module_state *state);
/* A device argument: 0 for the CPU (or None); -1 with RuntimeError for CUDA when no GPU is usable, with the
 * reason, or ValueError for anything unknown. */
int mgpy_check_device(PyObject *device);
/* A new Device object for the CPU; `any` is an object of this module, whose state has the Device type. */
PyObject *mgpy_cpu_device(PyObject *any);
/* RuntimeError saying why CUDA is not usable; returns NULL. */
PyObject *mgpy_no_cuda(void);
/* The C tensor of a Python Tensor, or NULL if o is not one. */
mg_tensor *mgpy_tensor_of(PyObject *o);
/* A new Tensor of `type` owning t (one reference, handed over); NULL t: raise the library's error. */
PyObject *mgpy_wrap_tensor(PyTypeObject *type, mg_tensor *t);

/* _dlpack.c: Tensor.__dlpack__ and __dlpack_device__ (in Tensor's method table), and from_dlpack() */
PyObject *mgpy_tensor_dlpack(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *mgpy_tensor_dlpack_device(PyObject *self, PyObject *ignored);
int mgpy_dlpack_exec(PyObject *module);

/* _csv.c: the Csv type, read_csv() and parse_csv(); called from the module's exec slot */
int mgpy_csv_exec(PyObject *module, module_state *state);

#endif
