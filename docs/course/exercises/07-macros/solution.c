/* Exercise 07, a solution: parentheses around every argument, and around the whole expansion. */
#include <stdio.h>

#define SQUARE(x) ((x) * (x))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

int main(void) {
    printf("SQUARE(1 + 2) = %d, 2 * MAX(3, 4) = %d\n", SQUARE(1 + 2), 2 * MAX(3, 4));
    return 0;
}
