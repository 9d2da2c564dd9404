/* platform.c: what the library asks of the machine it runs on, what it says of itself, the per-thread
 * grad mode that both engines read, and the one worker pool (with its one thread setting) that the tensor
 * kernels and fit share. */
#if defined(__linux__)
#define _GNU_SOURCE /* pthread_setname_np: the workers show as "mg-pool" in top, gdb and /proc */
#else
#define _POSIX_C_SOURCE 200809L
#endif
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

const char *mg_version(void) { return MG_VERSION_STRING; }

int mg_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

#if defined(__GNUC__)
_Thread_local int mg__grad_off __attribute__((tls_model("initial-exec"))) = 0;
#else
_Thread_local int mg__grad_off = 0;
#endif

int mg_set_grad_enabled(int enabled) {
    int previous = !mg__grad_off;
    mg__grad_off = !enabled;
    return previous;
}

int mg_is_grad_enabled(void) { return !mg__grad_off; }

/* ---- the one thread setting ---- */

static atomic_int g_num_threads = 0; /* 0: every core */

void mg_set_num_threads(int n) { atomic_store(&g_num_threads, n < 0 ? 0 : n > MG__MAX_THREADS ? MG__MAX_THREADS : n); }

int mg_get_num_threads(void) {
    static atomic_int cores = 0; /* counting them asks the kernel: once is enough */
    int n = atomic_load(&g_num_threads);
    if (n > 0) return n;
    if (!(n = atomic_load(&cores))) atomic_store(&cores, n = mg_num_cores());
    return n;
}

/* ---- the worker pool ----
 * Workers are started on first need and kept. Worker i only ever runs part i of a job. The caller hands
 * a part over by bumping that worker's ticket, and waits for `remaining` to reach 0. For a job of
 * MG__POOL_SPIN both sides spin a little before they sleep: a fit step takes tens of microseconds, and a
 * thread woken from a futex can take about as long to run again, so back-to-back steps never sleep. Other
 * jobs sleep at once: a thread that spins loses the scheduler's credit for sleeping, and on a machine
 * with more runnable threads than cores it is then preempted for milliseconds while its part is due (a
 * 128 x 128 matmul ran 7x slower so on a loaded 2-core machine). The sleep is race-free by a Dekker
 * pair of sequentially consistent atomics: a sleeper publishes `sleeping` and then reads its condition,
 * the waker publishes the condition and then reads `sleeping`, so at least one sees the other; the
 * sleeper waits and the waker signals under g_lock, so no wake-up is lost in between. One job at a time
 * (g_busy): a caller finding the pool busy runs its parts itself. After fork() the child has no workers. */

enum { SPINS = 20000 }; /* about 250 us of pause instructions on a 2020s Xeon */

typedef struct {
    _Alignas(64) atomic_ulong ticket; /* bumped for each job this worker takes part in; own cache line */
    atomic_int sleeping;
    unsigned long born;               /* the ticket when the worker was started: a later one is a job */
    pthread_cond_t wake;
} pool_slot;

static pool_slot g_slots[MG__MAX_THREADS]; /* slot 0 is the caller's: never used */
static size_t g_workers;                   /* started, slots 1..g_workers; changed under g_busy only */
static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* for sleeping and waking only */
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static atomic_int g_caller_sleeping;
static atomic_size_t g_remaining; /* parts handed to workers and not finished */
/* the job: written under g_busy before the tickets are bumped, read by workers after they see theirs */
static mg__part_fn g_fn;
static void *g_ctx;
static int g_spins; /* how long the job's threads spin before they sleep */
static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits until slot s's ticket moves past `seen`, spinning `spins` times first; returns the new ticket. */
static unsigned long wait_for_ticket(pool_slot *s, unsigned long seen, int spins) {
    unsigned long t;
    for (int spin = 0; spin < spins; spin++) {
        if ((t = atomic_load_explicit(&s->ticket, memory_order_acquire)) != seen) return t;
        cpu_relax();
    }
    pthread_mutex_lock(&g_lock);
    atomic_store(&s->sleeping, 1);
    while ((t = atomic_load(&s->ticket)) == seen) pthread_cond_wait(&s->wake, &g_lock);
    atomic_store(&s->sleeping, 0);
    pthread_mutex_unlock(&g_lock);
    return t;
}

