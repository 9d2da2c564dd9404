/* optim.c: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW, as torch.optim updates. */
#include "nn_internal.h"
#include "value_internal.h" /* mg_optim_step_values reads the nodes directly */

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
};

mg_optim_config mg_optim_defaults(mg_optim_kind kind) {
    mg_optim_config c = {.kind = kind, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (kind == MG_OPTIM_ADAMW) c.weight_decay = 1e-2;
    return c;
}

static const char *check_config(const mg_optim_config *c) {
    if ((unsigned)c->kind > MG_OPTIM_ADAMW) return "unknown optimizer kind";
    if (!(c->lr >= 0.0) || !isfinite(c->lr)) return "lr must be a finite number >= 0";
    if (!(c->weight_decay >= 0.0) || !isfinite(c->weight_decay)) return "weight_decay must be >= 0";
    if (c->kind == MG_OPTIM_SGD) {
        if (!(c->momentum >= 0.0) || !isfinite(c->momentum)) return "momentum must be >= 0";
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return "Nesterov momentum requires a momentum and zero dampening";
    } else {
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0) || !(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return "betas must be in [0, 1)";
        if (!(c->eps >= 0.0)) return "eps must be >= 0";
    }
    return NULL;
}

mg_optim *mg_optim_new(const mg_optim_config *config, size_t n_params) {
    if (!config) return mg__fail_null("mg_optim_new");
    const char *problem = check_config(config);
    if (problem) {
        mg__fail(MG_ERR_ARG, "mg_optim_new: %s", problem);
        return NULL;
    }
    size_t per_param = config->kind == MG_OPTIM_SGD ? 1 : 2;
    if (n_params > SIZE_MAX / sizeof(double) / (per_param + 2)) {
        mg__fail(MG_ERR_ARG, "mg_optim_new: too many parameters (%zu)", n_params);
        return NULL;
    }
    mg_optim *opt = mg__alloc(sizeof *opt + (per_param + 2) * n_params * sizeof(double));
    if (!opt) {
        mg__fail(MG_ERR_NOMEM, "mg_optim_new: out of memory for %zu parameters", n_params);
        return NULL;
    }
    opt->config = *config;
    opt->n_params = n_params;
    opt->steps = 0;
    opt->state = (double *)(opt + 1);
    opt->state_size = per_param * n_params;
    opt->scratch = opt->state + opt->state_size;
    memset(opt->state, 0, (per_param + 2) * n_params * sizeof(double));
    return opt;
}

void mg_optim_free(mg_optim *opt) {
    if (!opt) return;
    size_t per_param = opt->config.kind == MG_OPTIM_SGD ? 1 : 2;
    mg__free(opt, sizeof *opt + (per_param + 2) * opt->n_params * sizeof(double));
}

mg_status mg_optim_step(mg_optim *opt, double *params, const double *grads, size_t n_params) {
    if (!opt || !params || !grads) return mg__fail(MG_ERR_NULL, "mg_optim_step: an argument is NULL");
    if (n_params != opt->n_params)
        return mg__fail(MG_ERR_ARG, "mg_optim_step: the optimizer was made for %zu parameters, got %zu",
                        opt->n_params, n_params);
    const mg_optim_config *c = &opt->config;
    opt->steps++;
    if (c->kind == MG_OPTIM_SGD) {
        double *buf = opt->state;
        for (size_t i = 0; i < n_params; i++) {
            double d = grads[i];
            if (c->weight_decay != 0.0) d = d + c->weight_decay * params[i];
            if (c->momentum != 0.0) {
                /* the first step starts the buffer at the gradient itself, as torch does */
                buf[i] = opt->steps == 1 ? d : c->momentum * buf[i] + (1.0 - c->dampening) * d;
                d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
            }
            params[i] = params[i] - c->lr * d;
        }
        return MG_OK;
    }
    double *m = opt->state, *v = opt->state + n_params;
    double bias1 = 1.0 - pow(c->beta1, (double)opt->steps), bias2 = 1.0 - pow(c->beta2, (double)opt->steps);
    double step_size = c->lr / bias1, bias2_sqrt = sqrt(bias2);
    for (size_t i = 0; i < n_params; i++) {
        double g = grads[i];
        if (c->kind == MG_OPTIM_ADAMW) params[i] = params[i] * (1.0 - c->lr * c->weight_decay);
        else if (c->weight_decay != 0.0) g = g + c->weight_decay * params[i];
        m[i] = m[i] + (1.0 - c->beta1) * (g - m[i]); /* torch: m.lerp_(g, 1 - beta1) */
        v[i] = v[i] * c->beta2 + (1.0 - c->beta2) * g * g;
        double denom = sqrt(v[i]) / bias2_sqrt + c->eps;
        params[i] = params[i] + (-step_size) * (m[i] / denom);
    }
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
        data[i] = params[i]->data;
        grads[i] = params[i]->grad;
    }
    mg_status status = mg_optim_step(opt, data, grads, n_params);
    if (status == MG_OK)
        for (size_t i = 0; i < n_params; i++) params[i]->data = data[i];
    return status;
}

double mg_optim_lr(const mg_optim *opt) { return opt ? opt->config.lr : NAN; }
void mg_optim_set_lr(mg_optim *opt, double lr) {
    if (opt) opt->config.lr = lr;
}
const mg_optim_config *mg_optim_get_config(const mg_optim *opt) { return opt ? &opt->config : NULL; }
uint64_t mg_optim_steps(const mg_optim *opt) { return opt ? opt->steps : 0; }
void mg_optim_set_steps(mg_optim *opt, uint64_t steps) {
    if (opt) opt->steps = steps;
}
size_t mg_optim_state_size(const mg_optim *opt) { return opt ? opt->state_size : 0; }
double *mg_optim_state(mg_optim *opt) { return opt ? opt->state : NULL; }
