/* value_internal.h: what the scalar value engine (value.c, graph.c) shares: the node layout and the
 * traversals. Nothing here is public API. */
#ifndef MG_VALUE_INTERNAL_H
#define MG_VALUE_INTERNAL_H

#include "internal.h"

#include <stdint.h>

/* One scalar node: 64 bytes, one cache line. Up to two inputs sit in `in.pair`; more (MG_OP_AFFINE) in an
 * array of n_in pointers at `in.many`: mg__inputs() picks the right one. `c` is the constant of the `_SCALAR`
 * ops; `pending` counts, during a traversal, the edges from parents not yet processed (0 between
 * traversals). `u.next` links a dead node into mg_value_release's stack (the pool keeps links of its own in free
 * blocks). */
struct mg_value {
    double data;
    double grad;
    union {
        mg_value *pair[2];
        mg_value **many;
    } in;
    double c;
    union {
        void *user;
        mg_value *next;
    } u;
    uint32_t refs;
    uint32_t pending;
    uint32_t n_in;
    uint8_t op;
};

static inline mg_value **mg__inputs(mg_value *v) { return v->n_in <= 2 ? v->in.pair : v->in.many; }

_Static_assert(sizeof(mg_value) == MG__VALUE_BYTES, "a value is one cache line, the pool's block");

/* Traversal (graph.c): every node reachable from root, each once, root first and every node before its
 * inputs (reverse topological order). Free the list with mg__nodes_free. */
typedef struct mg__nodes {
    mg_value **items;
    size_t count;
    size_t capacity;
} mg__nodes;
mg_status mg__reverse_topo(mg_value *root, mg__nodes *out, const char *func);
/* Pass 1 of it alone: every reachable node in out (in no useful order), each node's `pending` set to the
 * number of edges from its parents. The caller must run pass 2 (release each node once its pending count
 * drops to 0, starting from root), which leaves every pending count at 0 again. */
mg_status mg__count_parents(mg_value *root, mg__nodes *out, const char *func);
void mg__nodes_free(mg__nodes *list);

#endif
