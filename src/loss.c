/* loss.c: the losses fit trains with, value and gradient side by side, following torch.nn.functional. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

static const char *const loss_names[MG_LOSS_COUNT] = {
    [MG_LOSS_SVM] = "svm",
    [MG_LOSS_MSE] = "mse",
    [MG_LOSS_BCE] = "bce",
    [MG_LOSS_CROSS_ENTROPY] = "cross_entropy",
};

const char *mg_loss_name(mg_loss loss) { return (unsigned)loss < MG_LOSS_COUNT ? loss_names[loss] : "?"; }

mg_status mg_loss_from_name(const char *name, mg_loss *out) {
    MG__RETURN_FROM_NAME("loss", loss_names, MG_LOSS_COUNT, name, out);
}

/* log(1 + exp(x)) without overflow */
static double softplus(double x) { return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* One sample's loss into *value: scores and dscores (may be NULL: no gradient) are its k; *right counts it
 * when classified right. MG_ERR_ARG names a target out of range (row: the sample's row in the targets). */
static mg_status sample_loss(mg_loss loss, const double *scores, const double *targets, size_t row, size_t k,
                             double scale, double *value, double *dscores, size_t *right) {
    switch (loss) {
    case MG_LOSS_SVM: { /* micrograd: relu(1 + -y * score); gradient only where the margin is positive */
        double y = targets[row], score = scores[0];
        if (y != 1.0 && y != -1.0)
            return mg__fail(MG_ERR_ARG, "svm loss: label %zu is %g, expected -1 or 1%s", row, y,
                            y == 0.0 ? " (for 0/1 labels, use the bce loss)" : "");
        double margin = 1.0 + -y * score;
        *value = margin < 0.0 ? 0.0 : margin;
        if (dscores) dscores[0] = margin > 0.0 ? -y * scale : 0.0;
        *right += (y > 0.0) == (score > 0.0);
        return MG_OK;
    }
    case MG_LOSS_MSE:
        *value = 0.0;
        for (size_t j = 0; j < k; j++) {
            double diff = scores[j] - targets[row * k + j];
            *value += diff * diff;
            if (dscores) dscores[j] = 2.0 * diff * scale;
        }
        return MG_OK;
    case MG_LOSS_BCE: { /* on logits: softplus(x) - y * x */
        double y = targets[row], x = scores[0];
        if (y != 0.0 && y != 1.0) return mg__fail(MG_ERR_ARG, "bce loss: label %zu is %g, expected 0 or 1", row, y);
        *value = softplus(x) - y * x;
        if (dscores) dscores[0] = (mg__sigmoid(x) - y) * scale;
        *right += (y > 0.5) == (x > 0.0);
        return MG_OK;
    }
    case MG_LOSS_CROSS_ENTROPY: { /* log-sum-exp minus the true class's logit; the gradient softmax - one-hot */
        double label = targets[row];
        if (!(label >= 0.0 && label < (double)k && label == floor(label)))
            return mg__fail(MG_ERR_ARG, "cross_entropy loss: label %zu is %g, expected a class 0..%zu", row, label,
                            k - 1);
        size_t y = (size_t)label, best = 0;
        double max = scores[0], total = 0.0;
        for (size_t j = 1; j < k; j++)
            if (scores[j] > max) max = scores[j], best = j;
        for (size_t j = 0; j < k; j++) { /* each exp once: kept in dscores for the gradient */
            double e = exp(scores[j] - max);
            total += e;
            if (dscores) dscores[j] = e;
        }
        *value = max + log(total) - scores[y];
        for (size_t j = 0; dscores && j < k; j++) dscores[j] = (dscores[j] / total - (j == y)) * scale;
        *right += best == y;
        return MG_OK;
    }
    default: return mg__fail(MG_ERR_ARG, "unknown loss %d", (int)loss);
    }
}

mg_status mg__loss_chunk(mg_loss loss, const double *scores, const double *targets, const size_t *rows, size_t count,
                         size_t k, double scale, double *losses, double *dscores, size_t *correct) {
    for (size_t s = 0; s < count; s++) {
        mg_status status = sample_loss(loss, scores + s * k, targets, rows ? rows[s] : s, k, scale, &losses[s],
                                       dscores ? dscores + s * k : NULL, correct);
        if (status != MG_OK) return status;
    }
    return MG_OK;
}

mg_status mg_loss_compute(mg_loss loss, const double *scores, const double *targets, size_t n, size_t k,
                          double *loss_out, double *dscores, size_t *correct) {
    if (!scores || !targets || !loss_out) return mg__fail(MG_ERR_NULL, "mg_loss_compute: an argument is NULL");
    if ((unsigned)loss >= MG_LOSS_COUNT) return mg__fail(MG_ERR_ARG, "mg_loss_compute: unknown loss %d", (int)loss);
    if (n == 0 || k == 0) return mg__fail(MG_ERR_ARG, "mg_loss_compute: no scores (n = %zu, k = %zu)", n, k);
    if ((loss == MG_LOSS_SVM || loss == MG_LOSS_BCE) && k != 1)
        return mg__fail(MG_ERR_ARG, "%s loss takes one score per sample, got %zu", mg_loss_name(loss), k);
    if (loss == MG_LOSS_CROSS_ENTROPY && k < 2)
        return mg__fail(MG_ERR_ARG, "cross_entropy loss needs at least 2 classes, got %zu", k);
    double scale = loss == MG_LOSS_MSE ? 1.0 / (double)(n * k) : 1.0 / (double)n, sum = 0.0, value;
    size_t right = 0;
    for (size_t s = 0; s < n; s++) {
        mg_status status = sample_loss(loss, scores + s * k, targets, s, k, scale, &value,
                                       dscores ? dscores + s * k : NULL, &right);
        if (status != MG_OK) return status;
        sum += value;
    }
    *loss_out = sum * scale; /* micrograd: sum(losses) * (1.0 / len(losses)) */
    if (correct) *correct = right;
    return MG_OK;
}
