/* optim.c: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW, as torch.optim updates. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

struct mg_optim {
    mg_optim_config config;
    size_t n_params;
    uint64_t steps;
    double *state;    /* SGD: momentum buffer (n); Adam: first and second moments (2n) */
    size_t state_size;
    /* scratch for mg_optim_step_values */
    double *scratch;
    /* NULL until a step skips a parameter (no gradient): then, per parameter, the steps it skipped, so its
     * own step count (Adam's bias correction, SGD's first momentum step) is steps - skipped[i], as in torch */
    uint64_t *skipped;
    size_t bytes; /* of the one block of this struct, state and scratch */
};

/* One name table per enum, read both ways by the functions below (the bindings use them too). */
enum { OPTIM_KINDS = MG_OPTIM_ADAMW + 1, SCHEDULES = MG_SCHEDULE_COSINE + 1 };
static const char *const kind_names[OPTIM_KINDS] = {
    [MG_OPTIM_SGD] = "sgd", [MG_OPTIM_ADAM] = "adam", [MG_OPTIM_ADAMW] = "adamw"};
static const char *const schedule_names[SCHEDULES] = {
    [MG_SCHEDULE_CONSTANT] = "constant", [MG_SCHEDULE_LINEAR] = "linear", [MG_SCHEDULE_COSINE] = "cosine"};

const char *mg_optim_kind_name(mg_optim_kind kind) { return (unsigned)kind < OPTIM_KINDS ? kind_names[kind] : "?"; }

mg_status mg_optim_kind_from_name(const char *name, mg_optim_kind *out) {
    MG__RETURN_FROM_NAME("optimizer", kind_names, OPTIM_KINDS, name, out);
}

const char *mg_schedule_name(mg_schedule schedule) {
    return (unsigned)schedule < SCHEDULES ? schedule_names[schedule] : "?";
}

mg_status mg_schedule_from_name(const char *name, mg_schedule *out) {
    MG__RETURN_FROM_NAME("schedule", schedule_names, SCHEDULES, name, out);
}

/* SGD keeps one buffer per parameter (momentum), Adam and AdamW two (first and second moments) */
size_t mg_optim_buffers_per_param(mg_optim_kind kind) {
    return kind == MG_OPTIM_SGD ? 1 : (unsigned)kind < OPTIM_KINDS ? 2 : 0;
}

