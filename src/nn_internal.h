/* nn_internal.h: what nn.c, dense.c, loss.c, optim.c and train.c share. */
#ifndef MG_NN_INTERNAL_H
#define MG_NN_INTERNAL_H

#include "gemm.h"

struct mg_mlp {
    size_t bytes;    /* of this one allocation */
    size_t n_in, n_layers, n_params, max_width;
    double *params, *grads;
    size_t *sizes;   /* neurons per layer */
    size_t *offsets; /* where each layer's parameters start */
    mg_activation *acts;
    mg_precision precision; /* how fit and predict compute (mg_mlp_set_compute) */
    mg_dtype dtype;
};

/* ---- a pass: the network over a chunk of up to `chunk` samples (dense.c) ----
 * Activations are sample-major, a row a sample ([count][width], as the data's rows), in the model's
 * dtype. Each layer is one product of gemm.c (forward: the bias first, then w[i] * x[i] in order of i; the
 * input gradient: in order of the layer's neurons; the weight and bias gradients: added to `grads` in
 * order of samples), its work split over `n_shares` shares that run on the worker pool. Every number is
 * computed by one share in an order that does not depend on the split: any share count gives the same
 * bits. */
typedef struct mg__pass {
    mg_mlp *m;
    size_t chunk, count;      /* samples the space holds; samples in the current chunk */
    size_t elem;              /* bytes of an element: 8 (float64) or 4 (float32) */
    const char *x;            /* the chunk's inputs, [count][n_in]: the caller's rows, or `input` */
    char *input;              /* [chunk][n_in]: rows gathered (and rounded to float for float32) */
    char *acts;               /* every layer's outputs, [chunk][width], layer l at act_at[l] elements */
    char *delta, *delta_in;   /* [chunk][width]: gradients of a layer's outputs and of its inputs */
    const char *params;       /* the parameters the products read: m->params, or params32 (float32) */
    char *grads;              /* the gradients they add to: m->grads, or grads32 (float32) */
    char *params32, *grads32; /* float32: copies of n_params floats */
    double *scores;           /* float32: the last layer's outputs and their gradients in double, for the loss
                               * ([chunk][n_out] each) */
    size_t *act_at;           /* n_layers */
    char *packed_w;           /* every layer's W^T packed ahead for the forward products, and its biases */
    size_t *packed_at;        /* n_layers: where each layer's packed W^T starts, in bytes */
    size_t *bias_at;          /* n_layers: where each layer's biases start, in bytes */
    size_t packed_bytes;
    size_t n_shares;          /* how many parts each job is cut into */
    char *scratch;            /* gemm packing space, scratch_bytes a share */
    size_t scratch_bytes;
    mg__pool_wait wait;
    int fresh; /* set by mg__pass_begin_batch: the gradients have not been started yet */
    size_t bytes; /* of the block the rest lives in */
} mg__pass;

/* Samples a pass holds at most: a batch is run in chunks of this many. */
enum { MG__PASS_CHUNK = 256 };

/* Space for chunks of up to `chunk` samples (at most MG__PASS_CHUNK) and n_shares shares, in the model's
 * dtype; 0 when out of memory (nothing to free). */
int mg__pass_init(mg__pass *p, mg_mlp *m, size_t chunk, size_t n_shares, mg__pool_wait wait);
void mg__pass_free(mg__pass *p);
/* float32: the parameters rounded into the pass's copy, the one its products read and fit trains (once,
 * before the first forward); a no-op for float64 */
void mg__pass_load_params(mg__pass *p);
/* float32: the copy's parameters and gradients back into the model's doubles (once, at the end) */
void mg__pass_store(mg__pass *p);
/* Packs every layer's weights for the forward products, after they change (each step) and before the
 * first forward: once for all chunks and shares. */
void mg__pass_pack_weights(mg__pass *p);
/* Loads the chunk's inputs: rows[s] of x (n rows of n_in), or row s when rows is NULL */
void mg__pass_gather(mg__pass *p, const double *x, const size_t *rows, size_t count);
/* The forward of the chunk: returns the last layer's outputs as doubles, [count][n_out] */
const double *mg__pass_forward(mg__pass *p);
/* Where the loss puts d(loss)/d(the last layer's outputs), as doubles [count][n_out] */
double *mg__pass_dscores(mg__pass *p);
/* The backward of the chunk, from those: adds every parameter's gradient to p->grads. */
void mg__pass_backward(mg__pass *p);
/* A new batch: the next backward starts every gradient from 0 (each share zeroes its own part as it
 * gets to it, rather than a pass over all of them first) */
void mg__pass_begin_batch(mg__pass *p);

/* How many shares a pass of `samples` samples is worth: `threads` (0: mg_get_num_threads()) capped at the
 * cores, 1 when the work is too small for threads to pay off. The answer never changes a result. */
size_t mg__pass_shares(const mg_mlp *m, int threads, size_t samples);

/* Losses over count samples, scores and dscores [count][k]; targets row-major, picked by rows[s] (or s).
 * Adds the per-sample losses to *sum, in order, and correct answers to *correct; dscores (may be NULL)
 * gets scale * d(sample loss)/d(score). Returns MG_ERR_ARG for a target out of range. */
mg_status mg__loss_chunk(mg_loss loss, const double *scores, const double *targets, const size_t *rows, size_t count,
                         size_t k, double scale, double *sum, double *dscores, size_t *correct);

uint64_t mg__splitmix64(uint64_t *state);

/* mg_optim_step in parts, for fit: mg__optim_begin_step checks the arguments and counts the step (an error
 * changes nothing); mg__optim_update then updates parameters [i0, i1) at learning rate lr (fit's schedule:
 * the optimizer's own lr stays the base rate), doubles or (MG_FLOAT32) floats, in the same arithmetic.
 * Disjoint ranges may be updated by several threads at once. */
mg_status mg__optim_begin_step(mg_optim *opt, const void *params, const void *grads, size_t n_params);
void mg__optim_update(mg_optim *opt, double lr, void *params, const void *grads, mg_dtype dtype, size_t i0, size_t i1);

#endif
