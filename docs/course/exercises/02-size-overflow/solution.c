/* Exercise 02, a solution: __builtin_mul_overflow computes the exact product and says whether it fit. */
#include <stdint.h>
#include <stdio.h>

static int array_bytes(size_t n, size_t each, size_t *out) {
    size_t bytes;
    if (__builtin_mul_overflow(n, each, &bytes)) return -1;
    *out = bytes;
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
