/*
 * micrograd.h: a tiny reverse-mode autograd engine in C11.
 *
 * A worked example, micrograd's README expression (examples/c/readme_expr.c runs it):
 *
 *     mg_value *a = mg_value_new(-4.0);
 *     mg_value *b = mg_value_new(2.0);
 *     mg_value *c = mg_add(a, b);                      // c = a + b
 *     mg_value *f = mg_pow_scalar(c, 2.0);                    // f = c**2
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

/* The version, written here only: CMake, the Python package's metadata and micrograd_c.__version__ all
 * read it from these lines. */
#define MG_VERSION_MAJOR 0
#define MG_VERSION_MINOR 1
#define MG_VERSION_PATCH 0
#define MG_VERSION_STRING "0.1.0"

/* The version of the library linked in, at run time ("0.1.0"): compare it with MG_VERSION_STRING to check
 * that a program runs with the library it was compiled for. */
MG_API const char *mg_version(void);

/* ---- status codes and errors -------------------------------------------------------------------- */

typedef enum mg_status {
    MG_OK = 0,
    MG_ERR_NULL,      /* a required argument was NULL */
    MG_ERR_NOMEM,     /* an allocation failed */
    MG_ERR_ARG,       /* an argument is out of range or of the wrong kind */
    MG_ERR_STATE,     /* the call is not allowed in the library's current state */
    MG_ERR_IO,        /* a file could not be opened, read or written (errno says why) */
    MG_ERR_RANGE,     /* an index or a dimension is outside its range */
    MG_ERR_BUSY,      /* the object is in use by another thread (a fit, a backward) */
} mg_status;

/* A readable name for a status code ("ok", "out of memory", ...). Never NULL. */
MG_API const char *mg_status_string(mg_status status);

/* The message and the status of the last failure in this thread: "" and MG_OK if none since
 * mg_clear_error(). Every failing call sets both, so bindings pick an exception by status alone. */
MG_API const char *mg_last_error(void);
MG_API mg_status mg_last_status(void);
MG_API void mg_clear_error(void);

/* ---- values ------------------------------------------------------------------------------------- */

/* One scalar node of the graph: opaque; read it through the accessors below. */
typedef struct mg_value mg_value;

/* The operation that produced a value. Ops with a `_SCALAR` suffix take a plain double (kept in the node)
 * as their second operand; MG_OP_RSUB_SCALAR, MG_OP_RDIV_SCALAR and MG_OP_RPOW_SCALAR have it on the left. */
typedef enum mg_opcode {
    MG_OP_LEAF = 0, /* made by mg_value_new */
    MG_OP_ADD,      /* a + b */
    MG_OP_SUB,      /* a - b */
    MG_OP_MUL,      /* a * b */
    MG_OP_DIV,      /* a / b */
    MG_OP_POW,      /* a ** b, both values */
    MG_OP_ADD_SCALAR,    /* a + c */
    MG_OP_MUL_SCALAR,    /* a * c */
    MG_OP_RSUB_SCALAR,   /* c - a */
    MG_OP_DIV_SCALAR,    /* a / c */
    MG_OP_RDIV_SCALAR,   /* c / a */
    MG_OP_POW_SCALAR,    /* a ** c */
    MG_OP_RPOW_SCALAR,   /* c ** a */
    MG_OP_NEG,      /* -a */
    MG_OP_RELU,     /* max(a, 0), nan stays nan; gradient 1 where the output is > 0, else 0 (micrograd's
                     * rule: at nan it is 0, where PyTorch passes the gradient through) */
    MG_OP_TANH,
    MG_OP_EXP,
    MG_OP_LOG,      /* natural log */
    MG_OP_SIGMOID,  /* 1 / (1 + exp(-a)) */
    MG_OP_AFFINE,   /* b + w[0]*x[0] + ... + w[n-1]*x[n-1]: a neuron's sum in one node */
    MG_OP_COUNT
} mg_opcode;

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
MG_API mg_opcode mg_value_op(const mg_value *v);
/* The plain-double operand of a `_SCALAR` op (the exponent of MG_OP_POW_SCALAR, ...); NAN for other ops. */
MG_API double mg_value_constant(const mg_value *v);
/* Inputs of v, in operand order: a leaf has 0, unary and `_SCALAR` ops 1, binary ops 2, an affine node 2n+1
 * (b, then w[0..n), then x[0..n)). An input used twice (x * x) is listed twice. The pointer is borrowed:
 * retain it to keep it. */
MG_API size_t mg_value_num_inputs(const mg_value *v);
MG_API mg_value *mg_value_input(const mg_value *v, size_t i);

/* A short name for an op: "", "+", "-", "*", "/", "**", "neg", "ReLU", "tanh", "exp", "log",
 * "sigmoid", "affine". Never NULL ("?" for an unknown op). */
MG_API const char *mg_op_name(mg_opcode op);

/* One user pointer per value, for bindings (the Python package keeps its wrapper object here). */
MG_API void *mg_value_user(const mg_value *v);
MG_API void mg_value_set_user(mg_value *v, void *user);

/* ---- grad mode: one per-thread switch for both engines -------------------------------------------
 *
 * On at start. While it is off in a thread (mg_set_grad_enabled(0), Python's micrograd_c.no_grad()), the
 * ops of that thread record no graph, as under torch.no_grad(): a value op (mg_affine included) returns a
 * new leaf (MG_OP_LEAF, no inputs, grad 0) holding the number the op computes, and a tensor op returns a
 * tensor that does not require grad. Backward through such a result reaches nothing. Other threads are not
 * affected. mg_set_grad_enabled returns the previous setting, to restore it afterwards. */
MG_API int mg_set_grad_enabled(int enabled);
MG_API int mg_is_grad_enabled(void);

/* ---- ops: each returns a new value (one reference for the caller) or NULL ---------------------- */

