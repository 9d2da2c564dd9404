/* tensor.c: N-D tensors, views, every tensor op's forward and backward, backward itself, and freeing.
 *
 * Layout: a tensor is (storage, offset, shape, strides). Ops read their inputs as row-major doubles
 * (as_doubles: the storage itself when it is float64 and contiguous, else a gathered copy), compute into
 * a fresh contiguous output, and record their inputs when autograd needs them. Gradients are contiguous
 * row-major doubles of the tensor's own shape, whatever its strides: a view's backward scatters its
 * gradient into its input's through (goff, gstrides), and a broadcast input receives its gradient
 * through strides that are 0 along the broadcast dimensions, which sums over them for free.
 *
 * Each op family's backward comes right after its forward (views, elementwise binary, unary, matmul,
 * reductions, log_softmax), as value.c does for scalars; backward_node() at the end only dispatches.
 * Formulas follow PyTorch's float64 kernels. */
#include "tensor_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- errors: every failure goes through mg__fail_in, which keeps the message and the status, and says
 * they come from a tensor op (FAIL) ---- */
#define FAIL(...) mg__fail_in(MG__ORIGIN_TENSOR, __VA_ARGS__)

/* An operand is NULL: keep the error of the tensor op that made it NULL, as the value ops do. */
static void *null_input(const char *func) {
    return mg__fail_null_in(MG__ORIGIN_TENSOR, "%s: an operand is NULL", func);
}

static void *nomem(const char *func) {
    FAIL(MG_ERR_NOMEM, "%s: out of memory", func);
    return NULL;
}

/* "[2, 3]" into buf */
static const char *shape_str(const size_t *shape, int ndim, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %zu" : "%zu", shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- shapes ---- */

enum { STORAGE_HEADER = (sizeof(mg__storage) + 63) / 64 * 64 };

/* The most elements a tensor may span: (MAX_ELEMENTS + 1) doubles (a gradient with its spare element) plus
 * a storage header fit in size_t, and MAX_ELEMENTS fits in int64_t (strides, offsets). */
#define MAX_ELEMENTS ((SIZE_MAX - STORAGE_HEADER) / sizeof(double) - 1)
_Static_assert(MAX_ELEMENTS <= INT64_MAX, "strides hold any element index");

/* Every tensor's shape passes here (node_alloc), so every size derived from a tensor later (numel, byte
 * counts, strides, offsets, loop bounds) is known not to overflow. The product of the nonzero sizes is
 * checked, not just numel: it is what contiguous strides multiply out to ([0, 2^40, 2^40] has no
 * element, but its first stride would be 2^80). 0 when the shape is too large. */
static int numel_of(const size_t *shape, int ndim, size_t *out) {
    size_t n = 1, span = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) {
            n = 0;
            continue;
        }
        if (mg__mul_size(span, shape[d], &span) || span > MAX_ELEMENTS) return 0;
        n *= shape[d]; /* n <= span */
    }
    *out = n;
    return 1;
}

static void contiguous_strides(const size_t *shape, int ndim, int64_t *strides) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= (int64_t)(shape[d] ? shape[d] : 1);
    }
}

/* A dim counted from the end when negative; -1 (with the message) when out of range. The message names
 * the dim as passed, never the normalised one, and the range allowed. */
static int norm_dim(int dim, int ndim, const char *func) {
    if (ndim == 0) {
        FAIL(MG_ERR_RANGE, "%s: dimension %d is out of range: a 0-dimensional tensor has no dimension", func, dim);
        return -1;
    }
    if (dim < -ndim || dim >= ndim) {
        FAIL(MG_ERR_RANGE, "%s: dimension %d is out of range for a tensor of %d dimension%s (expected %d to %d)", func,
             dim, ndim, ndim == 1 ? "" : "s", -ndim, ndim - 1);
        return -1;
    }
    return dim < 0 ? dim + ndim : dim;
}

int mg_tensor_is_contiguous(const mg_tensor *t) {
    if (!t) return 0;
    int64_t expected = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 0) return 1;
        if (t->shape[d] != 1 && t->strides[d] != expected) return 0;
        expected *= (int64_t)t->shape[d];
    }
    return 1;
}

/* ---- walking an N-d index space: the last dimension is the inner loop, the others advance here ---- */

typedef struct {
    int nd, full_nd;
    size_t shape[MG_MAX_DIMS], idx[MG_MAX_DIMS];
    int64_t st[3][MG_MAX_DIMS];
    int64_t off[3];
    int64_t ist[3]; /* strides along the last dimension */
    size_t inner, outer;
} nditer;

static void nd_init(nditer *it, const size_t *shape, int nd) {
    memset(it, 0, sizeof *it);
    it->full_nd = nd;
    if (nd == 0) {
        it->inner = it->outer = 1;
        return;
    }
    it->nd = nd - 1;
    it->inner = shape[nd - 1];
    it->outer = 1;
    for (int d = 0; d < nd - 1; d++) {
        it->shape[d] = shape[d];
        it->outer *= shape[d];
    }
    if (it->inner == 0) it->outer = 0;
}

static void nd_operand(nditer *it, int k, const int64_t *strides, int64_t offset) {
    it->off[k] = offset;
    if (it->full_nd == 0) return;
    for (int d = 0; d < it->nd; d++) it->st[k][d] = strides[d];
    it->ist[k] = strides[it->full_nd - 1];
}

static inline void nd_next(nditer *it) {
    for (int d = it->nd - 1; d >= 0; d--) {
        for (int k = 0; k < 3; k++) it->off[k] += it->st[k][d];
        if (++it->idx[d] < it->shape[d]) return;
        for (int k = 0; k < 3; k++) it->off[k] -= it->st[k][d] * (int64_t)it->shape[d];
        it->idx[d] = 0;
    }
}

/* ---- storage and nodes ---- */

/* An unknown dtype has size 0 and the name "?", as the other enum names (mg_op_name): never a valid one. */
size_t mg_dtype_size(mg_dtype dtype) {
    switch (dtype) {
    case MG_FLOAT64: return sizeof(double);
    case MG_FLOAT32: return sizeof(float);
    }
    return 0;
}

/* the names, then torch's aliases in the same order: entry i is dtype i % DTYPES */
enum { DTYPES = 2 };
static const char *const dtype_names[2 * DTYPES] = {[MG_FLOAT64] = "float64",
                                                    [MG_FLOAT32] = "float32",
                                                    [DTYPES + MG_FLOAT64] = "double",
                                                    [DTYPES + MG_FLOAT32] = "float"};

const char *mg_dtype_name(mg_dtype dtype) { return (unsigned)dtype < DTYPES ? dtype_names[dtype] : "?"; }

mg_status mg_dtype_from_name(const char *name, mg_dtype *out) {
    MG__RETURN_FROM_NAME("dtype", dtype_names, DTYPES, name, out);
}

/* numel <= MAX_ELEMENTS (numel_of), so the sizes cannot overflow: checked all the same, as every size is */
static mg__storage *storage_new(size_t numel, mg_dtype dtype, int zero) {
    size_t nbytes, total;
    if (mg__mul_size(numel, mg_dtype_size(dtype), &nbytes) || mg__add_size(nbytes, STORAGE_HEADER, &total)) return NULL;
    mg__storage *s = mg__alloc(total);
    if (!s) return NULL;
    s->data = (char *)s + STORAGE_HEADER;
    s->nbytes = nbytes;
    s->refs = 1;
    s->release = NULL;
    s->ctx = NULL;
    if (zero && nbytes) memset(s->data, 0, nbytes);
    return s;
}

static void storage_release(mg__storage *s) {
    if (!s || --s->refs > 0) return;
    if (!s->release) {
        mg__free(s, STORAGE_HEADER + s->nbytes);
        return;
    }
    s->release(s->ctx); /* the owner's memory, given back */
    mg__free(s, STORAGE_HEADER);
}

/* A node of the given shape, contiguous strides, no storage yet, refs 1, a leaf not requiring grad. */
static mg_tensor *node_alloc(const size_t *shape, int ndim, mg_dtype dtype, const char *func) {
    if (ndim < 0 || ndim > MG_MAX_DIMS) {
        FAIL(MG_ERR_ARG, "%s: %d dimensions, at most %d are supported", func, ndim, MG_MAX_DIMS);
        return NULL;
    }
    if (dtype != MG_FLOAT64 && dtype != MG_FLOAT32) {
        FAIL(MG_ERR_ARG, "%s: unknown dtype %d", func, (int)dtype);
        return NULL;
    }
    size_t numel;
    if (ndim > 0 && !shape) return null_input(func);
    if (!numel_of(shape, ndim, &numel)) {
        char s1[200];
        FAIL(MG_ERR_ARG,
             "%s: the shape %s is too large (its sizes multiply past %zu, the most elements a "
             "tensor can have)",
             func, shape_str(shape, ndim, s1, sizeof s1), (size_t)MAX_ELEMENTS);
        return NULL;
    }
    mg_tensor *t = mg__alloc(sizeof *t);
    if (!t) return nomem(func);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->numel = numel;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    contiguous_strides(t->shape, ndim, t->strides);
    t->dtype = (uint8_t)dtype;
    t->refs = 1;
    mg__live_add(MG__LIVE_TENSOR, 1);
    return t;
}

/* Gradient buffers and index arrays get one spare element, so an empty tensor still has a valid pointer.
 * numel <= MAX_ELEMENTS (numel_of): these byte counts, and the (numel doubles + 1 byte) of as_doubles'
 * copies, fit in size_t. */
static size_t grad_bytes(const mg_tensor *t) { return (t->numel + 1) * sizeof(double); }
static size_t aux_bytes(const mg_tensor *t) { return (t->aux_count + 1) * sizeof(size_t); }

