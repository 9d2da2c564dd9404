/* graph.c: ordering the nodes of a graph without recursion.
 *
 * Kahn's algorithm, restricted to what root reaches. Pass 1 visits every reachable node once (a
 * breadth-first worklist) and counts in `pending` the edges that reach each node from its parents.
 * Pass 2 starts from root and releases a node once all its parents are done, so every node comes after
 * everything that uses it: the order backward needs. Both passes share one array: pass 1 fills it, pass 2
 * writes its output from the front while its stack grows down from the back; they cannot meet, as output
 * plus stack never exceeds the nodes pushed. Each node is touched twice and no recursion is involved. */
#include "value_internal.h"

#include <string.h>

void mg__nodes_free(mg__nodes *list) {
    mg__free(list->items, list->capacity * sizeof *list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}

static int nodes_grow(mg__nodes *list) {
    size_t capacity = list->capacity ? list->capacity * 2 : 1024;
    if (capacity > SIZE_MAX / sizeof *list->items) return 0;
    mg_value **items = mg__realloc(list->items, list->capacity * sizeof *items, capacity * sizeof *items);
    if (!items) return 0;
    list->items = items;
    list->capacity = capacity;
    return 1;
}

mg_status mg__count_parents(mg_value *root, mg__nodes *out, const char *func) {
    mg__nodes list = {0};
    if (!nodes_grow(&list)) return mg__fail(MG_ERR_NOMEM, "%s: out of memory ordering the graph", func);

    /* pass 1: visit, counting parent edges; pending goes 0 -> 1 on the first visit */
    list.items[list.count++] = root;
    for (size_t i = 0; i < list.count; i++) {
        mg_value *node = list.items[i];
        mg_value **inputs = mg__inputs(node);
        for (uint32_t k = 0; k < node->n_in; k++) {
            mg_value *input = inputs[k];
            if (input->pending++ != 0) continue;
            if (list.count == list.capacity && !nodes_grow(&list)) {
                /* undo the counts so the next traversal starts clean */
                input->pending = 0;
                for (size_t j = 0; j < list.count; j++) list.items[j]->pending = 0;
                mg__nodes_free(&list);
                return mg__fail(MG_ERR_NOMEM, "%s: out of memory ordering the graph", func);
            }
            list.items[list.count++] = input;
        }
    }
    *out = list;
    return MG_OK;
}

mg_status mg__reverse_topo(mg_value *root, mg__nodes *out, const char *func) {
    mg__nodes list;
    mg_status status = mg__count_parents(root, &list, func);
    if (status != MG_OK) return status;

    /* pass 2: release nodes whose parents are all done; leaves pending at 0 for the next traversal */
    size_t done = 0, top = list.capacity;
    list.items[--top] = root;
    while (top < list.capacity) {
        mg_value *node = list.items[top++];
        list.items[done++] = node;
        mg_value **inputs = mg__inputs(node);
        for (uint32_t k = 0; k < node->n_in; k++) {
            mg_value *input = inputs[k];
            if (--input->pending == 0) list.items[--top] = input;
        }
    }
    *out = list;
    return MG_OK;
}

mg_status mg_topo_order(mg_value *root, mg_value ***out_nodes, size_t *out_count) {
    if (!root || !out_nodes || !out_count) return mg__fail(MG_ERR_NULL, "mg_topo_order: an argument is NULL");
    mg__nodes order;
    mg_status status = mg__reverse_topo(root, &order, "mg_topo_order");
    if (status != MG_OK) return status;
    mg_value **nodes = mg__alloc_array(order.count * sizeof *nodes);
    if (!nodes) {
        mg__nodes_free(&order);
        return mg__fail(MG_ERR_NOMEM, "mg_topo_order: out of memory");
    }
    for (size_t i = 0; i < order.count; i++) nodes[i] = order.items[order.count - 1 - i];
    *out_nodes = nodes;
    *out_count = order.count;
    mg__nodes_free(&order);
    return MG_OK;
}
