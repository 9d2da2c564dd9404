/* gemm.c: C = start + A B, blocked as BLIS and GotoBLAS do.
 *
 * A KC x NC panel of B and an MC x KC block of A are copied ("packed") into contiguous slivers, and a
 * register-blocked micro-kernel runs over them: it starts an MR x NR tile of sums in 12 vector registers
 * (from C, from 0 or from a row), adds kc products to each element, one k after the other, and stores the
 * tile to C. The next block of k starts from what was stored, so cutting k into blocks of KC changes nothing
 * in the order of a sum: each element is start + a0*b0 + a1*b1 + ... in order of k, whatever the blocking
 * and the split.
 *
 * One kernel body, compiled for each element type (double, float), each precision (EXACT: the product
 * rounded, then the add; FAST: one fused multiply-add) and each instruction set (AVX-512, AVX2+FMA, and a
 * baseline of GCC vectors); the CPU picks at run time. This file is built with -ffp-contract=off (as the
 * whole library), so the exact kernels are never fused behind our back: FMA appears only where written. */
#define _POSIX_C_SOURCE 200809L
#include "gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MG_HAVE_X86_KERNELS 1
#include <immintrin.h>
#endif

enum { MR = 6, NR_MAX = 32, KC = 256, MC = 72, NC = 512 };
_Static_assert(MC % MR == 0 && NC % NR_MAX == 0, "blocks are whole micro-tiles");

static const char *const precision_names[MG_PRECISION_COUNT] = {[MG_PRECISION_EXACT] = "exact",
                                                                [MG_PRECISION_FAST] = "fast"};

const char *mg_precision_name(mg_precision precision) {
    return (unsigned)precision < MG_PRECISION_COUNT ? precision_names[precision] : "?";
}

mg_status mg_precision_from_name(const char *name, mg_precision *out) {
    MG__RETURN_FROM_NAME("precision", precision_names, MG_PRECISION_COUNT, name, out);
}

/* ---- the micro-kernel ---- */

/* Vectors of the baseline kernels: GCC/Clang vector extensions, 32 bytes (one AVX register, or two SSE2
 * or NEON ones). Loads and stores go through memcpy: unaligned, and macros because a function passing
 * vectors by value would change the ABI. */
typedef double v4d __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
#define LOADV(v, p) memcpy(&(v), (p), sizeof(v))
#define STOREV(p, v) memcpy((p), &(v), sizeof(v))

/* c + x * v for a scalar x and a vector v: the product rounded, then the sum (no contraction here) */
#define MULADD(c, x, v) ((c) + (x) * (v))

/* c (MR x NR at row stride ldc) = start + a (MR x kc) . b (kc x NR), NR = 2 * W for vectors V of W elements
 * T. The sums start from `init` (row r at init + r * init_rs: c itself, or with init_rs 0 one row for every
 * row), or from 0 when init is NULL. A's element (r, p) is a[r * rsa + p * csa] and B's (p, q) is
 * b[p * rsb + q]: packed slivers (rsa 1, csa MR, rsb NR) or the operands in place. Each step loads 2
 * vectors of b and broadcasts 6 numbers of a: 12 vector multiply-adds per 8 loads, the 12 sums staying in
 * registers for the whole k loop. */
