/* test_memory: the allocator hook, the pool, and every out-of-memory path.
 *
 * A counting allocator (Lua style, as mg_set_allocator takes it) keeps each block's size in a header, so
 * it can tell how many blocks and bytes are outstanding and whether the library frees each block with the
 * size it asked for. It can also fail its k-th allocation on purpose. For k = 1, 2, ... a workload that
 * builds a few thousand nodes with every op, runs backward and takes a topological order is run with the
 * k-th allocation failing: the failure must be reported (NULL or MG_ERR_NOMEM, with a message), leave
 * the graph usable, and leak nothing. The loop ends at the first k that the workload never reaches. */
#include "check.h"

#include <micrograd.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the workload: every op, a few thousand nodes (several pool chunks), a backward, a topo order ---- */

enum { LEAVES = 8, ROUNDS = 400 }; /* 24 nodes a round: ~9600 nodes, 3 pool chunks of 4096 */
/* neuron nodes: of 2 inputs (their array shares the values' blocks) and WIDE inputs (a bigger size class)
 * every round, and one of HUGE inputs, whose array is over the largest class: the allocator's */
enum { WIDE = 16, HUGE = 1100 };

typedef struct {
    int failures;       /* steps that reported a failure */
    int all_nomem;      /* each as NULL or MG_ERR_NOMEM with a message saying "out of memory" */
    int built;          /* the graph was built (then the results below are complete) */
    double root_data;
    double leaf_grads[LEAVES];
    size_t topo_count;
} outcome;

/* x = op(...): the new node replaces x (it holds its own reference to x). NULL propagates. */
static void replace(mg_value **x, mg_value *next) {
    mg_value_release(*x);
    *x = next;
}

static int says_out_of_memory(void) {
    const char *msg = mg_last_error();
    return msg[0] != '\0' && strstr(msg, "out of memory") != NULL;
}

static void note_failure(outcome *out, mg_status status) {
    if (out->failures++ == 0) out->all_nomem = 1;
    if (!(status == MG_ERR_NOMEM && says_out_of_memory())) {
        out->all_nomem = 0;
        fprintf(stderr, "  failure reported as %s: \"%s\"\n", mg_status_string(status), mg_last_error());
    }
    mg_clear_error();
}

static outcome run_workload(void) {
    outcome out = {0};
    mg_clear_error();
    mg_value *leaf[LEAVES];
    for (int i = 0; i < LEAVES; i++) leaf[i] = mg_value_new(0.25 + 0.125 * i);

    /* acc threads through every op; NULL operands give NULL, keeping the first message */
    mg_value *acc = mg_value_retain(leaf[0]);
    for (int r = 0; r < ROUNDS; r++) {
        mg_value *p = leaf[r % LEAVES], *q = leaf[(r + 3) % LEAVES];
        /* kept in ranges where every op is finite: log, pow and rdiv see values in (1, 9) */
        replace(&acc, mg_tanh(acc));
        replace(&acc, mg_mul(acc, p));
        replace(&acc, mg_add(acc, q));
        replace(&acc, mg_sub(acc, p));
        replace(&acc, mg_tanh(acc));
        replace(&acc, mg_div(acc, q));
        replace(&acc, mg_add_scalar(acc, 5.0));
        replace(&acc, mg_pow(acc, p));
        replace(&acc, mg_log(acc));
        replace(&acc, mg_exp(acc));
        replace(&acc, mg_relu(acc));
        replace(&acc, mg_neg(acc));
        replace(&acc, mg_sigmoid(acc));
        replace(&acc, mg_sub_scalar(acc, 0.5));
        replace(&acc, mg_rsub_scalar(1.0, acc));
        replace(&acc, mg_mul_scalar(acc, 1.5));
        replace(&acc, mg_div_scalar(acc, 1.25));
        replace(&acc, mg_add_scalar(acc, 2.0));
        replace(&acc, mg_rdiv_scalar(3.0, acc));
        replace(&acc, mg_pow_scalar(acc, 1.5));
        replace(&acc, mg_rpow_scalar(1.1, acc));
        mg_value *w[2] = {p, q}, *x[2] = {acc, leaf[(r + 5) % LEAVES]};
        replace(&acc, mg_affine(leaf[(r + 1) % LEAVES], w, x, 2));
        replace(&acc, mg_tanh(acc));
        mg_value *ws[WIDE], *xs[WIDE];
        for (int i = 0; i < WIDE; i++) {
            ws[i] = leaf[(r + i) % LEAVES];
            xs[i] = i == 0 ? acc : leaf[(r + 2 * i) % LEAVES];
        }
        replace(&acc, mg_affine(q, ws, xs, WIDE));
        replace(&acc, mg_tanh(acc));
    }
    mg_value *wh[HUGE], *xh[HUGE];
    for (int i = 0; i < HUGE; i++) {
        wh[i] = leaf[i % LEAVES];
        xh[i] = i == 0 ? acc : leaf[(i + 1) % LEAVES];
    }
    replace(&acc, mg_affine(leaf[0], wh, xh, HUGE));
    replace(&acc, mg_tanh(acc));
    mg_value *root = acc;
    if (!root) {
        note_failure(&out, MG_ERR_NOMEM);
        goto release;
    }
    out.built = 1;
    out.root_data = mg_value_data(root);

    /* zero_grad, backward and topo_order may each meet the failing allocation. Only one allocation fails
     * in a run, so retrying the failed call must succeed: a failed traversal leaves the graph clean. */
    mg_status status = mg_zero_grad(root);
    if (status != MG_OK) {
        note_failure(&out, status);
        CHECK(mg_zero_grad(root) == MG_OK);
    }

    status = mg_backward(root);
    if (status != MG_OK) {
        note_failure(&out, status);
        /* "MG_ERR_NOMEM leaves every grad as it was": all zero, the root's too */
        for (int i = 0; i < LEAVES; i++) CHECK_SAME(mg_value_grad(leaf[i]), 0.0);
        CHECK_SAME(mg_value_grad(root), 0.0);
        CHECK(mg_backward(root) == MG_OK);
    }
    for (int i = 0; i < LEAVES; i++) out.leaf_grads[i] = mg_value_grad(leaf[i]);

    mg_value **nodes = (mg_value **)&out; /* sentinels: untouched on failure */
    size_t count = 12345;
    status = mg_topo_order(root, &nodes, &count);
    if (status != MG_OK) {
        note_failure(&out, status);
        CHECK(nodes == (mg_value **)&out && count == 12345);
        status = mg_topo_order(root, &nodes, &count);
        CHECK(status == MG_OK);
    }
    if (status == MG_OK) {
        out.topo_count = count;
        mg_free(nodes);
    }

release:
    mg_value_release(root);
    for (int i = 0; i < LEAVES; i++) mg_value_release(leaf[i]);
    return out;
}

