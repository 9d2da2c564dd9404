/* Exercise 13b (chapter 13): fix a signed overflow that UndefinedBehaviorSanitizer finds.
 *
 * hash() is the classic string hash h = h * 31 + c. With an `int`, a long enough string overflows it,
 * and signed overflow is undefined behaviour: the compiler may assume it never happens. Compiled
 * normally it usually prints some number. The check compiles it with -fsanitize=undefined, which stops
 * at the overflow. Make the hash wrap on purpose, the defined way: unsigned arithmetic (uint32_t from
 * <stdint.h>) wraps modulo 2^32. The program must then print exactly
 *     hash = 550784982
 * Check it with: make exercise NAME=13-ubsan */
#include <stdio.h>

static int hash(const char *s) {
    int h = 0;
    for (; *s; s++) h = h * 31 + (unsigned char)*s;
    return h;
}

int main(void) {
    printf("hash = %u\n", (unsigned)hash("micrograd-c: a tiny autograd engine in C"));
    return 0;
}