/* clang-format off */
#define MICRO_KERNEL(name, T, V, W, MADD, TARGET)                                                       \
    TARGET static void name(size_t kc, const void *pa, ptrdiff_t rsa, ptrdiff_t csa, const void *pb,    \
                            ptrdiff_t rsb, void *pc, size_t ldc, const void *init, ptrdiff_t irs) {     \
        const T *a = pa, *b = pb, *s = init;                                                            \
        T *c = pc;                                                                                      \
        V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};                             \
        V c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};                             \
        if (s) {                                                                                        \
            LOADV(c00, s + 0 * irs); LOADV(c01, s + 0 * irs + (W));                                     \
            LOADV(c10, s + 1 * irs); LOADV(c11, s + 1 * irs + (W));                                     \
            LOADV(c20, s + 2 * irs); LOADV(c21, s + 2 * irs + (W));                                     \
            LOADV(c30, s + 3 * irs); LOADV(c31, s + 3 * irs + (W));                                     \
            LOADV(c40, s + 4 * irs); LOADV(c41, s + 4 * irs + (W));                                     \
            LOADV(c50, s + 5 * irs); LOADV(c51, s + 5 * irs + (W));                                     \
        }                                                                                               \
        for (size_t p = 0; p < kc; p++, a += csa, b += rsb) {                                           \
            V b0, b1;                                                                                   \
            LOADV(b0, b);                                                                               \
            LOADV(b1, b + (W));                                                                         \
            T x0 = a[0], x1 = a[rsa], x2 = a[2 * rsa];                                                  \
            T x3 = a[3 * rsa], x4 = a[4 * rsa], x5 = a[5 * rsa];                                        \
            c00 = MADD(c00, x0, b0); c01 = MADD(c01, x0, b1);                                           \
            c10 = MADD(c10, x1, b0); c11 = MADD(c11, x1, b1);                                           \
            c20 = MADD(c20, x2, b0); c21 = MADD(c21, x2, b1);                                           \
            c30 = MADD(c30, x3, b0); c31 = MADD(c31, x3, b1);                                           \
            c40 = MADD(c40, x4, b0); c41 = MADD(c41, x4, b1);                                           \
            c50 = MADD(c50, x5, b0); c51 = MADD(c51, x5, b1);                                           \
        }                                                                                               \
        STOREV(c + 0 * ldc, c00); STOREV(c + 0 * ldc + (W), c01);                                       \
        STOREV(c + 1 * ldc, c10); STOREV(c + 1 * ldc + (W), c11);                                       \
        STOREV(c + 2 * ldc, c20); STOREV(c + 2 * ldc + (W), c21);                                       \
        STOREV(c + 3 * ldc, c30); STOREV(c + 3 * ldc + (W), c31);                                       \
        STOREV(c + 4 * ldc, c40); STOREV(c + 4 * ldc + (W), c41);                                       \
        STOREV(c + 5 * ldc, c50); STOREV(c + 5 * ldc + (W), c51);                                       \
    }

/* clang-format on */

#define NO_TARGET
MICRO_KERNEL(micro_f64_generic, double, v4d, 4, MULADD, NO_TARGET)
MICRO_KERNEL(micro_f32_generic, float, v8f, 8, MULADD, NO_TARGET)

#ifdef MG_HAVE_X86_KERNELS
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define FMA_PD256(c, x, v) _mm256_fmadd_pd(_mm256_set1_pd(x), (v), (c))
#define FMA_PS256(c, x, v) _mm256_fmadd_ps(_mm256_set1_ps(x), (v), (c))
#define FMA_PD512(c, x, v) _mm512_fmadd_pd(_mm512_set1_pd(x), (v), (c))
#define FMA_PS512(c, x, v) _mm512_fmadd_ps(_mm512_set1_ps(x), (v), (c))
MICRO_KERNEL(micro_f64_avx2_exact, double, __m256d, 4, MULADD, AVX2)
MICRO_KERNEL(micro_f64_avx2_fast, double, __m256d, 4, FMA_PD256, AVX2)
MICRO_KERNEL(micro_f32_avx2_exact, float, __m256, 8, MULADD, AVX2)
MICRO_KERNEL(micro_f32_avx2_fast, float, __m256, 8, FMA_PS256, AVX2)
MICRO_KERNEL(micro_f64_avx512_exact, double, __m512d, 8, MULADD, AVX512)
MICRO_KERNEL(micro_f64_avx512_fast, double, __m512d, 8, FMA_PD512, AVX512)
MICRO_KERNEL(micro_f32_avx512_exact, float, __m512, 16, MULADD, AVX512)
MICRO_KERNEL(micro_f32_avx512_fast, float, __m512, 16, FMA_PS512, AVX512)
#endif

/* ---- picking a kernel ---- */

typedef void (*micro_fn)(size_t kc, const void *a, ptrdiff_t rsa, ptrdiff_t csa, const void *b, ptrdiff_t rsb, void *c,
                         size_t ldc, const void *init, ptrdiff_t init_rs);
