/* Exercise 13, a solution: the loop runs one step too far. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t n = 8;
    double *squares = malloc(n * sizeof *squares);
    if (!squares) return 1;
    for (size_t i = 0; i <= n; i++) /* the planted bug: i == n is past the end */ squares[i] = (double)(i * i);
    printf("last square: %g\n", squares[n - 1]);
    free(squares);
    return 0;
}
