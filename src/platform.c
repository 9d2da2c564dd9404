/* platform.c: what the library asks of the machine it runs on, and what it says of itself. */
#include "internal.h"

const char *mg_version(void) { return MG_VERSION_STRING; }
