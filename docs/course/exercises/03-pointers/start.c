/* Exercise 03 (chapter 3): pointers and arrays.
 *
 * Write swap(), which exchanges the two doubles its arguments point at, and sum(), which adds the n
 * doubles starting at x (walk the array with an index or with a pointer; both are C). The program must
 * print exactly
 *     swapped: 2 1
 *     sum: 10
 * Check it with: make exercise NAME=03-pointers */
#include <stddef.h>
#include <stdio.h>

static void swap(double *x, double *y) {
    /* TODO */
    (void)x;
    (void)y;
}

static double sum(const double *x, size_t n) {
    /* TODO */
    (void)x;
    (void)n;
    return 0.0;
}

int main(void) {
    double a = 1.0, b = 2.0;
    swap(&a, &b);
    printf("swapped: %g %g\n", a, b);
    double xs[4] = {1.0, 2.0, 3.0, 4.0};
    printf("sum: %g\n", sum(xs, 4));
    return 0;
}
