/* floor_moons: the C floor for micrograd's moons demo.
 *
 * The demo's network and training step done with plain arrays and loops, no graph at all: the fastest a
 * training step of this model can reasonably be in C, to compare the engine (and the Python package)
 * against. The model is micrograd's MLP(2, [16, 16, 1]): ReLU on the hidden layers, a linear output,
 * weights uniform in [-1, 1), biases 0. The loss is the demo's: mean(relu(1 - y * score)) + 1e-4 * sum(p^2),
 * then an SGD step with the demo's learning rate 1.0 - 0.9 * k / 100. The data are 100 points of two
 * interleaved half-moons with Gaussian noise 0.1, as sklearn's make_moons, from a fixed generator.
 *
 * Laid out as llm.c does: layers as forward/backward pairs side by side (outputs first, then inputs, then
 * sizes; backward accumulates into d<name>), sizes in tables, one allocation carved into named parts. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N = 100, IN = 2, H1 = 16, H2 = 16, OUT = 1 }; /* samples, then the layer widths */
enum { STEPS = 100, TRAININGS = 20 };                /* the demo's 100 steps, run 20 times for timing */
static const double ALPHA = 1e-4;                    /* L2 regularization */
static const double PI = 3.14159265358979323846;

/* ---- layers ---- */

/* out (N, OC) = inp (N, C) @ weight^T + bias; weight is (OC, C), one row per neuron. Each neuron adds its
 * bias, then w[i] * x[i] in order, as micrograd's Neuron sums. */
static void linear_forward(double *out, const double *inp, const double *weight, const double *bias, int n, int C,
                           int OC) {
    for (int s = 0; s < n; s++) {
        const double *x = inp + s * C;
        for (int o = 0; o < OC; o++) {
            const double *w = weight + o * C;
            double acc = bias[o];
            for (int i = 0; i < C; i++) acc += w[i] * x[i];
            out[s * OC + o] = acc;
        }
    }
}

/* dinp (N, C) (may be NULL: the data need no gradient), dweight (OC, C), dbias (OC) += from dout (N, OC) */
static void linear_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, int n, int C, int OC) {
    for (int s = 0; s < n; s++) {
        const double *x = inp + s * C;
        for (int o = 0; o < OC; o++) {
            double d = dout[s * OC + o];
            const double *w = weight + o * C;
            double *dw = dweight + o * C;
            for (int i = 0; i < C; i++) dw[i] += d * x[i];
            if (dinp)
                for (int i = 0; i < C; i++) dinp[s * C + i] += d * w[i];
            dbias[o] += d;
        }
    }
}

/* out (count) = max(inp, 0) */
static void relu_forward(double *out, const double *inp, int count) {
    for (int i = 0; i < count; i++) out[i] = inp[i] > 0.0 ? inp[i] : 0.0;
}

/* dinp (count) += dout where inp > 0 */
static void relu_backward(double *dinp, const double *inp, const double *dout, int count) {
    for (int i = 0; i < count; i++) dinp[i] += inp[i] > 0.0 ? dout[i] : 0.0;
}

/* mean over n of relu(1 - y * score); *correct = samples with sign(score) == y */
static double hinge_forward(const double *score, const double *y, int n, int *correct) {
    double sum = 0.0;
    *correct = 0;
    for (int s = 0; s < n; s++) {
        double margin = 1.0 - y[s] * score[s];
        sum += margin > 0.0 ? margin : 0.0;
        *correct += (y[s] > 0.0) == (score[s] > 0.0);
    }
    return sum / n;
}

/* dscore (n) += d(mean hinge)/d(score) */
static void hinge_backward(double *dscore, const double *score, const double *y, int n) {
    for (int s = 0; s < n; s++)
        if (1.0 - y[s] * score[s] > 0.0) dscore[s] += -y[s] / n;
}

/* ---- the model: sizes in tables, one allocation carved into named parts ---- */

typedef struct {
    double *w1, *b1, *w2, *b2, *w3, *b3;
} mlp_params;
enum { NUM_PARAM_TENSORS = 6, NUM_PARAMS = H1 * IN + H1 + H2 * H1 + H2 + OUT * H2 + OUT };
static const size_t PARAM_SIZES[NUM_PARAM_TENSORS] = {H1 * IN, H1, H2 * H1, H2, OUT * H2, OUT};

