/* train.c: mg_mlp_fit, the training loop in C, data-parallel over the library's worker pool.
 *
 * A batch is cut into chunks of MG_CHUNK samples. Each chunk's gradient goes into a buffer of its own,
 * whichever thread computes it, and the buffers are summed in chunk order: so the parameters come out bit
 * for bit the same for any number of threads, and when the pool is busy with another thread's job and the
 * calling thread runs every share itself. Each step is one pool job (mg__pool_run with MG__POOL_SPIN: the
 * threads spin a little before they sleep, so back-to-back steps cost no futex wake-up); the calling
 * thread reduces and runs the optimizer between jobs. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

mg_fit_options mg_fit_defaults(void) {
    mg_fit_options o = {.loss = MG_LOSS_SVM, .epochs = 1, .shuffle = 1, .schedule = MG_SCHEDULE_CONSTANT};
    return o;
}

/* Share k of a step: chunks k, k + n_shares, k + 2 n_shares, ..., with scratch of its own, whichever
 * thread runs it */
typedef struct {
    mg__work work;
    mg_status status;
} share;

typedef struct {
    const mg_mlp *m;
    const mg_fit_options *o;
    const double *x, *y;
    size_t n_out;
    /* the current batch: sample indices, count, and the 1/n scale of the loss */
    const size_t *rows;
    size_t batch, n_chunks;
    double scale;
    /* per chunk: gradient (n_params), loss sum, right answers */
    double *chunk_grads, *chunk_loss;
    size_t *chunk_correct;
    size_t n_shares;
    share *shares;
} trainer;

/* forward, loss and backward of chunk c into its own buffers */
static mg_status run_chunk(trainer *t, mg__work *w, size_t c) {
    const mg_mlp *m = t->m;
    size_t first = c * MG_CHUNK, count = t->batch - first < MG_CHUNK ? t->batch - first : MG_CHUNK;
    const size_t *rows = t->rows + first;
    const double *scores = mg__mlp_forward(m, w, t->x, rows, count);
    double *grads = t->chunk_grads + c * m->n_params;
    t->chunk_loss[c] = 0.0;
    t->chunk_correct[c] = 0;
    mg_status status = mg__loss_chunk(t->o->loss, scores, MG_CHUNK, t->y, rows, count, t->n_out, t->scale,
                                      &t->chunk_loss[c], w->delta, &t->chunk_correct[c]);
    if (status != MG_OK) return status;
    memset(grads, 0, m->n_params * sizeof *grads);
    mg__mlp_backward(m, w, count, grads);
    return MG_OK;
}

static void run_share(void *ctx, size_t part) {
    trainer *t = ctx;
    share *sh = &t->shares[part];
    for (size_t c = part; c < t->n_chunks; c += t->n_shares) {
        mg_status status = run_chunk(t, &sh->work, c);
        if (status != MG_OK && sh->status == MG_OK) sh->status = status;
    }
}

/* The learning rate at step `step` of a schedule `total` steps long (past its end: lr_end). */
static double scheduled_lr(const mg_fit_options *o, double lr0, uint64_t step, uint64_t total) {
    if (step > total) step = total;
    double progress = (double)step / (double)total;
    switch (o->schedule) {
    case MG_SCHEDULE_LINEAR: return lr0 - (lr0 - o->lr_end) * (double)step / (double)total;
    case MG_SCHEDULE_COSINE: return o->lr_end + (lr0 - o->lr_end) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    default: return lr0;
    }
}