mg_optim_config mg_optim_defaults(mg_optim_kind kind) {
    mg_optim_config c = {.kind = kind, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (kind == MG_OPTIM_ADAMW) c.weight_decay = 1e-2;
    return c;
}

/* The one rule for every field, whichever way it arrives (constructor, setter, checkpoint, state dict).
 * torch.optim's checks, and every value finite; fields the kind does not use must still be finite, since
 * checkpoints store them. context prefixes the message ("" or "mg_optim_new: "). */
static mg_status check_config(const mg_optim_config *c, const char *context) {
    if ((unsigned)c->kind >= OPTIM_KINDS)
        return mg__fail(MG_ERR_ARG, "%sunknown optimizer kind %d (expected %s, %s or %s)", context, (int)c->kind,
                        kind_names[0], kind_names[1], kind_names[2]);
    int sgd = c->kind == MG_OPTIM_SGD;
    struct {
        const char *name;
        double value;
        int ok;
        const char *rule;
    } fields[] = {
        {"lr", c->lr, c->lr >= 0.0, ">= 0"},
        {"weight_decay", c->weight_decay, c->weight_decay >= 0.0, ">= 0"},
        {"momentum", c->momentum, !sgd || c->momentum >= 0.0, ">= 0"},
        {"dampening", c->dampening, !sgd || (c->dampening >= 0.0 && c->dampening <= 1.0), "in [0, 1]"},
        {"beta1 (betas[0])", c->beta1, sgd || (c->beta1 >= 0.0 && c->beta1 < 1.0), "in [0, 1)"},
        {"beta2 (betas[1])", c->beta2, sgd || (c->beta2 >= 0.0 && c->beta2 < 1.0), "in [0, 1)"},
        {"eps", c->eps, sgd || c->eps >= 0.0, ">= 0"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!isfinite(fields[i].value) || !fields[i].ok)
            return mg__fail(MG_ERR_ARG, "%s%s must be a finite number %s, got %g", context, fields[i].name,
                            fields[i].rule, fields[i].value);
    if (c->nesterov != 0 && c->nesterov != 1)
        return mg__fail(MG_ERR_ARG, "%snesterov must be 0 or 1, got %d", context, c->nesterov);
    if (sgd && c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
        return mg__fail(MG_ERR_ARG,
                        "%sNesterov momentum requires a momentum > 0 and zero dampening, got momentum "
                        "%g and dampening %g",
                        context, c->momentum, c->dampening);
    return MG_OK;
}

mg_status mg_optim_check_config(const mg_optim_config *config) {
    if (!config) return mg__fail(MG_ERR_NULL, "mg_optim_check_config: config is NULL");
    return check_config(config, "");
}

static size_t skipped_bytes(size_t n) { return (n ? n : 1) * sizeof(uint64_t); }

/* The optimizer's block after its struct: the state buffers, then step_values' scratch (data and grads) */
enum { OPTIM_PARTS = 2 };
static void optim_parts(mg_optim *opt, mg__part parts[OPTIM_PARTS]) {
    parts[0] = MG__PART(opt->state, opt->state_size);
    parts[1] = MG__PART_ROWS(opt->scratch, opt->n_params, 2);
}

mg_optim *mg_optim_new(const mg_optim_config *config, size_t n_params) {
    if (!config) return mg__fail_null("mg_optim_new");
    if (check_config(config, "mg_optim_new: ") != MG_OK) return NULL;
    mg_optim layout = {.config = *config, .n_params = n_params};
    mg__part parts[OPTIM_PARTS];
    int too_many = mg__mul_size(mg_optim_buffers_per_param(config->kind), n_params, &layout.state_size);
    if (!too_many) {
        optim_parts(&layout, parts);
        too_many = mg__carve_size(sizeof layout, parts, OPTIM_PARTS, &layout.bytes);
    }
    if (too_many) {
        mg__fail(MG_ERR_ARG, "mg_optim_new: too many parameters (%zu)", n_params);
        return NULL;
    }
    mg_optim *opt = mg__carve(sizeof *opt, parts, OPTIM_PARTS, layout.bytes);
    if (!opt) {
        mg__fail(MG_ERR_NOMEM, "mg_optim_new: out of memory for %zu parameters", n_params);
        return NULL;
    }
    *opt = layout;
    return opt;
}

void mg_optim_free(mg_optim *opt) {
    if (!opt) return;
    if (opt->skipped) mg__free(opt->skipped, skipped_bytes(opt->n_params));
    mg__free(opt, opt->bytes);
}

/* Counts a skipped step for every parameter without a gradient (allocating the counts on the first skip). */
static mg_status count_skips(mg_optim *opt, const unsigned char *has_grad) {
    size_t n = opt->n_params, missing = 0;
    for (size_t i = 0; i < n; i++) missing += !has_grad[i];
    if (missing == 0) return MG_OK;
    if (!opt->skipped) {
        if (!(opt->skipped = mg__alloc(skipped_bytes(n))))
            return mg__fail(MG_ERR_NOMEM, "mg_optim_step: out of memory");
        memset(opt->skipped, 0, n * sizeof *opt->skipped);
    }
    for (size_t i = 0; i < n; i++) opt->skipped[i] += !has_grad[i];
    return MG_OK;
}

/* The updates, for parameters and gradients of type T (double, or float when fit trains in float32): the
 * arithmetic is torch.optim's, element by element, in double, and the state stays double; a float
 * parameter takes the result rounded once. has_grad NULL means every parameter has its gradient. Each
 * updates parameters [i0, i1): disjoint ranges may run on several threads at once.
 * SGD's common case (no momentum, every gradient present) is a loop the compiler vectorises; a
 * parameter that skipped steps has its own step count (SGD's first momentum step, Adam's correction). */
#define UPDATES(T)                                                                                                  \
    static void sgd_update_##T(mg_optim *opt, double lr, T *params, const T *grads, const unsigned char *has_grad,  \
                               size_t i0, size_t i1) {                                                              \
        const mg_optim_config *c = &opt->config;                                                                    \
        double *buf = opt->state, wd = c->weight_decay;                                                             \
        if (!has_grad && !opt->skipped && c->momentum == 0.0) {                                                     \
            if (wd == 0.0)                                                                                          \
                for (size_t i = i0; i < i1; i++) params[i] = (T)(params[i] - lr * (double)grads[i]);                \
            else                                                                                                    \
                for (size_t i = i0; i < i1; i++)                                                                    \
                    params[i] = (T)(params[i] - lr * ((double)grads[i] + wd * params[i]));                          \
            return;                                                                                                 \
        }                                                                                                           \
        for (size_t i = i0; i < i1; i++) {                                                                          \
            if (has_grad && !has_grad[i]) continue;                                                                 \
            uint64_t own_steps = opt->skipped ? opt->steps - opt->skipped[i] : opt->steps;                          \
            double d = grads[i];                                                                                    \
            if (wd != 0.0) d = d + wd * params[i];                                                                  \
            if (c->momentum != 0.0) { /* the first step starts the buffer at the gradient, as torch */              \
                buf[i] = own_steps == 1 ? d : c->momentum * buf[i] + (1.0 - c->dampening) * d;                      \
                d = c->nesterov ? d + c->momentum * buf[i] : buf[i];                                                \
            }                                                                                                       \
            params[i] = (T)(params[i] - lr * d);                                                                    \
        }                                                                                                           \
    }                                                                                                               \
    static void adam_update_##T(mg_optim *opt, double lr, T *params, const T *grads, const unsigned char *has_grad, \
                                size_t i0, size_t i1) {                                                             \
        const mg_optim_config *c = &opt->config;                                                                    \
        double *m = opt->state, *v = opt->state + opt->n_params;                                                    \
        double bias1 = 1.0 - pow(c->beta1, (double)opt->steps), bias2 = 1.0 - pow(c->beta2, (double)opt->steps);    \
        double step_size = lr / bias1, bias2_sqrt = sqrt(bias2);                                                    \
        for (size_t i = i0; i < i1; i++) {                                                                          \
            if (has_grad && !has_grad[i]) continue;                                                                 \
            if (opt->skipped && opt->skipped[i]) { /* this parameter's own step count */                            \
                double own = (double)(opt->steps - opt->skipped[i]);                                                \
                step_size = lr / (1.0 - pow(c->beta1, own));                                                        \
                bias2_sqrt = sqrt(1.0 - pow(c->beta2, own));                                                        \
            } else if (opt->skipped) {                                                                              \
                step_size = lr / bias1;                                                                             \
                bias2_sqrt = sqrt(bias2);                                                                           \
            }                                                                                                       \
            double g = grads[i], p = params[i];                                                                     \
            if (c->kind == MG_OPTIM_ADAMW) p = p * (1.0 - lr * c->weight_decay);                                    \
            else if (c->weight_decay != 0.0) g = g + c->weight_decay * p;                                           \
            m[i] = m[i] + (1.0 - c->beta1) * (g - m[i]); /* torch: m.lerp_(g, 1 - beta1) */                         \
            v[i] = v[i] * c->beta2 + (1.0 - c->beta2) * g * g;                                                      \
            double denom = sqrt(v[i]) / bias2_sqrt + c->eps;                                                        \
            params[i] = (T)(p + (-step_size) * (m[i] / denom));                                                     \
        }                                                                                                           \
    }

UPDATES(double)
UPDATES(float)

static void update(mg_optim *opt, double lr, double *params, const double *grads, const unsigned char *has_grad) {
    if (opt->config.kind == MG_OPTIM_SGD) sgd_update_double(opt, lr, params, grads, has_grad, 0, opt->n_params);
    else adam_update_double(opt, lr, params, grads, has_grad, 0, opt->n_params);
}

static mg_status check_step(const mg_optim *opt, const void *params, const void *grads, size_t n_params,
                            const char *who) {
    if (!opt || !params || !grads) return mg__fail(MG_ERR_NULL, "%s: an argument is NULL", who);
    if (n_params != opt->n_params)
        return mg__fail(MG_ERR_ARG, "%s: the optimizer was made for %zu parameters, got %zu", who, opt->n_params,
                        n_params);
    if (opt->steps == UINT64_MAX) return mg__fail(MG_ERR_STATE, "%s: the step count is at its maximum", who);
    return MG_OK;
}

mg_status mg__optim_begin_step(mg_optim *opt, const void *params, const void *grads, size_t n_params) {
    mg_status status = check_step(opt, params, grads, n_params, "mg_optim_step");
    if (status == MG_OK) opt->steps++;
    return status;
}

void mg__optim_update(mg_optim *opt, double lr, void *params, const void *grads, mg_dtype dtype, size_t i0, size_t i1) {
    int sgd = opt->config.kind == MG_OPTIM_SGD;
    if (dtype == MG_FLOAT32 && sgd) sgd_update_float(opt, lr, params, grads, NULL, i0, i1);
    else if (dtype == MG_FLOAT32) adam_update_float(opt, lr, params, grads, NULL, i0, i1);
    else if (sgd) sgd_update_double(opt, lr, params, grads, NULL, i0, i1);
    else adam_update_double(opt, lr, params, grads, NULL, i0, i1);
}

mg_status mg_optim_step(mg_optim *opt, double *params, const double *grads, size_t n_params) {
    mg_status status = mg__optim_begin_step(opt, params, grads, n_params);
    if (status == MG_OK) update(opt, opt->config.lr, params, grads, NULL);
    return status;
}

mg_status mg_optim_step_masked(mg_optim *opt, double *params, const double *grads, const unsigned char *has_grad,
                               size_t n_params) {
    mg_status status = check_step(opt, params, grads, n_params, "mg_optim_step_masked");
    if (status != MG_OK) return status;
    if (!has_grad) return mg__fail(MG_ERR_NULL, "mg_optim_step_masked: has_grad is NULL");
    if ((status = count_skips(opt, has_grad)) != MG_OK) return status;
    opt->steps++;
    update(opt, opt->config.lr, params, grads, has_grad);
    return MG_OK;
}

mg_status mg_optim_step_values(mg_optim *opt, mg_value *const *params, size_t n_params) {
    if (!opt || !params) return mg__fail(MG_ERR_NULL, "mg_optim_step_values: an argument is NULL");
    if (n_params != opt->n_params)
        return mg__fail(MG_ERR_ARG, "mg_optim_step_values: the optimizer was made for %zu parameters, got %zu",
                        opt->n_params, n_params);
    double *data = opt->scratch, *grads = opt->scratch + n_params;
    for (size_t i = 0; i < n_params; i++) {
        if (!params[i]) return mg__fail(MG_ERR_NULL, "mg_optim_step_values: parameter %zu is NULL", i);
        data[i] = mg_value_data(params[i]);
        grads[i] = mg_value_grad(params[i]);
    }
    mg_status status = mg_optim_step(opt, data, grads, n_params);
    if (status == MG_OK)
        for (size_t i = 0; i < n_params; i++) mg_value_set_data(params[i], data[i]);
    return status;
}

double mg_optim_lr(const mg_optim *opt) { return opt ? opt->config.lr : NAN; }

mg_status mg_optim_set_lr(mg_optim *opt, double lr) {
    if (!opt) return mg__fail(MG_ERR_NULL, "mg_optim_set_lr: opt is NULL");
    mg_optim_config c = opt->config;
    c.lr = lr;
    return mg_optim_set_config(opt, &c);
}

mg_status mg_optim_set_config(mg_optim *opt, const mg_optim_config *config) {
    if (!opt || !config) return mg__fail(MG_ERR_NULL, "mg_optim_set_config: an argument is NULL");
    if (config->kind != opt->config.kind)
        return mg__fail(MG_ERR_ARG, "the optimizer's kind cannot change (from %d to %d)", (int)opt->config.kind,
                        (int)config->kind);
    mg_status status = check_config(config, "");
    if (status == MG_OK) opt->config = *config;
    return status;
}

const mg_optim_config *mg_optim_get_config(const mg_optim *opt) { return opt ? &opt->config : NULL; }
uint64_t mg_optim_steps(const mg_optim *opt) { return opt ? opt->steps : 0; }
void mg_optim_set_steps(mg_optim *opt, uint64_t steps) {
    if (opt) opt->steps = steps;
}
size_t mg_optim_num_params(const mg_optim *opt) { return opt ? opt->n_params : 0; }
size_t mg_optim_state_size(const mg_optim *opt) { return opt ? opt->state_size : 0; }
double *mg_optim_state(mg_optim *opt) { return opt ? opt->state : NULL; }
const uint64_t *mg_optim_skipped(const mg_optim *opt) { return opt ? opt->skipped : NULL; }

/* Buffers must be finite, Adam's second moments >= 0 (their square root is taken); skipped counts, when
 * given, at most steps. Nothing changes unless all of it is valid. */
/* what mg_optim_set_state accepts: n state doubles (finite; Adam's second moments >= 0), skips <= steps */
static mg_status check_state(const mg_optim *opt, uint64_t steps, const double *state, size_t n,
                             const uint64_t *skipped) {
    if (n != opt->state_size)
        return mg__fail(MG_ERR_ARG, "optimizer state has %zu numbers, this optimizer needs %zu", n, opt->state_size);
    size_t second = opt->config.kind == MG_OPTIM_SGD ? n : opt->n_params;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(state[i]) || (i >= second && state[i] < 0.0))
            return mg__fail(MG_ERR_ARG, "optimizer state[%zu] is %g: buffers must be finite%s", i, state[i],
                            opt->config.kind == MG_OPTIM_SGD ? "" : " (and second moments >= 0)");
    for (size_t i = 0; skipped && i < opt->n_params; i++)
        if (skipped[i] > steps)
            return mg__fail(MG_ERR_ARG, "optimizer skipped[%zu] is %llu, more than the %llu steps taken", i,
                            (unsigned long long)skipped[i], (unsigned long long)steps);
    return MG_OK;
}

