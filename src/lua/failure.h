#ifndef EXHOOKD_FAILURE_H
#define EXHOOKD_FAILURE_H

/* Why a call failed, in one record, and one table that says for each kind
 * the gRPC status the broker gets, the `reason` label of
 * exhookd_lua_failures_total and the words of the log line. Every failure
 * of a call, wherever it is noticed, fills a record; the server answers,
 * counts and logs from the record alone. */

#include <grpc/status.h>
#include <stdarg.h>
#include <stddef.h>

/* kind, gRPC status, metric reason (NULL: not a script's failure), the
 * words in parentheses after the message in the log ("": none, the message
 * says it) */
#define FAILURE_KINDS(X)                                                                     \
    X(FAIL_NONE, GRPC_STATUS_OK, NULL, "")                                                   \
    X(FAIL_RUNTIME, GRPC_STATUS_UNKNOWN, "error", "script error")                            \
    X(FAIL_BAD_RETURN, GRPC_STATUS_UNKNOWN, "bad_return", "bad return value")                \
    X(FAIL_TIME_LIMIT, GRPC_STATUS_DEADLINE_EXCEEDED, "timeout", "time limit")               \
    X(FAIL_MEMORY, GRPC_STATUS_RESOURCE_EXHAUSTED, "memory", "")                             \
    X(FAIL_WAIT_TIMEOUT, GRPC_STATUS_DEADLINE_EXCEEDED, "wait_timeout", "time limit while waiting") \
    X(FAIL_CANCELLED, GRPC_STATUS_CANCELLED, "cancelled", "cancelled by the broker")         \
    X(FAIL_LATE, GRPC_STATUS_DEADLINE_EXCEEDED, NULL, "late")                                \
    X(FAIL_OVERLOADED, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "overloaded")                   \
    X(FAIL_STUCK, GRPC_STATUS_UNAVAILABLE, NULL, "worker stuck")                             \
    X(FAIL_MALFORMED, GRPC_STATUS_INVALID_ARGUMENT, NULL, "malformed request")

enum failure_kind {
#define FAILURE_ENUM(kind, status, reason, text) kind,
    FAILURE_KINDS(FAILURE_ENUM)
#undef FAILURE_ENUM
        FAIL_KIND_COUNT
};

struct failure_def {
    grpc_status_code status;
    const char *reason; /* label value of exhookd_lua_failures_total, or NULL */
    const char *text;   /* "module 'm' on_x <text>: ..." in the log */
};

extern const struct failure_def failure_defs[FAIL_KIND_COUNT];

struct failure {
    enum failure_kind kind;
    const char *module;    /* whose code failed (valid while its engine is), or NULL */
    char message[512];     /* what the broker gets as grpc-message */
    const char *traceback; /* Lua's, for the log only, or NULL */
};

/* Fills `f` with `kind` and a message from `fmt`. */
void failure_set(struct failure *f, enum failure_kind kind, const char *module, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

/* Logs `f` as an error of hook `hook` (EMQX's name, or NULL), with the Lua
 * traceback where there is one. */
void failure_log(const struct failure *f, const char *hook);

#endif