static mg_status check_data(const mg_mlp *m, const mg_optim *opt, const double *x, const double *y, size_t n,
                            const mg_fit_options *o) {
    if ((unsigned)o->loss >= MG_LOSS_COUNT) return mg__fail(MG_ERR_ARG, "mg_mlp_fit: unknown loss %d", (int)o->loss);
    if (n == 0) return mg__fail(MG_ERR_ARG, "mg_mlp_fit: no samples");
    if (mg_optim_state_size(opt) / (mg_optim_get_config(opt)->kind == MG_OPTIM_SGD ? 1 : 2) != m->n_params)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: the optimizer was made for another number of parameters "
                                    "(the model has %zu)", m->n_params);
    size_t n_out = mg_mlp_num_outputs(m);
    if ((o->loss == MG_LOSS_SVM || o->loss == MG_LOSS_BCE) && n_out != 1)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: %s loss needs a model with 1 output, this one has %zu",
                        mg_loss_name(o->loss), n_out);
    if (o->loss == MG_LOSS_CROSS_ENTROPY && n_out < 2)
        return mg__fail(MG_ERR_ARG, "mg_mlp_fit: cross_entropy loss needs a model with 2 or more outputs");
    for (size_t i = 0; i < n * m->n_in; i++)
        if (!isfinite(x[i]))
            return mg__fail(MG_ERR_ARG, "mg_mlp_fit: x[%zu][%zu] is %g: data must be finite", i / m->n_in,
                            i % m->n_in, x[i]);
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
        return mg__fail(MG_ERR_ARG, "epochs %zu go past total_epochs %zu: the optimizer has taken %llu steps (%llu "
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

/* One step on the batch t->rows: chunks over the pool, the gradients reduced in chunk order, then the
 * L2 term (as micrograd adds it after the data loss) and the optimizer at learning rate lr. */
static mg_status train_batch(trainer *t, mg_mlp *m, mg_optim *opt, double lr, double *loss, size_t *correct) {
    const mg_fit_options *o = t->o;
    mg_status status = MG_OK;
    mg__pool_run(t->n_shares, run_share, t, MG__POOL_SPIN); /* the next step follows at once */
    for (size_t i = 0; i < t->n_shares; i++)
        if (t->shares[i].status != MG_OK) status = t->shares[i].status;
    if (status != MG_OK) return status;
    double loss_sum = 0.0;
    memcpy(m->grads, t->chunk_grads, m->n_params * sizeof *m->grads);
    for (size_t c = 1; c < t->n_chunks; c++) {
        const double *g = t->chunk_grads + c * m->n_params;
        for (size_t i = 0; i < m->n_params; i++) m->grads[i] += g[i];
    }
    for (size_t c = 0; c < t->n_chunks; c++) {
        loss_sum += t->chunk_loss[c];
        *correct += t->chunk_correct[c];
    }
    *loss = loss_sum * t->scale;
    if (o->l2 != 0.0) {
        double squares = 0.0;
        for (size_t i = 0; i < m->n_params; i++) {
            squares += m->params[i] * m->params[i];
            m->grads[i] += 2.0 * o->l2 * m->params[i];
        }
        *loss = *loss + o->l2 * squares;
    }
    return mg__optim_step_lr(opt, lr, m->params, m->grads, m->n_params);
}

static mg_status run_epochs(trainer *t, mg_mlp *m, mg_optim *opt, size_t *order, size_t n, const run_plan *p) {
    const mg_fit_options *o = t->o;
    double lr0 = mg_optim_lr(opt);
    uint64_t step = p->schedule_start;
    mg_status status = MG_OK;
    for (size_t i = 0; i < o->epochs && status == MG_OK; i++) {
        if (o->shuffle) shuffle_epoch(order, n, o->seed, p->first_epoch + i);
        double epoch_loss = 0.0;
        size_t epoch_correct = 0;
        for (size_t start = 0; start < n && status == MG_OK; start += p->batch_size, step++) {
            t->rows = order + start;
            t->batch = n - start < p->batch_size ? n - start : p->batch_size;
            t->n_chunks = (t->batch + MG_CHUNK - 1) / MG_CHUNK;
            t->scale = 1.0 / (double)(o->loss == MG_LOSS_MSE ? t->batch * t->n_out : t->batch);
            double loss = 0.0;
            status = train_batch(t, m, opt, scheduled_lr(o, lr0, step, p->schedule_steps), &loss, &epoch_correct);
            epoch_loss += loss * (double)t->batch;
        }
        if (status == MG_OK && o->on_epoch &&
            o->on_epoch(o->user, i, epoch_loss / (double)n,
                        o->loss == MG_LOSS_MSE ? NAN : (double)epoch_correct / (double)n))
            break;
    }
    return status;
}

/* How many shares a step is cut into: the per-call override or the library's setting (mg_set_num_threads),
 * capped at the cores; fewer when the chunks are few or small, as threads only pay off when a chunk holds
 * real work. The answer does not depend on the count. */
static size_t fit_shares(const mg_mlp *m, const mg_fit_options *o, size_t batch_size) {
    int threads = o->threads > 0 ? o->threads : mg_get_num_threads();
    int cores = mg_num_cores();
    size_t shares = (size_t)(threads < cores ? threads : cores), max_chunks = (batch_size + MG_CHUNK - 1) / MG_CHUNK;
    if (shares > max_chunks) shares = max_chunks;
    if ((double)m->n_params * (double)batch_size < 2e5) shares = 1; /* about 300 us of work a step */
    return shares;
}

mg_status mg_mlp_fit(mg_mlp *m, mg_optim *opt, const double *x, const double *y, size_t n,
                     const mg_fit_options *options) {
    if (!m || !opt || !x || !y || !options) return mg__fail(MG_ERR_NULL, "mg_mlp_fit: an argument is NULL");
    mg_status status = check_data(m, opt, x, y, n, options);
    run_plan plan = {0};
    if (status == MG_OK) status = plan_run(opt, n, options, &plan);
    if (status != MG_OK) return status;

    size_t max_chunks = (plan.batch_size + MG_CHUNK - 1) / MG_CHUNK, shares = fit_shares(m, options, plan.batch_size);
    trainer t = {.m = m, .o = options, .x = x, .y = y, .n_out = mg_mlp_num_outputs(m), .n_shares = shares};
    size_t bytes = (max_chunks * m->n_params + max_chunks + n) * sizeof(double) + max_chunks * sizeof(size_t) +
                   shares * sizeof(share);
    char *block = mg__alloc(bytes);
    if (!block) return mg__fail(MG_ERR_NOMEM, "mg_mlp_fit: out of memory");
    memset(block, 0, bytes);
    t.chunk_grads = (double *)block;
    t.chunk_loss = t.chunk_grads + max_chunks * m->n_params;
    size_t *order = (size_t *)(t.chunk_loss + max_chunks);
    t.chunk_correct = order + n;
    t.shares = (share *)(t.chunk_correct + max_chunks);
    for (size_t i = 0; i < n; i++) order[i] = i;

    for (size_t i = 0; i < shares && status == MG_OK; i++)
        if (!mg__work_init(&t.shares[i].work, m)) status = mg__fail(MG_ERR_NOMEM, "mg_mlp_fit: out of memory");
    if (status == MG_OK) status = run_epochs(&t, m, opt, order, n, &plan);
    for (size_t i = 0; i < shares; i++) mg__work_free(&t.shares[i].work);
    mg__free(block, bytes);
    return status;
}
