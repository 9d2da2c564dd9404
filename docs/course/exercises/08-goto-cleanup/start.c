/* Exercise 08 (chapter 8): free on every path, with goto cleanup.
 *
 * model_init() takes three buffers. When the second or the third allocation fails, it returns -1 but
 * keeps what it already took: a leak on every failure path. Rewrite it in the shape of chapter 8: one
 * `goto fail;` after each failed step, and one label at the end that frees what was taken (free(NULL)
 * is allowed, so it can free all three) and returns -1. Success returns 0 and keeps the buffers.
 * The harness below fails each allocation in turn and checks that nothing is left behind.
 * Check it with: make exercise NAME=08-goto-cleanup */
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
    m->weights = xmalloc(n * sizeof *m->weights);
    if (!m->weights) return -1;
    m->grads = xmalloc(n * sizeof *m->grads);
    if (!m->grads) return -1; /* TODO: weights leaks */
    m->moments = xmalloc(n * sizeof *m->moments);
    if (!m->moments) return -1; /* TODO: weights and grads leak */
    return 0;
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
