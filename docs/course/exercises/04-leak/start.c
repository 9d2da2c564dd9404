/* Exercise 04 (chapter 4): find the leak.
 *
 * This program computes f = (a*b + a) * 2 and prints it, but one value is never released: every
 * function that returns an mg_value * hands you one reference, and each must be given back with
 * mg_value_release(). mg_live_values() counts the values alive; the program prints it at the end.
 * Release what it forgets, so that it prints "alive at the end: 0".
 * Check it with: make exercise NAME=04-leak */
#include <micrograd.h>
#include <stdio.h>

int main(void) {
    mg_value *a = mg_value_new(3.0), *b = mg_value_new(4.0);
    mg_value *ab = mg_mul(a, b);
    mg_value *s = mg_add(ab, a);
    mg_value *f = mg_mul_scalar(s, 2.0);
    printf("f = %g\n", mg_value_data(f));
    mg_value_release(f);
    mg_value_release(ab);
    mg_value_release(b);
    mg_value_release(a);
    printf("alive at the end: %lld\n", (long long)mg_live_values());
    return 0;
}
