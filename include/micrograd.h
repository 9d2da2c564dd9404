/*
 * micrograd.h: a tiny reverse-mode autograd engine in C11.
 *
 * A worked example, micrograd's README expression (examples/c/readme_expr.c runs it):
 *
 *     mg_value *a = mg_value_new(-4.0);
 *     mg_value *b = mg_value_new(2.0);
 *     mg_value *c = mg_add(a, b);                      // c = a + b
 *     mg_value *f = mg_pow(c, 2.0);                    // f = c**2
 *     if (!f) { fprintf(stderr, "%s\n", mg_last_error()); ... }
 *     mg_backward(f);                                  // df/da, df/db
 *     printf("%g %g\n", mg_value_grad(a), mg_value_grad(b));   // -4 -4
 *     mg_value_release(f); mg_value_release(c);        // drop what you own
 *     mg_value_release(b); mg_value_release(a);
 *
 * Ownership, the one rule: every function that returns an `mg_value *` gives the caller one reference,
 * and the caller drops it with mg_value_release(). A node also holds a reference to each of its inputs,
 * so releasing intermediate results early is fine: the graph under a live root stays alive, and a node
 * is freed the moment its last owner (a caller or a parent node) lets go. Freeing walks the graph with
 * an explicit stack, as do backward and zero_grad: graphs of any depth work (10^7-node chains are tested).
 *
 * Errors: functions that build nodes return NULL, functions that run return an mg_status. Either way
 * mg_last_error() (per thread) says what went wrong. Ops accept NULL operands and return NULL, keeping the
 * first error message, so a whole expression can be built and checked once at its root.
 * The library never prints, exits or aborts.
 *
 * Threads: values live in a per-thread pool, so separate graphs can be built and run in separate threads
 * at once. One graph must not be used from two threads at the same time (reference counts and traversal
 * marks are plain integers, as in micrograd's single-threaded design).
 *
 * Numbers follow IEEE 754 and PyTorch float64: 1/0 is inf, relu(nan) is nan, the gradient of relu at 0 is
 * 0, tanh(+-1000) is +-1 with gradient 0, exp(1000) is inf, a negative base with a fractional exponent is
 * nan. Nothing traps.
 */
#ifndef MICROGRAD_H
#define MICROGRAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(MG_BUILD_SHARED)
#define MG_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MG_API __attribute__((visibility("default")))
#else
#define MG_API
#endif

#define MG_VERSION_MAJOR 0
#define MG_VERSION_MINOR 1
#define MG_VERSION_PATCH 0
#define MG_VERSION_STRING "0.1.0"

/* ---- status codes and errors -------------------------------------------------------------------- */

typedef enum mg_status {
    MG_OK = 0,
    MG_ERR_NULL,      /* a required argument was NULL */
    MG_ERR_NOMEM,     /* an allocation failed */
    MG_ERR_ARG,       /* an argument is out of range or of the wrong kind */
    MG_ERR_STATE,     /* the call is not allowed in the library's current state */
} mg_status;

/* A readable name for a status code ("ok", "out of memory", ...). Never NULL. */
MG_API const char *mg_status_string(mg_status status);

/* The message of the last failure in this thread, or "" if none since mg_clear_error(). Never NULL. */
MG_API const char *mg_last_error(void);
MG_API void mg_clear_error(void);

/* ---- values ------------------------------------------------------------------------------------- */

/* One scalar node of the graph: opaque; read it through the accessors below. */
typedef struct mg_value mg_value;

/* The operation that produced a value. Ops with a `_C` suffix take a plain double (kept in the node)
 * as their second operand; MG_OP_RSUB_C, MG_OP_RDIV_C and MG_OP_RPOW_C have it on the left. */
typedef enum mg_op {
    MG_OP_LEAF = 0, /* made by mg_value_new */
    MG_OP_ADD,      /* a + b */
    MG_OP_SUB,      /* a - b */
    MG_OP_MUL,      /* a * b */
    MG_OP_DIV,      /* a / b */
    MG_OP_POW,      /* a ** b, both values */
    MG_OP_ADD_C,    /* a + c */
    MG_OP_MUL_C,    /* a * c */
    MG_OP_RSUB_C,   /* c - a */
    MG_OP_DIV_C,    /* a / c */
    MG_OP_RDIV_C,   /* c / a */
    MG_OP_POW_C,    /* a ** c */
    MG_OP_RPOW_C,   /* c ** a */
    MG_OP_NEG,      /* -a */
    MG_OP_RELU,     /* max(a, 0), nan stays nan */
    MG_OP_TANH,
    MG_OP_EXP,
    MG_OP_LOG,      /* natural log */
    MG_OP_SIGMOID,  /* 1 / (1 + exp(-a)) */
    MG_OP_AFFINE,   /* b + w[0]*x[0] + ... + w[n-1]*x[n-1]: a neuron's sum in one node */
    MG_OP_COUNT
} mg_op;

/* A new leaf holding `data`, grad 0. NULL on out-of-memory. */
MG_API mg_value *mg_value_new(double data);

/* Take one more reference (returns v), or drop one; dropping the last frees v and, iteratively, every
 * input no longer owned by anything else. Both accept NULL and then do nothing. */
MG_API mg_value *mg_value_retain(mg_value *v);
MG_API void mg_value_release(mg_value *v);