mg_status mg_optim_check_state(const mg_optim *opt) {
    if (!opt) return mg__fail(MG_ERR_NULL, "mg_optim_check_state: the optimizer is NULL");
    return check_state(opt, opt->steps, opt->state, opt->state_size, opt->skipped);
}

mg_status mg_optim_set_state(mg_optim *opt, uint64_t steps, const double *state, size_t n, const uint64_t *skipped) {
    if (!opt || (!state && n)) return mg__fail(MG_ERR_NULL, "mg_optim_set_state: an argument is NULL");
    mg_status status = check_state(opt, steps, state, n, skipped);
    if (status != MG_OK) return status;
    if (skipped && !opt->skipped) {
        if (!(opt->skipped = mg__alloc(skipped_bytes(opt->n_params))))
            return mg__fail(MG_ERR_NOMEM, "mg_optim_set_state: out of memory");
    } else if (!skipped && opt->skipped) {
        mg__free(opt->skipped, skipped_bytes(opt->n_params));
        opt->skipped = NULL;
    }
    if (skipped) memcpy(opt->skipped, skipped, opt->n_params * sizeof *skipped);
    if (state != opt->state) memcpy(opt->state, state, n * sizeof *state); /* the loader fills it in place */
    opt->steps = steps;
    return MG_OK;
}
