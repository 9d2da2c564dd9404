/* tensor_kernels.c: the loops where tensor time goes, written for the cache and the vector units.
 *
 * - mg__parallel_for: splits a range over the library's worker pool (mg__pool_run, platform.c).
 *   Waking the workers costs some microseconds, so only work of a few tens of microseconds per thread or
 *   more is split; smaller ops stay on the calling thread.
 * - mg__tensor_gemm: the library's one matrix product (gemm.c), its units split over the threads.
 * - mg__ew_run: elementwise loops over contiguous doubles, simple enough for gcc to vectorise (exp and
 *   sigmoid included, with a branch-free exp), compiled per instruction set as gemm.c's micro-kernel is.
 *
 * This file is built with -O3 and FMA contraction allowed (see CMakeLists.txt): results may differ
 * from a plain loop in the last bits, well within the tolerances of the tests. */
#define _POSIX_C_SOURCE 200809L
#include "tensor_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- threads: ranges over the library's pool (platform.c) ---- */

static void *(*g_leave)(void) = NULL;
static void (*g_enter)(void *) = NULL;
static _Thread_local int t_hooks_held; /* > 0: this thread is in a backward pass: keep the lock */

void mg__hold_compute_hooks(int delta) { t_hooks_held += delta; }

void mg_set_compute_hooks(void *(*leave)(void), void (*enter)(void *token)) {
    g_leave = leave && enter ? leave : NULL;
    g_enter = leave && enter ? enter : NULL;
}

enum {
    WORK_PER_THREAD = 1 << 17, /* below this much work per thread, threads cost more than they save */
    WORK_FOR_HOOKS = 1 << 16,  /* worth giving the interpreter lock away for */
};

/* [0, n) cut into `parts` ranges, one a pool part */
typedef struct {
    mg__range_fn fn;
    void *ctx;
    size_t n, parts;
} range_job;

static void run_range(void *ctx, size_t part) {
    const range_job *job = ctx;
    job->fn(job->ctx, mg__part_start(job->n, part, job->parts), mg__part_start(job->n, part + 1, job->parts));
}

void mg__parallel_for(size_t n, size_t cost, mg__range_fn fn, void *ctx) {
    if (n == 0) return;
    double work = (double)n * (double)(cost ? cost : 1);
    int hooked = g_leave && !t_hooks_held && work >= WORK_FOR_HOOKS;
    if (work < 2.0 * WORK_PER_THREAD && !hooked) {
        fn(ctx, 0, n); /* the common small case, at the cost of a call */
        return;
    }
    size_t threads = (size_t)mg_get_num_threads();
    if ((double)threads * WORK_PER_THREAD > work) threads = (size_t)(work / WORK_PER_THREAD);
    if (threads > n) threads = n;
    if (threads > MG__MAX_THREADS) threads = MG__MAX_THREADS;
    void *token = hooked ? g_leave() : NULL;
    if (threads <= 1) {
        fn(ctx, 0, n);
    } else {
        /* the pool busy: the parts run here, one after the other. Kernels come at no steady pace: sleep. */
        range_job job = {fn, ctx, n, threads};
        mg__pool_run(threads, run_range, &job, MG__POOL_SLEEP);
    }
    if (hooked) g_enter(token);
}

/* ---- matmul: the library's product (gemm.c) over the pool ---- */

typedef struct {
    const mg__gemm_args *g;
    atomic_int failed;
} gemm_job;

/* units [u0, u1) of the product, with packing space of this thread's own */
static void gemm_units(void *ctx, size_t u0, size_t u1) {
    gemm_job *job = ctx;
    size_t bytes = mg__gemm_scratch_bytes(job->g);
    void *scratch = mg__alloc(bytes);
    if (!scratch) {
        atomic_store(&job->failed, 1);
        return;
    }
    mg__gemm_run(job->g, u0, u1, scratch);
    mg__free(scratch, bytes);
}

mg_status mg__tensor_gemm(mg_precision precision, size_t m, size_t n, size_t k, const double *a, int64_t rsa,
                          int64_t csa, const double *b, int64_t rsb, int64_t csb, double *c, size_t ldc) {
    mg__gemm_args g = {.dtype = MG_FLOAT64,
                       .precision = precision,
                       .m = m,
                       .n = n,
                       .k = k,
                       .a = a,
                       .b = b,
                       .rsa = rsa,
                       .csa = csa,
                       .rsb = rsb,
                       .csb = csb,
                       .c = c,
                       .ldc = ldc};
    size_t units = mg__gemm_units(&g);
    if (units == 0 || k == 0) return MG_OK;
    /* multiply-adds per unit, a hint for the thread count (past SIZE_MAX simply huge) */
    double cost = (double)m * (double)n * (double)k / (double)units / 4.0;
    gemm_job job = {&g, 0};
    mg__parallel_for(units, cost >= (double)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)cost + 1, gemm_units, &job);
    if (atomic_load(&job.failed))
        return mg__fail_in(MG__ORIGIN_TENSOR, MG_ERR_NOMEM, "matmul: out of memory for packing buffers");
    return MG_OK;
}

