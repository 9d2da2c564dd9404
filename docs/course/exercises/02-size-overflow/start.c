/* Exercise 02 (chapter 2): refuse a size that overflows.
 *
 * array_bytes() computes how many bytes an array of n elements of `each` bytes takes. In C, size_t
 * arithmetic wraps around silently: for a huge n the product comes out small, malloc succeeds, and the
 * program writes past the end. Make array_bytes() return -1 (and leave *out alone) when n * each does not
 * fit in a size_t, using __builtin_mul_overflow as src/internal.h does; 0 with *out set otherwise.
 * Check it with: make exercise NAME=02-size-overflow */
#include <stdint.h>
#include <stdio.h>

static int array_bytes(size_t n, size_t each, size_t *out) {
    *out = n * each; /* TODO: this wraps around for large n */
    return 0;
}

int main(void) {
    size_t bytes = 0;
    int ok = array_bytes(1000, sizeof(double), &bytes) == 0 && bytes == 8000;
    size_t untouched = 12345;
    ok = ok && array_bytes(SIZE_MAX / 4, sizeof(double), &untouched) == -1 && untouched == 12345;
    ok = ok && array_bytes(SIZE_MAX, 1, &bytes) == 0 && bytes == SIZE_MAX;
    ok = ok && array_bytes((size_t)1 << 40, (size_t)1 << 30, &untouched) == -1;
    printf("%s\n", ok ? "ok" : "wrong");
    return ok ? 0 : 1;
}
