#ifndef EXHOOKD_DISPATCH_H
#define EXHOOKD_DISPATCH_H

/* One hook call from request bytes to reply bytes: decode the request, hand
 * its fields to every module's handler in order, and encode the reply the
 * broker expects. Knows nothing about gRPC transport, so it is tested alone. */

#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "hooks.h"
#include "script.h"

/* What an authenticate or authorize call decided (for the metrics). */
enum dispatch_verdict { DISPATCH_NO_OPINION, DISPATCH_ALLOW, DISPATCH_DENY };

struct dispatch_reply {
    grpc_status_code status; /* GRPC_STATUS_OK, or the error to answer with */
    /* The module whose handler failed (its name, valid while the engine
     * is), or NULL: a failure before any handler, or none. */
    const char *failed_module;
    enum dispatch_verdict verdict; /* when OK, for authenticate/authorize */
    char error[512];         /* grpc-message when status is not OK */
    uint8_t *data;           /* packed reply message when status is OK */
    size_t len;
    size_t cap;              /* the buffer is reused from call to call */
    struct arena arena;      /* the decoded request, reset after each call */
};

/* Serves one call of `hook`, as sent by a broker speaking interface
 * generation `version` (1, 2 or 3), on engine `e`. Every handler runs under the
 * engine's call_timeout, cut short by `deadline_ns` (CLOCK_MONOTONIC, the
 * broker's deadline; INT64_MAX for none). The reply buffer in `out` is grown
 * as needed and kept for the next call.
 *
 * Statuses: OK; INVALID_ARGUMENT for a request that does not decode;
 * UNKNOWN for a script error or a bad return value; DEADLINE_EXCEEDED for a
 * handler stopped by the time limit; RESOURCE_EXHAUSTED for the memory limit. */
void dispatch_call(struct script_engine *e, enum hook_id hook, int version,
                   const uint8_t *request, size_t len, int64_t deadline_ns,
                   struct dispatch_reply *out);

/* Packs `msg` into out's buffer (growing it) and sets status OK; on failure
 * sets RESOURCE_EXHAUSTED and returns -1. */
int dispatch_reply_pack(struct dispatch_reply *out, const ProtobufCMessage *msg);

void dispatch_reply_free(struct dispatch_reply *r);

#endif
