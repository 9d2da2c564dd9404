/* Exercise 13 (chapter 13): plant a bug and watch AddressSanitizer catch it.
 *
 * This program is correct. Break it: make the loop write one element past the end of the buffer that
 * malloc gave (the classic `<=` instead of `<`). Compiled normally, the broken program usually still
 * prints its result, as if nothing happened: that is undefined behaviour. The check compiles it with
 * -fsanitize=address, which stops it at the bad write with a report naming a heap-buffer-overflow, and
 * passes when it sees that report. Read the report: it names the line of the write and the line of the
 * malloc.
 * Check it with: make exercise NAME=13-asan */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t n = 8;
    double *squares = malloc(n * sizeof *squares);
    if (!squares) return 1;
    for (size_t i = 0; i < n; i++) squares[i] = (double)(i * i);
    printf("last square: %g\n", squares[n - 1]);
    free(squares);
    return 0;
}