/* Everything built is gone: no value alive, and after a trim no block outstanding. */
static void check_all_returned(const counting *count) {
    CHECK(mg_live_values() == 0);
    CHECK(mg_pool_trim() == MG_OK);
    CHECK(count->blocks == 0);
    CHECK(count->bytes == 0);
    CHECK(count->bad_sizes == 0);
}

static void test_every_block_freed(void) {
    counting count = {0};
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_OK);
    outcome out = run_workload();
    CHECK(out.built && out.failures == 0);
    CHECK(count.calls > 0);
    CHECK(count.blocks > 0); /* the pool keeps its chunks for the next values... */
    CHECK(mg_live_values() == 0);
    check_all_returned(&count); /* ...until mg_pool_trim */
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK);
}

static void test_failure_injection(void) {
    counting count = {0};
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_OK);

    outcome want = run_workload(); /* the reference run: no failure */
    long long calls_needed = count.calls;
    check_all_returned(&count);
    CHECK(want.built && want.failures == 0);
    /* 4 chunks (3 of values, 1 of WIDE arrays), the chunk table, the huge neuron's array, the traversals' */
    CHECK(calls_needed > 4 + 1 + 1 + 3);

    long long failing_runs = 0;
    for (long long k = 1;; k++) {
        count.calls = 0;
        count.failed = 0;
        count.fail_at = k;
        outcome got = run_workload();
        count.fail_at = 0;
        /* every injected failure is reported, once, as out of memory */
        if (!CHECK(got.failures == count.failed)) fprintf(stderr, "  failing allocation %lld\n", k);
        if (got.failures) CHECK(got.all_nomem);
        failing_runs += count.failed;
        /* when the graph got built, the retried calls give exactly the reference results */
        if (got.built) {
            CHECK_SAME(got.root_data, want.root_data);
            for (int i = 0; i < LEAVES; i++) CHECK_SAME(got.leaf_grads[i], want.leaf_grads[i]);
            CHECK(got.topo_count == want.topo_count);
        }
        check_all_returned(&count);
        if (count.failed == 0) { /* k is past the run's last allocation: the loop is done */
            CHECK(got.built && got.failures == 0);
            CHECK(k == calls_needed + 1);
            break;
        }
        if (k > 100000) { /* cannot happen: every run allocates the same way up to its k-th call */
            CHECK(!"failure injection did not end");
            break;
        }
    }
    CHECK(failing_runs == calls_needed);
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK);
}

