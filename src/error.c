/* error.c: status names and the per-thread last error (message, status, origin).
 *
 * NULL operands: ops accept them and keep the error that made the operand NULL, so a whole expression can
 * be checked once at its root. An earlier error explains a NULL operand only when both hold:
 * - nobody has read it yet: in mg_add(mg_mul(a, NULL), b) nothing reads the error between the two ops,
 *   while a failure that was handled (its message or status read, as every binding does before it
 *   raises) is over;
 * - it was raised where such operands are made: by a value op for a NULL value, by a tensor op for a NULL
 *   tensor (its origin). A failed mg_mlp_new or CSV read cannot have made a value NULL.
 * Otherwise the NULL gets its own message and MG_ERR_NULL. Both tests cost nothing on the ops' hot paths:
 * they run only on a failure, and success never touches this state. What is left: an unread failure of a
 * value op, followed by a NULL value of the caller's own, reports the earlier failure (call
 * mg_clear_error() after ignoring one). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char t_message[256];
static _Thread_local mg_status t_status;
static _Thread_local int t_unread; /* the last failure has not been read (mg_last_error, mg_last_status) */
static _Thread_local mg__origin t_origin;

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

const char *mg_last_error(void) {
    t_unread = 0;
    return t_message;
}

mg_status mg_last_status(void) {
    t_unread = 0;
    return t_status;
}

mg_status mg__status(void) { return t_status; }

void mg_clear_error(void) {
    t_message[0] = '\0';
    t_status = MG_OK;
    t_unread = 0;
}

static mg_status fail_v(mg__origin origin, mg_status status, const char *fmt, va_list args) {
    vsnprintf(t_message, sizeof t_message, fmt, args);
    t_status = status;
    t_origin = origin;
    t_unread = 1;
    return status;
}

mg_status mg__fail(mg_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fail_v(MG__ORIGIN_OTHER, status, fmt, args);
    va_end(args);
    return status;
}

mg_status mg__fail_in(mg__origin origin, mg_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fail_v(origin, status, fmt, args);
    va_end(args);
    return status;
}

void *mg__fail_null_in(mg__origin origin, const char *fmt, ...) {
    if (origin != MG__ORIGIN_OTHER && t_unread && t_status != MG_OK && t_origin == origin)
        return NULL; /* the failure that made the operand NULL */
    va_list args;
    va_start(args, fmt);
    fail_v(origin, MG_ERR_NULL, fmt, args);
    va_end(args);
    return NULL;
}

void *mg__fail_null(const char *func) { return mg__fail_null_in(MG__ORIGIN_OTHER, "%s: an operand is NULL", func); }