MG_API mg_value *mg_add(mg_value *a, mg_value *b);
MG_API mg_value *mg_sub(mg_value *a, mg_value *b);
MG_API mg_value *mg_mul(mg_value *a, mg_value *b);
MG_API mg_value *mg_div(mg_value *a, mg_value *b);
MG_API mg_value *mg_pow(mg_value *a, mg_value *b); /* a ** b, gradient for both */
MG_API mg_value *mg_neg(mg_value *a);
MG_API mg_value *mg_relu(mg_value *a);
MG_API mg_value *mg_tanh(mg_value *a);
MG_API mg_value *mg_exp(mg_value *a);
MG_API mg_value *mg_log(mg_value *a);
MG_API mg_value *mg_sigmoid(mg_value *a);

/* With a plain double: a + c, a - c, c - a, a * c, a / c, c / a, a ** c, c ** a. a - c is made as
 * MG_OP_ADD_SCALAR with constant -c (exactly the same number), so it reads back as "+". */
MG_API mg_value *mg_add_scalar(mg_value *a, double c);
MG_API mg_value *mg_sub_scalar(mg_value *a, double c);
MG_API mg_value *mg_rsub_scalar(double c, mg_value *a);
MG_API mg_value *mg_mul_scalar(mg_value *a, double c);
MG_API mg_value *mg_div_scalar(mg_value *a, double c);
MG_API mg_value *mg_rdiv_scalar(double c, mg_value *a);
MG_API mg_value *mg_pow_scalar(mg_value *a, double exponent);
MG_API mg_value *mg_rpow_scalar(double c, mg_value *a);

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

/* Every node reachable from root (root included), each once, inputs before the nodes that use them
 * (root last). On success *out_nodes is an array of *out_count borrowed pointers that the caller frees
 * with mg_free(). */
MG_API mg_status mg_topo_order(mg_value *root, mg_value ***out_nodes, size_t *out_count);

/* mg_backward over an order from mg_topo_order, without ordering the graph again: for running backward
 * many times over one graph. It uses the values the nodes hold (computed when each node was built), and
 * the nodes must still be alive: keep a reference to the root. */
MG_API mg_status mg_backward_order(mg_value *const *order, size_t count);

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
MG_API mg_status mg_set_allocator(mg_alloc_fn alloc, void *ud); /* also refused while a tensor is alive */

/* Frees memory that the library hands out to callers (mg_topo_order's array). Accepts NULL. */
MG_API void mg_free(void *ptr);

/* Returns the value pool's memory to the allocator when no value is alive (MG_ERR_STATE otherwise).
 * Not thread-safe: no other thread may be making or freeing values meanwhile. */
MG_API mg_status mg_pool_trim(void);

/* ==== numbers: element types, and how sums of products round ======================================= */

typedef enum mg_dtype { MG_FLOAT64 = 0, MG_FLOAT32 = 1 } mg_dtype;
MG_API const char *mg_dtype_name(mg_dtype dtype); /* "float64", "float32"; "?" for any other number */
/* "float64" or "double", "float32" or "float" (torch's names); MG_ERR_ARG listing them for anything else. */
MG_API mg_status mg_dtype_from_name(const char *name, mg_dtype *out);
MG_API size_t mg_dtype_size(mg_dtype dtype);       /* 8, 4; 0 for any other number */

/* How a sum of products (a matmul, a dense layer) rounds. EXACT rounds each product and then adds it, in
 * order, as a plain loop does (and micrograd's Neuron: b + w[0]*x[0] + w[1]*x[1] + ...), so its results are
 * bit for bit that loop's. FAST fuses each multiply and add (FMA) where the CPU has it: faster where the
 * CPU shares its multiply and add units (most Intel cores), different in the last bits. Both give the same
 * bits for any number of threads. */
typedef enum mg_precision { MG_PRECISION_EXACT = 0, MG_PRECISION_FAST, MG_PRECISION_COUNT } mg_precision;
MG_API const char *mg_precision_name(mg_precision precision); /* "exact", "fast"; "?" for any other number */
MG_API mg_status mg_precision_from_name(const char *name, mg_precision *out);
/* The instruction set the products run on: "avx512", "avx2" (with FMA) or "generic", the widest this CPU
 * has. MG_SIMD in the environment, read once, can lower it ("generic", "avx2"): EXACT results do not
 * change with it, which the tests check; FAST ones may. */
MG_API const char *mg_simd(void);

/* ==== dense networks: train a multilayer perceptron without building a graph ==========================
 *
 *     size_t sizes[] = {16, 16, 1};
 *     mg_mlp *model = mg_mlp_new(2, 3, sizes, NULL);       // micrograd's MLP(2, [16, 16, 1])
 *     mg_mlp_init_uniform(model, 1337);                    // weights U(-1, 1), biases 0
 *     mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
 *     sgd.lr = 1.0;
 *     mg_optim *opt = mg_optim_new(&sgd, mg_mlp_num_params(model));
 *     mg_fit_options fit = mg_fit_defaults();               // SVM loss, full batch
 *     fit.epochs = 100; fit.l2 = 1e-4; fit.schedule = MG_SCHEDULE_LINEAR; fit.lr_end = 0.1;
 *     mg_mlp_fit(model, opt, x, y, 100, &fit);             // x: 100 x 2 doubles, y: 100 labels of -1/+1
 *     mg_optim_free(opt); mg_mlp_free(model);
 *
 * examples/c/moons.c is this, complete. The values match micrograd's graph: a neuron sums its bias and
 * then w[i] * x[i] in order, as micrograd's Neuron does. */

typedef enum mg_activation { MG_ACT_LINEAR = 0, MG_ACT_RELU, MG_ACT_TANH, MG_ACT_SIGMOID, MG_ACT_COUNT } mg_activation;

typedef struct mg_mlp mg_mlp;

/* n_in inputs, then n_layers layers of sizes[l] neurons with activation acts[l]; acts NULL means
 * micrograd's choice: ReLU on every layer but the last, which is linear. Parameters start at 0. */
