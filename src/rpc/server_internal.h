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
#include "net.h"
#include "task.h"
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

enum call_state { CALL_WAITING, CALL_RUNNING, CALL_REPLYING };

/* What a completion of the server's queue is about: every tag starts with
 * its kind. */
enum tag_kind { TAG_CALL, TAG_CLOSE, TAG_BELL };
struct tag {
    enum tag_kind kind;
};

/* gRPC status codes OK (0) .. UNAUTHENTICATED (16). */
#define GRPC_CODE_COUNT 17
/* exhookd_verdicts_total's results: enum dispatch_verdict, then an error. */
#define VERDICT_ERROR 3
#define VERDICT_COUNT 4

/* The server's metric families (server_metrics.c). Shard 0 is for the
 * threads that are not workers, shard i for worker slot i. */
struct server_metrics {
    struct mx_registry *registry;
    struct mx_family *started, *handled, *seconds, *in_flight, *verdicts, *unhandled, *lua_failures,
        *lua_memory, *stuck, *reloads, *reload_seconds, *build_info;
    char **modules; /* the module names of exhookd_lua_failures_total, then "" */
    size_t module_count;
};

struct worker;

/* One gRPC call, from the request posted for it to its last completion.
 * Allocated for each request posted, freed after its last completion. */
struct call {
    enum tag_kind kind; /* TAG_CALL: the request arrived, or the reply went */
    struct tag close;   /* TAG_CLOSE: the broker closed or cancelled it */
    struct server *srv;
    struct worker *w;   /* the slot it runs on, once it runs */
    int method;         /* index into server.methods, or -1 for an unknown path */
    enum call_state state;
    atomic_int refs;    /* completions still to come, plus one while it runs */
    grpc_call *call;
    gpr_timespec deadline;
    int64_t deadline_ns; /* the same on script_now_ns()'s clock, once it runs */
    grpc_metadata_array request_md;
    grpc_call_details details; /* unknown paths only */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    int cancelled;
    bool close_watched; /* RECV_CLOSE_ON_SERVER is started apart */
    bool deferred;      /* to begin when its slot takes it from the mail */
    grpc_op ops[4];
    /* Whoever answers the call first takes it: its slot, or the watchdog
     * for a slot stuck on it. Holds the id of the slot's busy period while
     * the call's scripts run, 0 once it is answered. */
    atomic_uint_fast64_t token;
    int64_t start_ns; /* when it was taken up, for the latency histogram */
    struct call *next_mail;
    grpc_slice req;   /* the request message while the call runs */
    struct dispatch d;
    struct dispatch_reply out;
};

/* A worker slot: a Lua state (with the older ones that still have calls
 * waiting), its event loop and connections, and the calls waiting on it.
 * Any worker thread may run a slot, one at a time: a thread takes a new
 * call to a free slot, so a call never waits behind a busy one. */
struct worker {
    struct server *srv;
    int id;
    pthread_t thread;   /* the thread started for this slot */
    bool started;
    atomic_bool held;   /* a thread runs this slot */
    atomic_uint pending; /* PEND_* work for whoever holds it next */
    pthread_mutex_t mail_lock;
    struct call *mail;  /* calls handed over by other threads */
    struct net *net;
    struct task_queue ready;
    struct script_engine *engine;
    /* New scripts from a reload, taken up before the next call. */
    _Atomic(struct script_engine *) pending_engine;
    /* The generation of its newest state, taken up or pending: the slot
     * takes new calls while it is the server's. */
    _Atomic uint64_t generation;
    /* Older states with calls still waiting; closed with their last call. */
    struct script_engine *retired[8];
    size_t retired_count;
    size_t live_calls;  /* calls started here and not yet done */
    grpc_call *bell;    /* a zero-op batch on it wakes a thread for this slot */
    /* A thread started in place of the one stuck on this slot. */
    pthread_t stand_in;
    atomic_bool stand_in_started;
    atomic_bool stuck;  /* the watchdog found it stuck */
    struct tag bell_tag;
};