static void *worker_main(void *arg) {
    pool_slot *s = arg;
    size_t part = (size_t)(s - g_slots);
#if defined(__linux__)
    pthread_setname_np(pthread_self(), "mg-pool");
#endif
    int spins = 0;
    for (unsigned long seen = s->born;;) {
        seen = wait_for_ticket(s, seen, spins);
        spins = g_spins; /* read before the part is handed back: the next job may change it */
        g_fn(g_ctx, part);
        if (atomic_fetch_sub(&g_remaining, 1) == 1 && atomic_load(&g_caller_sleeping)) {
            pthread_mutex_lock(&g_lock);
            pthread_cond_signal(&g_done);
            pthread_mutex_unlock(&g_lock);
        }
    }
    return NULL;
}

static void wait_for_workers(int spins) {
    for (int spin = 0; spin < spins; spin++) {
        if (atomic_load_explicit(&g_remaining, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&g_lock);
    atomic_store(&g_caller_sleeping, 1);
    while (atomic_load(&g_remaining) != 0) pthread_cond_wait(&g_done, &g_lock);
    atomic_store(&g_caller_sleeping, 0);
    pthread_mutex_unlock(&g_lock);
}

static void pool_after_fork(void) {
    /* only the forking thread exists in the child: forget the workers, reset the locks */
    pthread_mutex_init(&g_busy, NULL);
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_done, NULL);
    atomic_store(&g_caller_sleeping, 0);
    atomic_store(&g_remaining, 0);
    g_workers = 0;
}

static void pool_register_fork(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Makes workers 1..wanted exist, as many as can be started (under g_busy); returns how many do. */
static size_t pool_start(size_t wanted) {
    pthread_once(&g_fork_once, pool_register_fork);
    while (g_workers < wanted) {
        pool_slot *s = &g_slots[g_workers + 1];
        atomic_store(&s->sleeping, 0);
        s->born = atomic_load(&s->ticket);
        pthread_cond_init(&s->wake, NULL);
        pthread_t id;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&id, &attr, worker_main, s) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) {
            pthread_cond_destroy(&s->wake);
            break;
        }
        g_workers++;
    }
    return g_workers < wanted ? g_workers : wanted;
}

void mg__pool_run(size_t parts, mg__part_fn fn, void *ctx, mg__pool_wait wait) {
    if (parts <= 1 || pthread_mutex_trylock(&g_busy) != 0) {
        for (size_t part = 0; part < parts; part++) fn(ctx, part); /* alone, or the pool is someone else's */
        return;
    }
    size_t helpers = pool_start(parts - 1 < MG__MAX_THREADS - 1 ? parts - 1 : MG__MAX_THREADS - 1);
    g_fn = fn;
    g_ctx = ctx;
    g_spins = wait == MG__POOL_SPIN ? SPINS : 0;
    atomic_store(&g_remaining, helpers);
    for (size_t i = 1; i <= helpers; i++) {
        pool_slot *s = &g_slots[i];
        atomic_fetch_add(&s->ticket, 1);
        if (atomic_load(&s->sleeping)) {
            pthread_mutex_lock(&g_lock);
            pthread_cond_signal(&s->wake);
            pthread_mutex_unlock(&g_lock);
        }
    }
    fn(ctx, 0);
    for (size_t part = helpers + 1; part < parts; part++) fn(ctx, part); /* no worker for these */
    wait_for_workers(g_spins);
    pthread_mutex_unlock(&g_busy);
}