static void node_free(mg_tensor *t) {
    storage_release(t->storage);
    if (t->grad) mg__free(t->grad, grad_bytes(t));
    if (t->aux) mg__free(t->aux, aux_bytes(t));
    mg__free(t, sizeof *t);
    mg__live_add(MG__LIVE_TENSOR, -1);
}

/* A node with fresh contiguous storage. */
static mg_tensor *node_new(const size_t *shape, int ndim, mg_dtype dtype, int zero, const char *func) {
    mg_tensor *t = node_alloc(shape, ndim, dtype, func);
    if (!t) return NULL;
    if (!(t->storage = storage_new(t->numel, dtype, zero))) {
        node_free(t);
        return nomem(func);
    }
    return t;
}

/* A node viewing a's storage (shape, strides and offset to be filled by the caller). */
static mg_tensor *node_view(mg_tensor *a, const size_t *shape, int ndim, const char *func) {
    mg_tensor *t = node_alloc(shape, ndim, (mg_dtype)a->dtype, func);
    if (!t) return NULL;
    t->storage = a->storage;
    t->storage->refs++;
    t->offset = a->offset;
    return t;
}

/* Connects out to its inputs when autograd must see it: grad mode on and an input requiring grad. Else
 * out stays a leaf that does not require grad, and the inputs can be freed as soon as nobody holds them. */
static mg_tensor *record(mg_tensor *out, mg_tensor_opcode op, mg_tensor *a, mg_tensor *b) {
    if (mg__grad_off || !((a && a->requires_grad) || (b && b->requires_grad))) return out;
    out->op = (uint8_t)op;
    out->requires_grad = 1;
    out->in[0] = a;
    out->in[1] = b;
    out->n_in = (uint32_t)((a != NULL) + (b != NULL));
    if (a) a->refs++;
    if (b) b->refs++;
    return out;
}

mg_tensor *mg_tensor_new(const size_t *shape, int ndim, mg_dtype dtype) {
    mg_tensor *t = node_new(shape, ndim, dtype, 1, "mg_tensor_new");
    if (t) t->requires_grad = 1;
    return t;
}

static void *elem_ptr(const mg_tensor *t) {
    return (char *)t->storage->data + t->offset * mg_dtype_size((mg_dtype)t->dtype);
}

mg_tensor *mg_tensor_from_data(const double *data, const size_t *shape, int ndim, mg_dtype dtype) {
    mg_tensor *t = node_new(shape, ndim, dtype, 0, "mg_tensor_from_data");
    if (!t) return NULL;
    if (t->numel && !data) {
        mg_tensor_release(t);
        return null_input("mg_tensor_from_data");
    }
    if (dtype == MG_FLOAT64) memcpy(t->storage->data, data, t->numel * sizeof(double));
    else
        for (size_t i = 0; i < t->numel; i++) ((float *)t->storage->data)[i] = (float)data[i];
    t->requires_grad = 1;
    return t;
}

/* The elements a view of this shape and these strides (>= 0) spans from its first: 1 + sum (n - 1) * stride,
 * or 0 when empty; 0 with the message when a stride is negative or the span overflows. */
static int external_span(const size_t *shape, const int64_t *strides, int ndim, size_t numel, size_t *span) {
    *span = numel ? 1 : 0;
    for (int d = 0; d < ndim && numel; d++) {
        size_t step;
        if (strides[d] < 0) {
            FAIL(MG_ERR_ARG, "mg_tensor_from_external: stride %lld of dimension %d is negative", (long long)strides[d],
                 d);
            return 0;
        }
        if (mg__mul_size(shape[d] - 1, (size_t)strides[d], &step) || mg__add_size(*span, step, span) ||
            *span > MAX_ELEMENTS) {
            FAIL(MG_ERR_ARG, "mg_tensor_from_external: the strides span more elements than a tensor can hold");
            return 0;
        }
    }
    return 1;
}

mg_tensor *mg_tensor_from_external(void *data, const size_t *shape, const int64_t *strides, int ndim, mg_dtype dtype,
                                   void (*release)(void *ctx), void *ctx) {
    mg_tensor *t = node_alloc(shape, ndim, dtype, "mg_tensor_from_external");
    if (!t) return NULL;
    if (strides) memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    size_t span;
    if (!external_span(t->shape, t->strides, ndim, t->numel, &span)) {
        node_free(t);
        return NULL;
    }
    if (span && !data) {
        node_free(t);
        return null_input("mg_tensor_from_external");
    }
    if (!(t->storage = mg__alloc(STORAGE_HEADER))) {
        node_free(t);
        return nomem("mg_tensor_from_external");
    }
    *t->storage = (mg__storage){
        .data = data, .nbytes = span * mg_dtype_size(dtype), .refs = 1, .release = release, .ctx = ctx};
    return t;
}

mg_tensor *mg_tensor_full(const size_t *shape, int ndim, double value, mg_dtype dtype) {
    mg_tensor *t = node_new(shape, ndim, dtype, 0, "mg_tensor_full");
    if (!t) return NULL;
    mg_tensor_fill_(t, value);
    t->requires_grad = 1;
    return t;
}

mg_tensor *mg_tensor_retain(mg_tensor *t) {
    if (t) t->refs++;
    return t;
}

/* Freeing walks a worklist threaded through the dead nodes themselves: no recursion, no memory. */
void mg_tensor_release(mg_tensor *t) {
    if (!t || --t->refs > 0) return;
    mg_tensor *dead = t;
    t->next = NULL;
    while (dead) {
        mg_tensor *node = dead;
        dead = node->next;
        for (uint32_t i = 0; i < node->n_in; i++) {
            mg_tensor *input = node->in[i];
            if (--input->refs == 0) {
                input->next = dead;
                dead = input;
            }
        }
        node_free(node);
    }
}

int64_t mg_live_tensors(void) { return mg__live_count(MG__LIVE_TENSOR); }

/* ---- reading elements ---- */

/* out (numel doubles) = t's elements in row-major order */
static void gather(const mg_tensor *t, double *out) {
    nditer it;
    nd_init(&it, t->shape, t->ndim);
    nd_operand(&it, 0, t->strides, (int64_t)t->offset);
    size_t k = 0;
    if (t->dtype == MG_FLOAT64) {
        const double *src = t->storage->data;
        for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {
            const double *p = src + it.off[0];
            if (it.ist[0] == 1) memcpy(out + k, p, it.inner * sizeof *out), k += it.inner;
            else
                for (size_t j = 0; j < it.inner; j++) out[k++] = p[(int64_t)j * it.ist[0]];
        }
    } else {
        const float *src = t->storage->data;
        for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {
            const float *p = src + it.off[0];
            for (size_t j = 0; j < it.inner; j++) out[k++] = (double)p[(int64_t)j * it.ist[0]];
        }
    }
}

/* t's elements as row-major doubles: t's own storage when it is float64 and contiguous, else a copy
 * left in *tmp for free_tmp. NULL on out-of-memory (the message is set). */
static const double *as_doubles(const mg_tensor *t, double **tmp) {
    *tmp = NULL;
    if (t->dtype == MG_FLOAT64 && mg_tensor_is_contiguous(t)) return elem_ptr(t);
    if (!(*tmp = mg__alloc(t->numel * sizeof(double) + 1))) return nomem("tensor op");
    gather(t, *tmp);
    return *tmp;
}

static void free_tmp(double *tmp, const mg_tensor *t) {
    if (tmp) mg__free(tmp, t->numel * sizeof(double) + 1);
}

/* Where an op writes its result: out's storage when float64, else a double buffer that finish_output
 * rounds into the float32 storage. */
static double *output_doubles(mg_tensor *out, double **tmp) {
    *tmp = NULL;
    if (out->dtype == MG_FLOAT64) return out->storage->data;
    if (!(*tmp = mg__alloc(out->numel * sizeof(double) + 1))) return nomem("tensor op");
    return *tmp;
}

static void finish_output(mg_tensor *out, double *tmp) {
    if (!tmp) return;
    float *dst = out->storage->data;
    for (size_t i = 0; i < out->numel; i++) dst[i] = (float)tmp[i];
    free_tmp(tmp, out);
}

/* Up to three tensors read as row-major doubles (as_doubles), NULL ones skipped: all of them or none (0,
 * the message set, nothing left to free). reads_free gives back the copies. */
typedef struct {
    const mg_tensor *t[3];
    const double *x[3];
    double *tmp[3];
} reads;

static void reads_free(reads *r) {
    for (int i = 0; i < 3; i++) {
        if (r->tmp[i]) free_tmp(r->tmp[i], r->t[i]);
        r->tmp[i] = NULL;
    }
}

static int reads_get(reads *r, const mg_tensor *t0, const mg_tensor *t1, const mg_tensor *t2) {
    const mg_tensor *t[3] = {t0, t1, t2};
    for (int i = 0; i < 3; i++) {
        r->t[i] = t[i];
        r->x[i] = NULL;
        r->tmp[i] = NULL;
    }
    for (int i = 0; i < 3; i++)
        if (t[i] && !(r->x[i] = as_doubles(t[i], &r->tmp[i]))) {
            reads_free(r);
            return 0;
        }
    return 1;
}

/* What an op computing into a fresh `out` opens with and closes with: its inputs a (and b, when not
 * NULL) read as doubles, in io->in.x[0] and x[1], and the buffer its result goes to (output_doubles).
 * op_begin returns that buffer, or NULL on out-of-memory with everything freed and out released. op_end
 * rounds the result into out's storage and frees the copies. */
typedef struct {
    reads in;
    double *ty;
} op_io;

static double *op_begin(op_io *io, mg_tensor *out, const mg_tensor *a, const mg_tensor *b) {
    io->ty = NULL;
    double *y = reads_get(&io->in, a, b, NULL) ? output_doubles(out, &io->ty) : NULL;
    if (!y) {
        reads_free(&io->in);
        mg_tensor_release(out);
    }
    return y;
}

