/* value.c: scalar values, every op's forward and backward, and freeing.
 *
 * Each op computes its value when it is built (forward) and says how to pass a gradient to its inputs in
 * backward_node() below: the two halves of one op, read side by side. Formulas follow PyTorch's float64
 * kernels, and micrograd's where PyTorch has none. */
#include "value_internal.h"

#include <math.h>

/* ---- building nodes ---- */

/* With grad mode off in this thread (mg_set_grad_enabled), every op gives a leaf holding its number, as
 * torch.no_grad does: no inputs kept, nothing for backward. */
static mg_value *node_new(mg_opcode op, double data, mg_value *a, mg_value *b, double c) {
    mg_value *v = mg__value_alloc();
    if (!v) return NULL;
    if (mg__grad_off) {
        op = MG_OP_LEAF;
        a = b = NULL;
        c = NAN;
    }
    v->data = data;
    v->grad = 0.0;
    v->in.pair[0] = a;
    v->in.pair[1] = b;
    v->c = c;
    v->u.user = NULL;
    v->refs = 1;
    v->pending = 0;
    v->op = (uint8_t)op;
    v->n_in = (uint32_t)((a != NULL) + (b != NULL));
    if (a) a->refs++;
    if (b) b->refs++;
    return v;
}

mg_value *mg_value_new(double data) { return node_new(MG_OP_LEAF, data, NULL, NULL, NAN); }

static double relu(double x) { return x < 0.0 ? 0.0 : x; } /* nan < 0 is false: nan passes through */

/* An operand is NULL: keep the error of the value op that made it NULL, if nobody has read it (error.c). */
static mg_value *null_operand(const char *func) {
    return mg__fail_null_in(MG__ORIGIN_VALUE, "%s: an operand is NULL", func);
}

