/* train.c: mg_mlp_fit, the training loop in C.
 *
 * A step runs its batch in chunks through a pass (dense.c): each layer's products are split over the
 * library's worker pool, every number computed by one thread in an order that does not depend on the
 * split, so the parameters come out bit for bit the same for any number of threads, and when the pool is
 * busy with another thread's job and the calling thread runs every part itself. The pool's threads spin a
 * little between jobs (MG__POOL_SPIN), so back-to-back layers and steps cost no futex wake-up. The loss and
 * the optimizer's update are split over the pool too (by samples, by parameters); the calling thread adds
 * the chunk's losses in order between jobs. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

mg_fit_options mg_fit_defaults(void) {
    mg_fit_options o = {.loss = MG_LOSS_SVM, .epochs = 1, .shuffle = 1, .schedule = MG_SCHEDULE_CONSTANT};
    return o;
}

/* What a fit works with: the data, one pass's space (dense.c) that every step's chunks go through, and the
 * loss's: each sample's loss in a chunk, and each share's right answers and status. */
typedef struct {
    mg_mlp *m;
    const mg_fit_options *o;
    const double *x, *y;
    size_t n_out;
    mg__pass pass;
    size_t *order; /* the samples in this epoch's order */
    double *losses;
    size_t *share_right;
    mg_status *share_status;
    size_t bytes; /* of the block order starts */
} trainer;

/* The learning rate at step `step` of a schedule `total` steps long (past its end: lr_end). */
static double scheduled_lr(const mg_fit_options *o, double lr0, uint64_t step, uint64_t total) {
    if (step > total) step = total;
    double progress = (double)step / (double)total;
    switch (o->schedule) {
    case MG_SCHEDULE_LINEAR: return lr0 - (lr0 - o->lr_end) * (double)step / (double)total;
    case MG_SCHEDULE_COSINE:
        return o->lr_end + (lr0 - o->lr_end) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    default: return lr0;
    }
}

static mg_status check_data(const mg_mlp *m, const mg_optim *opt, const double *x, const double *y, size_t n,
                            const mg_fit_options *o) {
    if ((unsigned)o->loss >= MG_LOSS_COUNT) return mg__fail(MG_ERR_ARG, "mg_mlp_fit: unknown loss %d", (int)o->loss);
    if (n == 0) return mg__fail(MG_ERR_ARG, "mg_mlp_fit: no samples");
    if (mg_optim_state_size(opt) / (mg_optim_get_config(opt)->kind == MG_OPTIM_SGD ? 1 : 2) != m->n_params)
        return mg__fail(MG_ERR_ARG,
                        "mg_mlp_fit: the optimizer was made for another number of parameters "
                        "(the model has %zu)",
                        m->n_params);
    size_t n_out = mg_mlp_num_outputs(m);
    if ((o->loss == MG_LOSS_SVM || o->loss == MG_LOSS_BCE) && n_out != 1)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: %s loss needs a model with 1 output, this one has %zu",
                        mg_loss_name(o->loss), n_out);
    if (o->loss == MG_LOSS_CROSS_ENTROPY && n_out < 2)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: cross_entropy loss needs a model with 2 or more outputs");
    for (size_t i = 0; i < n * m->n_in; i++)
        if (!isfinite(x[i]))
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: x[%zu][%zu] is %g: data must be finite", i / m->n_in, i % m->n_in,
                            x[i]);
    size_t y_cols = o->loss == MG_LOSS_MSE ? n_out : 1;
    for (size_t i = 0; i < n * y_cols; i++) {
        double label = y[i];
        if (!isfinite(label))
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: y[%zu] is %g: targets must be finite", i / y_cols, label);
        if (o->loss == MG_LOSS_SVM && label != 1.0 && label != -1.0)
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: svm loss: y[%zu] is %g, expected -1 or 1%s", i, label,
                            label == 0.0 ? " (for 0/1 labels, use the bce loss)" : "");
        if (o->loss == MG_LOSS_BCE && label != 0.0 && label != 1.0)
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: bce loss: y[%zu] is %g, expected 0 or 1", i, label);
        if (o->loss == MG_LOSS_CROSS_ENTROPY && !(label >= 0.0 && label < (double)n_out && label == floor(label)))
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: cross_entropy loss: y[%zu] is %g, expected a class 0..%zu", i,
                            label, n_out - 1);
    }
    return MG_OK;
}