MG_API mg_mlp *mg_mlp_new(size_t n_in, size_t n_layers, const size_t *sizes, const mg_activation *acts);
MG_API void mg_mlp_free(mg_mlp *m);
MG_API size_t mg_mlp_num_inputs(const mg_mlp *m);
MG_API size_t mg_mlp_num_outputs(const mg_mlp *m);
MG_API size_t mg_mlp_num_layers(const mg_mlp *m);
MG_API size_t mg_mlp_layer_size(const mg_mlp *m, size_t layer);
MG_API mg_activation mg_mlp_layer_activation(const mg_mlp *m, size_t layer);
MG_API size_t mg_mlp_num_params(const mg_mlp *m);
/* The parameters, writable, in micrograd's order: for each layer, for each neuron, its n weights and then
 * its bias. The gradients of the last mg_mlp_backward or fit step, in the same order. */
MG_API double *mg_mlp_params(mg_mlp *m);
MG_API double *mg_mlp_grads(mg_mlp *m);
/* Weights uniform in [-1, 1) from a seeded generator (splitmix64), biases 0, as micrograd initialises. */
MG_API void mg_mlp_init_uniform(mg_mlp *m, uint64_t seed);
/* out (n x n_outputs) = the network applied to x (n x n_inputs), both row-major. */
MG_API mg_status mg_mlp_predict(mg_mlp *m, const double *x, size_t n, double *out);
/* How mg_mlp_predict and mg_mlp_fit compute; a new model is EXACT in FLOAT64, micrograd's numbers bit for
 * bit. FAST fuses multiply-adds (see mg_precision). FLOAT32: fit rounds the parameters to float when it
 * starts, trains them in float (layers, gradients and the optimizer's update, whose arithmetic and state
 * stay double) and stores them back when it has taken a step; predict rounds them for the call. About
 * twice the speed, float32's accuracy. Any setting gives the same bits for any number of threads. */
MG_API mg_status mg_mlp_set_compute(mg_mlp *m, mg_precision precision, mg_dtype dtype);
MG_API mg_precision mg_mlp_precision(const mg_mlp *m);
MG_API mg_dtype mg_mlp_dtype(const mg_mlp *m);
MG_API const char *mg_activation_name(mg_activation act); /* "linear", "relu", "tanh", "sigmoid"; "?" otherwise */
MG_API mg_status mg_activation_from_name(const char *name, mg_activation *out);

/* ---- initial weights: micrograd's uniform(-1, 1) whatever the layer, or PyTorch's scaled ones ----
 * With many inputs (say over 50) micrograd's saturates: a 784-input layer gives logits in the hundreds and
 * a loss that does not come down. Kaiming's (for ReLU networks) and Xavier's scale each layer's bound by
 * its fan-in (and fan-out), as torch.nn.init does. Every one draws weights uniform in [-bound, bound). */
typedef enum mg_init { MG_INIT_MICROGRAD = 0, MG_INIT_KAIMING_UNIFORM, MG_INIT_XAVIER_UNIFORM, MG_INIT_COUNT } mg_init;
MG_API const char *mg_init_name(mg_init init); /* "micrograd", "kaiming_uniform", "xavier_uniform"; "?" otherwise */
MG_API mg_status mg_init_from_name(const char *name, mg_init *out);
/* *bound for a layer of fan_in inputs, fan_out neurons and activation act: 1 for micrograd's;
 * gain * sqrt(3 / fan_in) for Kaiming's (torch.nn.init.kaiming_uniform_, mode fan_in); gain * sqrt(6 /
 * (fan_in + fan_out)) for Xavier's (xavier_uniform_); gain is torch.nn.init.calculate_gain's for act: sqrt(2)
 * for relu, 5/3 for tanh, 1 for linear and sigmoid. MG_ERR_ARG for an unknown init or activation or a fan
 * of 0. */
MG_API mg_status mg_init_bound(mg_init init, mg_activation act, size_t fan_in, size_t fan_out, double *bound);
/* Each layer's weights from a seeded generator (splitmix64), uniform in [-bound, bound) with the layer's
 * bound, biases 0. mg_mlp_init_uniform(m, seed) is mg_mlp_init(m, MG_INIT_MICROGRAD, seed). */
MG_API mg_status mg_mlp_init(mg_mlp *m, mg_init init, uint64_t seed);

/* ---- losses: mean over n samples of scores (n x k) against targets ----
 * SVM: micrograd's max-margin hinge relu(1 - y * score), y -1/+1, k = 1.
 * MSE: (score - y)^2 averaged over n * k, targets n x k.
 * BCE: binary cross-entropy on logits, y 0/1, k = 1.
 * CROSS_ENTROPY: softmax cross-entropy on logits, y the class index 0..k-1 (stored as a double). */
typedef enum mg_loss { MG_LOSS_SVM = 0, MG_LOSS_MSE, MG_LOSS_BCE, MG_LOSS_CROSS_ENTROPY, MG_LOSS_COUNT } mg_loss;

/* *loss = the mean loss; dscores (n x k, may be NULL) = d(loss)/d(scores); *correct (may be NULL) =
 * samples classified right (sign for SVM and BCE, argmax for cross-entropy; 0 for MSE). Targets out of
 * the loss's range give MG_ERR_ARG. */
MG_API mg_status mg_loss_compute(mg_loss loss, const double *scores, const double *targets, size_t n, size_t k,
                                 double *loss_out, double *dscores, size_t *correct);
MG_API const char *mg_loss_name(mg_loss loss); /* "svm", "mse", "bce", "cross_entropy" */
MG_API mg_status mg_loss_from_name(const char *name, mg_loss *out);

