/* loss.c: the losses fit trains with, value and gradient side by side, following torch.nn.functional. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

static const char *const loss_names[MG_LOSS_COUNT] = {
    [MG_LOSS_SVM] = "svm", [MG_LOSS_MSE] = "mse", [MG_LOSS_BCE] = "bce", [MG_LOSS_CROSS_ENTROPY] = "cross_entropy",
};

const char *mg_loss_name(mg_loss loss) { return (unsigned)loss < MG_LOSS_COUNT ? loss_names[loss] : "?"; }

mg_status mg_loss_from_name(const char *name, mg_loss *out) {
    MG__RETURN_FROM_NAME("loss", loss_names, MG_LOSS_COUNT, name, out);
}

/* log(1 + exp(x)) without overflow */
static double softplus(double x) { return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)); }


mg_status mg__loss_chunk(mg_loss loss, const double *scores, size_t stride, const double *targets,
                         const size_t *rows, size_t count, size_t k, double scale, double *sum,
                         double *dscores, size_t *correct) {
    for (size_t s = 0; s < count; s++) {
        size_t row = rows ? rows[s] : s;
        switch (loss) {
        case MG_LOSS_SVM: { /* micrograd: relu(1 + -y * score); gradient only where the margin is positive */
            double y = targets[row], score = scores[s];
            if (y != 1.0 && y != -1.0)
                return mg__fail(MG_ERR_ARG, "svm loss: label %zu is %g, expected -1 or 1%s", row, y,
                                y == 0.0 ? " (for 0/1 labels, use the bce loss)" : "");
            double margin = 1.0 + -y * score;
            *sum += margin < 0.0 ? 0.0 : margin;
            if (dscores) dscores[s] = margin > 0.0 ? -y * scale : 0.0;
            *correct += (y > 0.0) == (score > 0.0);
            break;
        }
        case MG_LOSS_MSE:
            for (size_t j = 0; j < k; j++) {
                double diff = scores[j * stride + s] - targets[row * k + j];
                *sum += diff * diff;
                if (dscores) dscores[j * stride + s] = 2.0 * diff * scale;
            }
            break;
        case MG_LOSS_BCE: { /* on logits: softplus(x) - y * x */
            double y = targets[row], x = scores[s];
            if (y != 0.0 && y != 1.0)
                return mg__fail(MG_ERR_ARG, "bce loss: label %zu is %g, expected 0 or 1", row, y);
            *sum += softplus(x) - y * x;
            if (dscores) dscores[s] = (mg__sigmoid(x) - y) * scale;
            *correct += (y > 0.5) == (x > 0.0);
            break;
        }
        case MG_LOSS_CROSS_ENTROPY: { /* log-sum-exp minus the true class's logit */
            double label = targets[row];
            if (!(label >= 0.0 && label < (double)k && label == floor(label)))
                return mg__fail(MG_ERR_ARG, "cross_entropy loss: label %zu is %g, expected a class 0..%zu", row,
                                label, k - 1);
            size_t y = (size_t)label, best = 0;
            double max = scores[s];
            for (size_t j = 1; j < k; j++)
                if (scores[j * stride + s] > max) max = scores[j * stride + s], best = j;
            double total = 0.0;
            for (size_t j = 0; j < k; j++) total += exp(scores[j * stride + s] - max);
            double lse = max + log(total);
            *sum += lse - scores[y * stride + s];
            if (dscores)
                for (size_t j = 0; j < k; j++)
                    dscores[j * stride + s] = (exp(scores[j * stride + s] - lse) - (j == y)) * scale;
            *correct += best == y;
            break;
        }
        default: return mg__fail(MG_ERR_ARG, "unknown loss %d", (int)loss);
        }
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
    /* the chunk routine takes scores feature-major: for k == 1 that is the same; else transpose */
    double *t_scores = NULL, *t_d = NULL;
    const double *cols = scores;
    if (k > 1) {
        t_scores = mg__alloc(2 * n * k * sizeof *t_scores);
        if (!t_scores) return mg__fail(MG_ERR_NOMEM, "mg_loss_compute: out of memory");
        t_d = t_scores + n * k;
        for (size_t s = 0; s < n; s++)
            for (size_t j = 0; j < k; j++) t_scores[j * n + s] = scores[s * k + j];
        cols = t_scores;
    }
    double scale = loss == MG_LOSS_MSE ? 1.0 / (double)(n * k) : 1.0 / (double)n, sum = 0.0;
    size_t right = 0;
    mg_status status = mg__loss_chunk(loss, cols, n, targets, NULL, n, k, scale, &sum,
                                      dscores ? (k > 1 ? t_d : dscores) : NULL, &right);
    if (status == MG_OK) {
        *loss_out = sum * scale; /* micrograd: sum(losses) * (1.0 / len(losses)) */
        if (correct) *correct = right;
        if (dscores && k > 1)
            for (size_t s = 0; s < n; s++)
                for (size_t j = 0; j < k; j++) dscores[s * k + j] = t_d[j * n + s];
    }
    mg__free(t_scores, 2 * n * k * sizeof *t_scores);
    return status;
}