typedef struct {
    micro_fn fn;
    size_t nr, size; /* columns of a tile; bytes of an element */
} kernel;

typedef enum { SIMD_GENERIC, SIMD_AVX2, SIMD_AVX512, SIMD_LEVELS } simd_level;
static const char *const simd_names[SIMD_LEVELS] = {"generic", "avx2", "avx512"};

/* [level][dtype][precision]; the baseline has no FMA to offer: fast is exact there */
static const kernel kernels[SIMD_LEVELS][2][2] = {
    [SIMD_GENERIC] = {[MG_FLOAT64] = {{micro_f64_generic, 8, 8}, {micro_f64_generic, 8, 8}},
                      [MG_FLOAT32] = {{micro_f32_generic, 16, 4}, {micro_f32_generic, 16, 4}}},
#ifdef MG_HAVE_X86_KERNELS
    [SIMD_AVX2] = {[MG_FLOAT64] = {{micro_f64_avx2_exact, 8, 8}, {micro_f64_avx2_fast, 8, 8}},
                   [MG_FLOAT32] = {{micro_f32_avx2_exact, 16, 4}, {micro_f32_avx2_fast, 16, 4}}},
    [SIMD_AVX512] = {[MG_FLOAT64] = {{micro_f64_avx512_exact, 16, 8}, {micro_f64_avx512_fast, 16, 8}},
                     [MG_FLOAT32] = {{micro_f32_avx512_exact, 32, 4}, {micro_f32_avx512_fast, 32, 4}}},
#endif
};

static simd_level g_level = SIMD_GENERIC;
static pthread_once_t g_level_once = PTHREAD_ONCE_INIT;

/* The widest set this CPU runs, lowered by MG_SIMD when set to a narrower one's name. */
static void detect_level(void) {
    simd_level cpu = SIMD_GENERIC;
#ifdef MG_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpu = SIMD_AVX2;
    if (cpu == SIMD_AVX2 && __builtin_cpu_supports("avx512f")) cpu = SIMD_AVX512;
#endif
    const char *cap = getenv("MG_SIMD");
    for (int level = 0; cap && level < (int)cpu; level++)
        if (strcmp(cap, simd_names[level]) == 0) cpu = (simd_level)level;
    g_level = cpu;
}

static simd_level simd(void) {
    pthread_once(&g_level_once, detect_level);
    return g_level;
}

const char *mg_simd(void) { return simd_names[simd()]; }

static kernel pick(const mg__gemm_args *g) {
    return kernels[simd()][g->dtype == MG_FLOAT32][g->precision == MG_PRECISION_FAST];
}

/* ---- packing ---- */

/* packed (ceil(mc/MR) slivers of kc x MR) = A[0.., 0..], zero-padded past mc so the kernel needs no edge
 * cases; packed (ceil(nc/nr) slivers of kc x nr) = B[0.., 0..], zero-padded past nc. The padding's products
 * land in rows and columns of a tile that are never stored. */