static void op_end(op_io *io, mg_tensor *out) {
    finish_output(out, io->ty);
    reads_free(&io->in);
}

/* Every backward step that runs out of memory says so in the same words (mg_tensor_backward repeats them). */
static mg_status backward_nomem(void) { return FAIL(MG_ERR_NOMEM, "backward: out of memory"); }

/* dst[doff + sum(idx * dst_strides)] += scale * src[i] over shape, src row-major: the gradient of a view
 * into its input, and of a broadcast operand (0 strides sum over the broadcast dims). */
static void scatter_add(double *dst, size_t doff, const int64_t *dst_strides, const double *src, double scale,
                        const size_t *shape, int nd) {
    nditer it;
    nd_init(&it, shape, nd);
    nd_operand(&it, 0, dst_strides, (int64_t)doff);
    size_t k = 0;
    for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {
        double *p = dst + it.off[0];
        int64_t s = it.ist[0];
        if (s == 1)
            for (size_t j = 0; j < it.inner; j++) p[j] += scale * src[k + j];
        else
            for (size_t j = 0; j < it.inner; j++) p[(int64_t)j * s] += scale * src[k + j];
        k += it.inner;
    }
}

mg_status mg_tensor_copy_data(const mg_tensor *t, double *out) {
    if (!t || !out) return FAIL(MG_ERR_NULL, "mg_tensor_copy_data: an argument is NULL");
    gather(t, out);
    return MG_OK;
}

mg_status mg_tensor_item(const mg_tensor *t, double *out) {
    if (!t || !out) return FAIL(MG_ERR_NULL, "mg_tensor_item: an argument is NULL");
    if (t->numel != 1) return FAIL(MG_ERR_ARG, "item: the tensor has %zu elements, item() needs exactly 1", t->numel);
    gather(t, out);
    return MG_OK;
}

/* ---- accessors ---- */

int mg_tensor_ndim(const mg_tensor *t) { return t ? t->ndim : 0; }
const size_t *mg_tensor_shape(const mg_tensor *t) { return t ? t->shape : NULL; }
const int64_t *mg_tensor_strides(const mg_tensor *t) { return t ? t->strides : NULL; }
size_t mg_tensor_offset(const mg_tensor *t) { return t ? t->offset : 0; }
size_t mg_tensor_numel(const mg_tensor *t) { return t ? t->numel : 0; }
mg_dtype mg_tensor_dtype(const mg_tensor *t) { return t ? (mg_dtype)t->dtype : MG_FLOAT64; }
mg_tensor_opcode mg_tensor_op(const mg_tensor *t) { return t ? (mg_tensor_opcode)t->op : MG_TENSOR_OP_LEAF; }
size_t mg_tensor_num_inputs(const mg_tensor *t) { return t ? t->n_in : 0; }
mg_tensor *mg_tensor_input(const mg_tensor *t, size_t i) { return t && i < t->n_in ? t->in[i] : NULL; }
void *mg_tensor_data_ptr(mg_tensor *t) { return t ? elem_ptr(t) : NULL; }
int mg_tensor_requires_grad(const mg_tensor *t) { return t ? t->requires_grad : 0; }
double *mg_tensor_grad_data(mg_tensor *t) { return t ? t->grad : NULL; }

mg_status mg_tensor_set_requires_grad(mg_tensor *t, int requires_grad) {
    if (!t) return FAIL(MG_ERR_NULL, "mg_tensor_set_requires_grad: the tensor is NULL");
    if (t->op != MG_TENSOR_OP_LEAF)
        return FAIL(MG_ERR_STATE, "requires_grad can only be changed on a leaf tensor (one not computed by an op)");
    t->requires_grad = requires_grad ? 1 : 0;
    return MG_OK;
}

void mg_tensor_zero_grad(mg_tensor *t) {
    if (t && t->grad) memset(t->grad, 0, grad_bytes(t));
}

void mg_tensor_clear_grad(mg_tensor *t) {
    if (t && t->grad) {
        mg__free(t->grad, grad_bytes(t));
        t->grad = NULL;
    }
}

const char *mg_tensor_op_name(mg_tensor_opcode op) {
    static const char *const names[MG_TENSOR_OP_COUNT] = {
        [MG_TENSOR_OP_LEAF] = "",
        [MG_TENSOR_OP_VIEW] = "view",
        [MG_TENSOR_OP_ADD] = "+",
        [MG_TENSOR_OP_SUB] = "-",
        [MG_TENSOR_OP_MUL] = "*",
        [MG_TENSOR_OP_DIV] = "/",
        [MG_TENSOR_OP_ADD_SCALAR] = "+",
        [MG_TENSOR_OP_MUL_SCALAR] = "*",
        [MG_TENSOR_OP_RSUB_SCALAR] = "-",
        [MG_TENSOR_OP_DIV_SCALAR] = "/",
        [MG_TENSOR_OP_RDIV_SCALAR] = "/",
        [MG_TENSOR_OP_POW_SCALAR] = "**",
        [MG_TENSOR_OP_NEG] = "neg",
        [MG_TENSOR_OP_RELU] = "ReLU",
        [MG_TENSOR_OP_EXP] = "exp",
        [MG_TENSOR_OP_LOG] = "log",
        [MG_TENSOR_OP_TANH] = "tanh",
        [MG_TENSOR_OP_SIGMOID] = "sigmoid",
        [MG_TENSOR_OP_MATMUL] = "@",
        [MG_TENSOR_OP_SUM] = "sum",
        [MG_TENSOR_OP_MEAN] = "mean",
        [MG_TENSOR_OP_MAX] = "max",
        [MG_TENSOR_OP_LOG_SOFTMAX] = "log_softmax",
    };
    return (unsigned)op < MG_TENSOR_OP_COUNT ? names[op] : "?";
}

/* ---- views: a new node over the same storage; (goff, gstrides) map its elements to the input's
 * row-major gradient ---- */

static mg_tensor *view_done(mg_tensor *v, mg_tensor *a) { return record(v, MG_TENSOR_OP_VIEW, a, NULL); }

