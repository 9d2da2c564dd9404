/* Exercise 05, a solution. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

typedef struct stats {
    size_t n;
    double sum, min, max;
} stats;

static void stats_push(stats *s, double x) {
    if (s->n == 0 || x < s->min) s->min = x;
    if (s->n == 0 || x > s->max) s->max = x;
    s->sum += x;
    s->n++;
}

static double stats_mean(const stats *s) { return s->n ? s->sum / (double)s->n : NAN; }

static double stats_range(const stats *s) { return s->n ? s->max - s->min : 0.0; }

int main(void) {
    stats s = {0};
    if (!isnan(stats_mean(&s)) && s.n == 0) return 1;
    const double xs[] = {2.0, 4.0, 1.0, 3.0};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) stats_push(&s, xs[i]);
    printf("n = %zu, mean = %g, range = %g\n", s.n, stats_mean(&s), stats_range(&s));
    return 0;
}
