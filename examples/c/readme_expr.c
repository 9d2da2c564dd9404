/* micrograd's README expression in C: prints g = 24.7041, a.grad = 138.8338, b.grad = 645.5773.
 *
 * Every op returns a new reference that we own. Rather than releasing each intermediate by hand, this
 * example keeps them in a small list and releases them all at the end. */
#include <micrograd.h>
#include <stdio.h>

static mg_value *owned[64];
static int n_owned;

static mg_value *keep(mg_value *v) { /* remember v so main() can release it */
    if (n_owned < 64) owned[n_owned++] = v;
    return v;
}

int main(void) {
    mg_value *a = keep(mg_value_new(-4.0));
    mg_value *b = keep(mg_value_new(2.0));
    mg_value *c = keep(mg_add(a, b));                                      /* c = a + b */
    mg_value *d = keep(mg_add(keep(mg_mul(a, b)), keep(mg_pow_scalar(b, 3))));    /* d = a*b + b**3 */
    c = keep(mg_add(c, keep(mg_add_scalar(c, 1.0))));                           /* c += c + 1 */
    c = keep(mg_add(c, keep(mg_add(keep(mg_add_scalar(c, 1.0)), keep(mg_neg(a)))))); /* c += 1 + c + (-a) */
    d = keep(mg_add(d, keep(mg_add(keep(mg_mul_scalar(d, 2.0)), keep(mg_relu(keep(mg_add(b, a))))))));
    d = keep(mg_add(d, keep(mg_add(keep(mg_mul_scalar(d, 3.0)), keep(mg_relu(keep(mg_sub(b, a))))))));
    mg_value *e = keep(mg_sub(c, d));                                      /* e = c - d */
    mg_value *f = keep(mg_pow_scalar(e, 2));                                      /* f = e**2 */
    mg_value *g = keep(mg_div_scalar(f, 2.0));                                  /* g = f / 2.0 */
    g = keep(mg_add(g, keep(mg_rdiv_scalar(10.0, f))));                         /* g += 10.0 / f */

    int status = 0;
    if (!g || mg_backward(g) != MG_OK) {
        fprintf(stderr, "error: %s\n", mg_last_error());
        status = 1;
    } else {
        printf("g.data = %.4f\n", mg_value_data(g));
        printf("a.grad = %.4f\n", mg_value_grad(a));
        printf("b.grad = %.4f\n", mg_value_grad(b));
    }
    for (int i = 0; i < n_owned; i++) mg_value_release(owned[i]);
    return status;
}
