/* platform.c: what the library asks of the machine it runs on, what it says of itself, and the per-thread
 * grad mode that both engines read. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <unistd.h>

const char *mg_version(void) { return MG_VERSION_STRING; }

int mg_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

#if defined(__GNUC__)
_Thread_local int mg__grad_off __attribute__((tls_model("initial-exec"))) = 0;
#else
_Thread_local int mg__grad_off = 0;
#endif

int mg_set_grad_enabled(int enabled) {
    int previous = !mg__grad_off;
    mg__grad_off = !enabled;
    return previous;
}

int mg_is_grad_enabled(void) { return !mg__grad_off; }
