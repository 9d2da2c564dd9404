/* Exercise 07 (chapter 7): repair two macros.
 *
 * SQUARE and MAX are written the naive way, and each falls into one of chapter 7's traps:
 * SQUARE(1 + 2) expands to 1 + 2 * 1 + 2, which is 5; and 2 * MAX(3, 4) expands to
 * 2 * (3) > (4) ? (3) : (4), which is 3. Add parentheses (around each argument, and around the whole
 * expansion), so that the program prints exactly
 *     SQUARE(1 + 2) = 9, 2 * MAX(3, 4) = 8
 * (MAX still evaluates an argument twice: never pass it i++.)
 * Check it with: make exercise NAME=07-macros */
#include <stdio.h>

#define SQUARE(x) x * x
#define MAX(a, b) (a) > (b) ? (a) : (b)

int main(void) {
    printf("SQUARE(1 + 2) = %d, 2 * MAX(3, 4) = %d\n", SQUARE(1 + 2), 2 * MAX(3, 4));
    return 0;
}
