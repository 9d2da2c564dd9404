/* memory.c: the pluggable allocator, the value pool, the live-value count and the live-object counts.
 *
 * Values are the hot allocation (one per op), so they come from a pool: chunks of CHUNK_VALUES nodes,
 * carved into a per-thread free list. Popping and pushing a list head costs a few instructions where
 * malloc/free cost tens of nanoseconds. Chunks are kept in one global list (under a mutex, touched once
 * per CHUNK_VALUES allocations) so that they stay reachable and can be returned by mg_pool_trim().
 * A generation number tells each thread when its free list points into chunks that were returned. A
 * thread that exits hands its free list to g_orphans, which the next thread short of values takes over
 * before it allocates a new chunk: values freed by short-lived threads are reused, not lost.
 *
 * The input arrays of neuron nodes (mg_affine keeps 2n + 1 pointers) use the same machinery by size
 * class: whole 64-byte blocks, 1 to 257 of them, carved from the same chunks, with a free list per class
 * in each thread and an orphan list per class. Class 0 is the values' own (an array of up to 8 pointers
 * shares it); arrays over the largest class (16,448 bytes) go to the allocator.
 *
 * The live-value count is kept per thread too: a locked (atomic read-modify-write) increment on every
 * allocation would cost more than the allocation itself. Each thread's pool registers itself in a global
 * list on first use, mg_live_values() sums the list, and an exiting thread folds its count into
 * g_retired_live. A value freed by another thread than the one that made it makes one count go down and
 * the other up: only the sum means anything. Input arrays are counted the same way, apart, so that
 * mg_pool_trim can refuse while one is alive and the tests prove that every one is freed. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define MG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MG_ASAN 1
#endif
#endif
#ifdef MG_ASAN
/* Dead nodes are poisoned so AddressSanitizer reports use-after-free inside the pool too. */
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- the allocator ---- */

static void *default_alloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static mg_alloc_fn g_alloc = default_alloc;
static void *g_alloc_ud = NULL;

void *mg__alloc(size_t size) { return g_alloc(g_alloc_ud, NULL, 0, size); }

void mg__free(void *ptr, size_t size) {
    if (ptr) g_alloc(g_alloc_ud, ptr, size, 0);
}

void *mg__realloc(void *ptr, size_t old_size, size_t new_size) { return g_alloc(g_alloc_ud, ptr, old_size, new_size); }

/* ---- the pool ---- */

/* A chunk is CHUNK_VALUES nodes aligned to 64 bytes, so each node is exactly one cache line (traversals
 * are memory-bound: a node across two lines would cost two misses). The allocator's block is kept, to
 * free it, in g_chunks: chunks carry no header, so a node costs 64 bytes plus 0.02 of bookkeeping. The
 * pool knows a node only as a block of MG__VALUE_BYTES: a free one holds the link to the next free one,
 * a live one belongs to value.c, whose layout the pool never sees. */
typedef union pool_block {
    union pool_block *next;
    unsigned char bytes[MG__VALUE_BYTES];
} pool_block;
_Static_assert(sizeof(pool_block) == MG__VALUE_BYTES, "a block is one value");

/* A block of class c is class_blocks(c) pool_blocks: 1 to 8, then one more than a ladder of four steps per
 * doubling (9, 11, 13, 15, 17, 21, 25, ..., 225, 257). An n-input neuron's 2n + 1 pointers take n / 4 + 1
 * lines for n a multiple of 4, so the usual widths (16, 32, 64, ..., 1024) fill their blocks exactly, and no
 * block is a quarter larger than asked. That matters: freeing a graph reads every array, and with
 * power-of-two blocks (264 bytes of a 16-input neuron in 512) that read took 2.7 times as long as malloc's
 * packed blocks. Class 0 is one value; the last class, 16,448 bytes, holds a neuron of 1027 inputs. A chunk
 * holds 4096 / class_blocks(c) blocks. */
enum { CHUNK_VALUES = 4096, CHUNK_BYTES = CHUNK_VALUES * sizeof(pool_block) + 63, POOL_CLASSES = 29 };

static inline size_t class_blocks(unsigned c) {
    if (c < 8) return c + 1;
    unsigned p = 3 + (c - 8) / 4, s = (c - 8) % 4;
    return 1 + ((size_t)1 << p) + ((size_t)s << (p - 2));
}

