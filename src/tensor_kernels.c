/* tensor_kernels.c: the loops where tensor time goes, written for the cache and the vector units.
 *
 * - mg__parallel_for: splits a range over the library's worker pool (mg__pool_run, platform.c).
 *   Waking the workers costs some microseconds, so only work of a few tens of microseconds per thread or
 *   more is split; smaller ops stay on the calling thread.
 * - mg__gemm: C += A @ B, blocked as BLIS/GotoBLAS do: a KC x NC panel of B and an MC x KC block of A are
 *   copied ("packed") into contiguous slivers, and a 6 x 8 (6 x 16 with AVX-512) register-blocked
 *   micro-kernel runs over them, so the innermost loop streams two contiguous arrays and keeps 12 vector
 *   accumulators in registers. On x86-64 the micro-kernel is compiled three times, for AVX-512, AVX2+FMA
 *   and the baseline, and the CPU picks. Rows of C are split over the threads.
 * - mg__ew_run: elementwise loops over contiguous doubles, simple enough for gcc to vectorise (exp and
 *   sigmoid included, with a branch-free exp), compiled per instruction set as the micro-kernel is.
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

/* Where part t of [0, n) split in `parts` starts: n * t / parts exactly, without forming n * t (which
 * overflows for n above SIZE_MAX / MG__MAX_THREADS). */
static size_t part_start(size_t n, size_t t, size_t parts) { return n / parts * t + n % parts * t / parts; }

static void run_range(void *ctx, size_t part) {
    const range_job *job = ctx;
    job->fn(job->ctx, part_start(job->n, part, job->parts), part_start(job->n, part + 1, job->parts));
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

/* ---- matmul ---- */

enum { MR = 6, NR_MAX = 16, KC = 256, MC = 72, NC = 512 };

/* Vectors of 4 and 8 doubles (GCC/Clang vector extensions): one AVX or AVX-512 register, or several
 * SSE2 ones on the baseline. Loads and stores go through memcpy: unaligned, and macros because a
 * function passing vectors by value would change the ABI. */
typedef double v4d __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
#define LOADV(v, p) memcpy(&(v), (p), sizeof(v))
#define STOREV(p, v) memcpy((p), &(v), sizeof(v))

/* clang-format off */
/* c (MR x NR, row stride NR) = a (packed: kc columns of MR) . b (packed: kc rows of NR), NR = 2 * W for
 * vectors V of W doubles. The 12 accumulators stay in registers for the whole k loop; each step loads 2
 * vectors of b and broadcasts 6 numbers of a: 12 vector multiply-adds per 8 loads. */
#define MICRO_KERNEL_BODY(V, W)                                                                         \
    V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};                                 \
    V c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};                                 \
    for (size_t p = 0; p < kc; p++, a += MR, b += 2 * (W)) {                                            \
        V b0, b1;                                                                                       \
        LOADV(b0, b);                                                                                   \
        LOADV(b1, b + (W));                                                                             \
        c00 += a[0] * b0; c01 += a[0] * b1;                                                             \
        c10 += a[1] * b0; c11 += a[1] * b1;                                                             \
        c20 += a[2] * b0; c21 += a[2] * b1;                                                             \
        c30 += a[3] * b0; c31 += a[3] * b1;                                                             \
        c40 += a[4] * b0; c41 += a[4] * b1;                                                             \
        c50 += a[5] * b0; c51 += a[5] * b1;                                                             \
    }                                                                                                   \
    STOREV(c + 0 * 2 * (W), c00); STOREV(c + 0 * 2 * (W) + (W), c01);                                   \
    STOREV(c + 1 * 2 * (W), c10); STOREV(c + 1 * 2 * (W) + (W), c11);                                   \
    STOREV(c + 2 * 2 * (W), c20); STOREV(c + 2 * 2 * (W) + (W), c21);                                   \
    STOREV(c + 3 * 2 * (W), c30); STOREV(c + 3 * 2 * (W) + (W), c31);                                   \
    STOREV(c + 4 * 2 * (W), c40); STOREV(c + 4 * 2 * (W) + (W), c41);                                   \
    STOREV(c + 5 * 2 * (W), c50); STOREV(c + 5 * 2 * (W) + (W), c51);

static void micro_generic(size_t kc, const double *a, const double *b, double *c) { MICRO_KERNEL_BODY(v4d, 4) }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MG_HAVE_X86_KERNELS 1
__attribute__((target("avx2,fma"))) static void micro_avx2(size_t kc, const double *a, const double *b,
                                                             double *c) {
    MICRO_KERNEL_BODY(v4d, 4)
}
__attribute__((target("avx512f,avx2,fma"))) static void micro_avx512(size_t kc, const double *a, const double *b,
                                                                       double *c) {
    MICRO_KERNEL_BODY(v8d, 8)
}
#endif
/* clang-format on */

typedef void (*micro_fn)(size_t, const double *, const double *, double *);

/* The widest kernel this CPU runs, and its NR. */
static micro_fn pick_micro(size_t *nr) {
#ifdef MG_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *nr = 16;
        return micro_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *nr = 8;
        return micro_avx2;
    }
#endif
    *nr = 8;
    return micro_generic;
}

/* packed (ceil(mc/MR) slivers of kc x MR) = A[i0.., p0..]: zero-padded past mc so the kernel needs no
 * edge cases */