/* Where this call sits in the run: the steps of an epoch, the first epoch's number, and the schedule's
 * first step and length. Epochs count from the optimizer's steps, so the order continues across calls. */
typedef struct {
    size_t batch_size, batches_per_epoch;
    uint64_t first_epoch, schedule_start, schedule_steps;
} run_plan;

static mg_status plan_run(const mg_optim *opt, size_t n, const mg_fit_options *o, run_plan *p) {
    if (!isfinite(o->l2) || o->l2 < 0.0)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: l2 must be finite and >= 0, got %g", o->l2);
    if ((unsigned)o->schedule > MG_SCHEDULE_COSINE)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: unknown schedule %d", (int)o->schedule);
    if (!(isfinite(o->lr_end) && o->lr_end >= 0.0))
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: lr_end must be a finite number >= 0, got %g", o->lr_end);
    if (o->threads < 0)
        return mg__fail(MG_ERR_ARG, "threads must be >= 0 (0: the mg_set_num_threads setting), got %d", o->threads);
    p->batch_size = o->batch_size == 0 || o->batch_size > n ? n : o->batch_size;
    p->batches_per_epoch = (n + p->batch_size - 1) / p->batch_size;
    uint64_t bpe = p->batches_per_epoch, done = mg_optim_steps(opt);
    p->first_epoch = done / bpe;
    size_t run = o->total_epochs ? o->total_epochs : o->epochs;
    if (run > UINT64_MAX / bpe || o->epochs > (UINT64_MAX - done) / bpe)
        return mg__fail(MG_ERR_ARG, "epochs: %zu epochs of %zu steps are more than a step count holds",
                        run > o->epochs ? run : o->epochs, p->batches_per_epoch);
    p->schedule_steps = run * bpe;
    p->schedule_start = o->total_epochs ? done : 0;
    if (o->total_epochs && done + o->epochs * bpe > p->schedule_steps)
        return mg__fail(MG_ERR_ARG,
                        "epochs %zu go past total_epochs %zu: the optimizer has taken %llu steps (%llu "
                        "epochs of %zu steps), so at most %llu epochs are left",
                        o->epochs, o->total_epochs, (unsigned long long)done, (unsigned long long)p->first_epoch,
                        p->batches_per_epoch,
                        (unsigned long long)(done >= p->schedule_steps ? 0 : (p->schedule_steps - done) / bpe));
    return MG_OK;
}

/* Epoch e's order: a Fisher-Yates shuffle of 0..n-1 whose draws start at place e (n - 1) of the seed's
 * splitmix64 stream (each epoch draws n - 1), so any epoch's order is made without replaying the others. */
static void shuffle_epoch(size_t *order, size_t n, uint64_t seed, uint64_t epoch) {
    uint64_t rng = seed + epoch * (uint64_t)(n - 1) * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(mg__splitmix64(&rng) % (uint64_t)(i + 1));
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
}

/* adds l2 * sum(p^2) to *loss and 2 * l2 * p to each gradient, in double, for either element type */
#define ADD_L2(params, grads, n, l2, loss)    \
    do {                                      \
        double squares_ = 0.0;                \
        for (size_t i_ = 0; i_ < (n); i_++) { \
            double p_ = (params)[i_];         \
            squares_ += p_ * p_;              \
            (grads)[i_] += 2.0 * (l2) * p_;   \
        }                                     \
        *(loss) = *(loss) + (l2) * squares_;  \
    } while (0)

