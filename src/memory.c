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
 * The live-value count is kept per thread too: a locked (atomic read-modify-write) increment on every
 * allocation would cost more than the allocation itself. Each thread's pool registers itself in a global
 * list on first use, mg_live_values() sums the list, and an exiting thread folds its count into
 * g_retired_live. A value freed by another thread than the one that made it makes one count go down and
 * the other up: only the sum means anything. */
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

void *mg__realloc(void *ptr, size_t old_size, size_t new_size) {
    return g_alloc(g_alloc_ud, ptr, old_size, new_size);
}

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

enum { CHUNK_VALUES = 4096, CHUNK_BYTES = CHUNK_VALUES * sizeof(pool_block) + 63 };

typedef struct thread_pool {
    pool_block *free_list;
    unsigned generation;
    int registered;
    atomic_llong live; /* written only by its thread (relaxed load + store: no lock), read by anyone */
    struct thread_pool *next, *prev;
} thread_pool;

static pthread_mutex_t g_chunks_lock = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static void **g_chunks = NULL; /* the allocator's blocks */
static size_t g_n_chunks = 0, g_chunks_capacity = 0;
static atomic_uint g_generation = 1;
static thread_pool *g_pools = NULL;
static pool_block *g_orphans = NULL; /* free values left by exited threads, one list */
static long long g_retired_live = 0;
static pthread_key_t g_pool_key;
static pthread_once_t g_pool_key_once = PTHREAD_ONCE_INIT;

/* initial-exec: a plain %fs-relative load instead of a __tls_get_addr call per allocation when the
 * library sits in a shared object (the Python extension); it is small enough for glibc's static TLS reserve */
#if defined(__GNUC__)
static _Thread_local thread_pool t_pool __attribute__((tls_model("initial-exec")));
#else
static _Thread_local thread_pool t_pool;
#endif

static void pool_thread_exit(void *arg) {
    thread_pool *pool = arg;
    pthread_mutex_lock(&g_chunks_lock);
    if (pool->free_list && pool->generation == atomic_load_explicit(&g_generation, memory_order_relaxed)) {
        pool_block *tail = pool->free_list;
        for (;;) { /* walk to the end to append the orphans after it */
            UNPOISON(tail, sizeof *tail);
            pool_block *next = tail->next;
            if (!next) break;
            POISON(tail, sizeof *tail);
            tail = next;
        }
        tail->next = g_orphans;
        POISON(tail, sizeof *tail);
        g_orphans = pool->free_list;
        pool->free_list = NULL;
    }
    g_retired_live += atomic_load_explicit(&pool->live, memory_order_relaxed);
    atomic_store_explicit(&pool->live, 0, memory_order_relaxed);
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

static inline void live_add(long long delta) {
    long long live = atomic_load_explicit(&t_pool.live, memory_order_relaxed);
    atomic_store_explicit(&t_pool.live, live + delta, memory_order_relaxed);
}

/* Forget a free list that points into chunks returned by mg_pool_trim (only possible while no value is
 * alive, so nothing else refers to them). */
static inline void pool_sync(void) {
    if (!t_pool.registered) pool_register();
    unsigned generation = atomic_load_explicit(&g_generation, memory_order_relaxed);
    if (t_pool.generation != generation) {
        t_pool.free_list = NULL;
        t_pool.generation = generation;
    }
}

static int pool_grow(void) {
    pthread_mutex_lock(&g_chunks_lock);
    if (g_orphans) { /* values freed by threads that have exited */
        t_pool.free_list = g_orphans;
        g_orphans = NULL;
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
    pool_block *values = (pool_block *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    for (size_t i = CHUNK_VALUES; i-- > 0;) {
        values[i].next = t_pool.free_list;
        t_pool.free_list = &values[i];
    }
    POISON(values, CHUNK_VALUES * sizeof *values);
    return 1;
}

mg_value *mg__value_alloc(void) {
    pool_sync();
    if (!t_pool.free_list && !pool_grow()) {
        mg__fail_in(MG__ORIGIN_VALUE, MG_ERR_NOMEM, "out of memory: no room for a new value");
        return NULL;
    }
    pool_block *v = t_pool.free_list;
    UNPOISON(v, sizeof *v);
    t_pool.free_list = v->next;
    live_add(1);
    return (mg_value *)v;
}

void mg__value_dealloc(mg_value *value) {
    pool_sync();
    pool_block *v = (pool_block *)value;
    v->next = t_pool.free_list;
    t_pool.free_list = v;
    POISON(v, sizeof *v);
    live_add(-1);
}

/* The caller holds g_chunks_lock. */
static long long live_total(void) {
    long long total = g_retired_live;
    for (thread_pool *pool = g_pools; pool; pool = pool->next)
        total += atomic_load_explicit(&pool->live, memory_order_relaxed);
    return total;
}

int64_t mg_live_values(void) {
    pthread_mutex_lock(&g_chunks_lock);
    long long total = live_total();
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

/* Returns every chunk to the allocator; the caller holds g_chunks_lock and has checked g_live == 0. */
static void pool_release_chunks(void) {
    for (size_t i = 0; i < g_n_chunks; i++) {
        UNPOISON(g_chunks[i], CHUNK_BYTES);
        mg__free(g_chunks[i], CHUNK_BYTES);
    }
    mg__free(g_chunks, g_chunks_capacity * sizeof *g_chunks);
    g_chunks = NULL;
    g_n_chunks = g_chunks_capacity = 0;
    g_orphans = NULL;
    atomic_fetch_add_explicit(&g_generation, 1, memory_order_relaxed);
    t_pool.free_list = NULL;
}

mg_status mg_pool_trim(void) {
    mg_status status = MG_OK;
    pthread_mutex_lock(&g_chunks_lock);
    long long live = live_total();
    if (live != 0)
        status = mg__fail(MG_ERR_STATE, "mg_pool_trim: %lld values are still alive", live);
    else
        pool_release_chunks();
    pthread_mutex_unlock(&g_chunks_lock);
    return status;
}

mg_status mg_set_allocator(mg_alloc_fn alloc, void *ud) {
    mg_status status = MG_OK;
    pthread_mutex_lock(&g_chunks_lock);
    long long live = live_total(), tensors = (long long)mg__live_count(MG__LIVE_TENSOR);
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