#define PACKERS(T)                                                                                                 \
    static void pack_a_##T(size_t mc, size_t kc, const T *a, int64_t rsa, int64_t csa, T *packed) {                \
        for (size_t i = 0; i < mc; i += MR) {                                                                      \
            size_t rows = mc - i < MR ? mc - i : MR;                                                               \
            for (size_t p = 0; p < kc; p++, packed += MR) {                                                        \
                for (size_t r = 0; r < rows; r++) packed[r] = a[(int64_t)(i + r) * rsa + (int64_t)p * csa];        \
                for (size_t r = rows; r < MR; r++) packed[r] = 0;                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    /* a sliver's rows are copied when B's rows are contiguous, else its columns, each down the k rows */          \
    static void pack_b_##T(size_t kc, size_t nc, size_t nr, const T *b, int64_t rsb, int64_t csb, T *packed) {     \
        for (size_t j = 0; j < nc; j += nr, packed += kc * nr) {                                                   \
            size_t cols = nc - j < nr ? nc - j : nr;                                                               \
            if (csb == 1) {                                                                                        \
                for (size_t p = 0; p < kc; p++) {                                                                  \
                    const T *row = b + (int64_t)p * rsb + (int64_t)j;                                              \
                    for (size_t q = 0; q < cols; q++) packed[p * nr + q] = row[q];                                 \
                    for (size_t q = cols; q < nr; q++) packed[p * nr + q] = 0;                                     \
                }                                                                                                  \
                continue;                                                                                          \
            }                                                                                                      \
            for (size_t p = 0; p < kc; p++) { /* a row of the sliver from nr columns: its lines written in turn */ \
                const T *from = b + (int64_t)p * rsb + (int64_t)j * csb;                                           \
                for (size_t q = 0; q < cols; q++) packed[p * nr + q] = from[(int64_t)q * csb];                     \
                for (size_t q = cols; q < nr; q++) packed[p * nr + q] = 0;                                         \
            }                                                                                                      \
        }                                                                                                          \
    }

PACKERS(double)
PACKERS(float)

static void pack_a(const mg__gemm_args *g, size_t mc, size_t kc, size_t i, size_t p, void *packed) {
    int64_t at = (int64_t)i * g->rsa + (int64_t)p * g->csa;
    if (g->dtype == MG_FLOAT32) pack_a_float(mc, kc, (const float *)g->a + at, g->rsa, g->csa, packed);
    else pack_a_double(mc, kc, (const double *)g->a + at, g->rsa, g->csa, packed);
}

static void pack_b(const mg__gemm_args *g, size_t kc, size_t nc, size_t nr, size_t p, size_t j, void *packed) {
    int64_t at = (int64_t)p * g->rsb + (int64_t)j * g->csb;
    if (g->dtype == MG_FLOAT32) pack_b_float(kc, nc, nr, (const float *)g->b + at, g->rsb, g->csb, packed);
    else pack_b_double(kc, nc, nr, (const double *)g->b + at, g->rsb, g->csb, packed);
}

/* ---- the blocked loops ---- */

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

/* The packed block of A and panel of B, no larger than the product needs, and room to align them */
size_t mg__gemm_scratch_bytes(const mg__gemm_args *g) {
    kernel kr = pick(g);
    size_t kc = g->k < KC ? g->k : KC, mc = g->m < MC ? g->m : MC, nc = g->n < NC ? g->n : NC;
    return (ceil_div(mc, MR) * MR + ceil_div(nc, kr.nr) * kr.nr) * kc * kr.size + 64;
}

/* Units run along the rows when C has at least as many row tiles as column tiles. */
static int split_rows(const mg__gemm_args *g, size_t nr) { return ceil_div(g->m, MR) >= ceil_div(g->n, nr); }

size_t mg__gemm_units(const mg__gemm_args *g) {
    if (g->m == 0 || g->n == 0) return 0;
    size_t nr = pick(g).nr;
    return split_rows(g, nr) ? ceil_div(g->m, MR) : ceil_div(g->n, nr);
}

void mg__gemm_rect(const mg__gemm_args *g, size_t u0, size_t u1, size_t *r0, size_t *r1, size_t *c0, size_t *c1) {
    size_t nr = pick(g).nr;
    int rows = split_rows(g, nr);
    size_t tile = rows ? MR : nr, extent = rows ? g->m : g->n;
    size_t lo = u0 * tile, hi = u1 * tile < extent ? u1 * tile : extent;
    *r0 = rows ? lo : 0;
    *r1 = rows ? hi : g->m;
    *c0 = rows ? 0 : lo;
    *c1 = rows ? g->n : hi;
}

/* What the kernel reads of an operand: A's sliver, element (r, p) at at[r * rs + p * cs]; B's, element
 * (p, q) at at[p * rs + q] (cs unused). */
typedef struct {
    const char *at;
    ptrdiff_t rs, cs;
} sliver;

/* One MR x NR tile of C at (i, j), rows x cols of it real, for a k block: the first one (first) starts
 * the sums as g->start says, a later one continues them from C. In place when whole, else through a copy. */
static void run_tile(const mg__gemm_args *g, kernel kr, size_t kc, int first, sliver a, sliver b, size_t i, size_t j,
                     size_t rows, size_t cols) {
    char *c = (char *)g->c + (i * g->ldc + j) * kr.size;
    mg__gemm_start start = first ? g->start : MG__GEMM_FROM_C;
    const char *row = start == MG__GEMM_FROM_ROW ? (const char *)g->row + j * kr.size : NULL;
    if (rows == MR && cols == kr.nr) {
        const void *init = start == MG__GEMM_FROM_C ? c : row; /* NULL: from 0 */
        kr.fn(kc, a.at, a.rs, a.cs, b.at, b.rs, c, g->ldc, init, start == MG__GEMM_FROM_C ? (ptrdiff_t)g->ldc : 0);
        return;
    }
    _Alignas(64) double tile[MR * NR_MAX / 2]; /* a tile of floats, or of doubles (whose NR is half) */
    char *t = (char *)tile;
    memset(tile, 0, sizeof tile);
    for (size_t r = 0; start != MG__GEMM_FROM_ZERO && r < rows; r++)
        memcpy(t + r * kr.nr * kr.size, row ? row : c + r * g->ldc * kr.size, cols * kr.size);
    kr.fn(kc, a.at, a.rs, a.cs, b.at, b.rs, t, kr.nr, t, (ptrdiff_t)kr.nr);
    for (size_t r = 0; r < rows; r++) memcpy(c + r * g->ldc * kr.size, t + r * kr.nr * kr.size, cols * kr.size);
}

/* Rows [r0, r1) of C times a packed panel of B: columns [j0, j0 + nc), k block [pc, pc + kc). */
static void run_panel(const mg__gemm_args *g, kernel kr, size_t r0, size_t r1, size_t j0, size_t nc, size_t pc,
                      size_t kc, char *pa, const char *panel) {
    for (size_t ic = r0; ic < r1; ic += MC) {
        size_t mc = r1 - ic < MC ? r1 - ic : MC;
        pack_a(g, mc, kc, ic, pc, pa);
        for (size_t jr = 0; jr < nc; jr += kr.nr) {
            sliver b = {panel + jr * kc * kr.size, (ptrdiff_t)kr.nr, 0};
            for (size_t ir = 0; ir < mc; ir += MR) {
                sliver a = {pa + ir * kc * kr.size, 1, MR};
                run_tile(g, kr, kc, pc == 0, a, b, ic + ir, j0 + jr, mc - ir < MR ? mc - ir : MR,
                         nc - jr < kr.nr ? nc - jr : kr.nr);
            }
        }
    }
}

/* Where B's panel for the column block at jc and the k block at pc starts in B packed whole (elements):
 * every block before it is whole (NC columns, a whole number of slivers; KC rows). */
static size_t panel_at(const mg__gemm_args *g, size_t nr, size_t jc, size_t pc) {
    size_t nc = g->n - jc < NC ? g->n - jc : NC;
    return jc * g->k + pc * ceil_div(nc, nr) * nr;
}

/* The rectangle of C, blocked: B a KC x NC panel at a time (packed here, or read from g->b_packed), A an
 * MC x KC block at a time. Column blocks are aligned to NC, as B packed ahead is. */
static void run_blocked(const mg__gemm_args *g, kernel kr, size_t r0, size_t r1, size_t c0, size_t c1, char *pa,
                        char *pb) {
    for (size_t jc = c0 / NC * NC; jc < c1; jc += NC) {
        size_t j0 = c0 > jc ? c0 : jc, j1 = c1 < jc + NC ? c1 : jc + NC;
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = g->k - pc < KC ? g->k - pc : KC;
            const char *panel = pb;
            if (g->b_packed)
                panel = (const char *)g->b_packed + (panel_at(g, kr.nr, jc, pc) + (j0 - jc) * kc) * kr.size;
            else pack_b(g, kc, j1 - j0, kr.nr, pc, j0, pb);
            run_panel(g, kr, r0, r1, j0, j1 - j0, pc, kc, pa, panel);
        }
    }
}