/* ---- optimizers: PyTorch's update rules (torch.optim.SGD, Adam, AdamW) on a flat array ---- */
typedef enum mg_optim_kind { MG_OPTIM_SGD = 0, MG_OPTIM_ADAM, MG_OPTIM_ADAMW } mg_optim_kind;
MG_API const char *mg_optim_kind_name(mg_optim_kind kind); /* "sgd", "adam", "adamw"; "?" for any other number */
/* The kind of a name; MG_ERR_ARG naming it and listing the choices when it is none of them. */
MG_API mg_status mg_optim_kind_from_name(const char *name, mg_optim_kind *out);
/* State buffers per parameter: 1 for SGD (momentum), 2 for Adam and AdamW (moments); 0 for any other number. */
MG_API size_t mg_optim_buffers_per_param(mg_optim_kind kind);

typedef struct mg_optim_config {
    mg_optim_kind kind;
    double lr;
    double momentum, dampening; /* SGD */
    int nesterov;               /* SGD */
    double beta1, beta2, eps;   /* Adam, AdamW */
    double weight_decay;        /* L2 added to the gradient (SGD, Adam); decoupled for AdamW */
} mg_optim_config;

/* PyTorch's defaults: SGD lr 1e-3 (PyTorch requires one), Adam lr 1e-3, betas 0.9/0.999, eps 1e-8,
 * AdamW the same with weight_decay 1e-2. */
MG_API mg_optim_config mg_optim_defaults(mg_optim_kind kind);

/* MG_ERR_ARG, naming the field and its value, unless every field is valid: torch.optim's rules (lr,
 * weight_decay, momentum, eps >= 0; betas in [0, 1); Nesterov needs momentum > 0 and dampening 0), and
 * further: every field finite (also those the kind does not use), dampening in [0, 1], nesterov 0 or 1.
 * mg_optim_new, mg_optim_set_config, mg_optim_set_lr and the checkpoint loader all apply it. */
MG_API mg_status mg_optim_check_config(const mg_optim_config *config);

typedef struct mg_optim mg_optim;
MG_API mg_optim *mg_optim_new(const mg_optim_config *config, size_t n_params);
MG_API void mg_optim_free(mg_optim *opt);
/* One update of params from grads (both n_params long). */
MG_API mg_status mg_optim_step(mg_optim *opt, double *params, const double *grads, size_t n_params);
/* The same, leaving alone (value and state) every parameter whose has_grad[i] is 0, as torch.optim skips a
 * parameter whose grad is None: its momentum, weight decay and own step count (Adam's bias correction, the
 * first momentum step) wait for its first gradient. */
MG_API mg_status mg_optim_step_masked(mg_optim *opt, double *params, const double *grads, const unsigned char *has_grad,
                                      size_t n_params);
/* The same on values: reads each grad, writes each data. */
MG_API mg_status mg_optim_step_values(mg_optim *opt, mg_value *const *params, size_t n_params);
MG_API double mg_optim_lr(const mg_optim *opt);
/* Setters validate as mg_optim_check_config does; on an error nothing changes. The kind cannot change. */
MG_API mg_status mg_optim_set_lr(mg_optim *opt, double lr);
MG_API mg_status mg_optim_set_config(mg_optim *opt, const mg_optim_config *config);
MG_API const mg_optim_config *mg_optim_get_config(const mg_optim *opt);
/* The state a checkpoint needs: steps taken and the per-parameter buffers (momentum; Adam's two
 * moments), mg_optim_state_size() doubles, readable and writable. mg_mlp_fit continues a run from the
 * step count (see total_epochs). */
MG_API uint64_t mg_optim_steps(const mg_optim *opt);
MG_API void mg_optim_set_steps(mg_optim *opt, uint64_t steps);
MG_API size_t mg_optim_num_params(const mg_optim *opt); /* the n_params it was made for */
MG_API size_t mg_optim_state_size(const mg_optim *opt);  /* num_params * buffers_per_param */
MG_API double *mg_optim_state(mg_optim *opt);
/* NULL until mg_optim_step_masked skipped a parameter; then n_params counts of the steps each skipped. */
MG_API const uint64_t *mg_optim_skipped(const mg_optim *opt);
/* Restores steps, the n state doubles (finite; Adam's second moments >= 0) and the skipped counts (NULL:
 * none; each at most steps), validated first: on an error nothing changes. */
MG_API mg_status mg_optim_set_state(mg_optim *opt, uint64_t steps, const double *state, size_t n,
                                    const uint64_t *skipped);
/* The optimizer's own state checked as mg_optim_set_state checks a new one (what a checkpoint load takes). */
MG_API mg_status mg_optim_check_state(const mg_optim *opt);

/* ---- training ---- */
typedef enum mg_schedule { MG_SCHEDULE_CONSTANT = 0, MG_SCHEDULE_LINEAR, MG_SCHEDULE_COSINE } mg_schedule;
MG_API const char *mg_schedule_name(mg_schedule schedule); /* "constant", "linear", "cosine"; "?" otherwise */
MG_API mg_status mg_schedule_from_name(const char *name, mg_schedule *out);

typedef struct mg_fit_options {
    mg_loss loss;
    double l2;             /* adds l2 * sum(p^2) over all parameters (micrograd's demo: 1e-4) */
    size_t epochs;
    size_t batch_size;     /* 0: the whole data set in one batch */
    int shuffle;           /* reorder the samples every epoch: epoch e's order comes from (seed, e) */
    uint64_t seed;
    mg_schedule schedule;  /* the learning rate goes from the optimizer's lr to lr_end over all steps */
    double lr_end;
    int threads;           /* this call's threads: 0 follows mg_set_num_threads (every core by default); any
                            * count is capped at the cores, and the result is the same for any */
    /* 0: the schedule runs over this call's epochs. Else the length of the whole run, which this call
     * continues from the optimizer's step count (mg_optim_steps): the schedule spans total_epochs, and this
     * call's epochs must fit in what is left. */
    size_t total_epochs;
    /* Called after each epoch with its mean loss and accuracy; a non-zero return stops training. */
    int (*on_epoch)(void *user, size_t epoch, double loss, double accuracy);
    void *user;
} mg_fit_options;

