/* Exercise 13b, a solution: unsigned arithmetic wraps, by definition. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

static uint32_t hash(const char *s) {
    uint32_t h = 0;
    for (; *s; s++) h = h * 31u + (unsigned char)*s;
    return h;
}

int main(void) {
    printf("hash = %" PRIu32 "\n", hash("micrograd-c: a tiny autograd engine in C"));
    return 0;
}