/* The rectangle of C when the whole product is one block (small): whole slivers are read where they are
 * (B's only when its rows are contiguous, or from g->b_packed), edge slivers are packed, padded with zeros. */
static void run_direct(const mg__gemm_args *g, kernel kr, size_t r0, size_t r1, size_t c0, size_t c1, char *pa,
                       char *pb) {
    size_t whole_rows = r0 + (r1 - r0) / MR * MR;
    if (whole_rows < r1) pack_a(g, r1 - whole_rows, g->k, whole_rows, 0, pa);
    for (size_t jr = c0; jr < c1; jr += kr.nr) {
        size_t cols = c1 - jr < kr.nr ? c1 - jr : kr.nr;
        sliver b = {(const char *)g->b + (ptrdiff_t)jr * g->csb * (ptrdiff_t)kr.size, g->rsb, 0};
        if (g->b_packed) {
            b = (sliver){(const char *)g->b_packed + jr * g->k * kr.size, (ptrdiff_t)kr.nr, 0};
        } else if (g->csb != 1 || cols < kr.nr) {
            pack_b(g, g->k, cols, kr.nr, 0, jr, pb);
            b = (sliver){pb, (ptrdiff_t)kr.nr, 0};
        }
        for (size_t ir = r0; ir < r1; ir += MR) {
            sliver a = {(const char *)g->a + (ptrdiff_t)ir * g->rsa * (ptrdiff_t)kr.size, g->rsa, g->csa};
            if (ir >= whole_rows) a = (sliver){pa, 1, MR};
            run_tile(g, kr, g->k, 1, a, b, ir, jr, r1 - ir < MR ? r1 - ir : MR, cols);
        }
    }
}