MG_API mg_fit_options mg_fit_defaults(void);

/* Trains m on x (n x n_inputs) and y (n x n_outputs for MSE, else n labels) with opt (made for
 * mg_mlp_num_params(m) parameters). Data-parallel over the library's worker pool (see "threads" below),
 * with gradients reduced in a fixed order, so every thread count gives bit-identical parameters. NaN or
 * infinite data, labels out of range, invalid options and mismatched sizes give MG_ERR_ARG before
 * anything changes.
 * Epochs are numbered from the optimizer's step count (steps / batches per epoch), so the shuffled order
 * continues across calls; with total_epochs, so does the schedule: training k epochs, saving a checkpoint,
 * loading it and training the rest gives bit for bit the parameters of one call. The optimizer's lr stays
 * the base rate (the scheduled rate is used for the steps only), so a checkpoint saved mid-run resumes. */
MG_API mg_status mg_mlp_fit(mg_mlp *m, mg_optim *opt, const double *x, const double *y, size_t n,
                            const mg_fit_options *options);

/* ---- model files: safetensors ----
 * A model is saved as a safetensors file (https://huggingface.co/docs/safetensors) of float64 tensors named
 * like a PyTorch nn.Sequential state_dict ("0.weight" [out, in], "0.bias" [out], "2.weight", ...: Linear
 * layers and activations numbered in order), readable by the safetensors package and loadable into
 * PyTorch. Its metadata records the layer sizes and activations; a checkpoint also holds the optimizer
 * state ("optimizer.state") and the training step, so training resumes bit for bit.
 *
 * Saving is atomic: a temporary file in the same folder, flushed and synced, then renamed over the target,
 * so a crash leaves the old file or the new one, never a mix. Loading trusts nothing: the header size is
 * capped, every size and offset is checked with overflow-safe arithmetic, tensors must tile the data
 * exactly, and anything else (truncation, wrong dtype, trailing bytes, bad JSON) is a clear MG_ERR_ARG.
 *
 * Save never writes what load rejects: the limits below are checked by both, and save refuses (MG_ERR_ARG,
 * naming the limit and the value) before it writes anything. Metadata strings must be valid UTF-8, keys
 * unique and none of the library's own ("format", "sizes", "optimizer.lr", ...). Save replaces only a
 * regular file: a folder is MG_ERR_IO (errno EISDIR), a device, FIFO or socket MG_ERR_ARG, left untouched.
 * A symbolic link is followed (up to MG_FILE_MAX_LINKS deep) and its final target replaced, so the link
 * stays; a dangling link gets its target created, as open() would. A replaced file keeps its permission
 * bits (and, where the process may set them, its owner and group); a new file gets 0666 less the umask.
 * As with any save by rename, other hard links to a replaced file keep the old contents. */
enum {
    MG_FILE_MAX_LAYERS = 256,             /* Linear layers in a model */
    MG_FILE_MAX_WIDTH = 1 << 24,          /* inputs, and neurons in a layer (as mg_mlp_new) */
    MG_FILE_MAX_DIMS = 8,                 /* dimensions of a tensor */
    MG_FILE_MAX_TENSORS = 4096,           /* tensors in a file */
    MG_FILE_MAX_METADATA = 4096,          /* the caller's own metadata keys */
    MG_FILE_MAX_HEADER = 100 * 1000 * 1000, /* bytes of JSON header, metadata included: safetensors' cap */
    MG_FILE_MAX_LINKS = 40,               /* symbolic links followed to the file save replaces */
};
#define MG_FILE_MAX_BYTES ((uint64_t)4 << 30) /* a whole file, for mg_checkpoint_load */

typedef struct mg_checkpoint {
    mg_mlp *model;         /* always set by a successful load */
    mg_optim *optimizer;   /* NULL when the file holds no optimizer state */
    uint64_t step;         /* 0 when the file holds none */
    size_t n_metadata;     /* the caller's own metadata: metadata[2i] is a key, metadata[2i + 1] its value */
    char **metadata;
} mg_checkpoint;

/* Writes m (and opt, step, and n_metadata key/value string pairs, all optional) to path. */
MG_API mg_status mg_checkpoint_save(const mg_mlp *m, const mg_optim *opt, const char *path, uint64_t step,
                                    const char *const *metadata, size_t n_metadata);
MG_API mg_status mg_checkpoint_load(const char *path, mg_checkpoint *out);
MG_API mg_status mg_checkpoint_load_buffer(const void *data, size_t size, mg_checkpoint *out);
/* Frees everything a load put in c (not c itself) and zeroes it. */
MG_API void mg_checkpoint_free(mg_checkpoint *c);

/* The simple forms: just the model. */
MG_API mg_status mg_mlp_save(const mg_mlp *m, const char *path);
MG_API mg_mlp *mg_mlp_load(const char *path);

/* ---- CSV: reading data files ----
 *
 *     mg_csv *csv = mg_csv_read_file("data.csv", NULL);          // NULL: the default limits
 *     if (!csv) { fprintf(stderr, "%s\n", mg_last_error()); ... } // "line 7: 3 fields, the header has 4"
 *     size_t target;
 *     mg_csv_find_column(csv, "label", &target);
 *     const char *label = mg_csv_cell(csv, 0, target);           // the first data row's label, as text
 *     size_t cols[] = {0, 1};
 *     double *x = malloc(mg_csv_num_rows(csv) * 2 * sizeof(double));
 *     mg_csv_matrix(csv, cols, 2, x);                            // "line 5, column 'age': 'abc' is not a number"
 *     mg_csv_free(csv);
 *
 * RFC 4180: a header row, then records of as many fields, separated by commas. A field in double quotes
 * may hold commas, line breaks and quotes (written twice: ""). Lines end with LF, CRLF or CR; the last one
 * may or may not. A UTF-8 byte order mark is skipped, and so are blank lines. Every cell is kept as text
 * (unquoted, NUL-terminated) and converted to a number only on request, so a column of class names reads
 * as well as one of numbers. Numbers are decimal (spaces around them allowed, the decimal point is '.'
 * whatever the locale) and finite: "nan", "inf" and numbers too large for a double are errors.
 *
 * Untrusted input is safe: malformed input (a ragged row, an unclosed quote, text after a closing quote,
 * a NUL byte, an empty file, a header with no data rows, a repeated column name, a field or file over
 * its limit) gives NULL and a message with the line number, never a crash. Memory and time are linear:
 * a copy of the input (reading a file, up to twice its size, as the size of a pipe is not known) plus
 * 8 bytes per cell and per row. */

