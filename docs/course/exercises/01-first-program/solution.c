/* Exercise 01, a solution. */
#include <micrograd.h>
#include <stdio.h>

int main(void) {
    mg_value *a = mg_value_new(3.0);
    mg_value *b = mg_value_new(4.0);
    mg_value *c = mg_add(a, b);
    if (mg_backward(c) != MG_OK) {
        fprintf(stderr, "%s\n", mg_last_error());
        return 1;
    }
    printf("c = %g\n", mg_value_data(c));
    printf("grad of a = %g\n", mg_value_grad(a));
    mg_value_release(c);
    mg_value_release(b);
    mg_value_release(a);
    return mg_live_values() == 0 ? 0 : 1;
}