/* The class of a block of `bytes`: the smallest with room for them, POOL_CLASSES when none has. */
static inline unsigned size_class(size_t bytes) {
    size_t lines = (bytes + sizeof(pool_block) - 1) / sizeof(pool_block);
    if (lines <= 8) return lines ? (unsigned)lines - 1 : 0;
    size_t rung = lines - 1; /* on the ladder: 2^p <= rung < 2^(p+1), p >= 3 */
    if (rung > 256) return POOL_CLASSES;
    unsigned p = 63 - (unsigned)__builtin_clzll((unsigned long long)rung);
    size_t step = (size_t)1 << (p - 2);
    return 8 + (p - 3) * 4 + (unsigned)((rung - ((size_t)1 << p) + step - 1) / step);
}

typedef struct thread_pool {
    pool_block *free_list[POOL_CLASSES];
    unsigned generation;
    int registered;
    /* written only by its thread (relaxed load + store: no lock), read by anyone */
    atomic_llong live;   /* values */
    atomic_llong arrays; /* input arrays */
    struct thread_pool *next, *prev;
} thread_pool;

static pthread_mutex_t g_chunks_lock = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static void **g_chunks = NULL; /* the allocator's blocks */
static size_t g_n_chunks = 0, g_chunks_capacity = 0;
static atomic_uint g_generation = 1;
static thread_pool *g_pools = NULL;
static pool_block *g_orphans[POOL_CLASSES]; /* free blocks left by exited threads, one list per class */
static long long g_retired_live = 0, g_retired_arrays = 0;
static pthread_key_t g_pool_key;
static pthread_once_t g_pool_key_once = PTHREAD_ONCE_INIT;

/* initial-exec: a plain %fs-relative load instead of a __tls_get_addr call per allocation when the
 * library sits in a shared object (the Python extension). The module's whole TLS block (this, 272 bytes,
 * and error.c's message) then comes out of glibc's static TLS reserve for loaded libraries, over 1 KiB. */
#if defined(__GNUC__)
static _Thread_local thread_pool t_pool __attribute__((tls_model("initial-exec")));
#else
static _Thread_local thread_pool t_pool;
#endif

/* Puts a free list in front of g_orphans[c]; the caller holds g_chunks_lock. Only a block's first bytes, its
 * link, are unpoisoned while it is read. */
static void orphan_list(pool_block *list, unsigned c) {
    pool_block *tail = list;
    for (;;) { /* walk to the end to append the orphans after it */
        UNPOISON(tail, sizeof *tail);
        pool_block *next = tail->next;
        if (!next) break;
        POISON(tail, sizeof *tail);
        tail = next;
    }
    tail->next = g_orphans[c];
    POISON(tail, sizeof *tail);
    g_orphans[c] = list;
}

static void pool_thread_exit(void *arg) {
    thread_pool *pool = arg;
    pthread_mutex_lock(&g_chunks_lock);
    if (pool->generation == atomic_load_explicit(&g_generation, memory_order_relaxed))
        for (unsigned c = 0; c < POOL_CLASSES; c++)
            if (pool->free_list[c]) orphan_list(pool->free_list[c], c);
    memset(pool->free_list, 0, sizeof pool->free_list);
    g_retired_live += atomic_load_explicit(&pool->live, memory_order_relaxed);
    g_retired_arrays += atomic_load_explicit(&pool->arrays, memory_order_relaxed);
    atomic_store_explicit(&pool->live, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->arrays, 0, memory_order_relaxed);
    if (pool->prev) pool->prev->next = pool->next;
    else g_pools = pool->next;
    if (pool->next) pool->next->prev = pool->prev;
    pool->registered = 0; /* a value made or freed by a later destructor of this thread registers again */
    pthread_mutex_unlock(&g_chunks_lock);
}

static void pool_key_create(void) { pthread_key_create(&g_pool_key, pool_thread_exit); }

static void pool_register(void) {
    pthread_once(&g_pool_key_once, pool_key_create);
    pthread_setspecific(g_pool_key, &t_pool);
    pthread_mutex_lock(&g_chunks_lock);
    t_pool.next = g_pools;
    t_pool.prev = NULL;
    if (g_pools) g_pools->prev = &t_pool;
    g_pools = &t_pool;
    t_pool.registered = 1;
    pthread_mutex_unlock(&g_chunks_lock);
}