typedef struct mg_csv mg_csv;

#define MG_CSV_MAX_BYTES ((size_t)1 << 30) /* default limit on the input: 1 GiB */
#define MG_CSV_MAX_FIELD ((size_t)1 << 20) /* default limit on one field, unquoted: 1 MiB */

typedef struct mg_csv_options {
    size_t max_bytes;  /* the whole input, BOM included; 0: MG_CSV_MAX_BYTES */
    size_t max_field;  /* one field after unquoting; 0: MG_CSV_MAX_FIELD */
    int allow_no_rows; /* 0: a header without data rows is an error; 1: it gives a CSV of 0 rows */
} mg_csv_options;

MG_API mg_csv_options mg_csv_defaults(void);

/* Read and parse a file (options may be NULL). NULL on failure with mg_last_error() saying why (it starts
 * with "out of memory" when memory ran out). When the file cannot be opened or read, errno holds the
 * reason; after any other failure errno is 0. */
MG_API mg_csv *mg_csv_read_file(const char *path, const mg_csv_options *options);
/* The same from memory: size bytes at data (copied; data need not be NUL-terminated). */
MG_API mg_csv *mg_csv_read_buffer(const char *data, size_t size, const mg_csv_options *options);
MG_API void mg_csv_free(mg_csv *csv); /* accepts NULL */

MG_API size_t mg_csv_num_rows(const mg_csv *csv); /* data rows, the header not counted */
MG_API size_t mg_csv_num_cols(const mg_csv *csv);
/* A column's name, a cell's text: borrowed, valid until mg_csv_free; NULL when out of range. */
MG_API const char *mg_csv_header(const mg_csv *csv, size_t col);
MG_API const char *mg_csv_cell(const mg_csv *csv, size_t row, size_t col);
/* The line of the file on which data row `row` starts (1-based; the header is usually line 1). 0 when
 * out of range. */
MG_API size_t mg_csv_row_line(const mg_csv *csv, size_t row);
/* The index of the column named `name`; MG_ERR_ARG with the list of names when there is none. */
MG_API mg_status mg_csv_find_column(const mg_csv *csv, const char *name, size_t *col);
/* A cell as a finite double; MG_ERR_ARG with the line, the column and the text when it is not one. */
MG_API mg_status mg_csv_number(const mg_csv *csv, size_t row, size_t col, double *out);
/* out (num_rows x n_cols, row-major) = the cells of columns cols[0..n_cols) as numbers; the first cell
 * that is not a number gives MG_ERR_ARG (out is then partly written). */
MG_API mg_status mg_csv_matrix(const mg_csv *csv, const size_t *cols, size_t n_cols, double *out);

/* Number of cores, as fit and the tensor kernels count them. */
MG_API int mg_num_cores(void);

/* ==== tensors: N-D arrays with reverse-mode autograd ===================================================
 *
 *     size_t shape[] = {2, 3};
 *     double xs[] = {1, -2, 3, 4, 5, -6};
 *     mg_tensor *x = mg_tensor_from_data(xs, shape, 2, MG_FLOAT64);   // requires grad (a leaf)
 *     mg_tensor *w = ...;                                              // (3, 4)
 *     mg_tensor *y = mg_tensor_matmul(x, w);                           // (2, 4)
 *     mg_tensor *r = mg_tensor_relu(y);
 *     mg_tensor *loss = mg_tensor_sum(r, MG_DIM_ALL, 0);              // a 0-d tensor
 *     if (!loss) { fprintf(stderr, "%s\n", mg_last_error()); ... }
 *     mg_tensor_backward(loss);                                        // x's and w's grads
 *     const double *dx = mg_tensor_grad_data(x);                       // 6 doubles, row-major
 *     mg_tensor_release(loss); mg_tensor_release(r); ...               // drop what you own
 *
 * A tensor is a strided view (shape, strides in elements, offset) of a reference-counted storage of
 * float64 (the default) or float32 numbers, at most MG_MAX_DIMS dimensions. Views (transpose, slice,
 * select, reshape of a contiguous tensor, expand) share their base's storage; they are graph nodes too,
 * so gradients flow through them into the base.
 *
 * Ownership is the values' rule: every function returning an `mg_tensor *` gives the caller one reference,
 * dropped with mg_tensor_release(); a node holds a reference to each input it needs for backward. Freeing,
 * ordering and backward walk the graph with explicit worklists: no recursion, any depth.
 *
 * Autograd: a tensor records how it was made only when grad mode is on (mg_set_grad_enabled: per thread,
 * shared with the value ops) and one of its inputs requires grad; otherwise it is a new leaf with no inputs. Leaves
 * made by mg_tensor_new/from_data require grad; mg_tensor_set_requires_grad changes that on leaves.
 * mg_tensor_backward(root) (root has one element) sets root's grad to 1, computes the gradient of every
 * node of the graph (intermediate nodes keep the one of this pass) and adds it into the leaves' grads,
 * which accumulate across calls, as in PyTorch. Gradients are kept in float64 whatever the dtype.
 *
 * Binary ops broadcast as NumPy does (shapes aligned from the right, a 1 stretches); a result is float32
 * only when every tensor input is float32. Arithmetic is done in float64 and rounded once for float32.
 * Errors: NULL (or a status) and mg_last_error(); ops accept NULL inputs and return NULL, keeping the
 * first message. Big kernels (matmul, elementwise over many elements) run on mg_get_num_threads() threads
 * of the library's pool.
 * Threads: as for values, one graph must not be used from two threads at the same time.
 * Memory goes through the allocator of mg_set_allocator: change it only while no tensor is alive. */

