/* Exercise 11 (chapter 11): fix a data race, and let ThreadSanitizer confirm it.
 *
 * Four threads each count to 100,000 into one shared counter. `count++` is three steps (read, add,
 * write), and two threads can read the same old value: increments get lost, and the C standard calls
 * the program's behaviour undefined. The check builds it with -fsanitize=thread, which reports the race.
 * Make the counter an atomic (C11's <stdatomic.h>: atomic_long, and atomic_fetch_add), so that the
 * program prints exactly
 *     count = 400000
 * and ThreadSanitizer reports nothing. (A mutex would also be correct; an atomic is the tool here.)
 * Check it with: make exercise NAME=11-data-race */
#include <pthread.h>
#include <stdio.h>

enum { THREADS = 4, STEPS = 100000 };

static long count;

static void *work(void *arg) {
    (void)arg;
    for (int i = 0; i < STEPS; i++) count++;
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, work, NULL) != 0) return 1;
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("count = %ld\n", (long)count);
    return 0;
}
