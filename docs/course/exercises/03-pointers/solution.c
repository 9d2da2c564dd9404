/* Exercise 03, a solution. */
#include <stddef.h>
#include <stdio.h>

static void swap(double *x, double *y) {
    double t = *x;
    *x = *y;
    *y = t;
}

static double sum(const double *x, size_t n) {
    double s = 0.0;
    for (const double *end = x + n; x < end; x++) s += *x;
    return s;
}

int main(void) {
    double a = 1.0, b = 2.0;
    swap(&a, &b);
    printf("swapped: %g %g\n", a, b);
    double xs[4] = {1.0, 2.0, 3.0, 4.0};
    printf("sum: %g\n", sum(xs, 4));
    return 0;
}