#define MG_MAX_DIMS 8
#define MG_DIM_ALL (-2147483647 - 1) /* INT_MIN: reduce over every dimension (sum, mean, max); no real dim */

typedef struct mg_tensor mg_tensor;

/* clang-format off */
typedef enum mg_tensor_opcode {
    MG_TENSOR_OP_LEAF = 0,
    MG_TENSOR_OP_VIEW,        /* transpose, slice, select, reshape, expand, contiguous, cast: a re-indexing */
    MG_TENSOR_OP_ADD, MG_TENSOR_OP_SUB, MG_TENSOR_OP_MUL, MG_TENSOR_OP_DIV, /* broadcasting */
    MG_TENSOR_OP_ADD_SCALAR, MG_TENSOR_OP_MUL_SCALAR, MG_TENSOR_OP_RSUB_SCALAR, MG_TENSOR_OP_DIV_SCALAR,
    MG_TENSOR_OP_RDIV_SCALAR, MG_TENSOR_OP_POW_SCALAR,
    MG_TENSOR_OP_NEG, MG_TENSOR_OP_RELU, MG_TENSOR_OP_EXP, MG_TENSOR_OP_LOG, MG_TENSOR_OP_TANH, MG_TENSOR_OP_SIGMOID,
    MG_TENSOR_OP_MATMUL,
    MG_TENSOR_OP_SUM, MG_TENSOR_OP_MEAN, MG_TENSOR_OP_MAX, MG_TENSOR_OP_LOG_SOFTMAX,
    MG_TENSOR_OP_COUNT
} mg_tensor_opcode;
/* clang-format on */

/* ---- making and dropping ---- */

/* A zero-filled leaf of the given shape (ndim 0..MG_MAX_DIMS; 0 is a scalar), requiring grad. */
MG_API mg_tensor *mg_tensor_new(const size_t *shape, int ndim, mg_dtype dtype);
/* The same filled from `data`: numel doubles in row-major order (rounded for float32). */
MG_API mg_tensor *mg_tensor_from_data(const double *data, const size_t *shape, int ndim, mg_dtype dtype);
/* A leaf over memory the caller owns, no copy (for DLPack and the like): `data` is the first element,
 * strides are in elements (>= 0; NULL: row-major). When the last tensor using the memory goes,
 * release(ctx) is called (if not NULL), from whichever thread drops it. On failure (NULL) nothing is
 * released: the memory is still the caller's. The leaf does not require grad. */
MG_API mg_tensor *mg_tensor_from_external(void *data, const size_t *shape, const int64_t *strides, int ndim,
                                          mg_dtype dtype, void (*release)(void *ctx), void *ctx);
MG_API mg_tensor *mg_tensor_full(const size_t *shape, int ndim, double value, mg_dtype dtype);
MG_API mg_tensor *mg_tensor_retain(mg_tensor *t);
MG_API void mg_tensor_release(mg_tensor *t);

/* Tensors alive now, in all threads (tests use it to prove nothing leaks). */
MG_API int64_t mg_live_tensors(void);

/* ---- reading ---- */

MG_API int mg_tensor_ndim(const mg_tensor *t);
MG_API const size_t *mg_tensor_shape(const mg_tensor *t);    /* ndim entries */
MG_API const int64_t *mg_tensor_strides(const mg_tensor *t); /* ndim entries, in elements */
MG_API size_t mg_tensor_offset(const mg_tensor *t);          /* in elements, into the storage */
MG_API size_t mg_tensor_numel(const mg_tensor *t);
MG_API mg_dtype mg_tensor_dtype(const mg_tensor *t);
MG_API int mg_tensor_is_contiguous(const mg_tensor *t);      /* row-major strides (offset aside) */
MG_API mg_tensor_opcode mg_tensor_op(const mg_tensor *t);
MG_API const char *mg_tensor_op_name(mg_tensor_opcode op);
MG_API size_t mg_tensor_num_inputs(const mg_tensor *t);
MG_API mg_tensor *mg_tensor_input(const mg_tensor *t, size_t i); /* borrowed */
/* The first element of t (storage + offset), of t's dtype: for bindings that read or write in place. */
MG_API void *mg_tensor_data_ptr(mg_tensor *t);
/* out (numel doubles) = t's elements in row-major order. */
MG_API mg_status mg_tensor_copy_data(const mg_tensor *t, double *out);
MG_API mg_status mg_tensor_item(const mg_tensor *t, double *out); /* t has exactly one element */

/* ---- gradients ---- */

MG_API int mg_tensor_requires_grad(const mg_tensor *t);
/* Only leaves can change (MG_ERR_STATE otherwise). */
MG_API mg_status mg_tensor_set_requires_grad(mg_tensor *t, int requires_grad);
/* t's gradient, numel doubles in row-major order, or NULL when t has none (yet). Writable. */
MG_API double *mg_tensor_grad_data(mg_tensor *t);
/* Sets t's gradient to zeros (if it has one). */
MG_API void mg_tensor_zero_grad(mg_tensor *t);
/* Drops t's gradient (grad becomes "none"). */
MG_API void mg_tensor_clear_grad(mg_tensor *t);
MG_API mg_status mg_tensor_backward(mg_tensor *root);
/* Grad mode (mg_set_grad_enabled, declared with the value ops) governs tensors as it does values. */

/* ---- views (share storage; negative dims count from the end) ---- */

