#ifndef EXHOOKD_DISPATCH_H
#define EXHOOKD_DISPATCH_H

/* One hook call from request bytes to reply bytes: decode the request, hand
 * its fields to every module's handler in order, and encode the reply the
 * broker expects. The handlers run in a coroutine of the call's own (a
 * task), so a handler that waits suspends the call, and the chain goes on
 * from where it was when the wait is over. Knows nothing about gRPC
 * transport, so it is tested alone. */

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "failure.h"
#include "hooks.h"
#include "publish.h"
#include "script.h"
#include "task.h"

/* What an authenticate or authorize call decided (for the metrics). */
enum dispatch_verdict { DISPATCH_NO_OPINION, DISPATCH_ALLOW, DISPATCH_DENY };

struct dispatch_reply {
    grpc_status_code status; /* GRPC_STATUS_OK, or failure_defs[fail.kind].status */
    struct failure fail;     /* why the call failed; FAIL_NONE when it did not */
    enum dispatch_verdict verdict; /* when OK, for authenticate/authorize */
    uint8_t *data;           /* packed reply message when status is OK */
    size_t len;
    size_t cap;              /* the buffer is reused from call to call */
    struct arena arena;      /* the decoded request, reset after each call */
};

/* One call in progress. */
struct dispatch {
    struct task task;
    struct script_engine *e;
    enum hook_id hook;
    int version;
    const struct request_fields *fields;
    const ProtobufCMessage *req;
    int64_t deadline_ns; /* the broker's */
    struct dispatch_reply *out;
    /* Where the chain is: the module whose handler runs, and the stack of
     * the call's coroutine (arguments from slot 3, `nargs` of them; what is
     * above `base` belongs to one handler). */
    size_t next_module;
    const struct script_module *module;
    int nargs, base, arg;
    bool stop, drop;
    struct publish_msg pm;
};

enum dispatch_state { DISPATCH_DONE, DISPATCH_WAITING };

/* Starts a call of `hook`, as sent by a broker speaking interface
 * generation `version` (1, 2 or 3), on engine `e`. Every handler runs under
 * the engine's call_timeout, waiting included, cut short by `deadline_ns`
 * (CLOCK_MONOTONIC, the broker's deadline; INT64_MAX for none). DONE: the
 * reply (or failure) is in `out`. WAITING: a handler waits; `ready(task)`
 * is called by the engine's slot when it may go on: then call
 * dispatch_resume. `d` and `out` must stay put until DONE.
 *
 * Statuses: OK; INVALID_ARGUMENT for a request that does not decode;
 * UNKNOWN for a script error or a bad return value; DEADLINE_EXCEEDED for a
 * handler stopped by the time limit, or still waiting at it;
 * RESOURCE_EXHAUSTED for the memory limit; CANCELLED (dispatch_cancel). */
enum dispatch_state dispatch_start(struct dispatch *d, struct script_engine *e, enum hook_id hook,
                                   int version, const uint8_t *request, size_t len,
                                   int64_t deadline_ns, struct dispatch_reply *out,
                                   void (*ready)(struct task *));
enum dispatch_state dispatch_resume(struct dispatch *d);

/* The broker gave up on the call: if it waits, stop it (the call is then
 * DONE with CANCELLED) and return true. */
bool dispatch_cancel(struct dispatch *d);

/* Fills `out` with the reply to a call of `hook` (not OnProviderLoaded)
 * that no script handles: without decoding the request, as the chain
 * would answer with no module in it. */
void dispatch_no_handler(struct dispatch_reply *out, enum hook_id hook);

/* Fills `out` for a call answered without running any script, and logs
 * why (a warning). */
void dispatch_refuse(struct dispatch_reply *out, enum failure_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dispatch_start, then waits on the engine's own loop (which it must have)
 * until the call is done: for tests and the fuzzer. */
void dispatch_call(struct script_engine *e, enum hook_id hook, int version,
                   const uint8_t *request, size_t len, int64_t deadline_ns,
                   struct dispatch_reply *out);

/* Packs `msg` into out's buffer (growing it) and sets status OK; on failure
 * sets RESOURCE_EXHAUSTED and returns -1. */
int dispatch_reply_pack(struct dispatch_reply *out, const ProtobufCMessage *msg);

void dispatch_reply_free(struct dispatch_reply *r);

#endif