mg_tensor *mg_tensor_transpose(mg_tensor *a, int d0, int d1) {
    if (!a) return null_input("transpose");
    int x = norm_dim(d0, a->ndim, "transpose"), y = x < 0 ? -1 : norm_dim(d1, a->ndim, "transpose");
    if (x < 0 || y < 0) return NULL;
    size_t shape[MG_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[x] = a->shape[y];
    shape[y] = a->shape[x];
    mg_tensor *v = node_view(a, shape, a->ndim, "transpose");
    if (!v) return NULL;
    int64_t contiguous[MG_MAX_DIMS];
    contiguous_strides(a->shape, a->ndim, contiguous);
    for (int d = 0; d < a->ndim; d++) {
        int s = d == x ? y : d == y ? x : d;
        v->strides[d] = a->strides[s];
        v->gstrides[d] = contiguous[s];
    }
    return view_done(v, a);
}

mg_tensor *mg_tensor_slice(mg_tensor *a, int dim, size_t start, size_t end, size_t step) {
    if (!a) return null_input("slice");
    int d = norm_dim(dim, a->ndim, "slice");
    if (d < 0) return NULL;
    if (step < 1) {
        FAIL(MG_ERR_ARG, "slice: step must be at least 1, got %zu", step);
        return NULL;
    }
    if (start > end || end > a->shape[d]) {
        FAIL(MG_ERR_RANGE, "slice: [%zu, %zu) is out of range for dimension %d of size %zu", start, end, dim,
             a->shape[d]);
        return NULL;
    }
    size_t shape[MG_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[d] = end == start ? 0 : (end - start - 1) / step + 1; /* ceil((end - start) / step), no overflow */
    mg_tensor *v = node_view(a, shape, a->ndim, "slice");
    if (!v) return NULL;
    contiguous_strides(a->shape, a->ndim, v->gstrides);
    memcpy(v->strides, a->strides, sizeof v->strides);
    if (shape[d] > 0) {
        v->offset = a->offset + start * (size_t)a->strides[d];
        v->goff = start * (size_t)v->gstrides[d];
    }
    /* with 2 or more elements, step < end - start: the new strides stay inside the storage. With fewer the
     * stride is never used, and step (any size_t) must not be multiplied in */
    if (shape[d] > 1) {
        v->strides[d] *= (int64_t)step;
        v->gstrides[d] *= (int64_t)step;
    }
    return view_done(v, a);
}

mg_tensor *mg_tensor_select(mg_tensor *a, int dim, size_t index) {
    if (!a) return null_input("select");
    int d = norm_dim(dim, a->ndim, "select");
    if (d < 0) return NULL;
    if (index >= a->shape[d]) {
        FAIL(MG_ERR_RANGE, "select: index %zu is out of range for dimension %d of size %zu", index, dim, a->shape[d]);
        return NULL;
    }
    size_t shape[MG_MAX_DIMS];
    int64_t contiguous[MG_MAX_DIMS];
    contiguous_strides(a->shape, a->ndim, contiguous);
    for (int s = 0, k = 0; s < a->ndim; s++)
        if (s != d) shape[k++] = a->shape[s];
    mg_tensor *v = node_view(a, shape, a->ndim - 1, "select");
    if (!v) return NULL;
    for (int s = 0, k = 0; s < a->ndim; s++) {
        if (s == d) continue;
        v->strides[k] = a->strides[s];
        v->gstrides[k++] = contiguous[s];
    }
    v->offset = a->offset + index * (size_t)a->strides[d];
    v->goff = index * (size_t)contiguous[d];
    return view_done(v, a);
}

/* Broadcasting (NumPy's rule): out_shape from a's and b's shapes aligned on the right. */
static int broadcast_shape(const size_t *sa, int na, const size_t *sb, int nb, size_t *out, int *nout,
                           const char *func) {
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int da = d - (n - na), db = d - (n - nb);
        size_t x = da >= 0 ? sa[da] : 1, y = db >= 0 ? sb[db] : 1;
        if (x != y && x != 1 && y != 1) {
            char s1[96], s2[96];
            FAIL(MG_ERR_ARG, "%s: shapes %s and %s cannot be broadcast together", func,
                 shape_str(sa, na, s1, sizeof s1), shape_str(sb, nb, s2, sizeof s2));
            return 0;
        }
        out[d] = x == 1 ? y : x;
    }
    *nout = n;
    return 1;
}

/* Strides that read t's row-major elements (or gradient) across out_shape: 0 along broadcast dims. */
static void broadcast_strides(const mg_tensor *t, int out_nd, const size_t *out_shape, int64_t *st) {
    int64_t contiguous[MG_MAX_DIMS];
    contiguous_strides(t->shape, t->ndim, contiguous);
    for (int d = 0; d < out_nd; d++) {
        int s = d - (out_nd - t->ndim);
        st[d] = s < 0 || (t->shape[s] == 1 && out_shape[d] != 1) ? 0 : contiguous[s];
    }
}

mg_tensor *mg_tensor_expand(mg_tensor *a, const size_t *shape, int ndim) {
    if (!a || !shape) return null_input("expand");
    size_t out[MG_MAX_DIMS];
    int n;
    if (ndim < a->ndim || ndim > MG_MAX_DIMS) {
        FAIL(MG_ERR_ARG, "expand: cannot expand %d dimensions to %d", a->ndim, ndim);
        return NULL;
    }
    if (!broadcast_shape(a->shape, a->ndim, shape, ndim, out, &n, "expand")) return NULL;
    for (int d = 0; d < n; d++)
        if (out[d] != shape[d]) {
            char s1[96], s2[96];
            FAIL(MG_ERR_ARG, "expand: shape %s cannot be expanded to %s", shape_str(a->shape, a->ndim, s1, sizeof s1),
                 shape_str(shape, ndim, s2, sizeof s2));
            return NULL;
        }
    mg_tensor *v = node_view(a, shape, ndim, "expand");
    if (!v) return NULL;
    broadcast_strides(a, ndim, shape, v->gstrides);
    for (int d = 0; d < ndim; d++) {
        int s = d - (ndim - a->ndim);
        v->strides[d] = s < 0 || (a->shape[s] == 1 && shape[d] != 1) ? 0 : a->strides[s];
    }
    return view_done(v, a);
}

/* A contiguous copy of a with the given shape (same numel) and dtype: its gradient maps one to one. */
static mg_tensor *copy_node(mg_tensor *a, const size_t *shape, int ndim, mg_dtype dtype, const char *func) {
    mg_tensor *v = node_new(shape, ndim, dtype, 0, func);
    if (!v) return NULL;
    if (dtype == MG_FLOAT64) {
        gather(a, v->storage->data);
    } else {
        double *tmp;
        const double *x = as_doubles(a, &tmp);
        if (!x) {
            mg_tensor_release(v);
            return NULL;
        }
        float *y = v->storage->data;
        for (size_t i = 0; i < v->numel; i++) y[i] = (float)x[i];
        free_tmp(tmp, a);
    }
    contiguous_strides(shape, ndim, v->gstrides);
    return view_done(v, a);
}

mg_tensor *mg_tensor_reshape(mg_tensor *a, const int64_t *shape, int ndim) {
    if (!a || (ndim > 0 && !shape)) return null_input("reshape");
    if (ndim < 0 || ndim > MG_MAX_DIMS) {
        FAIL(MG_ERR_ARG, "reshape: %d dimensions, at most %d are supported", ndim, MG_MAX_DIMS);
        return NULL;
    }
    size_t out[MG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (shape[d] < 0) {
            FAIL(MG_ERR_ARG, "reshape: invalid size %lld in the new shape", (long long)shape[d]);
            return NULL;
        }
        out[d] = (size_t)shape[d];
        if (out[d] && mg__mul_size(known, out[d], &known)) known = SIZE_MAX; /* too many: no match below */
    }
    if (infer >= 0) out[infer] = known ? a->numel / known : 0;
    size_t numel;
    if (!numel_of(out, ndim, &numel) || numel != a->numel || (infer >= 0 && known == 0)) {
        char s1[96], s2[200];
        size_t used = (size_t)snprintf(s2, sizeof s2, "[");
        for (int d = 0; d < ndim && used < sizeof s2; d++)
            used += (size_t)snprintf(s2 + used, sizeof s2 - used, d ? ", %lld" : "%lld", (long long)shape[d]);
        if (used < sizeof s2) snprintf(s2 + used, sizeof s2 - used, "]");
        FAIL(MG_ERR_ARG, "reshape: cannot reshape a tensor of shape %s (%zu elements) into %s",
             shape_str(a->shape, a->ndim, s1, sizeof s1), a->numel, s2);
        return NULL;
    }
    if (!mg_tensor_is_contiguous(a)) return copy_node(a, out, ndim, (mg_dtype)a->dtype, "reshape");
    mg_tensor *v = node_view(a, out, ndim, "reshape");
    if (!v) return NULL;
    contiguous_strides(out, ndim, v->gstrides);
    return view_done(v, a);
}

mg_tensor *mg_tensor_contiguous(mg_tensor *a) {
    if (!a) return null_input("contiguous");
    if (mg_tensor_is_contiguous(a)) return mg_tensor_retain(a);
    return copy_node(a, a->shape, a->ndim, (mg_dtype)a->dtype, "contiguous");
}

mg_tensor *mg_tensor_to_dtype(mg_tensor *a, mg_dtype dtype) {
    if (!a) return null_input("to_dtype");
    if (dtype != MG_FLOAT64 && dtype != MG_FLOAT32) {
        FAIL(MG_ERR_ARG, "to_dtype: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if (a->dtype == dtype) return mg_tensor_retain(a);
    return copy_node(a, a->shape, a->ndim, dtype, "to_dtype");
}

mg_tensor *mg_tensor_detach(mg_tensor *a) {
    if (!a) return null_input("detach");
    mg_tensor *v = node_view(a, a->shape, a->ndim, "detach");
    if (v) memcpy(v->strides, a->strides, sizeof v->strides);
    return v;
}

/* Backward of every view (and of the copies made by reshape, contiguous and to_dtype): v's gradient goes
 * to the input's gradient elements that (goff, gstrides) name. */
static void view_backward(const mg_tensor *v, mg_tensor *a) {
    scatter_add(a->grad, v->goff, v->gstrides, v->grad, 1.0, v->shape, v->ndim);
}

/* ---- elementwise ops: the kernel (tensor_kernels.c) of each op, forward and backward ---- */

static const mg__ew ew_kernel[MG_TENSOR_OP_COUNT] = {
    [MG_TENSOR_OP_ADD] = MG__EW_ADD,
    [MG_TENSOR_OP_SUB] = MG__EW_SUB,
    [MG_TENSOR_OP_MUL] = MG__EW_MUL,
    [MG_TENSOR_OP_DIV] = MG__EW_DIV,
    [MG_TENSOR_OP_ADD_SCALAR] = MG__EW_ADD_C,
    [MG_TENSOR_OP_MUL_SCALAR] = MG__EW_MUL_C,
    [MG_TENSOR_OP_RSUB_SCALAR] = MG__EW_RSUB_C,
    [MG_TENSOR_OP_NEG] = MG__EW_NEG,
    [MG_TENSOR_OP_DIV_SCALAR] = MG__EW_DIV_C,
    [MG_TENSOR_OP_RDIV_SCALAR] = MG__EW_RDIV_C,
    [MG_TENSOR_OP_POW_SCALAR] = MG__EW_POW_C,
    [MG_TENSOR_OP_LOG] = MG__EW_LOG,
    [MG_TENSOR_OP_RELU] = MG__EW_RELU,
    [MG_TENSOR_OP_EXP] = MG__EW_EXP,
    [MG_TENSOR_OP_TANH] = MG__EW_TANH,
    [MG_TENSOR_OP_SIGMOID] = MG__EW_SIGMOID,
};

/* y = x op z over the broadcast shape, x and z row-major in their own shapes. */
static void binary_broadcast(mg_tensor_opcode op, const mg_tensor *a, const mg_tensor *b, const double *x,
                             const double *z, const size_t *shape, int nd, double *y) {
    int64_t sa[MG_MAX_DIMS], sb[MG_MAX_DIMS];
    broadcast_strides(a, nd, shape, sa);
    broadcast_strides(b, nd, shape, sb);
    nditer it;
    nd_init(&it, shape, nd);
    nd_operand(&it, 0, sa, 0);
    nd_operand(&it, 1, sb, 0);
    size_t k = 0;
#define BROADCAST_LOOP(expr)                                         \
    for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {            \
        const double *pa = x + it.off[0], *pb = z + it.off[1];       \
        int64_t ia = it.ist[0], ib = it.ist[1];                      \
        for (size_t j = 0; j < it.inner; j++) {                      \
            double u = pa[(int64_t)j * ia], w = pb[(int64_t)j * ib]; \
            y[k++] = (expr);                                         \
        }                                                            \
    }
    switch (op) {
    case MG_TENSOR_OP_ADD: BROADCAST_LOOP(u + w) break;
    case MG_TENSOR_OP_SUB: BROADCAST_LOOP(u - w) break;
    case MG_TENSOR_OP_MUL: BROADCAST_LOOP(u * w) break;
    default: BROADCAST_LOOP(u / w) break;
    }
#undef BROADCAST_LOOP
}

/* Elementwise ops of two tensors, with broadcasting. */
static mg_tensor *binary(mg_tensor_opcode op, mg_tensor *a, mg_tensor *b, const char *func) {
    if (!a || !b) return null_input(func);
    size_t shape[MG_MAX_DIMS];
    int nd;
    if (!broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, shape, &nd, func)) return NULL;
    mg_dtype dtype = a->dtype == MG_FLOAT32 && b->dtype == MG_FLOAT32 ? MG_FLOAT32 : MG_FLOAT64;
    mg_tensor *out = node_new(shape, nd, dtype, 0, func);
    if (!out) return NULL;
    op_io io;
    double *y = op_begin(&io, out, a, b);
    if (!y) return NULL;
    if (a->numel == out->numel && b->numel == out->numel) /* same shapes: one flat, threaded loop */
        mg__ew_run(ew_kernel[op], out->numel, io.in.x[0], io.in.x[1], 0.0, y);
    else binary_broadcast(op, a, b, io.in.x[0], io.in.x[1], shape, nd, y);
    op_end(&io, out);
    return record(out, op, a, b);
}

mg_tensor *mg_tensor_add(mg_tensor *a, mg_tensor *b) { return binary(MG_TENSOR_OP_ADD, a, b, "add"); }
mg_tensor *mg_tensor_sub(mg_tensor *a, mg_tensor *b) { return binary(MG_TENSOR_OP_SUB, a, b, "sub"); }
mg_tensor *mg_tensor_mul(mg_tensor *a, mg_tensor *b) { return binary(MG_TENSOR_OP_MUL, a, b, "mul"); }
mg_tensor *mg_tensor_div(mg_tensor *a, mg_tensor *b) { return binary(MG_TENSOR_OP_DIV, a, b, "div"); }

/* Gradients of a binary op into one operand (strides dst_st over the output shape), with the other
 * operand's values p (strides p_st) and this one's q (strides q_st) when the formula needs them. */
typedef enum { GRAD_MUL, GRAD_DIV_A, GRAD_DIV_B } grad_kind;

static void binary_grad(grad_kind kind, double *dst, const int64_t *dst_st, const double *g, const double *p,
                        const int64_t *p_st, const double *q, const int64_t *q_st, const size_t *shape, int nd) {
    nditer it;
    nd_init(&it, shape, nd);
    nd_operand(&it, 0, dst_st, 0);
    nd_operand(&it, 1, p_st, 0);
    nd_operand(&it, 2, q_st, 0);
    size_t k = 0;
    for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {
        double *pd = dst + it.off[0];
        const double *pp = p + it.off[1], *pq = q + it.off[2];
        int64_t sd = it.ist[0], sp = it.ist[1], sq = it.ist[2];
        for (size_t j = 0; j < it.inner; j++, k++) {
            double gj = g[k], other = pp[(int64_t)j * sp];
            double *t = pd + (int64_t)j * sd;
            switch (kind) {
            case GRAD_MUL: *t += gj * other; break;                                  /* d(a*b)/da = b */
            case GRAD_DIV_A: *t += gj / other; break;                                /* d(a/b)/da = 1/b */
            case GRAD_DIV_B: *t += -gj * ((pq[(int64_t)j * sq] / other) / other); break; /* -a/b^2, torch's order */
            }
        }
    }
}

/* Backward of add, sub, mul, div: a broadcast operand's gradient sums over the broadcast dims, through
 * its 0 strides. */
static mg_status binary_backward(const mg_tensor *v, mg_tensor *a, mg_tensor *b, int need_a, int need_b) {
    const double *g = v->grad;
    int64_t sa[MG_MAX_DIMS], sb[MG_MAX_DIMS];
    broadcast_strides(a, v->ndim, v->shape, sa);
    broadcast_strides(b, v->ndim, v->shape, sb);
    if (v->op == MG_TENSOR_OP_ADD || v->op == MG_TENSOR_OP_SUB) {
        if (need_a) scatter_add(a->grad, 0, sa, g, 1.0, v->shape, v->ndim);
        if (need_b) scatter_add(b->grad, 0, sb, g, v->op == MG_TENSOR_OP_ADD ? 1.0 : -1.0, v->shape, v->ndim);
        return MG_OK;
    }
    reads in;
    if (!reads_get(&in, a, b, NULL)) return backward_nomem();
    const double *x = in.x[0], *z = in.x[1];
    if (v->op == MG_TENSOR_OP_MUL) {
        if (need_a) binary_grad(GRAD_MUL, a->grad, sa, g, z, sb, x, sa, v->shape, v->ndim);
        if (need_b) binary_grad(GRAD_MUL, b->grad, sb, g, x, sa, z, sb, v->shape, v->ndim);
    } else {
        if (need_a) binary_grad(GRAD_DIV_A, a->grad, sa, g, z, sb, x, sa, v->shape, v->ndim);
        if (need_b) binary_grad(GRAD_DIV_B, b->grad, sb, g, z, sb, x, sa, v->shape, v->ndim);
    }
    reads_free(&in);
    return MG_OK;
}

/* Unary ops and ops with a plain double: same shape out, one flat loop. */
static mg_tensor *unary(mg_tensor_opcode op, mg_tensor *a, double c, const char *func) {
    if (!a) return null_input(func);
    mg_tensor *out = node_new(a->shape, a->ndim, (mg_dtype)a->dtype, 0, func);
    if (!out) return NULL;
    op_io io;
    double *y = op_begin(&io, out, a, NULL);
    if (!y) return NULL;
    mg__ew_run(ew_kernel[op], a->numel, io.in.x[0], NULL, c, y);
    op_end(&io, out);
    out->c = c;
    return record(out, op, a, NULL);
}

mg_tensor *mg_tensor_add_scalar(mg_tensor *a, double c) { return unary(MG_TENSOR_OP_ADD_SCALAR, a, c, "add"); }
mg_tensor *mg_tensor_mul_scalar(mg_tensor *a, double c) { return unary(MG_TENSOR_OP_MUL_SCALAR, a, c, "mul"); }
mg_tensor *mg_tensor_rsub_scalar(double c, mg_tensor *a) { return unary(MG_TENSOR_OP_RSUB_SCALAR, a, c, "sub"); }
mg_tensor *mg_tensor_div_scalar(mg_tensor *a, double c) { return unary(MG_TENSOR_OP_DIV_SCALAR, a, c, "div"); }
mg_tensor *mg_tensor_rdiv_scalar(double c, mg_tensor *a) { return unary(MG_TENSOR_OP_RDIV_SCALAR, a, c, "div"); }
mg_tensor *mg_tensor_pow_scalar(mg_tensor *a, double c) { return unary(MG_TENSOR_OP_POW_SCALAR, a, c, "pow"); }
mg_tensor *mg_tensor_neg(mg_tensor *a) { return unary(MG_TENSOR_OP_NEG, a, 0.0, "neg"); }
mg_tensor *mg_tensor_relu(mg_tensor *a) { return unary(MG_TENSOR_OP_RELU, a, 0.0, "relu"); }
mg_tensor *mg_tensor_exp(mg_tensor *a) { return unary(MG_TENSOR_OP_EXP, a, 0.0, "exp"); }
mg_tensor *mg_tensor_log(mg_tensor *a) { return unary(MG_TENSOR_OP_LOG, a, 0.0, "log"); }
mg_tensor *mg_tensor_tanh(mg_tensor *a) { return unary(MG_TENSOR_OP_TANH, a, 0.0, "tanh"); }
mg_tensor *mg_tensor_sigmoid(mg_tensor *a) { return unary(MG_TENSOR_OP_SIGMOID, a, 0.0, "sigmoid"); }

/* Backward of the unary and _C ops (formulas in tensor_kernels.c, threaded when big): relu, exp, tanh and
 * sigmoid use their output y; rdiv, pow and log their input x; the others neither. */
static mg_status unary_backward(const mg_tensor *v, mg_tensor *a) {
    int op = v->op, uses_x = op == MG_TENSOR_OP_RDIV_SCALAR || op == MG_TENSOR_OP_POW_SCALAR || op == MG_TENSOR_OP_LOG;
    int uses_y = op == MG_TENSOR_OP_RELU || op == MG_TENSOR_OP_EXP || op == MG_TENSOR_OP_TANH ||
                 op == MG_TENSOR_OP_SIGMOID;
    if (op == MG_TENSOR_OP_POW_SCALAR && v->c == 0.0)
        return MG_OK; /* x ** 0 is 1 everywhere: PyTorch masks the 0 * inf */
    reads in;
    if (!reads_get(&in, uses_x ? a : NULL, uses_y ? v : NULL, NULL)) return backward_nomem();
    mg__ew_backward(ew_kernel[op], v->numel, v->grad, in.x[0], in.x[1], v->c, a->grad);
    reads_free(&in);
    return MG_OK;
}

/* ---- matmul ---- */

/* The operand of a matmul as doubles with element strides: the storage itself for float64 (any layout:
 * the gemm reads through strides, so a transposed weight costs no copy), else a contiguous copy. */
typedef struct {
    const double *data;
    const int64_t *strides;
    int64_t contiguous[MG_MAX_DIMS];
    double *tmp;
} operand;

static int operand_get(operand *op, const mg_tensor *t) {
    op->tmp = NULL;
    if (t->dtype == MG_FLOAT64) {
        op->data = elem_ptr(t);
        op->strides = t->strides;
        return 1;
    }
    if (!(op->data = as_doubles(t, &op->tmp))) return 0;
    contiguous_strides(t->shape, t->ndim, op->contiguous);
    op->strides = op->contiguous;
    return 1;
}

/* Both operands of a matmul, or neither (0, the message set). */
static int operands_get(operand *A, operand *B, const mg_tensor *a, const mg_tensor *b) {
    if (!operand_get(A, a)) return 0;
    if (operand_get(B, b)) return 1;
    free_tmp(A->tmp, a);
    return 0;
}

/* Batch geometry of out = a @ b, both with >= 2 dims: batch shape and, per operand, the strides that
 * step over its batch dims in its data (sa, sb) and in its row-major gradient (ga, gb). */
typedef struct {
    int nb;
    size_t batch[MG_MAX_DIMS], count, n, k, m;
    int64_t sa[MG_MAX_DIMS], sb[MG_MAX_DIMS], ga[MG_MAX_DIMS], gb[MG_MAX_DIMS];
} mm_geometry;

static void mm_batch_strides(const mg_tensor *t, const int64_t *data_strides, const mm_geometry *g, int64_t *s,
                             int64_t *gs) {
    int64_t contiguous[MG_MAX_DIMS];
    contiguous_strides(t->shape, t->ndim, contiguous);
    int tb = t->ndim - 2;
    for (int d = 0; d < g->nb; d++) {
        int src = d - (g->nb - tb);
        int broadcast = src < 0 || (t->shape[src] == 1 && g->batch[d] != 1);
        s[d] = broadcast ? 0 : data_strides[src];
        gs[d] = broadcast ? 0 : contiguous[src];
    }
}

/* offsets of batch item i in a's and b's data and gradients */
static void mm_offsets(const mm_geometry *g, size_t i, const int64_t *sa, const int64_t *sb, int64_t *oa, int64_t *ob,
                       int64_t *oga, int64_t *ogb) {
    *oa = *ob = *oga = *ogb = 0;
    for (int d = g->nb - 1; d >= 0; d--) {
        size_t idx = i % g->batch[d];
        i /= g->batch[d];
        *oa += (int64_t)idx * sa[d];
        *ob += (int64_t)idx * sb[d];
        *oga += (int64_t)idx * g->ga[d];
        *ogb += (int64_t)idx * g->gb[d];
    }
}

static int mm_geometry_of(const mg_tensor *a, const mg_tensor *b, mm_geometry *g, size_t *out_shape, int *out_nd) {
    g->n = a->shape[a->ndim - 2];
    g->k = a->shape[a->ndim - 1];
    g->m = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != g->k) {
        char s1[96], s2[96];
        FAIL(MG_ERR_ARG, "matmul: shapes %s and %s do not match (%zu columns against %zu rows)",
             shape_str(a->shape, a->ndim, s1, sizeof s1), shape_str(b->shape, b->ndim, s2, sizeof s2), g->k,
             b->shape[b->ndim - 2]);
        return 0;
    }
    if (!broadcast_shape(a->shape, a->ndim - 2, b->shape, b->ndim - 2, g->batch, &g->nb, "matmul")) return 0;
    /* count <= the output's numel, checked by node_new, unless n or m is 0: checked here too */
    g->count = 1;
    for (int d = 0; d < g->nb; d++)
        if (mg__mul_size(g->count, g->batch[d], &g->count)) {
            char s1[96], s2[96];
            FAIL(MG_ERR_ARG, "matmul: the batch dimensions of %s and %s have too many elements",
                 shape_str(a->shape, a->ndim, s1, sizeof s1), shape_str(b->shape, b->ndim, s2, sizeof s2));
            return 0;
        }
    memcpy(out_shape, g->batch, (size_t)g->nb * sizeof *out_shape);
    out_shape[g->nb] = g->n;
    out_shape[g->nb + 1] = g->m;
    *out_nd = g->nb + 2;
    return 1;
}

static mg_tensor *matmul_nd(mg_tensor *a, mg_tensor *b, mg_precision precision) {
    mm_geometry g;
    size_t shape[MG_MAX_DIMS + 2];
    int nd;
    if (!mm_geometry_of(a, b, &g, shape, &nd)) return NULL;
    mg_dtype dtype = a->dtype == MG_FLOAT32 && b->dtype == MG_FLOAT32 ? MG_FLOAT32 : MG_FLOAT64;
    mg_tensor *out = node_new(shape, nd, dtype, 0, "matmul");
    if (!out) return NULL;
    operand A, B;
    double *ty = NULL, *y = NULL;
    if (!operands_get(&A, &B, a, b)) {
        mg_tensor_release(out);
        return NULL;
    }
    if (!(y = output_doubles(out, &ty))) {
        free_tmp(A.tmp, a);
        free_tmp(B.tmp, b);
        mg_tensor_release(out);
        return NULL;
    }
    memset(y, 0, out->numel * sizeof *y);
    mg_status status = MG_OK;
    int64_t sa[MG_MAX_DIMS], sb[MG_MAX_DIMS];
    mm_batch_strides(a, A.strides, &g, sa, g.ga);
    mm_batch_strides(b, B.strides, &g, sb, g.gb);
    /* y[i] (n x m) = a[i] (n x k) @ b[i] (k x m), for each batch item i */
    for (size_t i = 0; i < g.count && status == MG_OK; i++) {
        int64_t oa, ob, oga, ogb;
        mm_offsets(&g, i, sa, sb, &oa, &ob, &oga, &ogb);
        status = mg__tensor_gemm(precision, g.n, g.m, g.k, A.data + oa, A.strides[a->ndim - 2], A.strides[a->ndim - 1],
                                 B.data + ob, B.strides[b->ndim - 2], B.strides[b->ndim - 1], y + i * g.n * g.m, g.m);
    }
    free_tmp(A.tmp, a);
    free_tmp(B.tmp, b);
    finish_output(out, ty);
    if (status != MG_OK) {
        mg_tensor_release(out);
        return NULL;
    }
    out->dim = (int)precision; /* for the backward */
    return record(out, MG_TENSOR_OP_MATMUL, a, b);
}

mg_tensor *mg_tensor_matmul(mg_tensor *a, mg_tensor *b) { return mg_tensor_matmul_prec(a, b, MG_PRECISION_FAST); }

mg_tensor *mg_tensor_matmul_prec(mg_tensor *a, mg_tensor *b, mg_precision precision) {
    if (!a || !b) return null_input("matmul");
    if ((unsigned)precision >= MG_PRECISION_COUNT) {
        FAIL(MG_ERR_ARG, "matmul: unknown precision %d (expected MG_PRECISION_EXACT or MG_PRECISION_FAST)",
             (int)precision);
        return NULL;
    }
    if (a->ndim == 0 || b->ndim == 0) {
        FAIL(MG_ERR_ARG, "matmul: both operands need at least 1 dimension, got %d and %d", a->ndim, b->ndim);
        return NULL;
    }
    if (a->ndim >= 2 && b->ndim >= 2) return matmul_nd(a, b, precision);
    /* a vector is a 1 x k row on the left, a k x 1 column on the right; that dim is dropped afterwards.
     * Done with reshape views, so autograd needs nothing more. */
    int64_t row[2] = {1, (int64_t)a->shape[0]}, col[2] = {(int64_t)b->shape[0], 1};
    mg_tensor *a2 = a->ndim == 1 ? mg_tensor_reshape(a, row, 2) : mg_tensor_retain(a);
    mg_tensor *b2 = b->ndim == 1 ? mg_tensor_reshape(b, col, 2) : mg_tensor_retain(b);
    mg_tensor *r = a2 && b2 ? matmul_nd(a2, b2, precision) : NULL;
    mg_tensor *result = NULL;
    if (r) {
        int64_t shape[MG_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < r->ndim; d++) {
            if (a->ndim == 1 && d == r->ndim - 2) continue;
            if (b->ndim == 1 && d == r->ndim - 1) continue;
            shape[nd++] = (int64_t)r->shape[d];
        }
        result = mg_tensor_reshape(r, shape, nd);
    }
    mg_tensor_release(r);
    mg_tensor_release(a2);
    mg_tensor_release(b2);
    return result;
}

/* Backward of matmul_nd (the vector cases are reshape views around it): out[i] = a[i] @ b[i], so
 * da[i] += dout[i] @ b[i]^T and db[i] += a[i]^T @ dout[i]. */
static mg_status matmul_backward(const mg_tensor *v, mg_tensor *a, mg_tensor *b, int need_a, int need_b) {
    mm_geometry geo;
    size_t shape[MG_MAX_DIMS + 2];
    int nd;
    mm_geometry_of(a, b, &geo, shape, &nd);
    operand A, B;
    if (!operands_get(&A, &B, a, b)) return backward_nomem();
    int64_t sa[MG_MAX_DIMS], sb[MG_MAX_DIMS];
    mm_batch_strides(a, A.strides, &geo, sa, geo.ga);
    mm_batch_strides(b, B.strides, &geo, sb, geo.gb);
    int64_t ra = A.strides[a->ndim - 2], ca = A.strides[a->ndim - 1];
    int64_t rb = B.strides[b->ndim - 2], cb = B.strides[b->ndim - 1];
    mg_status status = MG_OK;
    mg_precision precision = (mg_precision)v->dim;
    for (size_t i = 0; i < geo.count && status == MG_OK; i++) {
        int64_t oa, ob, oga, ogb;
        mm_offsets(&geo, i, sa, sb, &oa, &ob, &oga, &ogb);
        const double *gi = v->grad + i * geo.n * geo.m;
        if (need_a) /* (n x m) @ (m x k): b^T read through swapped strides */
            status = mg__tensor_gemm(precision, geo.n, geo.k, geo.m, gi, (int64_t)geo.m, 1, B.data + ob, cb, rb,
                                     a->grad + oga, geo.k);
        if (need_b && status == MG_OK) /* (k x n) @ (n x m) */
            status = mg__tensor_gemm(precision, geo.k, geo.m, geo.n, A.data + oa, ca, ra, gi, (int64_t)geo.m, 1,
                                     b->grad + ogb, geo.m);
    }
    free_tmp(A.tmp, a);
    free_tmp(B.tmp, b);
    return status;
}

/* ---- reductions: a is seen as (outer, n, inner) around the reduced dim ---- */

static int reduce_geometry(const mg_tensor *a, int dim, int keepdim, size_t *outer, size_t *n, size_t *inner,
                           size_t *shape, int *nd, int *d_out, const char *func) {
    if (dim == MG_DIM_ALL) {
        *outer = *inner = 1;
        *n = a->numel;
        *nd = keepdim ? a->ndim : 0;
        for (int d = 0; d < *nd; d++) shape[d] = 1;
        *d_out = MG_DIM_ALL;
        return 1;
    }
    int d = norm_dim(dim, a->ndim, func);
    if (d < 0) return 0;
    *outer = *inner = 1;
    for (int s = 0; s < d; s++) *outer *= a->shape[s];
    for (int s = d + 1; s < a->ndim; s++) *inner *= a->shape[s];
    *n = a->shape[d];
    int k = 0;
    for (int s = 0; s < a->ndim; s++) {
        if (s != d) shape[k++] = a->shape[s];
        else if (keepdim) shape[k++] = 1;
    }
    *nd = k;
    *d_out = d;
    return 1;
}

static void reduce_geometry_again(const mg_tensor *out, const mg_tensor *a, size_t *outer, size_t *n, size_t *inner) {
    size_t shape[MG_MAX_DIMS];
    int nd, d;
    reduce_geometry(a, out->dim, 0, outer, n, inner, shape, &nd, &d, "backward");
}

/* y (outer x inner) = the sum, mean or max of x (outer x n x inner) over n; for max with `index`, the
 * position of each chosen element there too. */
static void reduce_rows(mg_tensor_opcode op, const double *x, size_t outer, size_t n, size_t inner, double *y,
                        size_t *index) {
    for (size_t o = 0; o < outer; o++) {
        const double *xo = x + o * n * inner;
        double *yo = y + o * inner;
        if (op == MG_TENSOR_OP_MAX) {
            for (size_t i = 0; i < inner; i++) {
                double best = xo[i];
                size_t at = 0;
                for (size_t j = 1; j < n; j++) {
                    double v = xo[j * inner + i];
                    if (!isnan(best) && (isnan(v) || v > best)) best = v, at = j;
                }
                yo[i] = best;
                if (index) index[o * inner + i] = at;
            }
        } else if (inner == 1) {
            yo[0] = mg__sum(xo, n);
        } else {
            for (size_t i = 0; i < inner; i++) yo[i] = 0.0;
            for (size_t j = 0; j < n; j++)
                for (size_t i = 0; i < inner; i++) yo[i] += xo[j * inner + i];
        }
        if (op == MG_TENSOR_OP_MEAN)
            for (size_t i = 0; i < inner; i++) yo[i] /= (double)n;
    }
}

static mg_tensor *reduce(mg_tensor_opcode op, mg_tensor *a, int dim, int keepdim, const char *func) {
    if (!a) return null_input(func);
    size_t outer, n, inner, shape[MG_MAX_DIMS];
    int nd, d;
    if (!reduce_geometry(a, dim, keepdim, &outer, &n, &inner, shape, &nd, &d, func)) return NULL;
    if (op == MG_TENSOR_OP_MAX && n == 0) {
        FAIL(MG_ERR_ARG, "max: cannot take the max of an empty dimension");
        return NULL;
    }
    mg_tensor *out = node_new(shape, nd, (mg_dtype)a->dtype, 0, func);
    if (!out) return NULL;
    out->dim = d;
    out->keepdim = keepdim;
    int want_index = op == MG_TENSOR_OP_MAX && d != MG_DIM_ALL;
    if (want_index) {
        out->aux_count = out->numel;
        if (!(out->aux = mg__alloc(aux_bytes(out)))) {
            mg_tensor_release(out);
            return nomem(func);
        }
    }
    op_io io;
    double *y = op_begin(&io, out, a, NULL);
    if (!y) return NULL;
    reduce_rows(op, io.in.x[0], outer, n, inner, y, want_index ? out->aux : NULL);
    op_end(&io, out);
    record(out, op, a, NULL);
    if (want_index && !out->requires_grad) { /* the indices only serve backward */
        mg__free(out->aux, aux_bytes(out));
        out->aux = NULL;
        out->aux_count = 0;
    }
    return out;
}

mg_tensor *mg_tensor_sum(mg_tensor *a, int dim, int keepdim) {
    return reduce(MG_TENSOR_OP_SUM, a, dim, keepdim, "sum");
}
mg_tensor *mg_tensor_mean(mg_tensor *a, int dim, int keepdim) {
    return reduce(MG_TENSOR_OP_MEAN, a, dim, keepdim, "mean");
}
mg_tensor *mg_tensor_max(mg_tensor *a, int dim, int keepdim) {
    return reduce(MG_TENSOR_OP_MAX, a, dim, keepdim, "max");
}

/* Backward of max over everything: the gradient is shared evenly by the elements equal to the max
 * (torch's evenly_distribute). */
static mg_status max_all_backward(const mg_tensor *v, mg_tensor *a) {
    reads in;
    if (!reads_get(&in, a, v, NULL)) return backward_nomem();
    const double *x = in.x[0];
    double m = in.x[1][0], g = v->grad[0];
    size_t ties = 0;
    for (size_t i = 0; i < a->numel; i++) ties += x[i] == m || (isnan(x[i]) && isnan(m));
    for (size_t i = 0; i < a->numel; i++)
        if (x[i] == m || (isnan(x[i]) && isnan(m))) a->grad[i] += g / (double)ties;
    reads_free(&in);
    return MG_OK;
}

/* Backward of sum, mean and max: each output's gradient to the elements it came from. */
static mg_status reduce_backward(const mg_tensor *v, mg_tensor *a) {
    if (v->op == MG_TENSOR_OP_MAX && v->dim == MG_DIM_ALL) return max_all_backward(v, a);
    const double *g = v->grad;
    size_t outer, len, inner;
    reduce_geometry_again(v, a, &outer, &len, &inner);
    if (v->op == MG_TENSOR_OP_MAX) { /* to the element whose index max returned */
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++)
                a->grad[(o * len + v->aux[o * inner + i]) * inner + i] += g[o * inner + i];
        return MG_OK;
    }
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < len; j++) {
            double *da = a->grad + (o * len + j) * inner;
            const double *go = g + o * inner;
            if (v->op == MG_TENSOR_OP_MEAN) /* torch divides: grad / n */
                for (size_t i = 0; i < inner; i++) da[i] += go[i] / (double)len;
            else
                for (size_t i = 0; i < inner; i++) da[i] += go[i];
        }
    return MG_OK;
}

