/* Exercise 04, a solution: s was never released. Releasing f alone does not free s: f gave back its
 * own reference to s, but the one mg_add() handed to us was still held. */
#include <micrograd.h>
#include <stdio.h>

int main(void) {
    mg_value *a = mg_value_new(3.0), *b = mg_value_new(4.0);
    mg_value *ab = mg_mul(a, b);
    mg_value *s = mg_add(ab, a);
    mg_value *f = mg_mul_scalar(s, 2.0);
    printf("f = %g\n", mg_value_data(f));
    mg_value_release(f);
    mg_value_release(s);
    mg_value_release(ab);
    mg_value_release(b);
    mg_value_release(a);
    printf("alive at the end: %lld\n", (long long)mg_live_values());
    return 0;
}