static void pack_a(size_t mc, size_t kc, const double *a, int64_t rsa, int64_t csa, double *packed) {
    for (size_t i = 0; i < mc; i += MR) {
        size_t rows = mc - i < MR ? mc - i : MR;
        for (size_t p = 0; p < kc; p++) {
            for (size_t r = 0; r < rows; r++) packed[r] = a[(int64_t)(i + r) * rsa + (int64_t)p * csa];
            for (size_t r = rows; r < MR; r++) packed[r] = 0.0;
            packed += MR;
        }
    }
}

/* packed (ceil(nc/nr) slivers of kc x nr) = B[p0.., j0..], zero-padded past nc */
static void pack_b(size_t kc, size_t nc, size_t nr, const double *b, int64_t rsb, int64_t csb, double *packed) {
    for (size_t j = 0; j < nc; j += nr) {
        size_t cols = nc - j < nr ? nc - j : nr;
        for (size_t p = 0; p < kc; p++) {
            const double *row = b + (int64_t)p * rsb + (int64_t)j * csb;
            if (csb == 1 && cols == nr) memcpy(packed, row, nr * sizeof *packed);
            else {
                for (size_t q = 0; q < cols; q++) packed[q] = row[(int64_t)q * csb];
                for (size_t q = cols; q < nr; q++) packed[q] = 0.0;
            }
            packed += nr;
        }
    }
}

typedef struct {
    size_t m, n, k;
    const double *a, *b;
    int64_t rsa, csa, rsb, csb;
    double *c;
    size_t ldc;
    micro_fn micro;
    size_t nr;
    atomic_int failed;
} gemm_job;

/* Rows [row0, row1) of C, each thread with its own packing buffers (rows are split in multiples of MR). */
static void gemm_rows(void *ctx, size_t block0, size_t block1) {
    gemm_job *g = ctx;
    size_t row0 = block0 * MR, row1 = block1 * MR < g->m ? block1 * MR : g->m;
    size_t pa_size = (size_t)MC * KC, pb_size = (size_t)NC * KC;
    double *pa = mg__alloc((pa_size + pb_size) * sizeof(double));
    if (!pa) {
        atomic_store(&g->failed, 1);
        return;
    }
    double *pb = pa + pa_size;
    size_t nr = g->nr;
    double tile[MR * NR_MAX];
    for (size_t jc = 0; jc < g->n; jc += NC) {
        size_t nc = g->n - jc < NC ? g->n - jc : NC;
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = g->k - pc < KC ? g->k - pc : KC;
            pack_b(kc, nc, nr, g->b + (int64_t)pc * g->rsb + (int64_t)jc * g->csb, g->rsb, g->csb, pb);
            for (size_t ic = row0; ic < row1; ic += MC) {
                size_t mc = row1 - ic < MC ? row1 - ic : MC;
                pack_a(mc, kc, g->a + (int64_t)ic * g->rsa + (int64_t)pc * g->csa, g->rsa, g->csa, pa);
                for (size_t jr = 0; jr < nc; jr += nr) {
                    size_t cols = nc - jr < nr ? nc - jr : nr;
                    for (size_t ir = 0; ir < mc; ir += MR) {
                        size_t rows = mc - ir < MR ? mc - ir : MR;
                        g->micro(kc, pa + ir * kc, pb + jr * kc, tile);
                        double *c = g->c + (ic + ir) * g->ldc + jc + jr;
                        for (size_t r = 0; r < rows; r++)
                            for (size_t q = 0; q < cols; q++) c[r * g->ldc + q] += tile[r * nr + q];
                    }
                }
            }
        }
    }
    mg__free(pa, (pa_size + pb_size) * sizeof(double));
}

/* Small products: the packing would cost more than it saves; a plain i-k-j loop (vectorised over j). */
static void gemm_small(size_t m, size_t n, size_t k, const double *a, int64_t rsa, int64_t csa, const double *b,
                       int64_t rsb, int64_t csb, double *c, size_t ldc) {
    for (size_t i = 0; i < m; i++) {
        double *ci = c + i * ldc;
        for (size_t p = 0; p < k; p++) {
            double aip = a[(int64_t)i * rsa + (int64_t)p * csa];
            const double *bp = b + (int64_t)p * rsb;
            if (csb == 1)
                for (size_t j = 0; j < n; j++) ci[j] += aip * bp[j];
            else
                for (size_t j = 0; j < n; j++) ci[j] += aip * bp[(int64_t)j * csb];
        }
    }
}

mg_status mg__gemm(size_t m, size_t n, size_t k, const double *a, int64_t rsa, int64_t csa, const double *b,
                   int64_t rsb, int64_t csb, double *c, size_t ldc) {
    if (m == 0 || n == 0 || k == 0) return MG_OK;
    if ((double)m * (double)n * (double)k < 32.0 * 32.0 * 32.0 || m < MR || n < 8) {
        gemm_small(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc);
        return MG_OK;
    }
    gemm_job g = {m, n, k, a, b, rsa, csa, rsb, csb, c, ldc, NULL, 0, 0};
    g.micro = pick_micro(&g.nr);
    size_t blocks = m / MR + (m % MR != 0), cost;
    /* cost per block of MR rows: MR * n * k multiply-adds, packing of B repeated per thread aside (only a
     * hint for the thread count: past SIZE_MAX it is simply huge) */
    if (n > SIZE_MAX / MR || mg__mul_size((size_t)MR * n, k, &cost)) cost = SIZE_MAX - 1;
    else cost /= 4;
    mg__parallel_for(blocks, cost + 1, gemm_rows, &g);
    if (atomic_load(&g.failed))
        return mg__fail_in(MG__ORIGIN_TENSOR, MG_ERR_NOMEM, "matmul: out of memory for packing buffers");
    return MG_OK;
}

/* ---- elementwise ---- */

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