/* the optimizer's update of share `part`'s range of the parameters */
typedef struct {
    trainer *t;
    mg_optim *opt;
    double lr;
    void *params;
    const void *grads;
} update_job;

static void update_part(void *ctx, size_t part) {
    const update_job *u = ctx;
    size_t n = u->t->m->n_params, shares = u->t->pass.n_shares;
    mg__optim_update(u->opt, u->lr, u->params, u->grads, u->t->pass.elem == 4 ? MG_FLOAT32 : MG_FLOAT64,
                     mg__part_start(n, part, shares), mg__part_start(n, part + 1, shares));
}

/* The L2 term (after the data loss, as micrograd adds it) and the optimizer's step at lr, on the parameters
 * the pass trains: the model's doubles, or in float32 the pass's floats (its copy, stored back at the end).
 * The update is elementwise: split over the pool, each parameter updated by one thread. */
static mg_status step_params(trainer *t, mg_optim *opt, double lr, double *loss) {
    mg__pass *p = &t->pass;
    size_t n = t->m->n_params;
    double l2 = t->o->l2;
    update_job u = {t, opt, lr, t->m->params, t->m->grads};
    if (p->elem == 4) {
        u.params = p->params32;
        u.grads = p->grads32;
        if (l2 != 0.0) ADD_L2((float *)p->params32, (float *)p->grads32, n, l2, loss);
    } else if (l2 != 0.0) {
        ADD_L2(t->m->params, t->m->grads, n, l2, loss);
    }
    mg_status status = mg__optim_begin_step(opt, u.params, u.grads, n);
    if (status == MG_OK) mg__pool_run(p->n_shares, update_part, &u, p->wait);
    return status;
}

/* share `part`'s samples of the chunk through the loss: their losses and the gradients of their scores */
typedef struct {
    trainer *t;
    const double *scores;
    const size_t *rows;
    double scale;
} loss_job;

static void loss_part(void *ctx, size_t part) {
    const loss_job *job = ctx;
    trainer *t = job->t;
    mg__pass *p = &t->pass;
    size_t s0 = mg__part_start(p->count, part, p->n_shares), s1 = mg__part_start(p->count, part + 1, p->n_shares);
    t->share_right[part] = 0;
    t->share_status[part] = mg__loss_chunk(t->o->loss, job->scores + s0 * t->n_out, t->y, job->rows + s0, s1 - s0,
                                           t->n_out, job->scale, t->losses + s0, mg__pass_dscores(p) + s0 * t->n_out,
                                           &t->share_right[part]);
}

/* The chunk's losses (on the pool), added to *sum in order of samples: micrograd's sum(losses). A failure is
 * run again here, so that its message is this thread's (a worker's would be lost). */
static mg_status chunk_loss(trainer *t, const double *scores, const size_t *rows, double scale, double *sum,
                            size_t *correct) {
    mg__pass *p = &t->pass;
    loss_job job = {t, scores, rows, scale};
    mg__pool_run(p->n_shares, loss_part, &job, p->wait);
    for (size_t i = 0; i < p->n_shares; i++) {
        if (t->share_status[i] != MG_OK)
            return mg__loss_chunk(t->o->loss, scores, t->y, rows, p->count, t->n_out, scale, t->losses,
                                  mg__pass_dscores(p), correct);
        *correct += t->share_right[i];
    }
    for (size_t s = 0; s < p->count; s++) *sum += t->losses[s];
    return MG_OK;
}

/* One step on the batch rows[0, batch): its chunks forward, through the loss and backward (every
 * gradient added in order of samples), the losses summed in order of samples, then the L2 term and the
 * optimizer. */
