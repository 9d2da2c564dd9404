/* platform.c: what the library asks of the machine it runs on, and what it says of itself. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <unistd.h>

const char *mg_version(void) { return MG_VERSION_STRING; }

int mg_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}
