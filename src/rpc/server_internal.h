#ifndef EXHOOKD_SERVER_INTERNAL_H
#define EXHOOKD_SERVER_INTERNAL_H

/* Private to the server module: what server.c (the gRPC server, start and
 * stop), worker.c (the worker threads, from a call's arrival to its answer,
 * and stuck workers) and call.c (one call: its request and its reply) share.
 * Nothing else includes it. */

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dispatch.h"
#include "hooks.h"
#include "metrics.h"
#include "reload.h"
#include "script.h"
#include "server.h"
#include "stale.h"
#include "watchdog.h"

/* Every rpc of every generation, then the health check. */
#define HOOK_METHOD_COUNT (HOOK_COUNT * HOOK_GENERATION_COUNT)
#define HEALTH_METHOD HOOK_METHOD_COUNT
#define METHOD_COUNT (HOOK_METHOD_COUNT + 1)

enum call_state { CALL_WAITING, CALL_REPLYING };

/* gRPC status codes OK (0) .. UNAUTHENTICATED (16). */
#define GRPC_CODE_COUNT 17
/* exhookd_verdicts_total's results: enum dispatch_verdict, then an error. */
#define VERDICT_ERROR 3
#define VERDICT_COUNT 4

/* The server's metric families (server_metrics.c). Shard 0 is for the
 * threads that are not workers, shard i for worker i. */
struct server_metrics {
    struct mx_registry *registry;
    struct mx_family *started, *handled, *seconds, *in_flight, *verdicts, *unhandled, *lua_failures,
        *lua_memory, *stuck, *reloads, *reload_seconds, *build_info;
    char **modules; /* the module names of exhookd_lua_failures_total, then "" */
    size_t module_count;
};

struct worker;

struct call {
    struct worker *w;
    int method; /* index into server.methods, or -1 for an unknown path */
    enum call_state state;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_call_details details; /* unknown paths only */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    int cancelled;
    grpc_op ops[4];
    /* Whoever answers the call first takes it: the worker, or the watchdog
     * for a worker stuck on it. Holds the id of the worker's busy period
     * while the call is being served, 0 once it is answered. */
    atomic_uint_fast64_t token;
    int64_t start_ns; /* when the worker took it up, for the latency histogram */
};

struct worker {
    struct server *srv;
    int id;
    pthread_t thread;
    bool started;
    grpc_completion_queue *cq;
    /* Taken to post a request or start a reply, so that the queue is never
     * shut down between the check of `stopping`/`cq_closed` and the
     * operation: an operation on a shut-down queue aborts the process. */
    pthread_mutex_t post_lock;
    bool cq_closed;
    struct script_engine *engine;
    /* New scripts from a reload, taken up before the next call. */
    _Atomic(struct script_engine *) pending;
    struct dispatch_reply reply;
    struct call *calls;
    /* Serves the worker's queue while the worker is stuck: answers the
     * calls that reach it with an error, so that they do not wait. */
    pthread_t stand_in;
    atomic_bool stand_in_started;
};

struct method {
    char path[96];
    enum hook_id hook;
    int version; /* interface generation */
    void *handle;
};

struct server {
    grpc_server *grpc;
    int port;
    struct reload reload;
    atomic_bool stopping;
    struct method methods[METHOD_COUNT];
    struct worker *workers;
    int worker_count;
    struct stale_calls stale;
    struct server_metrics mx;
    struct mxhttp *metrics_http; /* the endpoint, when [metrics] listen is set */
    struct watchdog *watchdog;
    srv_stuck_fn *on_stuck;
    void *on_stuck_ctx;
};

/* Requests a new call for `c`'s method on its worker's queue, unless the
 * server is stopping. */
void call_post(struct call *c);

/* Frees what the call holds, ready to be posted again. */
void call_release(struct call *c);

/* The request message `bb` of a call, in one slice the caller unrefs. */
grpc_slice call_read_payload(grpc_byte_buffer *bb);

enum reply_outcome { REPLY_STARTED, REPLY_CLOSED, REPLY_FAILED };

/* Answers `c` with `status`: with the message `data` on success, with the
 * text `error` otherwise. A completion comes for `c` only on REPLY_STARTED. */
enum reply_outcome call_reply(struct call *c, grpc_status_code status, const char *error,
                              const uint8_t *data, size_t len);

/* A call's gRPC deadline as a time of script_now_ns(); INT64_MAX for none. */
int64_t call_deadline_ns(gpr_timespec deadline);

/* A worker thread: serves the calls that arrive on its queue until the
 * queue is shut down, then closes its Lua states. */
void *worker_main(void *arg);

/* The watchdog's callback for a stuck worker (see wd_create). */
void worker_on_stuck(void *ctx, int slot, enum wd_busy kind, void *what, uint64_t id,
                     int64_t late_ns);

/* Registers the server's families; workers and their engines exist. */
int srvm_init(struct server *s);
void srvm_free(struct server *s);

/* A call of `method` starts on `w`: counted, and in flight for a hook call.
 * Returns the start time for srvm_answered (0 without histograms). */
int64_t srvm_call_start(struct worker *w, int method, bool counts_in_flight);
/* The call has been answered with `status` by a thread writing to `shard`. */
void srvm_answered(struct server *s, int shard, int method, grpc_status_code status,
                   int64_t start_ns);
/* The worker is done with a hook call whose scripts replied `r`: no longer
 * in flight; its verdict, the script's failure and the Lua memory. */
void srvm_call_end(struct worker *w, int method, const struct dispatch_reply *r);
void srvm_lua_memory(struct worker *w);
void srvm_unhandled(struct worker *w, enum hook_id hook);
void srvm_stuck(struct server *s);
void srvm_reloaded(struct server *s, bool ok, int64_t took_ns);

#endif