static mg_status train_batch(trainer *t, mg_optim *opt, const size_t *rows, size_t batch, double lr, double *loss,
                             size_t *correct) {
    const mg_fit_options *o = t->o;
    mg__pass *p = &t->pass;
    double scale = 1.0 / (double)(o->loss == MG_LOSS_MSE ? batch * t->n_out : batch), sum = 0.0;
    mg__pass_begin_batch(p);
    mg__pass_pack_weights(p);
    for (size_t start = 0; start < batch; start += p->chunk) {
        size_t count = batch - start < p->chunk ? batch - start : p->chunk;
        mg__pass_gather(p, t->x, rows + start, count);
        const double *scores = mg__pass_forward(p);
        mg_status status = chunk_loss(t, scores, rows + start, scale, &sum, correct);
        if (status != MG_OK) return status;
        mg__pass_backward(p);
    }
    *loss = sum * scale;
    return step_params(t, opt, lr, loss);
}

static mg_status run_epochs(trainer *t, mg_optim *opt, size_t n, const run_plan *p) {
    size_t *order = t->order;
    const mg_fit_options *o = t->o;
    double lr0 = mg_optim_lr(opt);
    uint64_t step = p->schedule_start;
    mg_status status = MG_OK;
    for (size_t i = 0; i < o->epochs && status == MG_OK; i++) {
        if (o->shuffle) shuffle_epoch(order, n, o->seed, p->first_epoch + i);
        double epoch_loss = 0.0;
        size_t epoch_correct = 0;
        for (size_t start = 0; start < n && status == MG_OK; start += p->batch_size, step++) {
            size_t batch = n - start < p->batch_size ? n - start : p->batch_size;
            double loss = 0.0, lr = scheduled_lr(o, lr0, step, p->schedule_steps);
            status = train_batch(t, opt, order + start, batch, lr, &loss, &epoch_correct);
            epoch_loss += loss * (double)batch;
        }
        if (status == MG_OK && o->on_epoch &&
            o->on_epoch(o->user, i, epoch_loss / (double)n,
                        o->loss == MG_LOSS_MSE ? NAN : (double)epoch_correct / (double)n))
            break;
    }
    return status;
}

mg_status mg_mlp_fit(mg_mlp *m, mg_optim *opt, const double *x, const double *y, size_t n,
                     const mg_fit_options *options) {
    if (!m || !opt || !x || !y || !options) return mg__fail(MG_ERR_NULL, "mg_mlp_fit: an argument is NULL");
    mg_status status = check_data(m, opt, x, y, n, options);
    run_plan plan = {0};
    if (status == MG_OK) status = plan_run(opt, n, options, &plan);
    if (status != MG_OK) return status;

    trainer t = {.m = m, .o = options, .x = x, .y = y, .n_out = mg_mlp_num_outputs(m)};
    size_t chunk = plan.batch_size < MG__PASS_CHUNK ? plan.batch_size : MG__PASS_CHUNK;
    /* steps follow each other at once: the pool's threads spin between them */
    if (!mg__pass_init(&t.pass, m, chunk, mg__pass_shares(m, options->threads, plan.batch_size), MG__POOL_SPIN))
        return mg__fail(MG_ERR_NOMEM, "mg_mlp_fit: out of memory");
    mg__part parts[] = {MG__PART(t.order, n), MG__PART(t.losses, chunk), MG__PART(t.share_right, t.pass.n_shares),
                        MG__PART(t.share_status, t.pass.n_shares)};
    size_t n_parts = sizeof parts / sizeof *parts;
    if (mg__carve_size(0, parts, n_parts, &t.bytes) || !mg__carve(0, parts, n_parts, t.bytes)) {
        mg__pass_free(&t.pass);
        return mg__fail(MG_ERR_NOMEM, "mg_mlp_fit: out of memory");
    }
    for (size_t i = 0; i < n; i++) t.order[i] = i;
    mg__pass_load_params(&t.pass);
    uint64_t steps = mg_optim_steps(opt);
    status = run_epochs(&t, opt, n, &plan);
    if (mg_optim_steps(opt) != steps) mg__pass_store(&t.pass); /* float32: what was trained, also when stopped */
    mg__free(t.order, t.bytes);
    mg__pass_free(&t.pass);
    return status;
}
