/* micrograd's moons demo in plain C: the same data, the same initial weights and the same training as
 * micrograd's demo.ipynb, so it prints the same loss curve (step 1: loss 0.8958, 50%; step 100: 0.0110, 100%).
 *
 * The data is scikit-learn's make_moons(100, noise=0.1) after np.random.seed(1337), and the weights are
 * what Python's random.uniform(-1, 1) draws after random.seed(1337): both generators are the Mersenne
 * Twister, reproduced in micrograd_demo.h. The training is one call: mg_mlp_fit. */
#include <micrograd.h>
#include <stdio.h>

#include "micrograd_demo.h"

static int print_epoch(void *user, size_t epoch, double loss, double accuracy) {
    (void)user;
    if (epoch % 10 == 0 || epoch == 99) printf("step %3zu loss %.6f, accuracy %.0f%%\n", epoch, loss, accuracy * 100.0);
    return 0;
}

int main(void) {
    enum { N = 100 };
    double x[2 * N], y[N];
    make_moons(N, 0.1, 1337, x, y);

    size_t sizes[] = {16, 16, 1};
    mg_mlp *model = mg_mlp_new(2, 3, sizes, NULL); /* micrograd's MLP(2, [16, 16, 1]) */
    mg_optim_config sgd = mg_optim_defaults(MG_OPTIM_SGD);
    sgd.lr = 1.0;
    mg_optim *opt = model ? mg_optim_new(&sgd, mg_mlp_num_params(model)) : NULL;
    if (!opt) {
        fprintf(stderr, "error: %s\n", mg_last_error());
        mg_mlp_free(model);
        return 1;
    }

    micrograd_init(model, 1337); /* micrograd's weights after random.seed(1337) */

    /* the demo: full batch, SVM loss + 1e-4 L2, SGD with lr 1.0 - 0.9 * k / 100 */
    mg_fit_options fit = mg_fit_defaults();
    fit.loss = MG_LOSS_SVM;
    fit.l2 = 1e-4;
    fit.epochs = 100;
    fit.batch_size = 0;
    fit.shuffle = 0;
    fit.schedule = MG_SCHEDULE_LINEAR;
    fit.lr_end = 0.1;
    fit.on_epoch = print_epoch;
    mg_status status = mg_mlp_fit(model, opt, x, y, N, &fit);
    if (status != MG_OK) fprintf(stderr, "error: %s\n", mg_last_error());
    mg_optim_free(opt);
    mg_mlp_free(model);
    return status == MG_OK ? 0 : 1;
}