/* ---- elementwise ---- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MG_HAVE_X86_KERNELS 1
#endif

typedef struct {
    mg__ew op;
    const double *a, *b;
    double c;
    double *y;
} ew_job;

static inline double relu1(double x) { return x < 0.0 ? 0.0 : x; } /* nan passes through */

/* exp without branches or calls, so loops over it vectorise: exp(x) = 2^k * exp(r) with k = round(x/ln2)
 * and r = x - k*ln2 in two parts (Cody-Waite), |r| <= ln2/2, where a degree-12 Taylor polynomial is
 * within an ulp or two. k is rounded by adding 1.5 * 2^52 (its bits then hold k) and 2^k is assembled
 * in two halves so that k down to -1075 (subnormal results) and up to 1024 (overflow to inf) work.
 * Clamping keeps k in that range; nan stays nan (every comparison with it is false). */
static inline double exp1(double x) {
    const double shift = 0x1.8p52, log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fee00000p-1, ln2_lo = 0x1.a39ef35793c76p-33;
    double xc = x < -745.2 ? -745.2 : x > 709.8 ? 709.8 : x;
    double kd = xc * log2e + shift;
    uint64_t bits, shift_bits; /* unsigned: wrapping is defined, whatever nan's bits give */
    memcpy(&bits, &kd, sizeof bits);
    memcpy(&shift_bits, &shift, sizeof shift_bits);
    int64_t k = (int64_t)(bits - shift_bits);
    kd -= shift;
    double r = (xc - kd * ln2_hi) - kd * ln2_lo;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t k1 = k / 2, k2 = k - k1;
    uint64_t b1 = ((uint64_t)k1 + 1023u) << 52, b2 = ((uint64_t)k2 + 1023u) << 52;
    double s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

static inline double sigmoid1(double x) { return mg__sigmoid_e(x, exp1(-fabs(x))); } /* internal.h's formula */

/* The loops, compiled once per instruction set below (the switch is outside the loops). */
/* clang-format off */
#define EW_BODY                                                                                         \
    ew_job *j = ctx;                                                                                    \
    const double *a = j->a, *b = j->b;                                                                  \
    double c = j->c, *y = j->y;                                                                         \
    switch (j->op) {                                                                                    \
    case MG__EW_ADD: for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i]; break;                        \
    case MG__EW_SUB: for (size_t i = i0; i < i1; i++) y[i] = a[i] - b[i]; break;                        \
    case MG__EW_MUL: for (size_t i = i0; i < i1; i++) y[i] = a[i] * b[i]; break;                        \
    case MG__EW_DIV: for (size_t i = i0; i < i1; i++) y[i] = a[i] / b[i]; break;                        \
    case MG__EW_ADD_C: for (size_t i = i0; i < i1; i++) y[i] = a[i] + c; break;                         \
    case MG__EW_MUL_C: for (size_t i = i0; i < i1; i++) y[i] = a[i] * c; break;                         \
    case MG__EW_RSUB_C: for (size_t i = i0; i < i1; i++) y[i] = c - a[i]; break;                        \
    case MG__EW_DIV_C: for (size_t i = i0; i < i1; i++) y[i] = a[i] / c; break;                         \
    case MG__EW_RDIV_C: for (size_t i = i0; i < i1; i++) y[i] = c / a[i]; break;                        \
    case MG__EW_POW_C:                                                                                  \
        if (c == 2.0) for (size_t i = i0; i < i1; i++) y[i] = a[i] * a[i]; /* pow(x, 2) is x*x */       \
        else for (size_t i = i0; i < i1; i++) y[i] = pow(a[i], c);                                      \
        break;                                                                                          \
    case MG__EW_NEG: for (size_t i = i0; i < i1; i++) y[i] = -a[i]; break;                              \
    case MG__EW_RELU: for (size_t i = i0; i < i1; i++) y[i] = relu1(a[i]); break;                       \
    case MG__EW_EXP: for (size_t i = i0; i < i1; i++) y[i] = exp1(a[i]); break;                         \
    case MG__EW_LOG: for (size_t i = i0; i < i1; i++) y[i] = log(a[i]); break;                          \
    case MG__EW_TANH: for (size_t i = i0; i < i1; i++) y[i] = tanh(a[i]); break;                        \
    case MG__EW_SIGMOID: for (size_t i = i0; i < i1; i++) y[i] = sigmoid1(a[i]); break;                 \
    }

