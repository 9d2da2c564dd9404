/* Exercise 06 (chapter 6): let the compiler find the missing case.
 *
 * A new shape, TRIANGLE, was added to the enum, and area() does not handle it. The switch has no
 * `default:`, so the compiler's -Wswitch warning (part of -Wall; an error under -Werror, as the check
 * and the project's CI build) names the missing case. Read the error, then add the case: a triangle's
 * area is base * height / 2, with the base in `a` and the height in `b`. Do not add a default: it would
 * hide the next missing case. The program must print exactly
 *     areas: 12.5664 6 3
 * Check it with: make exercise NAME=06-switch */
#include <stdio.h>

typedef enum shape_kind { CIRCLE, RECTANGLE, TRIANGLE } shape_kind;

typedef struct shape {
    shape_kind kind;
    double a, b; /* circle: radius; rectangle: width, height; triangle: base, height */
} shape;

static double area(const shape *s) {
    switch (s->kind) {
    case CIRCLE: return 3.14159265358979 * s->a * s->a;
    case RECTANGLE: return s->a * s->b;
    }
    return -1.0; /* not a shape_kind at all */
}

int main(void) {
    const shape shapes[] = {{CIRCLE, 2.0, 0.0}, {RECTANGLE, 2.0, 3.0}, {TRIANGLE, 2.0, 3.0}};
    printf("areas: %g %g %g\n", area(&shapes[0]), area(&shapes[1]), area(&shapes[2]));
    return 0;
}
