/* gemm.h: the one matrix product of the library, C += A B, for the tensor engine's matmul and the dense
 * layers of fit and predict. Nothing here is public API.
 *
 * Every element of C starts its sum where `start` says (C's own value, by default) and adds its k products
 * in order of k.
 * MG_PRECISION_EXACT rounds each product and then adds it, the order and rounding of a plain loop, so a
 * dense layer whose C starts at the bias gives micrograd's bits. MG_PRECISION_FAST fuses the multiply and
 * the add (FMA) where the CPU has it. Either way the result depends on the inputs alone: never on the
 * blocking, on how the work is split, or on the thread that runs a part.
 *
 * Callers split the work themselves: C is cut into units (whole micro-tiles of rows, or of columns,
 * whichever way C is longer), and each part of the work is a range of units, run on one thread with
 * scratch of its own. The tensor engine splits over the worker pool by cost (tensor_kernels.c); fit
 * splits each layer's products over its shares (train.c). */
#ifndef MG_GEMM_H
#define MG_GEMM_H

#include "internal.h"

/* Where each element's sum starts: C's own value (C += A B), 0 (C = A B: C is not read), or element j of
 * `row` for every element of column j (C = row + A B: a bias, say). The products are added to it in order
 * of k, starting from 0 giving a plain loop's s = 0; s += a * b. */
typedef enum { MG__GEMM_FROM_C = 0, MG__GEMM_FROM_ZERO, MG__GEMM_FROM_ROW } mg__gemm_start;

typedef struct {
    mg_dtype dtype; /* MG_FLOAT64: a, b, c and row point to doubles; MG_FLOAT32: to floats */
    mg_precision precision;
    size_t m, n, k;
    const void *a; /* m x k, element (i, p) at a[i * rsa + p * csa] */
    const void *b; /* k x n, element (p, j) at b[p * rsb + j * csb] */
    int64_t rsa, csa, rsb, csb;
    void *c; /* m x n, element (i, j) at c[i * ldc + j] */
    size_t ldc;
    const void *b_packed; /* B packed ahead by mg__gemm_pack_b (then b is not read), or NULL */
    mg__gemm_start start;
    const void *row; /* MG__GEMM_FROM_ROW: n elements */
} mg__gemm_args;

/* How many units C is cut into (0 when there is nothing to do). */
size_t mg__gemm_units(const mg__gemm_args *g);
/* The rectangle of C that units [u0, u1) cover: rows [*r0, *r1), columns [*c0, *c1). */
void mg__gemm_rect(const mg__gemm_args *g, size_t u0, size_t u1, size_t *r0, size_t *r1, size_t *c0, size_t *c1);
/* Computes units [u0, u1) of C on the calling thread, with mg__gemm_scratch_bytes(g) of scratch (any
 * alignment). Touches nothing but the numbers. */
void mg__gemm_run(const mg__gemm_args *g, size_t u0, size_t u1, void *scratch);
/* The scratch a part of g needs: at most about 1.2 MB, less for small products. */
size_t mg__gemm_scratch_bytes(const mg__gemm_args *g);

/* B packed ahead, once, for products that share it (a layer's weights across a step's chunks and shares):
 * the bytes it takes, its slivers (the unit of packing work, nr columns each), and packing slivers
 * [s0, s1) of it into `packed` (parts may pack their ranges at once). B's shape (k x n), dtype and the
 * instruction set fix the layout; m and C play no part. */
size_t mg__gemm_packed_b_bytes(const mg__gemm_args *g);
size_t mg__gemm_b_slivers(const mg__gemm_args *g);
void mg__gemm_pack_b(const mg__gemm_args *g, size_t s0, size_t s1, void *packed);

#endif
