/* internal.h: what every file of the library may use: errors, allocation, checked size arithmetic, grad
 * mode, the worker pool, and small numeric helpers shared so that every engine computes them alike. It
 * depends on nothing but the public header. What only the value engine needs (the node layout, traversals) is in
 * value_internal.h; tensors have tensor_internal.h. Nothing here is public API. */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include "micrograd.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Checked size arithmetic: *out = a * b (or a + b), nonzero when the exact result does not fit in size_t.
 * The rule for callers: a size that overflows size_t is MG_ERR_ARG (no machine can hold it, so the
 * argument is wrong), with a message naming what is too large; a size that fits but that the allocator
 * refuses is MG_ERR_NOMEM. */
static inline int mg__mul_size(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int mg__add_size(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }

/* The sum of x[0..n) with four partial sums: vectorisable, and more accurate than one long chain. Every
 * contiguous sum of the library goes through it, so equal inputs give equal bits everywhere. */
static inline double mg__sum(const double *x, size_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += x[j];
        s1 += x[j + 1];
        s2 += x[j + 2];
        s3 += x[j + 3];
    }
    for (; j < n; j++) s0 += x[j];
    return (s0 + s1) + (s2 + s3);
}

/* The logistic sigmoid, one formula for the whole library (scalar ops, tensor kernels, layers, losses):
 * 1 / (1 + exp(-x)) for x >= 0 and e / (1 + e) with e = exp(x) below, so exp never overflows and results
 * near 0 keep their precision (within 2 ulp of the exact value everywhere; the single formula
 * 1 / (1 + exp(-x)) of PyTorch's CPU kernel gives 0 below x = -709 where the answer is a subnormal).
 * mg__sigmoid_e takes e = exp(-|x|) computed by the caller: the tensor kernels pass their branch-free,
 * vectorisable exp; the branch is a select, so the loop still vectorises. */
static inline double mg__sigmoid_e(double x, double e) { return (x >= 0.0 ? 1.0 : e) / (1.0 + e); }
static inline double mg__sigmoid(double x) { return mg__sigmoid_e(x, exp(-fabs(x))); }

/* Grad mode (platform.c), read by every op of both engines: nonzero while the calling thread has it off
 * (mg_set_grad_enabled(0)). A plain thread-local read on the hot path; initial-exec, as the value pool's
 * thread state, so that reading it from the shared library costs no __tls_get_addr call. */
#if defined(__GNUC__)
extern _Thread_local int mg__grad_off __attribute__((tls_model("initial-exec")));
#else
extern _Thread_local int mg__grad_off;
#endif

/* The worker pool (platform.c), the one set of threads of the library: tensor kernels and fit both run on
 * it. mg__pool_run calls fn(ctx, part) for every part in [0, parts) and returns when all are done: part 0
 * on the calling thread, part i on worker i (started on first need and kept; MG__MAX_THREADS in all,
 * the caller included). One job at a time: a caller finding the pool busy (another thread's job), or a
 * part no worker could be started for, runs on the calling thread, in order. So a part must not depend
 * on which thread runs it or on another part running at the same time. fn must touch nothing but raw
 * numbers (no values, no errors: mg__fail in a worker sets that worker's message, not the caller's). The
 * thread count to ask for is the caller's choice: mg_get_num_threads() unless overridden.
 * MG__POOL_SPIN: the caller posts its next job within microseconds (fit's steps), so the workers and the
 * caller spin briefly before they sleep; MG__POOL_SLEEP (kernels) sleeps at once (platform.c says why). */
enum { MG__MAX_THREADS = 256 };
typedef void (*mg__part_fn)(void *ctx, size_t part);
typedef enum { MG__POOL_SLEEP = 0, MG__POOL_SPIN } mg__pool_wait;
void mg__pool_run(size_t parts, mg__part_fn fn, void *ctx, mg__pool_wait wait);
/* Where part t of [0, n) cut in `parts` starts: n * t / parts exactly, without forming n * t (which
 * overflows for n above SIZE_MAX / MG__MAX_THREADS). */
static inline size_t mg__part_start(size_t n, size_t t, size_t parts) { return n / parts * t + n % parts * t / parts; }

/* Errors (error.c). mg__fail sets the thread's message and status and returns `status`; the message is
 * formatted like printf. mg__fail_in does the same and records where the failure comes from: value ops
 * and tensor ops say so, so that a NULL operand of their kind can be told apart from an unrelated error.
 * mg__fail_null_in (MG_ERR_NULL, the message given) keeps an earlier error of the same origin that nobody
 * has read yet: the one that made the operand NULL (error.c says why). mg__fail_null(func) is a NULL
 * argument of another kind of call ("func: an operand is NULL"), which never keeps an earlier error.
 * mg__status reads the status without marking it read: for the library's own use. */
typedef enum { MG__ORIGIN_OTHER = 0, MG__ORIGIN_VALUE, MG__ORIGIN_TENSOR } mg__origin;
#if defined(__GNUC__)
#define MG__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MG__PRINTF(f, a)
#endif
mg_status mg__fail(mg_status status, const char *fmt, ...) MG__PRINTF(2, 3);
mg_status mg__fail_in(mg__origin origin, mg_status status, const char *fmt, ...) MG__PRINTF(3, 4);
void *mg__fail_null_in(mg__origin origin, const char *fmt, ...) MG__PRINTF(2, 3);
void *mg__fail_null(const char *func);
mg_status mg__status(void);