/* The index of the first maximum (nan wins, as max): float64 numbers, not part of any graph. */
mg_tensor *mg_tensor_argmax(mg_tensor *a, int dim, int keepdim) {
    if (!a) return null_input("argmax");
    size_t outer, n, inner, shape[MG_MAX_DIMS];
    int nd, d;
    if (!reduce_geometry(a, dim, keepdim, &outer, &n, &inner, shape, &nd, &d, "argmax")) return NULL;
    if (n == 0) {
        FAIL(MG_ERR_ARG, "argmax: cannot take the argmax of an empty dimension");
        return NULL;
    }
    mg_tensor *out = node_new(shape, nd, MG_FLOAT64, 0, "argmax");
    if (!out) return NULL;
    double *tx, *y = out->storage->data;
    const double *x = as_doubles(a, &tx);
    if (!x) {
        mg_tensor_release(out);
        return NULL;
    }
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const double *xo = x + o * n * inner + i;
            double best = xo[0];
            size_t at = 0;
            for (size_t j = 1; j < n; j++)
                if (!isnan(best) && (isnan(xo[j * inner]) || xo[j * inner] > best)) best = xo[j * inner], at = j;
            y[o * inner + i] = (double)at;
        }
    free_tmp(tx, a);
    return out;
}

/* log_softmax along dim: y = x - max - log(sum(exp(x - max))), the max keeping exp from overflowing. */
mg_tensor *mg_tensor_log_softmax(mg_tensor *a, int dim) {
    if (!a) return null_input("log_softmax");
    size_t outer, n, inner, shape[MG_MAX_DIMS];
    int nd, d;
    if (dim == MG_DIM_ALL) { /* a dim is required (as torch): -1000 is just out of range here */
        norm_dim(dim, a->ndim, "log_softmax");
        return NULL;
    }
    if (!reduce_geometry(a, dim, 1, &outer, &n, &inner, shape, &nd, &d, "log_softmax")) return NULL;
    mg_tensor *out = node_new(a->shape, a->ndim, (mg_dtype)a->dtype, 0, "log_softmax");
    if (!out) return NULL;
    out->dim = d;
    op_io io;
    double *y = op_begin(&io, out, a, NULL);
    if (!y) return NULL;
    const double *x = io.in.x[0];
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const double *xo = x + o * n * inner + i;
            double *yo = y + o * n * inner + i;
            double m = -INFINITY, s = 0.0;
            for (size_t j = 0; j < n; j++) m = xo[j * inner] > m || isnan(xo[j * inner]) ? xo[j * inner] : m;
            if (isinf(m)) m = 0.0; /* all -inf (or +inf): no shift, as torch */
            for (size_t j = 0; j < n; j++) s += exp(xo[j * inner] - m);
            double lse = log(s);
            for (size_t j = 0; j < n; j++) yo[j * inner] = xo[j * inner] - m - lse;
        }
    op_end(&io, out);
    return record(out, MG_TENSOR_OP_LOG_SOFTMAX, a, NULL);
}