/* one of this thread's counts, t_pool.live or t_pool.arrays */
static inline void live_add(atomic_llong *count, long long delta) {
    long long live = atomic_load_explicit(count, memory_order_relaxed);
    atomic_store_explicit(count, live + delta, memory_order_relaxed);
}

/* Forget a free list that points into chunks returned by mg_pool_trim (only possible while no value is
 * alive, so nothing else refers to them). */
static inline void pool_sync(void) {
    if (!t_pool.registered) pool_register();
    unsigned generation = atomic_load_explicit(&g_generation, memory_order_relaxed);
    if (t_pool.generation != generation) {
        memset(t_pool.free_list, 0, sizeof t_pool.free_list);
        t_pool.generation = generation;
    }
}

/* Fills this thread's empty free list of class c: with the orphans of that class, else a new chunk. */
static int pool_grow(unsigned c) {
    pthread_mutex_lock(&g_chunks_lock);
    if (g_orphans[c]) { /* blocks freed by threads that have exited */
        t_pool.free_list[c] = g_orphans[c];
        g_orphans[c] = NULL;
        pthread_mutex_unlock(&g_chunks_lock);
        return 1;
    }
    if (g_n_chunks == g_chunks_capacity) {
        size_t capacity = 64, bytes = 0;
        int too_many = g_chunks_capacity && mg__mul_size(g_chunks_capacity, 2, &capacity);
        void **grown = too_many || mg__mul_size(capacity, sizeof *g_chunks, &bytes)
                           ? NULL
                           : mg__realloc(g_chunks, g_chunks_capacity * sizeof *g_chunks, bytes);
        if (!grown) {
            pthread_mutex_unlock(&g_chunks_lock);
            return 0;
        }
        g_chunks = grown;
        g_chunks_capacity = capacity;
    }
    void *block = mg__alloc(CHUNK_BYTES);
    if (block) g_chunks[g_n_chunks++] = block;
    pthread_mutex_unlock(&g_chunks_lock);
    if (!block) return 0;
    pool_block *blocks = (pool_block *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    size_t step = class_blocks(c);
    for (size_t i = CHUNK_VALUES / step * step; i > 0;) {
        i -= step;
        blocks[i].next = t_pool.free_list[c];
        t_pool.free_list[c] = &blocks[i];
    }
    POISON(blocks, CHUNK_VALUES * sizeof *blocks);
    return 1;
}

mg_value *mg__value_alloc(void) {
    pool_sync();
    if (!t_pool.free_list[0] && !pool_grow(0)) {
        mg__fail_in(MG__ORIGIN_VALUE, MG_ERR_NOMEM, "out of memory: no room for a new value");
        return NULL;
    }
    pool_block *v = t_pool.free_list[0];
    UNPOISON(v, sizeof *v);
    t_pool.free_list[0] = v->next;
    live_add(&t_pool.live, 1);
    return (mg_value *)v;
}

void mg__value_dealloc(mg_value *value) {
    pool_sync();
    pool_block *v = (pool_block *)value;
    v->next = t_pool.free_list[0];
    t_pool.free_list[0] = v;
    POISON(v, sizeof *v);
    live_add(&t_pool.live, -1);
}

/* Only the `count` pointers asked for are unpoisoned: reading past them is an error AddressSanitizer sees. */
mg_value **mg__inputs_alloc(size_t count) {
    size_t bytes = count * sizeof(mg_value *);
    unsigned c = size_class(bytes);
    pool_sync();
    pool_block *a = NULL;
    if (c == POOL_CLASSES) {
        a = mg__alloc(bytes);
    } else if (t_pool.free_list[c] || pool_grow(c)) {
        a = t_pool.free_list[c];
        UNPOISON(a, bytes);
        t_pool.free_list[c] = a->next;
    }
    if (!a) return NULL;
    live_add(&t_pool.arrays, 1);
    return (mg_value **)a;
}

void mg__inputs_free(mg_value **inputs, size_t count) {
    size_t bytes = count * sizeof *inputs;
    unsigned c = size_class(bytes);
    pool_sync();
    live_add(&t_pool.arrays, -1);
    if (c == POOL_CLASSES) {
        mg__free(inputs, bytes);
        return;
    }
    pool_block *a = (pool_block *)inputs;
    a->next = t_pool.free_list[c];
    t_pool.free_list[c] = a;
    POISON(a, class_blocks(c) * sizeof *a);
}

/* Values (or input arrays, arrays != 0) alive in all threads. The caller holds g_chunks_lock. */
static long long live_total(int arrays) {
    long long total = arrays ? g_retired_arrays : g_retired_live;
    for (thread_pool *pool = g_pools; pool; pool = pool->next)
        total += atomic_load_explicit(arrays ? &pool->arrays : &pool->live, memory_order_relaxed);
    return total;
}

int64_t mg_live_values(void) {
    pthread_mutex_lock(&g_chunks_lock);
    long long total = live_total(0);
    pthread_mutex_unlock(&g_chunks_lock);
    return (int64_t)total;
}

size_t mg_value_size(void) { return MG__VALUE_BYTES; }

/* ---- other live objects: counted here so that mg_set_allocator needs nothing from the layers above ---- */

static atomic_llong g_live_objects[MG__LIVE_KINDS];

void mg__live_add(mg__live_kind kind, int delta) {
    atomic_fetch_add_explicit(&g_live_objects[kind], delta, memory_order_relaxed);
}

int64_t mg__live_count(mg__live_kind kind) {
    return (int64_t)atomic_load_explicit(&g_live_objects[kind], memory_order_relaxed);
}

/* Returns every chunk to the allocator; the caller holds g_chunks_lock and has checked that no value and
 * no input array is alive. */
static void pool_release_chunks(void) {
    for (size_t i = 0; i < g_n_chunks; i++) {
        UNPOISON(g_chunks[i], CHUNK_BYTES);
        mg__free(g_chunks[i], CHUNK_BYTES);
    }
    mg__free(g_chunks, g_chunks_capacity * sizeof *g_chunks);
    g_chunks = NULL;
    g_n_chunks = g_chunks_capacity = 0;
    memset(g_orphans, 0, sizeof g_orphans);
    atomic_fetch_add_explicit(&g_generation, 1, memory_order_relaxed);
    memset(t_pool.free_list, 0, sizeof t_pool.free_list);
}

mg_status mg_pool_trim(void) {
    mg_status status = MG_OK;
    pthread_mutex_lock(&g_chunks_lock);
    long long live = live_total(0), arrays = live_total(1);
    if (live != 0) status = mg__fail(MG_ERR_STATE, "mg_pool_trim: %lld values are still alive", live);
    else if (arrays != 0) /* every array belongs to a live value: this is a leak */
        status = mg__fail(MG_ERR_STATE, "mg_pool_trim: %lld input arrays are still alive, with no value", arrays);
    else pool_release_chunks();
    pthread_mutex_unlock(&g_chunks_lock);
    return status;
}

mg_status mg_set_allocator(mg_alloc_fn alloc, void *ud) {
    mg_status status = MG_OK;
    pthread_mutex_lock(&g_chunks_lock);
    long long live = live_total(0) + live_total(1), tensors = (long long)mg__live_count(MG__LIVE_TENSOR);
    if (live != 0 || tensors != 0) {
        status = mg__fail(MG_ERR_STATE, "mg_set_allocator: %lld values and %lld tensors are still alive", live,
                          tensors);
    } else {
        pool_release_chunks();
        g_alloc = alloc ? alloc : default_alloc;
        g_alloc_ud = alloc ? ud : NULL;
    }
    pthread_mutex_unlock(&g_chunks_lock);
    return status;
}

/* ---- arrays handed to callers: a header keeps the size for mg_free ---- */

typedef union {
    size_t size;
    max_align_t align;
} array_header;

/* NULL when out of memory, or when size and the header overflow size_t (the caller checked its own size
 * computation, so that is out of memory too: no allocator has that much). */
void *mg__alloc_array(size_t size) {
    size_t total;
    if (mg__add_size(size, sizeof(array_header), &total)) return NULL;
    array_header *h = mg__alloc(total);
    if (!h) return NULL;
    h->size = size;
    return h + 1;
}

void mg_free(void *ptr) {
    if (!ptr) return;
    array_header *h = (array_header *)ptr - 1;
    mg__free(h, sizeof *h + h->size);
}
