/* Exercise 01 (chapter 1): your first program against the library.
 *
 * Make this program print exactly
 *     c = 7
 *     grad of a = 1
 * by building c = a + b with mg_add(), calling mg_backward(c), and reading a's gradient with
 * mg_value_grad(). Release every value you made, so that mg_live_values() is 0 at the end.
 * Check it with: make exercise NAME=01-first-program */
#include <micrograd.h>
#include <stdio.h>

int main(void) {
    mg_value *a = mg_value_new(3.0);
    mg_value *b = mg_value_new(4.0);
    mg_value *c = NULL; /* TODO: c = a + b */
    /* TODO: run backward from c */
    printf("c = %g\n", mg_value_data(c));
    printf("grad of a = %g\n", mg_value_grad(a));
    mg_value_release(c);
    mg_value_release(b);
    mg_value_release(a);
    return mg_live_values() == 0 ? 0 : 1;
}