/* Names of an enum (one table per enum, beside its code): the index of `name` in names[0..n), or -1 after
 * failing with MG_ERR_ARG naming the value and listing the choices ("unknown optimizer 'x': expected sgd,
 * adam or adamw"; `what` names the enum), or MG_ERR_NULL naming `func` for a NULL name or out (the
 * caller's output, only checked here). Called through MG__RETURN_FROM_NAME, below. */
static inline int mg__name_index(const char *func, const char *what, const char *const *names, int n, const char *name,
                                 const void *out) {
    if (!name || !out) {
        mg__fail(MG_ERR_NULL, "%s: an argument is NULL", func);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) return i;
    char list[160];
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof list; i++) {
        const char *sep = i == 0 ? "" : i + 1 < n ? ", " : " or ";
        int wrote = snprintf(list + at, sizeof list - at, "%s%s", sep, names[i]);
        at += wrote > 0 ? (size_t)wrote : 0;
    }
    mg__fail(MG_ERR_ARG, "unknown %s '%.40s': expected %s", what, name, list);
    return -1;
}

/* The whole body of an <enum>_from_name(name, out) (__func__ names the caller in errors): *out = the value
 * that `name` names in the array `names`, whose entry i names value i % count, then return MG_OK; or return
 * the failure. count is the enum's number of values (a table may list aliases after them, as dtype's does). */
#define MG__RETURN_FROM_NAME(what, names, count, name, out)                                                       \
    do {                                                                                                          \
        int mg__index = mg__name_index(__func__, what, names, (int)(sizeof(names) / sizeof *(names)), name, out); \
        if (mg__index < 0) return mg__status();                                                                   \
        *(out) = mg__index % (count);                                                                             \
        return MG_OK;                                                                                             \
    } while (0)

/* Memory (memory.c). mg__alloc/mg__free go through the user's allocator; mg__alloc_array/mg_free carry
 * their size in a header so callers can free without knowing it. Value nodes come from the pool, which
 * sees them as blocks of MG__VALUE_BYTES (64-byte aligned) and never looks inside one that is alive.
 * The input arrays of neuron nodes (mg_affine) come from the pool too, by size class: mg__inputs_alloc
 * gives room for `count` pointers (NULL when out of memory; count * sizeof(mg_value *) must not overflow),
 * mg__inputs_free takes it back with the same count. */
void *mg__alloc(size_t size);
void mg__free(void *ptr, size_t size);
void *mg__realloc(void *ptr, size_t old_size, size_t new_size);
void *mg__alloc_array(size_t size);
enum { MG__VALUE_BYTES = 64 };
mg_value *mg__value_alloc(void);
void mg__value_dealloc(mg_value *v);
mg_value **mg__inputs_alloc(size_t count);
void mg__inputs_free(mg_value **inputs, size_t count);

/* One allocation carved into named parts (llm.c's pattern): a header of `header` bytes (the struct that
 * owns the block, at its start), then each part, `count` elements of `size` bytes, starting at a multiple
 * of MG__CARVE_ALIGN. The parts are listed once, in a table of MG__PART(pointer, count); mg__carve_size
 * gives the bytes (nonzero when they overflow size_t: the caller fails with MG_ERR_ARG naming what is too
 * large), mg__carve allocates them zeroed through mg__alloc (NULL when out of memory) and points each
 * part's pointer into the block. The owner keeps the byte count for mg__free. */
enum { MG__CARVE_ALIGN = 16 }; /* malloc's own (max_align_t's) on the targets we build */
typedef struct {
    void *where; /* the address of the part's pointer (a T **) */
    size_t count, size;
} mg__part;
#define MG__PART(ptr, n) ((mg__part){&(ptr), (n), sizeof *(ptr)})
/* n rows of `row` elements (row a small constant: n * row is checked as count * size) */
#define MG__PART_ROWS(ptr, n, row) ((mg__part){&(ptr), (n), (row) * sizeof *(ptr)})

static inline int mg__carve_size(size_t header, const mg__part *parts, size_t n, size_t *bytes) {
    size_t at = header, part;
    for (size_t i = 0; i < n; i++) {
        if (mg__add_size(at, MG__CARVE_ALIGN - 1, &at) || mg__mul_size(parts[i].count, parts[i].size, &part) ||
            mg__add_size(at - at % MG__CARVE_ALIGN, part, &at))
            return 1;
    }
    *bytes = at ? at : 1;
    return 0;
}

/* `bytes` from mg__carve_size of the same table; the block (header first) or NULL */
static inline void *mg__carve(size_t header, const mg__part *parts, size_t n, size_t bytes) {
    char *base = mg__alloc(bytes);
    if (!base) return NULL;
    memset(base, 0, bytes);
    size_t at = header;
    for (size_t i = 0; i < n; i++) {
        at = (at + MG__CARVE_ALIGN - 1) / MG__CARVE_ALIGN * MG__CARVE_ALIGN;
        void *p = base + at;
        memcpy(parts[i].where, &p, sizeof p); /* a T * has void *'s representation on every target we build */
        at += parts[i].count * parts[i].size;
    }
    return base;
}

/* Live objects other than values, by kind (memory.c owns the counts): each object that holds memory
 * from the allocator adds 1 when made and -1 when freed, so that mg_set_allocator can refuse to change
 * the allocator under it without knowing anything of the layers above. */
typedef enum { MG__LIVE_TENSOR = 0, MG__LIVE_KINDS } mg__live_kind;
void mg__live_add(mg__live_kind kind, int delta);
int64_t mg__live_count(mg__live_kind kind);

#endif
