/* Exercise 06, a solution: the case the compiler named. */
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
    case TRIANGLE: return s->a * s->b / 2.0;
    }
    return -1.0; /* not a shape_kind at all */
}

int main(void) {
    const shape shapes[] = {{CIRCLE, 2.0, 0.0}, {RECTANGLE, 2.0, 3.0}, {TRIANGLE, 2.0, 3.0}};
    printf("areas: %g %g %g\n", area(&shapes[0]), area(&shapes[1]), area(&shapes[2]));
    return 0;
}