/* Backward of log_softmax: dx = g - exp(y) * sum(g) along dim. */
static mg_status log_softmax_backward(const mg_tensor *v, mg_tensor *a) {
    const double *g = v->grad;
    size_t outer, len, inner;
    reduce_geometry_again(v, a, &outer, &len, &inner);
    reads in;
    if (!reads_get(&in, v, NULL, NULL)) return backward_nomem();
    const double *y = in.x[0];
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t base = o * len * inner + i;
            double s = 0.0;
            for (size_t j = 0; j < len; j++) s += g[base + j * inner];
            for (size_t j = 0; j < len; j++)
                a->grad[base + j * inner] += g[base + j * inner] - exp(y[base + j * inner]) * s;
        }
    reads_free(&in);
    return MG_OK;
}

/* ---- in place (not recorded) ---- */

static int writable(const mg_tensor *t, const char *func) {
    for (int d = 0; d < t->ndim; d++)
        if (t->strides[d] == 0 && t->shape[d] > 1) {
            FAIL(MG_ERR_ARG, "%s: cannot write into a broadcast (expanded) view", func);
            return 0;
        }
    return 1;
}

mg_status mg_tensor_add_(mg_tensor *a, mg_tensor *b, double alpha) {
    if (!a || !b) return FAIL(MG_ERR_NULL, "add_: a tensor is NULL");
    size_t shape[MG_MAX_DIMS];
    int nd;
    if (!broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, shape, &nd, "add_")) return mg__status();
    if (nd != a->ndim || memcmp(shape, a->shape, (size_t)nd * sizeof *shape) != 0) {
        char s1[96], s2[96];
        return FAIL(MG_ERR_ARG, "add_: shape %s cannot be broadcast to %s", shape_str(b->shape, b->ndim, s1, sizeof s1),
                    shape_str(a->shape, a->ndim, s2, sizeof s2));
    }
    if (!writable(a, "add_")) return mg__status();
    double *tb;
    const double *z = as_doubles(b, &tb); /* a copy when b shares a's storage: no aliasing surprises */
    if (!z) return mg__status();
    int64_t sb[MG_MAX_DIMS];
    broadcast_strides(b, nd, shape, sb);
    nditer it;
    nd_init(&it, a->shape, a->ndim);
    nd_operand(&it, 0, a->strides, (int64_t)a->offset);
    nd_operand(&it, 1, sb, 0);
    for (size_t o = 0; o < it.outer; o++, nd_next(&it)) {
        const double *pb = z + it.off[1];
        if (a->dtype == MG_FLOAT64) {
            double *pa = (double *)a->storage->data + it.off[0];
            for (size_t j = 0; j < it.inner; j++) pa[(int64_t)j * it.ist[0]] += alpha * pb[(int64_t)j * it.ist[1]];
        } else {
            float *pa = (float *)a->storage->data + it.off[0];
            for (size_t j = 0; j < it.inner; j++) {
                float *p = pa + (int64_t)j * it.ist[0];
                *p = (float)((double)*p + alpha * pb[(int64_t)j * it.ist[1]]);
            }
        }
    }
    free_tmp(tb, b);
    return MG_OK;
}

