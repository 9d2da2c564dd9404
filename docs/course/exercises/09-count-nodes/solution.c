/* Exercise 09, a solution: a stack of nodes to visit, and a list of the marked ones to unmark. */
#include <micrograd.h>
#include <stdio.h>
#include <stdlib.h>

static char SEEN;

/* ---- yours ---- */
static long count_nodes(mg_value *root) {
    size_t top = 0, cap = 1024, n_seen = 0, seen_cap = 1024;
    mg_value **stack = malloc(cap * sizeof *stack), **seen = malloc(seen_cap * sizeof *seen);
    long count = -1;
    if (!stack || !seen) goto done;
    stack[top++] = root;
    while (top > 0) {
        mg_value *node = stack[--top];
        if (mg_value_user(node) == &SEEN) continue;
        mg_value_set_user(node, &SEEN);
        if (n_seen == seen_cap) {
            mg_value **grown = realloc(seen, 2 * seen_cap * sizeof *seen);
            if (!grown) goto done;
            seen = grown;
            seen_cap *= 2;
        }
        seen[n_seen++] = node;
        for (size_t i = 0; i < mg_value_num_inputs(node); i++) {
            if (top == cap) {
                mg_value **grown = realloc(stack, 2 * cap * sizeof *stack);
                if (!grown) goto done;
                stack = grown;
                cap *= 2;
            }
            stack[top++] = mg_value_input(node, i);
        }
    }
    count = (long)n_seen;
done: /* the marks come off on every path */
    for (size_t i = 0; i < n_seen; i++) mg_value_set_user(seen[i], NULL);
    free(seen);
    free(stack);
    return count;
}

/* ---- the harness (do not edit) ---- */
static int check(mg_value *root, const char *what) {
    mg_value **order;
    size_t expected;
    if (mg_topo_order(root, &order, &expected) != MG_OK) return 0;
    mg_free(order);
    long got = count_nodes(root);
    printf("%s: %ld nodes (expected %zu)\n", what, got, expected);
    return got == (long)expected && mg_value_user(root) == NULL;
}

int main(void) {
    mg_value *x = mg_value_new(0.5);
    mg_value *y = mg_add(x, x); /* two edges to one node: counted once */
    int ok = check(y, "x + x");
    for (int i = 0; i < 100000; i++) { /* y = y * y + y, deeper and deeper */
        mg_value *sq = mg_mul(y, y);
        mg_value *next = mg_add(sq, y);
        mg_value_release(sq);
        mg_value_release(y);
        y = next;
    }
    ok = check(y, "a deep graph") && ok;
    mg_value_release(y);
    mg_value_release(x);
    return ok && mg_live_values() == 0 ? 0 : 1;
}