static void ew_generic(void *ctx, size_t i0, size_t i1) { EW_BODY }

#ifdef MG_HAVE_X86_KERNELS
__attribute__((target("avx2,fma"))) static void ew_avx2(void *ctx, size_t i0, size_t i1) { EW_BODY }
__attribute__((target("avx512f,avx512dq,avx2,fma"))) static void ew_avx512(void *ctx, size_t i0, size_t i1) {
    EW_BODY
}
#endif
/* clang-format on */

static mg__range_fn pick_ew(void) {
#ifdef MG_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return ew_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ew_avx2;
#endif
    return ew_generic;
}

/* Backward of the unary and _C ops (PyTorch's formulas), the same way. */
typedef struct {
    mg__ew op;
    const double *g, *x, *y;
    double c;
    double *dx;
} ew_grad_job;

/* clang-format off */
#define EW_GRAD_BODY                                                                                    \
    ew_grad_job *j = ctx;                                                                               \
    const double *g = j->g, *x = j->x, *y = j->y;                                                       \
    double c = j->c, *dx = j->dx;                                                                       \
    switch (j->op) {                                                                                    \
    case MG__EW_ADD_C: for (size_t i = i0; i < i1; i++) dx[i] += g[i]; break;                           \
    case MG__EW_MUL_C: for (size_t i = i0; i < i1; i++) dx[i] += g[i] * c; break;                       \
    case MG__EW_RSUB_C: case MG__EW_NEG: for (size_t i = i0; i < i1; i++) dx[i] -= g[i]; break;         \
    case MG__EW_DIV_C: for (size_t i = i0; i < i1; i++) dx[i] += g[i] / c; break;                       \
    case MG__EW_RDIV_C: for (size_t i = i0; i < i1; i++) dx[i] += -g[i] * ((c / x[i]) / x[i]); break;   \
    case MG__EW_POW_C: for (size_t i = i0; i < i1; i++) dx[i] += g[i] * (c * pow(x[i], c - 1.0)); break; \
    case MG__EW_RELU: for (size_t i = i0; i < i1; i++) dx[i] += y[i] > 0.0 ? g[i] : 0.0; break;         \
    case MG__EW_EXP: for (size_t i = i0; i < i1; i++) dx[i] += g[i] * y[i]; break;                      \
    case MG__EW_LOG: for (size_t i = i0; i < i1; i++) dx[i] += g[i] / x[i]; break;                      \
    case MG__EW_TANH: for (size_t i = i0; i < i1; i++) dx[i] += g[i] * (1.0 - y[i] * y[i]); break;      \
    case MG__EW_SIGMOID: for (size_t i = i0; i < i1; i++) dx[i] += g[i] * (1.0 - y[i]) * y[i]; break;   \
    default: break;                                                                                     \
    }

static void ew_grad_generic(void *ctx, size_t i0, size_t i1) { EW_GRAD_BODY }

#ifdef MG_HAVE_X86_KERNELS
__attribute__((target("avx2,fma"))) static void ew_grad_avx2(void *ctx, size_t i0, size_t i1) { EW_GRAD_BODY }
#endif
/* clang-format on */

void mg__ew_backward(mg__ew op, size_t n, const double *g, const double *x, const double *y, double c, double *dx) {
    ew_grad_job job = {op, g, x, y, c, dx};
    mg__range_fn fn = ew_grad_generic;
#ifdef MG_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) fn = ew_grad_avx2;
#endif
    mg__parallel_for(n, op == MG__EW_POW_C ? 20 : 1, fn, &job);
}

void mg__ew_run(mg__ew op, size_t n, const double *a, const double *b, double c, double *y) {
    ew_job job = {op, a, b, c, y};
    /* transcendental functions cost some 10-20 additions each */
    size_t cost = op == MG__EW_EXP || op == MG__EW_SIGMOID ? 8 : op >= MG__EW_LOG || op == MG__EW_POW_C ? 20 : 1;
    mg__parallel_for(n, cost, pick_ew(), &job);
}