struct method {
    char path[96];
    enum hook_id hook;
    int version; /* interface generation */
    void *handle;
};

struct server {
    grpc_server *grpc;
    /* The one completion queue every worker thread waits on. */
    grpc_completion_queue *cq;
    /* Taken to post a request or start a batch, so that the queue is never
     * shut down between the check of `stopping`/`cq_closed` and the
     * operation: an operation on a shut-down queue aborts the process. */
    pthread_mutex_t post_lock;
    bool cq_closed;
    grpc_channel *bell_channel;
    /* Wakes a slot whose loop has something ready (one thread for all). */
    int poll_fd, poll_stop_fd;
    pthread_t poller;
    bool poller_started;
    unsigned max_waiting; /* calls waiting per slot */
    /* OnProviderLoaded calls waiting for the reload thread. */
    pthread_mutex_t reload_lock;
    pthread_cond_t reload_cond;
    struct call *reload_queue;
    bool reload_quit;
    pthread_t reloader;
    bool reloader_started;
    int port;
    struct reload reload;
    /* The committed generation of scripts: new calls go to its slots. */
    _Atomic uint64_t generation;
    atomic_bool stopping;
    struct method methods[METHOD_COUNT];
    struct worker *workers;
    int worker_count;
    struct stale_calls stale;
    struct server_metrics mx;
    struct mxhttp *metrics_http; /* the endpoint, when [metrics] listen is set */
    struct webhook *webhook;     /* the delivery thread, when [webhook] url is set */
    struct watchdog *watchdog;
    srv_stuck_fn *on_stuck;
    void *on_stuck_ctx;
};

/* Posts a request for a new call of `method` on the server's queue,
 * unless the server is stopping. */
void call_post(struct server *s, int method);

/* Frees the calls this thread keeps for reuse (as it ends). */
void call_spares_free(void);

/* Drops one reference to `c`; the last frees it. */
void call_unref(struct call *c);

/* The request message `bb` of a call, in one slice the caller unrefs. */
grpc_slice call_read_payload(grpc_byte_buffer *bb);

/* Answers `c` with `status`: with the message `data` on success, with the
 * text `error` otherwise. False when no batch could be started (the server
 * stopped meanwhile): no completion will come for it. */
bool call_reply(struct call *c, grpc_status_code status, const char *error, const uint8_t *data,
                size_t len);

/* Starts RECV_CLOSE_ON_SERVER apart, for a call that waits: its completion
 * says when the broker cancels it. */
void call_watch_close(struct call *c);

/* A call's gRPC deadline as a time of script_now_ns(); INT64_MAX for none. */
int64_t call_deadline_ns(gpr_timespec deadline);

/* A worker thread: takes what completes on the server's queue until it is
 * shut down. */
void *worker_main(void *arg);

/* The slots' poller thread and the reload thread. */
void *worker_poller_main(void *arg);
void *worker_reloader_main(void *arg);

/* Makes `e` the slot's Lua state; closes the one it had once its last call
 * is done. */
void worker_adopt(struct worker *w, struct script_engine *e);
/* Closes every state of the slot (at the end, no call running). */
void worker_close_engines(struct worker *w);
/* Reloads the scripts if they changed since the running generation was
 * built (reload_build); the reload thread's way. */
enum reload_result srv_reload_if_changed(struct server *s);
/* Wakes a thread for slot `w` (thread-safe). */
void worker_ring(struct worker *w);
/* Tells slot `w` that a reload left new scripts for it. */
void worker_new_engine(struct worker *w);

/* The watchdog's callback for a stuck slot (see wd_create). */
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
 * in flight; its verdict, the script's failure and, when this thread holds
 * slot `w` (`held`), its Lua memory. */
void srvm_call_end(struct worker *w, int method, const struct dispatch_reply *r, bool held);
void srvm_lua_memory(struct worker *w);
void srvm_unhandled(struct worker *w, enum hook_id hook);
void srvm_stuck(struct server *s);
void srvm_reloaded(struct server *s, bool ok, int64_t took_ns);

#endif