mg_status mg_tensor_fill_(mg_tensor *a, double value) {
    if (!a) return FAIL(MG_ERR_NULL, "fill_: the tensor is NULL");
    nditer it;
    nd_init(&it, a->shape, a->ndim);
    nd_operand(&it, 0, a->strides, (int64_t)a->offset);
    for (size_t o = 0; o < it.outer; o++, nd_next(&it))
        for (size_t j = 0; j < it.inner; j++) {
            int64_t at = it.off[0] + (int64_t)j * it.ist[0];
            if (a->dtype == MG_FLOAT64) ((double *)a->storage->data)[at] = value;
            else ((float *)a->storage->data)[at] = (float)value;
        }
    return MG_OK;
}

/* ---- backward ---- */

/* Passes v's gradient (v->grad, row-major) to its inputs' gradients: each op family's backward sits
 * after its forward above. */
static mg_status backward_node(mg_tensor *v) {
    mg_tensor *a = v->in[0], *b = v->in[1];
    int need_a = a && a->requires_grad, need_b = b && b->requires_grad;
    if (!need_a && !need_b) return MG_OK; /* requires_grad was switched off since: nothing to feed */
    switch ((mg_tensor_opcode)v->op) {
    case MG_TENSOR_OP_LEAF:
    case MG_TENSOR_OP_COUNT: return MG_OK;
    case MG_TENSOR_OP_VIEW: view_backward(v, a); return MG_OK;
    case MG_TENSOR_OP_ADD:
    case MG_TENSOR_OP_SUB:
    case MG_TENSOR_OP_MUL:
    case MG_TENSOR_OP_DIV: return binary_backward(v, a, b, need_a, need_b);
    case MG_TENSOR_OP_ADD_SCALAR:
    case MG_TENSOR_OP_MUL_SCALAR:
    case MG_TENSOR_OP_RSUB_SCALAR:
    case MG_TENSOR_OP_NEG:
    case MG_TENSOR_OP_DIV_SCALAR:
    case MG_TENSOR_OP_RDIV_SCALAR:
    case MG_TENSOR_OP_POW_SCALAR:
    case MG_TENSOR_OP_LOG:
    case MG_TENSOR_OP_RELU:
    case MG_TENSOR_OP_EXP:
    case MG_TENSOR_OP_TANH:
    case MG_TENSOR_OP_SIGMOID: return unary_backward(v, a);
    case MG_TENSOR_OP_MATMUL: return matmul_backward(v, a, b, need_a, need_b);
    case MG_TENSOR_OP_SUM:
    case MG_TENSOR_OP_MEAN:
    case MG_TENSOR_OP_MAX: return reduce_backward(v, a);
    case MG_TENSOR_OP_LOG_SOFTMAX: return log_softmax_backward(v, a);
    }
    return MG_OK;
}

