/* Exercise 05 (chapter 5): methods as prefixed functions.
 *
 * stats keeps running statistics of the numbers pushed into it. Write its three "methods":
 * stats_push() adds one number (update n, sum, min and max; the first push sets min and max),
 * stats_mean() returns sum / n (NaN when n is 0), and stats_range() returns max - min (0 when n is 0).
 * The program must print exactly
 *     n = 4, mean = 2.5, range = 3
 * Check it with: make exercise NAME=05-struct-methods */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

typedef struct stats {
    size_t n;
    double sum, min, max;
} stats;

static void stats_push(stats *s, double x) {
    (void)s; /* TODO */
    (void)x;
}

static double stats_mean(const stats *s) {
    (void)s; /* TODO */
    return NAN;
}

static double stats_range(const stats *s) {
    (void)s; /* TODO */
    return NAN;
}

int main(void) {
    stats s = {0};
    if (!isnan(stats_mean(&s)) && s.n == 0) return 1;
    const double xs[] = {2.0, 4.0, 1.0, 3.0};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) stats_push(&s, xs[i]);
    printf("n = %zu, mean = %g, range = %g\n", s.n, stats_mean(&s), stats_range(&s));
    return 0;
}
