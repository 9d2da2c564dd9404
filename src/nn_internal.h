/* nn_internal.h: what nn.c, loss.c, optim.c and train.c share. */
#ifndef MG_NN_INTERNAL_H
#define MG_NN_INTERNAL_H

#include "internal.h"

/* Samples per chunk: the unit of work of a thread and of the fixed-order gradient reduction. */
enum { MG_CHUNK = 32 };

struct mg_mlp {
    size_t bytes;     /* of this one allocation */
    size_t n_in, n_layers, n_params, max_width;
    double *params, *grads;
    size_t *sizes;    /* neurons per layer */
    size_t *offsets;  /* where each layer's parameters start */
    mg_activation *acts;
};

/* Scratch for one chunk: every layer's activations (feature-major), two gradient buffers, and a
 * gradient accumulator of n_params. */
typedef struct mg__work {
    size_t bytes;
    double *acts, *delta, *delta_in, *grads;
} mg__work;

int mg__work_init(mg__work *w, const mg_mlp *m);
void mg__work_free(mg__work *w);
size_t mg__mlp_total_width(const mg_mlp *m);
const double *mg__mlp_forward(const mg_mlp *m, mg__work *w, const double *x, const size_t *rows, size_t count);
void mg__mlp_backward(const mg_mlp *m, mg__work *w, size_t count, double *grads);

/* Losses over count samples, scores and dscores feature-major [k][stride]; targets row-major, picked by
 * rows[s] (or s). Adds the per-sample losses to *sum and correct answers to *correct; dscores gets
 * scale * d(sample loss)/d(score). Returns MG_ERR_ARG for a target out of range. */
mg_status mg__loss_chunk(mg_loss loss, const double *scores, size_t stride, const double *targets,
                         const size_t *rows, size_t count, size_t k, double scale, double *sum,
                         double *dscores, size_t *correct);

uint64_t mg__splitmix64(uint64_t *state);

/* mg_optim_step at learning rate lr, leaving the optimizer's own lr (the base rate) as it is: fit's schedule */
mg_status mg__optim_step_lr(mg_optim *opt, double lr, double *params, const double *grads, size_t n_params);

#endif