/* Any shape of the same numel, one entry may be -1 (inferred). A view of a contiguous tensor, else a copy. */
MG_API mg_tensor *mg_tensor_reshape(mg_tensor *a, const int64_t *shape, int ndim);
MG_API mg_tensor *mg_tensor_transpose(mg_tensor *a, int d0, int d1);
/* Elements start, start+step, ... < end of dimension dim; 0 <= start <= end <= size, step >= 1. */
MG_API mg_tensor *mg_tensor_slice(mg_tensor *a, int dim, size_t start, size_t end, size_t step);
/* a[..., index, ...] along dim: one dimension less. */
MG_API mg_tensor *mg_tensor_select(mg_tensor *a, int dim, size_t index);
/* Broadcast to shape (stride 0 where a has size 1 or is missing). */
MG_API mg_tensor *mg_tensor_expand(mg_tensor *a, const size_t *shape, int ndim);
/* a itself (a new reference) when contiguous, else a contiguous copy. */
MG_API mg_tensor *mg_tensor_contiguous(mg_tensor *a);
/* A copy of dtype `dtype` (a new reference to a when it already has it). */
MG_API mg_tensor *mg_tensor_to_dtype(mg_tensor *a, mg_dtype dtype);
/* A leaf sharing a's storage, not requiring grad. */
MG_API mg_tensor *mg_tensor_detach(mg_tensor *a);

/* ---- ops ---- */

MG_API mg_tensor *mg_tensor_add(mg_tensor *a, mg_tensor *b);
MG_API mg_tensor *mg_tensor_sub(mg_tensor *a, mg_tensor *b);
MG_API mg_tensor *mg_tensor_mul(mg_tensor *a, mg_tensor *b);
MG_API mg_tensor *mg_tensor_div(mg_tensor *a, mg_tensor *b);
MG_API mg_tensor *mg_tensor_add_scalar(mg_tensor *a, double c);  /* a + c */
MG_API mg_tensor *mg_tensor_mul_scalar(mg_tensor *a, double c);  /* a * c */
MG_API mg_tensor *mg_tensor_rsub_scalar(double c, mg_tensor *a); /* c - a */
MG_API mg_tensor *mg_tensor_div_scalar(mg_tensor *a, double c);  /* a / c */
MG_API mg_tensor *mg_tensor_rdiv_scalar(double c, mg_tensor *a); /* c / a */
MG_API mg_tensor *mg_tensor_pow_scalar(mg_tensor *a, double c);  /* a ** c */
MG_API mg_tensor *mg_tensor_neg(mg_tensor *a);
MG_API mg_tensor *mg_tensor_relu(mg_tensor *a);
MG_API mg_tensor *mg_tensor_exp(mg_tensor *a);
MG_API mg_tensor *mg_tensor_log(mg_tensor *a);
MG_API mg_tensor *mg_tensor_tanh(mg_tensor *a);
MG_API mg_tensor *mg_tensor_sigmoid(mg_tensor *a);
/* NumPy's matmul: (..., n, k) @ (..., k, m) with broadcast batch dims; a 1-D operand is a row (left) or
 * a column (right) vector whose dimension is removed from the result. mg_tensor_matmul is FAST (fused
 * multiply-adds); mg_tensor_matmul_prec takes the precision, for the result and for its backward. */
MG_API mg_tensor *mg_tensor_matmul(mg_tensor *a, mg_tensor *b);
MG_API mg_tensor *mg_tensor_matmul_prec(mg_tensor *a, mg_tensor *b, mg_precision precision);
/* Reductions over dim (or MG_DIM_ALL); keepdim keeps it with size 1. As in PyTorch, max over a dim
 * sends the gradient to the first maximal element (the index torch.max(dim) returns), and max over
 * everything shares it evenly between tied maxima. NaN wins a max. */
MG_API mg_tensor *mg_tensor_sum(mg_tensor *a, int dim, int keepdim);
MG_API mg_tensor *mg_tensor_mean(mg_tensor *a, int dim, int keepdim);
MG_API mg_tensor *mg_tensor_max(mg_tensor *a, int dim, int keepdim);
MG_API mg_tensor *mg_tensor_log_softmax(mg_tensor *a, int dim);
/* Index of the first maximum along dim (MG_DIM_ALL: in row-major order), as float64 numbers; no graph. */
MG_API mg_tensor *mg_tensor_argmax(mg_tensor *a, int dim, int keepdim);

/* In place, recording nothing: a += alpha * b (b broadcast to a's shape), for optimizer steps. */
MG_API mg_status mg_tensor_add_(mg_tensor *a, mg_tensor *b, double alpha);
/* In place, recording nothing: every element of a set to value. */
MG_API mg_status mg_tensor_fill_(mg_tensor *a, double value);

/* ---- threads ---- */

/* The library has one pool of worker threads, started on first need and kept, and one setting for it:
 * mg_set_num_threads(n) is the thread count (the caller's thread included) for big tensor kernels and for
 * mg_mlp_fit, process-wide; n >= 1 (at most 256), or 0 for every core (the default). mg_get_num_threads()
 * reads it (0 reads as the core count). mg_fit_options.threads overrides it for one fit; fit never uses
 * more threads than cores. The pool runs one job at a time: a kernel or a fit step that finds it busy with
 * another thread's runs on its own thread, with the same results (fit's are bit-identical for any thread
 * count). The workers are named "mg-pool" where the system allows; after fork() the child starts with
 * none. */
MG_API void mg_set_num_threads(int n);
MG_API int mg_get_num_threads(void);
/* Called (by the calling thread) around long kernels that touch nothing but raw numbers: a binding can
 * release its interpreter lock there. `leave` returns a token that `enter` gets back. NULL: none.
 * Forward kernels only: backward, which writes gradient buffers that another thread could free or
 * accumulate into (clear_grad, a second backward over a shared graph), never calls them, so a binding
 * whose threads share one lock runs each backward whole, one at a time. */
MG_API void mg_set_compute_hooks(void *(*leave)(void), void (*enter)(void *token));

#ifdef __cplusplus
}
#endif

#endif /* MICROGRAD_H */