/* Neuron nodes of many sizes, on both sides of the limits of the pool's size classes (2n + 1 pointers in
 * blocks of whole 64-byte lines): each keeps its inputs and gives the right value and gradients; past the
 * largest class (16,448 bytes: n = 1027) the array is the allocator's. Building them all again takes
 * nothing new from the allocator but that one. */
static void test_neuron_arrays(void) {
    static const size_t sizes[] = {1,  3,   4,   7,   8,   15,  16,  31,   32,   63,   64,
                                   65, 127, 128, 255, 256, 511, 512, 1023, 1024, 1027, 1028};
    enum { N_SIZES = sizeof sizes / sizeof *sizes, MAX_N = 1028 };
    counting count = {0};
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_OK);
    static mg_value *w[MAX_N], *x[MAX_N];
    mg_value *b = mg_value_new(0.5), *nodes[N_SIZES];
    for (int i = 0; i < MAX_N; i++) {
        w[i] = mg_value_new(1.0 + i % 3);
        x[i] = mg_value_new(0.25 * (i % 5 + 1));
    }
    long long calls[2];
    for (int round = 0; round < 2; round++) {
        long long calls_before = count.calls;
        for (int k = 0; k < N_SIZES; k++) nodes[k] = mg_affine(b, w, x, sizes[k]);
        calls[round] = count.calls - calls_before;
        for (int k = 0; k < N_SIZES; k++) {
            size_t n = sizes[k];
            double want = 0.5;
            for (size_t i = 0; i < n; i++) want = want + (1.0 + (double)(i % 3)) * (0.25 * (double)(i % 5 + 1));
            if (!CHECK(nodes[k] != NULL)) continue;
            CHECK_SAME(mg_value_data(nodes[k]), want);
            CHECK(mg_value_num_inputs(nodes[k]) == 2 * n + 1);
            CHECK(mg_value_input(nodes[k], 0) == b && mg_value_input(nodes[k], n) == w[n - 1] &&
                  mg_value_input(nodes[k], 2 * n) == x[n - 1]);
            CHECK(mg_backward(nodes[k]) == MG_OK);
        }
        /* every node passed 1 to b and x[0] to w[0]; only the widest reached w[MAX_N - 1] */
        CHECK_SAME(mg_value_grad(b), (round + 1) * (double)N_SIZES);
        CHECK_SAME(mg_value_grad(w[0]), (round + 1) * N_SIZES * 0.25);
        CHECK_SAME(mg_value_grad(w[MAX_N - 1]), (round + 1) * mg_value_data(x[MAX_N - 1]));
        for (int k = 0; k < N_SIZES; k++) mg_value_release(nodes[k]);
    }
    CHECK(calls[0] > 1 && calls[1] == 1); /* the second time round, the widest's array alone */
    mg_value_release(b);
    for (int i = 0; i < MAX_N; i++) {
        mg_value_release(w[i]);
        mg_value_release(x[i]);
    }
    check_all_returned(&count);
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK);
}

/* The allocator and the pool can only change while no value is alive. */
static void test_state_errors(void) {
    counting count = {0};
    mg_value *v = mg_value_new(1.0);
    mg_clear_error();
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_ERR_STATE);
    CHECK(strstr(mg_last_error(), "mg_set_allocator") != NULL);
    mg_clear_error();
    CHECK(mg_pool_trim() == MG_ERR_STATE);
    CHECK(strstr(mg_last_error(), "mg_pool_trim") != NULL);
    mg_value_release(v);

    /* the allocator did not change: new values do not reach it */
    mg_value *w = mg_value_new(2.0);
    CHECK(count.calls == 0);
    mg_value_release(w);

    /* switching the allocator returns the pool's memory to the old one, without a trim */
    CHECK(mg_set_allocator(counting_alloc, &count) == MG_OK);
    mg_value *u = mg_value_new(3.0);
    long long pool_blocks = count.blocks;
    CHECK(pool_blocks > 0);
    mg_value_release(u);
    CHECK(count.blocks == pool_blocks); /* the pool keeps its chunk */
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK);
    CHECK(count.blocks == 0 && count.bytes == 0 && count.bad_sizes == 0);

    /* with nothing alive, trimming twice is fine */
    CHECK(mg_pool_trim() == MG_OK);
    CHECK(mg_pool_trim() == MG_OK);
}

int main(void) {
    test_state_errors();
    test_every_block_freed();
    test_neuron_arrays();
    test_failure_injection();
    CHECK(mg_set_allocator(NULL, NULL) == MG_OK); /* the default allocator is back */
    return check_finish("test_memory");
}
