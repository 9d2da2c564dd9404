/* error.c: status names and the per-thread last error (message and status). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char t_message[256];
static _Thread_local mg_status t_status;

const char *mg_status_string(mg_status status) {
    switch (status) {
    case MG_OK: return "ok";
    case MG_ERR_NULL: return "NULL argument";
    case MG_ERR_NOMEM: return "out of memory";
    case MG_ERR_ARG: return "invalid argument";
    case MG_ERR_STATE: return "not allowed now";
    case MG_ERR_IO: return "input/output error";
    case MG_ERR_RANGE: return "out of range";
    case MG_ERR_BUSY: return "in use by another thread";
    }
    return "unknown status";
}

const char *mg_last_error(void) { return t_message; }

mg_status mg_last_status(void) { return t_status; }

void mg_clear_error(void) {
    t_message[0] = '\0';
    t_status = MG_OK;
}

mg_status mg__fail(mg_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(t_message, sizeof t_message, fmt, args);
    va_end(args);
    t_status = status;
    return status;
}

void *mg__fail_null(const char *func) {
    if (t_message[0] == '\0')
        mg__fail(MG_ERR_NULL, "%s: an operand is NULL", func);
    return NULL;
}