/* clang-format off */
#define BINARY(name, OP, expr)                                                                          \
    mg_value *name(mg_value *a, mg_value *b) {                                                          \
        if (!a || !b) return null_operand(#name);                                                       \
        double x = a->data, y = b->data;                                                                \
        return node_new(OP, (expr), a, b, NAN);                                                         \
    }
BINARY(mg_add, MG_OP_ADD, x + y)
BINARY(mg_sub, MG_OP_SUB, x - y)
BINARY(mg_mul, MG_OP_MUL, x * y)
BINARY(mg_div, MG_OP_DIV, x / y)
BINARY(mg_pow, MG_OP_POW, pow(x, y))

#define UNARY(name, OP, expr)                                                                           \
    mg_value *name(mg_value *a) {                                                                       \
        if (!a) return null_operand(#name);                                                             \
        double x = a->data;                                                                             \
        return node_new(OP, (expr), a, NULL, NAN);                                                      \
    }
UNARY(mg_neg, MG_OP_NEG, -x)
UNARY(mg_relu, MG_OP_RELU, relu(x))
UNARY(mg_tanh, MG_OP_TANH, tanh(x))
UNARY(mg_exp, MG_OP_EXP, exp(x))
UNARY(mg_log, MG_OP_LOG, log(x))
UNARY(mg_sigmoid, MG_OP_SIGMOID, mg__sigmoid(x))

/* The constant stays in the node (no leaf for it): one node per op instead of two. */
#define WITH_CONSTANT(name, OP, expr, ...)                                                              \
    mg_value *name(__VA_ARGS__) {                                                                       \
        if (!a) return null_operand(#name);                                                             \
        double x = a->data;                                                                             \
        return node_new(OP, (expr), a, NULL, c);                                                        \
    }
WITH_CONSTANT(mg_add_scalar, MG_OP_ADD_SCALAR, x + c, mg_value *a, double c)
WITH_CONSTANT(mg_mul_scalar, MG_OP_MUL_SCALAR, x * c, mg_value *a, double c)
WITH_CONSTANT(mg_rsub_scalar, MG_OP_RSUB_SCALAR, c - x, double c, mg_value *a)
WITH_CONSTANT(mg_div_scalar, MG_OP_DIV_SCALAR, x / c, mg_value *a, double c)
WITH_CONSTANT(mg_rdiv_scalar, MG_OP_RDIV_SCALAR, c / x, double c, mg_value *a)
WITH_CONSTANT(mg_rpow_scalar, MG_OP_RPOW_SCALAR, pow(c, x), double c, mg_value *a)
/* clang-format on */

/* a - c is exactly a + (-c) in IEEE arithmetic, so it needs no op of its own. */
mg_value *mg_sub_scalar(mg_value *a, double c) {
    if (!a) return null_operand("mg_sub_scalar");
    return node_new(MG_OP_ADD_SCALAR, a->data - c, a, NULL, -c);
}

mg_value *mg_pow_scalar(mg_value *a, double exponent) {
    if (!a) return null_operand("mg_pow_scalar");
    return node_new(MG_OP_POW_SCALAR, pow(a->data, exponent), a, NULL, exponent);
}

/* b + w[0]*x[0] + w[1]*x[1] + ..., summed left to right like micrograd's Neuron, so the value is bit for
 * bit the one micrograd's chain of n multiplications and n additions gives, in one node instead of 2n.
 * Inputs are kept as [b, w[0..n), x[0..n)], in an array from the pool's size classes (memory.c). */
mg_value *mg_affine(mg_value *b, mg_value *const *w, mg_value *const *x, size_t n) {
    if (!b) return mg__fail_null_in(MG__ORIGIN_VALUE, "mg_affine: the bias b is NULL");
    if (!w || !x) return mg__fail_null_in(MG__ORIGIN_VALUE, "mg_affine: the array %s is NULL", !w ? "w" : "x");
    /* n_in is 32 bits: 2 n + 1 inputs must fit, which also keeps the array's byte count small */
    if (n == 0 || n > (UINT32_MAX - 1) / 2) {
        mg__fail_in(MG__ORIGIN_VALUE, MG_ERR_ARG, "mg_affine: n must be between 1 and %u, got %zu",
                    (UINT32_MAX - 1) / 2, n);
        return NULL;
    }
    double acc = b->data;
    for (size_t i = 0; i < n; i++) {
        if (!w[i] || !x[i])
            return mg__fail_null_in(MG__ORIGIN_VALUE, "mg_affine: %s[%zu] is NULL", !w[i] ? "w" : "x", i);
        acc = acc + w[i]->data * x[i]->data;
    }
    if (mg__grad_off) return node_new(MG_OP_LEAF, acc, NULL, NULL, NAN); /* no graph: no input array */
    size_t count = 2 * n + 1;
    mg_value **inputs = mg__inputs_alloc(count);
    if (!inputs) {
        mg__fail_in(MG__ORIGIN_VALUE, MG_ERR_NOMEM, "mg_affine: out of memory for %zu inputs", count);
        return NULL;
    }
    mg_value *v = node_new(MG_OP_AFFINE, acc, NULL, NULL, NAN);
    if (!v) {
        mg__inputs_free(inputs, count);
        return NULL;
    }
    inputs[0] = b;
    for (size_t i = 0; i < n; i++) {
        inputs[1 + i] = w[i];
        inputs[1 + n + i] = x[i];
    }
    for (size_t i = 0; i < count; i++) inputs[i]->refs++;
    v->in.many = inputs;
    v->n_in = (uint32_t)count;
    return v;
}

/* ---- backward: how each op passes its gradient g to its inputs (accumulating, as inputs can be shared) */

/* clang-format off */
static inline void backward_node(mg_value *v) {
    mg_value *a = v->in.pair[0], *b = v->in.pair[1];
    double g = v->grad, c = v->c;
    switch ((mg_opcode)v->op) {
    case MG_OP_LEAF: break;
    case MG_OP_ADD: a->grad += g; b->grad += g; break;
    case MG_OP_SUB: a->grad += g; b->grad -= g; break;
    case MG_OP_MUL: a->grad += b->data * g; b->grad += a->data * g; break;
    case MG_OP_DIV: a->grad += g / b->data; b->grad += -g * ((a->data / b->data) / b->data); break;
    case MG_OP_POW:
        /* PyTorch's masks for the 0 * inf cases: the base's gradient is 0 for exponent 0; the exponent's
         * is g * 0 for base 0 with an exponent >= 0 (so an infinite g still gives nan, as there) */
        if (b->data != 0.0) a->grad += g * (b->data * pow(a->data, b->data - 1.0));
        b->grad += g * (a->data == 0.0 && b->data >= 0.0 ? 0.0 : v->data * log(a->data));
        break;
    case MG_OP_ADD_SCALAR: a->grad += g; break;
    case MG_OP_MUL_SCALAR: a->grad += c * g; break;
    case MG_OP_RSUB_SCALAR: a->grad -= g; break;
    case MG_OP_DIV_SCALAR: a->grad += g / c; break;
    case MG_OP_RDIV_SCALAR: a->grad += -g * ((c / a->data) / a->data); break;
    case MG_OP_POW_SCALAR:
        if (c != 0.0) a->grad += (c * pow(a->data, c - 1.0)) * g; /* micrograd's order of operations */
        break;
    case MG_OP_RPOW_SCALAR:
        a->grad += g * (c == 0.0 && a->data >= 0.0 ? 0.0 : v->data * log(c));
        break;
    case MG_OP_NEG: a->grad -= g; break;
    case MG_OP_RELU: a->grad += v->data > 0.0 ? g : 0.0; break;
    case MG_OP_TANH: a->grad += g * (1.0 - v->data * v->data); break;
    case MG_OP_EXP: a->grad += g * v->data; break;
    case MG_OP_LOG: a->grad += g / a->data; break;
    case MG_OP_SIGMOID: a->grad += g * (1.0 - v->data) * v->data; break;
    case MG_OP_AFFINE: {
        mg_value **in = v->in.many;
        size_t n = (v->n_in - 1) / 2;
        in[0]->grad += g;
        for (size_t i = 0; i < n; i++) {
            mg_value *wi = in[1 + i], *xi = in[1 + n + i];
            wi->grad += xi->data * g;
            xi->grad += wi->data * g;
        }
        break;
    }
    case MG_OP_COUNT: break;
    }
}
/* clang-format on */

/* Kahn's algorithm (see graph.c) with the backward step done as each node is released: a node's grad is
 * complete once every parent has run, and the graph is walked twice in all, not three times. The stack
 * uses the top of the array pass 1 filled; it never holds more than the nodes counted there. */
mg_status mg_backward(mg_value *root) {
    if (!root) return mg__fail(MG_ERR_NULL, "mg_backward: root is NULL");
    mg__nodes list;
    mg_status status = mg__count_parents(root, &list, "mg_backward");
    if (status != MG_OK) return status;
    root->grad = 1.0;
    size_t top = list.capacity;
    list.items[--top] = root;
    while (top < list.capacity) {
        mg_value *node = list.items[top++];
        backward_node(node);
        mg_value **inputs = mg__inputs(node);
        for (uint32_t k = 0; k < node->n_in; k++)
            if (--inputs[k]->pending == 0) list.items[--top] = inputs[k];
    }
    mg__nodes_free(&list);
    return MG_OK;
}

mg_status mg_backward_order(mg_value *const *order, size_t count) {
    if (!order || count == 0) return mg__fail(MG_ERR_NULL, "mg_backward_order: no nodes");
    for (size_t i = 0; i < count; i++)
        if (!order[i]) return mg__fail(MG_ERR_NULL, "mg_backward_order: node %zu is NULL", i);
    order[count - 1]->grad = 1.0;
    for (size_t i = count; i-- > 0;) backward_node(order[i]);
    return MG_OK;
}

mg_status mg_zero_grad(mg_value *root) {
    if (!root) return mg__fail(MG_ERR_NULL, "mg_zero_grad: root is NULL");
    mg__nodes order;
    mg_status status = mg__reverse_topo(root, &order, "mg_zero_grad");
    if (status != MG_OK) return status;
    for (size_t i = 0; i < order.count; i++) order.items[i]->grad = 0.0;
    mg__nodes_free(&order);
    return MG_OK;
}

/* ---- references: freeing walks a stack threaded through the dead nodes themselves, so it needs no
 * memory and no recursion, whatever the depth of the graph ---- */

mg_value *mg_value_retain(mg_value *v) {
    if (v) v->refs++;
    return v;
}

void mg_value_release(mg_value *v) {
    if (!v || --v->refs > 0) return;
    mg_value *dead = v;
    dead->u.next = NULL;
    while (dead) {
        mg_value *node = dead;
        dead = node->u.next;
        mg_value **inputs = mg__inputs(node);
        for (uint32_t i = 0; i < node->n_in; i++) {
            mg_value *input = inputs[i];
            if (--input->refs == 0) {
                input->u.next = dead;
                dead = input;
            }
        }
        if (node->n_in > 2) mg__inputs_free(node->in.many, node->n_in);
        mg__value_dealloc(node);
    }
}

/* ---- accessors ---- */

double mg_value_data(const mg_value *v) { return v ? v->data : NAN; }
double mg_value_grad(const mg_value *v) { return v ? v->grad : NAN; }
void mg_value_set_data(mg_value *v, double data) {
    if (v) v->data = data;
}
void mg_value_set_grad(mg_value *v, double grad) {
    if (v) v->grad = grad;
}
mg_opcode mg_value_op(const mg_value *v) { return v ? (mg_opcode)v->op : MG_OP_LEAF; }

double mg_value_constant(const mg_value *v) {
    if (!v) return NAN;
    switch ((mg_opcode)v->op) {
    case MG_OP_ADD_SCALAR:
    case MG_OP_MUL_SCALAR:
    case MG_OP_RSUB_SCALAR:
    case MG_OP_DIV_SCALAR:
    case MG_OP_RDIV_SCALAR:
    case MG_OP_POW_SCALAR:
    case MG_OP_RPOW_SCALAR: return v->c;
    default: return NAN;
    }
}

size_t mg_value_num_inputs(const mg_value *v) { return v ? v->n_in : 0; }

mg_value *mg_value_input(const mg_value *v, size_t i) { return v && i < v->n_in ? mg__inputs((mg_value *)v)[i] : NULL; }

void *mg_value_user(const mg_value *v) { return v ? v->u.user : NULL; }
void mg_value_set_user(mg_value *v, void *user) {
    if (v) v->u.user = user;
}

const char *mg_op_name(mg_opcode op) {
    static const char *const names[MG_OP_COUNT] = {
        [MG_OP_LEAF] = "",          [MG_OP_ADD] = "+",        [MG_OP_SUB] = "-",           [MG_OP_MUL] = "*",
        [MG_OP_DIV] = "/",          [MG_OP_POW] = "**",       [MG_OP_ADD_SCALAR] = "+",    [MG_OP_MUL_SCALAR] = "*",
        [MG_OP_RSUB_SCALAR] = "-",  [MG_OP_DIV_SCALAR] = "/", [MG_OP_RDIV_SCALAR] = "/",   [MG_OP_POW_SCALAR] = "**",
        [MG_OP_RPOW_SCALAR] = "**", [MG_OP_NEG] = "neg",      [MG_OP_RELU] = "ReLU",       [MG_OP_TANH] = "tanh",
        [MG_OP_EXP] = "exp",        [MG_OP_LOG] = "log",      [MG_OP_SIGMOID] = "sigmoid", [MG_OP_AFFINE] = "affine",
    };
    return (unsigned)op < MG_OP_COUNT ? names[op] : "?";
}
