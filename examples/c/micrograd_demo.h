/* micrograd_demo.h: the data and initial weights of micrograd's demo.ipynb, in plain C.
 *
 * The data is scikit-learn's make_moons(n, noise) after np.random.seed(seed), and the weights are what
 * Python's random.uniform(-1, 1) draws after random.seed(seed) for micrograd's MLP: both generators are
 * the Mersenne Twister (MT19937), reproduced here in a few lines. examples/c/moons.c trains on them; the
 * tests check that training gives micrograd's loss curve. */
#ifndef MICROGRAD_DEMO_H
#define MICROGRAD_DEMO_H

#include <math.h>
#include <micrograd.h>
#include <stdint.h>

static const double PI = 3.14159265358979323846;

/* ---- the Mersenne Twister (MT19937) that NumPy and Python share ---- */

typedef struct {
    uint32_t state[624];
    int index;
} mt19937;

static inline void mt_seed(mt19937 *mt, uint32_t seed) { /* NumPy's seeding of an int */
    mt->state[0] = seed;
    for (int i = 1; i < 624; i++)
        mt->state[i] = 1812433253u * (mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) + (uint32_t)i;
    mt->index = 624;
}

static inline void mt_seed_array(mt19937 *mt, const uint32_t *key, int length) { /* Python's random.seed(int) */
    mt_seed(mt, 19650218u);
    int i = 1, j = 0;
    for (int k = length > 624 ? length : 624; k > 0; k--) {
        mt->state[i] = (mt->state[i] ^ ((mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) * 1664525u)) + key[j] +
                       (uint32_t)j;
        if (++i >= 624) mt->state[0] = mt->state[623], i = 1;
        if (++j >= length) j = 0;
    }
    for (int k = 623; k > 0; k--) {
        mt->state[i] = (mt->state[i] ^ ((mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        if (++i >= 624) mt->state[0] = mt->state[623], i = 1;
    }
    mt->state[0] = 0x80000000u;
}

static inline uint32_t mt_next(mt19937 *mt) {
    if (mt->index >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (mt->state[i] & 0x80000000u) | (mt->state[(i + 1) % 624] & 0x7fffffffu);
            mt->state[i] = mt->state[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0u);
        }
        mt->index = 0;
    }
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

static inline double mt_random(mt19937 *mt) { /* a double in [0, 1) from 53 random bits, as both libraries do */
    uint32_t a = mt_next(mt) >> 5, b = mt_next(mt) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* ---- scikit-learn's make_moons on NumPy's legacy generator ---- */

static inline double mt_gauss(mt19937 *mt, int *has_spare, double *spare) { /* NumPy's legacy polar method */
    if (*has_spare) {
        *has_spare = 0;
        return *spare;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * mt_random(mt) - 1.0;
        x2 = 2.0 * mt_random(mt) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    *spare = f * x1;
    *has_spare = 1;
    return f * x2;
}

static inline void make_moons(int n, double noise, uint32_t seed, double *x, double *y) {
    mt19937 mt;
    mt_seed(&mt, seed);
    int n_out = n / 2, n_in = n - n_out, order[1024];
    double px[1024][2], py[1024];
    for (int i = 0; i < n_out; i++) {
        double t = i == n_out - 1 ? PI : i * (PI / (n_out - 1));
        px[i][0] = cos(t), px[i][1] = sin(t), py[i] = 0;
    }
    for (int i = 0; i < n_in; i++) {
        double t = i == n_in - 1 ? PI : i * (PI / (n_in - 1));
        px[n_out + i][0] = 1.0 - cos(t), px[n_out + i][1] = 1.0 - sin(t) - 0.5, py[n_out + i] = 1;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) { /* NumPy's legacy shuffle: masked rejection sampling */
        uint32_t mask = (uint32_t)i, j;
        for (int s = 1; s < 32; s <<= 1) mask |= mask >> s;
        while ((j = mt_next(&mt) & mask) > (uint32_t)i) {}
        int swap = order[i];
        order[i] = order[j], order[j] = swap;
    }
    int has_spare = 0;
    double spare = 0;
    for (int i = 0; i < n; i++) {
        x[2 * i] = px[order[i]][0];
        x[2 * i + 1] = px[order[i]][1];
        y[i] = 2.0 * py[order[i]] - 1.0; /* labels -1/+1 as the demo's y*2 - 1 */
    }
    for (int i = 0; i < 2 * n; i++) x[i] += noise * mt_gauss(&mt, &has_spare, &spare);
}

/* ---- micrograd's initial weights ---- */

/* m's parameters as micrograd's MLP of the same shape holds them after random.seed(seed): per layer, per
 * neuron, its weights drawn from random.uniform(-1, 1) in order, and a bias of 0. */
static inline void micrograd_init(mg_mlp *m, uint32_t seed) {
    mt19937 py_random;
    uint32_t key[] = {seed};
    mt_seed_array(&py_random, key, 1);
    double *p = mg_mlp_params(m);
    size_t width = mg_mlp_num_inputs(m);
    for (size_t l = 0; l < mg_mlp_num_layers(m); l++) {
        for (size_t j = 0; j < mg_mlp_layer_size(m, l); j++) {
            for (size_t i = 0; i < width; i++) *p++ = -1.0 + 2.0 * mt_random(&py_random);
            *p++ = 0.0;
        }
        width = mg_mlp_layer_size(m, l);
    }
}

#endif