/* ---- B packed ahead ---- */

size_t mg__gemm_b_slivers(const mg__gemm_args *g) { return ceil_div(g->n, pick(g).nr); }

size_t mg__gemm_packed_b_bytes(const mg__gemm_args *g) {
    if (g->n == 0) return 0;
    kernel kr = pick(g);
    size_t last = (g->n - 1) / NC * NC; /* the last column block's start */
    return panel_at(g, kr.nr, last, 0) * kr.size + ceil_div(g->n - last, kr.nr) * kr.nr * g->k * kr.size;
}

void mg__gemm_pack_b(const mg__gemm_args *g, size_t s0, size_t s1, void *packed) {
    kernel kr = pick(g);
    for (size_t s = s0; s < s1; s++) {
        size_t j = s * kr.nr, jc = j / NC * NC, cols = g->n - j < kr.nr ? g->n - j : kr.nr;
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = g->k - pc < KC ? g->k - pc : KC;
            pack_b(g, kc, cols, kr.nr, pc, j, (char *)packed + (panel_at(g, kr.nr, jc, pc) + (j - jc) * kc) * kr.size);
        }
    }
}

/* k = 0: no products, the sums are where they start */
static void run_empty(const mg__gemm_args *g, kernel kr, size_t r0, size_t r1, size_t c0, size_t c1) {
    for (size_t i = r0; g->start != MG__GEMM_FROM_C && i < r1; i++) {
        char *c = (char *)g->c + (i * g->ldc + c0) * kr.size;
        if (g->start == MG__GEMM_FROM_ROW) memcpy(c, (const char *)g->row + c0 * kr.size, (c1 - c0) * kr.size);
        else memset(c, 0, (c1 - c0) * kr.size);
    }
}

void mg__gemm_run(const mg__gemm_args *g, size_t u0, size_t u1, void *scratch) {
    if (u0 >= u1) return;
    kernel kr = pick(g);
    size_t r0, r1, c0, c1;
    mg__gemm_rect(g, u0, u1, &r0, &r1, &c0, &c1);
    if (g->k == 0) {
        run_empty(g, kr, r0, r1, c0, c1);
        return;
    }
    size_t kc_max = g->k < KC ? g->k : KC, mc_max = g->m < MC ? g->m : MC;
    char *pa = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    char *pb = pa + ceil_div(mc_max, MR) * MR * kc_max * kr.size;
    if (g->m <= MC && g->n <= NC && g->k <= KC) run_direct(g, kr, r0, r1, c0, c1, pa, pb);
    else run_blocked(g, kr, r0, r1, c0, c1, pa, pb);
}
