/* Exercise 08, a solution: one label frees whatever was taken. */
#include <stdio.h>
#include <stdlib.h>

/* ---- the harness's allocator: fails the fail_at-th call, counts the blocks alive (do not edit) ---- */
static int calls, fail_at, alive;
static void *xmalloc(size_t n) {
    if (++calls == fail_at) return NULL;
    void *p = malloc(n);
    if (p) alive++;
    return p;
}
static void xfree(void *p) {
    if (p) alive--;
    free(p);
}

typedef struct model {
    double *weights, *grads, *moments;
} model;

/* ---- yours ---- */
static int model_init(model *m, size_t n) {
    m->weights = m->grads = m->moments = NULL;
    m->weights = xmalloc(n * sizeof *m->weights);
    if (!m->weights) goto fail;
    m->grads = xmalloc(n * sizeof *m->grads);
    if (!m->grads) goto fail;
    m->moments = xmalloc(n * sizeof *m->moments);
    if (!m->moments) goto fail;
    return 0;

fail: /* one exit for every failure: frees what was taken (xfree(NULL) does nothing) */
    xfree(m->weights);
    xfree(m->grads);
    xfree(m->moments);
    m->weights = m->grads = m->moments = NULL;
    return -1;
}

/* ---- the harness (do not edit) ---- */
static void model_free(model *m) {
    xfree(m->weights);
    xfree(m->grads);
    xfree(m->moments);
}

int main(void) {
    for (fail_at = 1; fail_at <= 4; fail_at++) {
        calls = 0;
        model m = {0};
        int status = model_init(&m, 100);
        int want = fail_at <= 3 ? -1 : 0;
        if (status != want) {
            printf("allocation %d failing: model_init returned %d, expected %d\n", fail_at, status, want);
            return 1;
        }
        if (status == 0) model_free(&m);
        if (alive != 0) {
            printf("allocation %d failing: %d block(s) left behind\n", fail_at, alive);
            return 1;
        }
    }
    printf("ok\n");
    return 0;
}
