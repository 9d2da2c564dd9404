/* Exercise 11, a solution: an atomic read-modify-write cannot be interleaved. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

enum { THREADS = 4, STEPS = 100000 };

static atomic_long count;

static void *work(void *arg) {
    (void)arg;
    for (int i = 0; i < STEPS; i++) atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, work, NULL) != 0) return 1;
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("count = %ld\n", (long)atomic_load(&count));
    return 0;
}
