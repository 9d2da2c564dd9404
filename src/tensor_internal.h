/* tensor_internal.h: what tensor.c and tensor_kernels.c share. Nothing here is public API. */
#ifndef MG_TENSOR_INTERNAL_H
#define MG_TENSOR_INTERNAL_H

#include "gemm.h"

#include <stddef.h>
#include <stdint.h>

/* The numbers behind one or more tensors: `refs` counts the tensors viewing it. The data follows the
 * header in the same allocation. */
/* The numbers of one or more tensors (views share it). Ours follow the header in one allocation; external
 * ones (mg_tensor_from_external) are memory the caller owns, handed back through release(ctx). */
typedef struct mg__storage {
    void *data;
    size_t nbytes;
    size_t refs;
    void (*release)(void *ctx);
    void *ctx;
} mg__storage;

/* One node of a tensor graph. `shape`/`strides`/`offset` say where its elements sit in `storage` (strides in
 * elements, 0 for a broadcast dimension). `grad` is numel doubles in row-major order, allocated on first
 * use. `pending` counts unprocessed parent edges during a traversal (0 otherwise); `next` links a dead node
 * into the release worklist. Op parameters: `c` (the constant of the _C ops), `dim`/`keepdim`
 * (reductions, log_softmax; matmul keeps its mg_precision in `dim`), `goff`/`gstrides` (views: where element i's
 * gradient goes in the input's row-major gradient), `aux` (max: the index of the chosen element for each output). */
struct mg_tensor {
    mg__storage *storage;
    size_t offset, numel;
    size_t shape[MG_MAX_DIMS];
    int64_t strides[MG_MAX_DIMS];
    int ndim;
    uint8_t dtype, op, requires_grad;
    uint32_t refs, pending, n_in;
    mg_tensor *in[2];
    double *grad;
    double c;
    int dim, keepdim;
    size_t goff;
    int64_t gstrides[MG_MAX_DIMS];
    size_t *aux;
    size_t aux_count;
    void *user;
    mg_tensor *next;
};

/* ---- kernels (tensor_kernels.c) ---- */

/* Runs fn(ctx, begin, end) over [0, n) split across up to mg_get_num_threads() threads, when the total work
 * (n * cost, in rough "additions") is worth it; calls the compute hooks around long runs. fn must touch
 * nothing but raw numbers. */
typedef void (*mg__range_fn)(void *ctx, size_t begin, size_t end);
void mg__parallel_for(size_t n, size_t cost, mg__range_fn fn, void *ctx);
/* +1 / -1: while above 0 in this thread, kernels keep the caller's interpreter lock (backward does). */
void mg__hold_compute_hooks(int delta);

/* C (m x n, row stride ldc) += A (m x k) @ B (k x n), A and B read through element strides (rsa, csa),
 * (rsb, csb): any layout, transposes included. gemm.c's product at the given precision, its parts over the
 * pool when big. */
mg_status mg__tensor_gemm(mg_precision precision, size_t m, size_t n, size_t k, const double *a, int64_t rsa,
                          int64_t csa, const double *b, int64_t rsb, int64_t csb, double *c, size_t ldc);

/* Elementwise kernels on contiguous arrays of n doubles (threaded when big). */
/* clang-format off */
typedef enum {
    MG__EW_ADD, MG__EW_SUB, MG__EW_MUL, MG__EW_DIV,                  /* y = a op b */
    MG__EW_ADD_C, MG__EW_MUL_C, MG__EW_RSUB_C, MG__EW_DIV_C, MG__EW_RDIV_C, MG__EW_POW_C,
    MG__EW_NEG, MG__EW_RELU, MG__EW_EXP, MG__EW_LOG, MG__EW_TANH, MG__EW_SIGMOID,
} mg__ew;
/* clang-format on */
void mg__ew_run(mg__ew op, size_t n, const double *a, const double *b, double c, double *y);
/* The backward of a unary or _C op: dx += g * d(op)/dx, from the input x and/or the output y (either may be
 * NULL when the formula does not use it). */
void mg__ew_backward(mg__ew op, size_t n, const double *g, const double *x, const double *y, double c, double *dx);

#endif
