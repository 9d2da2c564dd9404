/* Exercise 09 (chapter 9): count a graph's nodes without recursion.
 *
 * count_nodes() must return how many distinct values root reaches (root included), each counted once
 * however many paths lead to it. A recursive walk would be three lines, and it would crash here: the
 * harness builds a graph 200,000 nodes deep and the check runs it with a 256 KiB stack. Use an explicit
 * stack (an array you grow with realloc), as src/graph.c does, and mark what you have seen with
 * mg_value_set_user(node, &SEEN) (check it with mg_value_user(node) == &SEEN); clear the marks (set them
 * back to NULL) before returning. The inputs of a node: mg_value_num_inputs() and mg_value_input().
 * Return -1 if an allocation fails.
 * Check it with: make exercise NAME=09-count-nodes */
#include <micrograd.h>
#include <stdio.h>
#include <stdlib.h>

static char SEEN;

/* ---- yours ---- */
static long count_nodes(mg_value *root) {
    (void)root;
    return 0; /* TODO */
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