typedef struct {
    double *h1, *a1, *h2, *a2, *score; /* pre-activations h, ReLU outputs a, (N, width) each */
} mlp_acts;
enum { NUM_ACT_TENSORS = 5 };
static const size_t ACT_SIZES[NUM_ACT_TENSORS] = {N * H1, N * H1, N * H2, N * H2, N * OUT};

typedef struct {
    mlp_params params, grads;
    mlp_acts acts, dacts;
    double *x, *y;                        /* the data: (N, IN) points and N labels of -1/+1 */
    double *memory;                       /* the one allocation, carved into all of the above */
    double *params_memory, *grads_memory; /* NUM_PARAMS each: for L2, zeroing and the SGD step */
    double *dacts_memory;
} mlp;

static size_t total(const size_t *sizes, int count) {
    size_t sum = 0;
    for (int i = 0; i < count; i++) sum += sizes[i];
    return sum;
}

static void point_params(mlp_params *p, double **cursor) {
    double **parts[NUM_PARAM_TENSORS] = {&p->w1, &p->b1, &p->w2, &p->b2, &p->w3, &p->b3};
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        *parts[i] = *cursor;
        *cursor += PARAM_SIZES[i];
    }
}

static void point_acts(mlp_acts *a, double **cursor) {
    double **parts[NUM_ACT_TENSORS] = {&a->h1, &a->a1, &a->h2, &a->a2, &a->score};
    for (int i = 0; i < NUM_ACT_TENSORS; i++) {
        *parts[i] = *cursor;
        *cursor += ACT_SIZES[i];
    }
}

static int mlp_alloc(mlp *m) {
    if (total(PARAM_SIZES, NUM_PARAM_TENSORS) != NUM_PARAMS) return 0; /* the table and the count agree */
    size_t acts = total(ACT_SIZES, NUM_ACT_TENSORS);
    m->memory = calloc(2 * NUM_PARAMS + 2 * acts + N * IN + N, sizeof(double));
    if (!m->memory) return 0;
    double *cursor = m->memory;
    m->params_memory = cursor;
    point_params(&m->params, &cursor);
    m->grads_memory = cursor;
    point_params(&m->grads, &cursor);
    point_acts(&m->acts, &cursor);
    m->dacts_memory = cursor;
    point_acts(&m->dacts, &cursor);
    m->x = cursor;
    m->y = cursor + N * IN;
    return 1;
}

/* ---- forward and backward, side by side ---- */

/* Returns the loss (data + L2); *correct as hinge_forward. */
static double mlp_forward(mlp *m, int *correct) {
    mlp_params *p = &m->params;
    mlp_acts *a = &m->acts;
    linear_forward(a->h1, m->x, p->w1, p->b1, N, IN, H1);
    relu_forward(a->a1, a->h1, N * H1);
    linear_forward(a->h2, a->a1, p->w2, p->b2, N, H1, H2);
    relu_forward(a->a2, a->h2, N * H2);
    linear_forward(a->score, a->a2, p->w3, p->b3, N, H2, OUT);
    double data_loss = hinge_forward(a->score, m->y, N, correct);
    double reg = 0.0;
    for (int i = 0; i < NUM_PARAMS; i++) reg += m->params_memory[i] * m->params_memory[i];
    return data_loss + ALPHA * reg;
}

/* Gradients of the loss mlp_forward returned, into m->grads (zeroed first). */
static void mlp_backward(mlp *m) {
    mlp_params *p = &m->params, *d = &m->grads;
    mlp_acts *a = &m->acts, *da = &m->dacts;
    memset(m->grads_memory, 0, NUM_PARAMS * sizeof(double));
    memset(m->dacts_memory, 0, total(ACT_SIZES, NUM_ACT_TENSORS) * sizeof(double));
    hinge_backward(da->score, a->score, m->y, N);
    linear_backward(da->a2, d->w3, d->b3, da->score, a->a2, p->w3, N, H2, OUT);
    relu_backward(da->h2, a->h2, da->a2, N * H2);
    linear_backward(da->a1, d->w2, d->b2, da->h2, a->a1, p->w2, N, H1, H2);
    relu_backward(da->h1, a->h1, da->a1, N * H1);
    linear_backward(NULL, d->w1, d->b1, da->h1, m->x, p->w1, N, IN, H1);
    for (int i = 0; i < NUM_PARAMS; i++) m->grads_memory[i] += 2.0 * ALPHA * m->params_memory[i];
}