/* Accessors. Reading from NULL gives NAN (data, grad, constant) or 0; setting on NULL does nothing. */
MG_API double mg_value_data(const mg_value *v);
MG_API double mg_value_grad(const mg_value *v);
MG_API void mg_value_set_data(mg_value *v, double data);
MG_API void mg_value_set_grad(mg_value *v, double grad);
MG_API mg_op mg_value_op(const mg_value *v);
/* The plain-double operand of a `_C` op (the exponent of MG_OP_POW_C, ...); NAN for other ops. */
MG_API double mg_value_constant(const mg_value *v);
/* Inputs of v, in operand order: a leaf has 0, unary and `_C` ops 1, binary ops 2, an affine node 2n+1
 * (b, then w[0..n), then x[0..n)). An input used twice (x * x) is listed twice. The pointer is borrowed:
 * retain it to keep it. */
MG_API size_t mg_value_num_inputs(const mg_value *v);
MG_API mg_value *mg_value_input(const mg_value *v, size_t i);

/* A short name for an op: "", "+", "-", "*", "/", "**", "neg", "ReLU", "tanh", "exp", "log",
 * "sigmoid", "affine". Never NULL ("?" for an unknown op). */
MG_API const char *mg_op_name(mg_op op);

/* One user pointer per value, for bindings (the Python package keeps its wrapper object here). */
MG_API void *mg_value_user(const mg_value *v);
MG_API void mg_value_set_user(mg_value *v, void *user);

/* ---- ops: each returns a new value (one reference for the caller) or NULL ---------------------- */

MG_API mg_value *mg_add(mg_value *a, mg_value *b);
MG_API mg_value *mg_sub(mg_value *a, mg_value *b);
MG_API mg_value *mg_mul(mg_value *a, mg_value *b);
MG_API mg_value *mg_div(mg_value *a, mg_value *b);
MG_API mg_value *mg_pow_value(mg_value *a, mg_value *b); /* a ** b, gradient for both */
MG_API mg_value *mg_neg(mg_value *a);
MG_API mg_value *mg_relu(mg_value *a);
MG_API mg_value *mg_tanh(mg_value *a);
MG_API mg_value *mg_exp(mg_value *a);
MG_API mg_value *mg_log(mg_value *a);
MG_API mg_value *mg_sigmoid(mg_value *a);

/* With a plain double: a + c, c + a, a - c, c - a, a * c, a / c, c / a, a ** c, c ** a. */
MG_API mg_value *mg_add_c(mg_value *a, double c);
MG_API mg_value *mg_sub_c(mg_value *a, double c);
MG_API mg_value *mg_rsub_c(double c, mg_value *a);
MG_API mg_value *mg_mul_c(mg_value *a, double c);
MG_API mg_value *mg_div_c(mg_value *a, double c);
MG_API mg_value *mg_rdiv_c(double c, mg_value *a);
MG_API mg_value *mg_pow(mg_value *a, double exponent);
MG_API mg_value *mg_rpow_c(double c, mg_value *a);

/* A neuron's pre-activation in one node: b + w[0]*x[0] + w[1]*x[1] + ... + w[n-1]*x[n-1], summed left to
 * right (the exact value of micrograd's chain of 2n nodes). n >= 1; the node keeps a reference to each
 * input. mg_relu(mg_affine(...)) is micrograd's ReLU neuron. */
MG_API mg_value *mg_affine(mg_value *b, mg_value *const *w, mg_value *const *x, size_t n);

/* ---- graphs --------------------------------------------------------------------------------------- */

/* Sets root's grad to 1 and adds d(root)/d(node) into the grad of every node reachable from root, in
 * reverse topological order. Gradients accumulate across calls, as in micrograd: zero them in between.
 * MG_ERR_NOMEM leaves every grad as it was. */
MG_API mg_status mg_backward(mg_value *root);

/* Sets the grad of root and of every node reachable from it to 0. */
MG_API mg_status mg_zero_grad(mg_value *root);

/* Every node reachable from root (root included), each once, inputs before the nodes that use them.
 * On success *out_nodes is an array of *out_count borrowed pointers that the caller frees with
 * mg_free(); the order can be reused to run many backward passes over one graph. */
MG_API mg_status mg_topo_order(mg_value *root, mg_value ***out_nodes, size_t *out_count);

/* ---- memory --------------------------------------------------------------------------------------- */

/* Values alive now, in all threads. Tests use it to prove that every node is reclaimed. */
MG_API int64_t mg_live_values(void);

/* Bytes one value takes in the pool (the node; pool bookkeeping adds well under 1%). */
MG_API size_t mg_value_size(void);

/* The allocator behind every allocation of the library, Lua style: alloc(ud, NULL, 0, n) allocates,
 * alloc(ud, p, n, 0) frees, and NULL means out of memory. Can be changed only while no value is alive
 * (MG_ERR_STATE otherwise); passing NULL restores malloc/free. Changing it also returns the pool's
 * memory to the old allocator. Not thread-safe: set it before starting threads. */
typedef void *(*mg_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);
MG_API mg_status mg_set_allocator(mg_alloc_fn alloc, void *ud);

/* Frees memory that the library hands out to callers (mg_topo_order's array). Accepts NULL. */
MG_API void mg_free(void *ptr);

/* Returns the value pool's memory to the allocator when no value is alive (MG_ERR_STATE otherwise).
 * Values freed by exiting threads stay in the pool until then. */
MG_API mg_status mg_pool_trim(void);

#ifdef __cplusplus
}
#endif

#endif /* MICROGRAD_H */