/* Every node reachable from root through inputs that require grad, root first and each node before its
 * inputs: Kahn's algorithm as in graph.c (pass 1 counts parent edges, pass 2 releases a node once all its
 * parents are done), on one array, no recursion. */
typedef struct {
    mg_tensor **items;
    size_t count, capacity;
} tensor_list;

static int list_grow(tensor_list *l) {
    size_t capacity = 64, bytes;
    if ((l->capacity && mg__mul_size(l->capacity, 2, &capacity)) || mg__mul_size(capacity, sizeof *l->items, &bytes))
        return 0;
    mg_tensor **items = mg__realloc(l->items, l->capacity * sizeof *items, bytes);
    if (!items) return 0;
    l->items = items;
    l->capacity = capacity;
    return 1;
}

static mg_status reverse_topo(mg_tensor *root, tensor_list *out) {
    tensor_list l = {0};
    if (!list_grow(&l)) return FAIL(MG_ERR_NOMEM, "backward: out of memory ordering the graph");
    l.items[l.count++] = root;
    for (size_t i = 0; i < l.count; i++) {
        mg_tensor *node = l.items[i];
        for (uint32_t k = 0; k < node->n_in; k++) {
            mg_tensor *input = node->in[k];
            if (!input->requires_grad || input->pending++ != 0) continue;
            if (l.count == l.capacity && !list_grow(&l)) {
                input->pending = 0;
                for (size_t j = 0; j < l.count; j++) l.items[j]->pending = 0;
                mg__free(l.items, l.capacity * sizeof *l.items);
                return FAIL(MG_ERR_NOMEM, "backward: out of memory ordering the graph");
            }
            l.items[l.count++] = input;
        }
    }
    size_t done = 0, top = l.capacity;
    l.items[--top] = root;
    while (top < l.capacity) {
        mg_tensor *node = l.items[top++];
        l.items[done++] = node;
        for (uint32_t k = 0; k < node->n_in; k++) {
            mg_tensor *input = node->in[k];
            if (input->requires_grad && --input->pending == 0) l.items[--top] = input;
        }
    }
    *out = l;
    return MG_OK;
}

mg_status mg_tensor_backward(mg_tensor *root) {
    if (!root) return FAIL(MG_ERR_NULL, "backward: the tensor is NULL");
    if (root->numel != 1)
        return FAIL(MG_ERR_ARG,
                    "backward: the tensor has %zu elements; backward() needs a single-element "
                    "tensor (call .sum() first)",
                    root->numel);
    if (!root->requires_grad)
        return FAIL(MG_ERR_STATE, "backward: the tensor does not require grad (no input of it does, or it "
                                  "was computed under no_grad)");
    tensor_list order = {0};
    mg_status status = reverse_topo(root, &order);
    if (status != MG_OK) return status;
    /* every gradient buffer first, so running out of memory changes nothing */
    for (size_t i = 0; i < order.count; i++) {
        mg_tensor *node = order.items[i];
        int fresh = !node->grad;
        if (fresh && !(node->grad = mg__alloc(grad_bytes(node)))) {
            mg__free(order.items, order.capacity * sizeof *order.items);
            return FAIL(MG_ERR_NOMEM, "backward: out of memory for gradients");
        }
        /* a leaf accumulates across passes; an intermediate node holds this pass's gradient */
        if (fresh || node->op != MG_TENSOR_OP_LEAF) memset(node->grad, 0, grad_bytes(node));
    }
    root->grad[0] += 1.0;
    mg__hold_compute_hooks(+1); /* gradients are shared state: no other thread may run meanwhile */
    for (size_t i = 0; i < order.count && status == MG_OK; i++)
        if (order.items[i]->op != MG_TENSOR_OP_LEAF) status = backward_node(order.items[i]);
    mg__hold_compute_hooks(-1);
    mg__free(order.items, order.capacity * sizeof *order.items);
    if (status != MG_OK) return FAIL(status, "backward: out of memory");
    return MG_OK;
}