static void sgd_step(mlp *m, double lr) {
    for (int i = 0; i < NUM_PARAMS; i++) m->params_memory[i] -= lr * m->grads_memory[i];
}

/* ---- data, initialization, timing ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static double uniform01(void) { /* [0, 1), 53 bits */
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}

static double gaussian(void) { /* Box-Muller */
    double u = 1.0 - uniform01(), v = uniform01();
    return sqrt(-2.0 * log(u)) * cos(2.0 * PI * v);
}

/* make_moons(100, noise=0.1): an upper half-circle labelled -1 and a lower one, shifted, labelled +1 */
static void make_moons(double *x, double *y) {
    for (int s = 0; s < N; s++) {
        int inner = s >= N / 2;
        double t = PI * (double)(inner ? s - N / 2 : s) / (N / 2 - 1);
        x[s * IN + 0] = (inner ? 1.0 - cos(t) : cos(t)) + 0.1 * gaussian();
        x[s * IN + 1] = (inner ? 0.5 - sin(t) : sin(t)) + 0.1 * gaussian();
        y[s] = inner ? 1.0 : -1.0;
    }
}

/* micrograd's initialization: weights uniform in [-1, 1), biases 0 */
static void init_params(mlp *m, double *saved) {
    mlp_params *p = &m->params;
    double *weights[] = {p->w1, p->w2, p->w3}, *biases[] = {p->b1, p->b2, p->b3};
    size_t weight_sizes[] = {H1 * IN, H2 * H1, OUT * H2}, bias_sizes[] = {H1, H2, OUT};
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < weight_sizes[l]; i++) weights[l][i] = 2.0 * uniform01() - 1.0;
        memset(biases[l], 0, bias_sizes[l] * sizeof(double));
    }
    memcpy(saved, m->params_memory, NUM_PARAMS * sizeof(double));
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *samples, int n) {
    qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

int main(void) {
    mlp m;
    if (!mlp_alloc(&m)) {
        fprintf(stderr, "floor_moons: out of memory\n");
        return 1;
    }
    double initial[NUM_PARAMS];
    make_moons(m.x, m.y);
    init_params(&m, initial);

    /* the same 100-step training TRAININGS times from the same start; the first is a warm-up */
    static double step_us[STEPS * TRAININGS], forward_us[STEPS * TRAININGS];
    double first_loss = 0.0, final_loss = 0.0;
    int final_correct = 0, timed = 0;
    for (int run = -1; run < TRAININGS; run++) {
        memcpy(m.params_memory, initial, NUM_PARAMS * sizeof(double));
        for (int k = 0; k < STEPS; k++) {
            int correct;
            double t0 = now_ns();
            double loss = mlp_forward(&m, &correct);
            double t1 = now_ns();
            mlp_backward(&m);
            sgd_step(&m, 1.0 - 0.9 * k / STEPS);
            double t2 = now_ns();
            if (k == 0) first_loss = loss;
            final_loss = loss;
            final_correct = correct;
            if (run < 0) continue;
            step_us[timed] = (t2 - t0) / 1e3;
            forward_us[timed] = (t1 - t0) / 1e3;
            timed++;
        }
    }
    free(m.memory);

    double step = median(step_us, timed), forward = median(forward_us, timed);
    printf("## C floor: micrograd's moons MLP(2, [16, 16, 1]), %d parameters, %d samples, plain arrays\n\n", NUM_PARAMS,
           N);
    printf("| measure | value |\n| --- | ---: |\n");
    printf("| training step (forward + backward + SGD), median | %.2f µs |\n", step);
    printf("| of which forward and loss | %.2f µs |\n", forward);
    printf("| steps timed | %d |\n", timed);
    printf("| loss at step 1 / step %d | %.4f / %.4f |\n", STEPS, first_loss, final_loss);
    printf("| accuracy at step %d | %d%% |\n", STEPS, final_correct * 100 / N);
    return 0;
}
