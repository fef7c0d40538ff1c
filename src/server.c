#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dispatch.h"
#include "health.h"
#include "log.h"
#include "reload.h"
#include "script.h"
#include "stale.h"
#include "tls.h"
#include "trim.h"
#include "watchdog.h"

/* Requests kept posted per method and worker: enough that a burst of calls
 * for one rpc rarely waits for a worker to re-post. */
#define CALLS_PER_METHOD 4
/* Catch-all requests per worker for method paths we do not serve. */
#define UNKNOWN_CALLS 2
/* Every rpc of every generation, then the health check. */
#define HOOK_METHOD_COUNT (HOOK_COUNT * HOOK_GENERATION_COUNT)
#define HEALTH_METHOD HOOK_METHOD_COUNT
#define METHOD_COUNT (HOOK_METHOD_COUNT + 1)
/* At a stop, how long past shutdown_timeout (or past the deadline of a
 * handler still within its time limit then) the cancelled calls, deinit()
 * and the closing of the Lua states may take before exhookd gives up on a
 * worker and exits without it. */
#define STOP_SLACK_MS 2000

enum call_state { CALL_WAITING, CALL_REPLYING };

/* Written by the owning worker only, read by the main thread for the
 * statistics: relaxed atomics, no lock. */
struct hook_counters {
    atomic_uint_fast64_t calls, errors, timeouts, memory;
    atomic_uint_fast64_t unhandled; /* calls of a hook no loaded module handles */
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
    struct hook_counters counters[HOOK_COUNT];
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
    struct watchdog *watchdog;
    srv_stuck_fn *on_stuck;
    void *on_stuck_ctx;
};

static void post(struct call *c)
{
    struct worker *w = c->w;
    struct server *s = w->srv;
    pthread_mutex_lock(&w->post_lock);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&w->post_lock);
        return;
    }
    c->state = CALL_WAITING;
    c->call = NULL;
    c->payload = NULL;
    grpc_metadata_array_init(&c->request_md);
    grpc_call_error rc;
    if (c->method >= 0) {
        rc = grpc_server_request_registered_call(s->grpc, s->methods[c->method].handle, &c->call,
                                                 &c->deadline, &c->request_md, &c->payload,
                                                 w->cq, w->cq, c);
    } else {
        grpc_call_details_init(&c->details);
        rc = grpc_server_request_call(s->grpc, &c->call, &c->details, &c->request_md, w->cq,
                                      w->cq, c);
    }
    pthread_mutex_unlock(&w->post_lock);
    if (rc != GRPC_CALL_OK)
        log_error("cannot post a request for calls (grpc error %d)", (int)rc);
}

static void release(struct call *c)
{
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    c->payload = c->reply = NULL;
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_destroy(&c->request_md);
    if (c->method < 0)
        grpc_call_details_destroy(&c->details);
    if (c->call)
        grpc_call_unref(c->call);
    c->call = NULL;
}

/* Reads the whole request message into one contiguous slice. */
static grpc_slice read_payload(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return grpc_empty_slice();
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return all;
}

enum reply_outcome { REPLY_STARTED, REPLY_CLOSED, REPLY_FAILED };

/* Starts the batch that answers `c`. Unless REPLY_STARTED, no completion
 * will come for it: the caller decides what becomes of the call. */
static enum reply_outcome reply(struct call *c, grpc_status_code status, const char *error,
                                const uint8_t *data, size_t len)
{
    size_t n = 0;
    grpc_op *ops = c->ops;
    memset(ops, 0, sizeof c->ops);
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    /* On error no message is sent: the broker's HTTP/2 client takes any
     * DATA frame for success, whatever the trailers say. */
    if (status == GRPC_STATUS_OK) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->reply;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    if (status != GRPC_STATUS_OK) {
        c->status_details = grpc_slice_from_copied_string(error);
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;
    c->state = CALL_REPLYING;
    struct worker *w = c->w;
    pthread_mutex_lock(&w->post_lock);
    if (w->cq_closed) {
        /* The call outlived the shutdown grace period and was cancelled. */
        pthread_mutex_unlock(&w->post_lock);
        return REPLY_CLOSED;
    }
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, c, NULL);
    pthread_mutex_unlock(&w->post_lock);
    if (rc != GRPC_CALL_OK) {
        log_error("cannot answer a call (grpc error %d)", (int)rc);
        return REPLY_FAILED;
    }
    return REPLY_STARTED;
}

/* The worker's reply: without a completion to come, the call is recycled
 * now (re-posted, unless the server is closing). */
static void worker_reply(struct call *c, grpc_status_code status, const char *error,
                         const uint8_t *data, size_t len)
{
    enum reply_outcome r = reply(c, status, error, data, len);
    if (r != REPLY_STARTED)
        release(c);
    if (r == REPLY_FAILED)
        post(c);
}

/* When `e` must be done with `runs` protected calls of call_timeout each,
 * or `limit_ns` if earlier. INT64_MAX when call_timeout is 0: no limit at
 * all, as documented, so the watchdog never calls it stuck either. */
static int64_t engine_deadline(const struct script_engine *e, size_t runs, int64_t limit_ns)
{
    if (e->call_timeout_ms == 0)
        return INT64_MAX;
    int64_t d = script_now_ns() + (int64_t)e->call_timeout_ms * 1000000 * (int64_t)runs;
    return d < limit_ns ? d : limit_ns;
}

/* Makes `e` the worker's engine, closing the one it had (deinit() and the
 * finalizers, under the watchdog). The swap is under post_lock, where the
 * watchdog reads the module names. */
static void switch_engine(struct worker *w, struct script_engine *e)
{
    pthread_mutex_lock(&w->post_lock);
    struct script_engine *old = w->engine;
    w->engine = e;
    pthread_mutex_unlock(&w->post_lock);
    if (!old)
        return;
    wd_busy(w->srv->watchdog, w->id - 1, WD_CLOSING, NULL,
            engine_deadline(old, old->module_count + 1, INT64_MAX), NULL);
    reload_engine_free(old);
    wd_idle(w->srv->watchdog, w->id - 1);
}

/* Switches to the scripts of a reload, if one came: the old state is
 * closed here, on its own thread, between two calls. */
static void take_pending(struct worker *w)
{
    if (!atomic_load_explicit(&w->pending, memory_order_relaxed))
        return;
    struct script_engine *e = atomic_exchange(&w->pending, NULL);
    if (e)
        switch_engine(w, e);
}

/* The broker's deadline on the scripts' clock. gRPC's monotonic clock has
 * its own epoch, so go through the time remaining. */
static int64_t deadline_ns(gpr_timespec deadline)
{
    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
    int64_t now = script_now_ns();
    if (left.tv_sec < 0)
        return now;
    /* A grpc-timeout of years must not wrap around into the past. */
    if (left.tv_sec >= (INT64_MAX - now) / 1000000000 - 1)
        return INT64_MAX;
    return now + left.tv_sec * 1000000000 + left.tv_nsec;
}

static void serve(struct call *c)
{
    struct worker *w = c->w;
    if (c->method < 0) {
        char *path = grpc_slice_to_c_string(c->details.method);
        char msg[256];
        snprintf(msg, sizeof msg, "Method not found: %s", path);
        log_warn("call to unknown method %s", path);
        gpr_free(path);
        worker_reply(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL, 0);
        return;
    }
    const struct method *m = &w->srv->methods[c->method];
    if (c->method == HEALTH_METHOD) {
        /* A check without a message asks about the whole server, as an
         * empty HealthCheckRequest would. */
        grpc_slice req = c->payload ? read_payload(c->payload) : grpc_empty_slice();
        health_check(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req),
                     !atomic_load(&w->srv->stopping), &w->reply);
        grpc_slice_unref(req);
        worker_reply(c, w->reply.status, w->reply.error, w->reply.data, w->reply.len);
        return;
    }
    struct hook_counters *n = &w->counters[m->hook];
    atomic_fetch_add_explicit(&n->calls, 1, memory_order_relaxed);
    if (!c->payload) {
        atomic_fetch_add_explicit(&n->errors, 1, memory_order_relaxed);
        worker_reply(c, GRPC_STATUS_INVALID_ARGUMENT, "the call carried no request message", NULL,
                     0);
        return;
    }
    /* The broker loads the provider: the moment edited scripts take effect.
     * The reply then lists the hooks of the new scripts. */
    if (m->hook == HOOK_PROVIDER_LOADED)
        srv_reload(w->srv);
    take_pending(w);
    if (stale_is_unhandled(w->engine, m->hook)) {
        atomic_fetch_add_explicit(&n->unhandled, 1, memory_order_relaxed);
        stale_note(&w->srv->stale, m->hook, m->version, script_now_ns());
    }

    grpc_slice req = read_payload(c->payload);
    int64_t deadline = deadline_ns(c->deadline);
    uint64_t id = wd_busy(w->srv->watchdog, w->id - 1, WD_CALL, c,
                          engine_deadline(w->engine, w->engine->module_count, deadline),
                          &c->token);
    dispatch_call(w->engine, m->hook, m->version, GRPC_SLICE_START_PTR(req),
                  GRPC_SLICE_LENGTH(req), deadline, &w->reply);
    wd_idle(w->srv->watchdog, w->id - 1);
    grpc_slice_unref(req);
    if (!atomic_compare_exchange_strong(&c->token, &id, 0))
        return; /* The watchdog answered it: the worker was stuck. */
    switch (w->reply.status) {
    case GRPC_STATUS_OK:
        break;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        atomic_fetch_add_explicit(&n->timeouts, 1, memory_order_relaxed);
        break;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        atomic_fetch_add_explicit(&n->memory, 1, memory_order_relaxed);
        break;
    default:
        atomic_fetch_add_explicit(&n->errors, 1, memory_order_relaxed);
        break;
    }
    worker_reply(c, w->reply.status, w->reply.error, w->reply.data, w->reply.len);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "w%d", w->id);
    log_set_thread_name(name);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct call *c = ev.tag;
        if (c->state == CALL_WAITING) {
            if (!ev.success) {
                /* The server is shutting down: this request ends here. */
                release(c);
                continue;
            }
            serve(c);
        } else {
            release(c);
            post(c);
        }
    }
    /* Closed here rather than by srv_destroy, so that a finalizer that never
     * returns holds this thread, which the stop can give up on. */
    switch_engine(w, atomic_exchange(&w->pending, NULL));
    switch_engine(w, NULL);
    return NULL;
}

/* Runs in place of a stuck worker on its queue: each call that reaches it
 * is answered at once with UNAVAILABLE (the broker applies its
 * failed_action), and no request is posted again, so that new calls go to
 * the other workers. Should the worker come back, both serve the queue:
 * every event belongs to the one thread that takes it. */
static void *stand_in_main(void *arg)
{
    struct worker *w = arg;
    char name[32], msg[160];
    snprintf(name, sizeof name, "w%d-stand-in", w->id);
    log_set_thread_name(name);
    snprintf(msg, sizeof msg,
             "exhookd worker w%d is stuck in code that cannot be interrupted; call not run", w->id);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct call *c = ev.tag;
        if (c->state == CALL_WAITING && ev.success &&
            reply(c, GRPC_STATUS_UNAVAILABLE, msg, NULL, 0) == REPLY_STARTED)
            continue;
        release(c);
    }
    return NULL;
}

/* "module example" or "modules a, b": those of the worker's scripts that
 * handle `hook`. Read under post_lock: the worker swaps engines under it. */
static void describe_modules(struct worker *w, enum hook_id hook, char *buf, size_t len)
{
    char names[200] = "";
    size_t n = 0, count = 0;
    pthread_mutex_lock(&w->post_lock);
    const struct script_engine *e = w->engine;
    for (size_t i = 0; e && i < e->module_count; i++) {
        if (e->modules[i].handlers[hook] == LUA_NOREF || n >= sizeof names)
            continue;
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", count ? ", " : "",
                              e->modules[i].name);
        count++;
    }
    pthread_mutex_unlock(&w->post_lock);
    snprintf(buf, len, "%s%s", count == 1 ? "module " : count ? "modules " : "no module", names);
}

/* The watchdog found worker `slot` stuck: answer the call it holds, if it
 * still holds it, let a stand-in serve its queue, and tell the owner of the
 * server (the master process then replaces this one). */
static void on_stuck(void *ctx, int slot, enum wd_busy kind, void *what, uint64_t id,
                     int64_t late_ns)
{
    struct server *s = ctx;
    struct worker *w = &s->workers[slot];
    double late_s = (double)late_ns / 1e9;
    struct call *c = NULL;
    char msg[512];
    if (kind == WD_CALL) {
        c = what;
        const struct method *m = &s->methods[c->method];
        const char *hook =
            hook_defs[m->hook].name ? hook_defs[m->hook].name : hook_defs[m->hook].rpc;
        char modules[256];
        describe_modules(w, m->hook, modules, sizeof modules);
        if (!atomic_compare_exchange_strong(&c->token, &id, 0))
            return; /* Answered by the worker meanwhile: not stuck after all. */
        snprintf(msg, sizeof msg,
                 "exhookd worker w%d is stuck in code that cannot be interrupted (hook %s, %s)",
                 w->id, hook, modules);
        log_error("worker w%d stuck in code that cannot be interrupted: hook %s, %s, %.3f s past "
                  "its deadline; the call is answered with DEADLINE_EXCEEDED",
                  w->id, hook, modules, late_s);
        atomic_fetch_add_explicit(&w->counters[m->hook].timeouts, 1, memory_order_relaxed);
    } else {
        log_error("worker w%d stuck in code that cannot be interrupted while closing a Lua state "
                  "(deinit() or a __gc finalizer), %.3f s past its deadline",
                  w->id, late_s);
    }
    if (!atomic_exchange(&w->stand_in_started, true) &&
        pthread_create(&w->stand_in, NULL, stand_in_main, w) != 0) {
        atomic_store(&w->stand_in_started, false);
        log_error("cannot start a stand-in for worker w%d", w->id);
    }
    /* The owner first: whoever gets the answer can count on it knowing. */
    if (s->on_stuck)
        s->on_stuck(s->on_stuck_ctx);
    /* Whatever the outcome, the call stays with the worker. */
    if (c)
        reply(c, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL, 0);
}

static void close_workers(struct server *s)
{
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        if (w->cq)
            grpc_completion_queue_destroy(w->cq);
        reload_engine_free(w->engine);
        reload_engine_free(atomic_exchange(&w->pending, NULL));
        dispatch_reply_free(&w->reply);
        free(w->calls);
        pthread_mutex_destroy(&w->post_lock);
    }
    free(s->workers);
    s->workers = NULL;
}

static int worker_count(const struct config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* gRPC's own messages go through our log, at debug level: what matters to
 * an operator (port in use, ...) is reported by exhookd in one clear line.
 * Two are for the operator as they come: a refused TLS handshake (a broker
 * with a wrong certificate, or a stranger), and a failed accept, after which
 * gRPC 1.51 stops accepting connections on that port for good. */
static void grpc_log(gpr_log_func_args *args)
{
    if (tls_log_refused_handshake(args->message))
        return;
    if (strncmp(args->message, "Failed accept4", 14) == 0)
        log_error("grpc: %s: the port accepts no new connections until exhookd restarts",
                  args->message);
    else
        log_debug("grpc: %s (%s:%d)", args->message, args->file, args->line);
}

/* Each connection is a descriptor, and when accept() runs out of them
 * gRPC 1.51 stops listening for good: a client opening 1,024 idle
 * connections (systemd's default soft limit) would take the port down.
 * The hard limit is as far as a process may go by itself. */
static void raise_open_files_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_debug("open files limit raised from %llu to %llu", (unsigned long long)was,
                  (unsigned long long)rl.rlim_max);
}

struct server *srv_create(struct config *config, const char *config_path, char *err,
                          size_t errlen)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s || reload_init(&s->reload, config_path, config) != 0) {
        free(s);
        cfg_free(config);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const struct config *cfg = &s->reload.cfg;
    stale_init(&s->stale, STALE_LOG_INTERVAL_NS);
    raise_open_files_limit();
    gpr_set_log_function(grpc_log);
    grpc_init();
    grpc_resource_quota *quota = grpc_resource_quota_create("exhookd");
    grpc_resource_quota_resize(quota, cfg->memory_quota);

    /* The broker pings every minute, also on idle connections, and ignores
     * the stream limit: accept both instead of answering with GOAWAY. */
    grpc_arg args[] = {
        /* Off unless the master process shares the port between the old
         * and the new child: it checks first that the port is free. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_ALLOW_REUSEPORT,
         .value.integer = cfg->reuse_port},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_size},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_size},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = 10000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MAX_PING_STRIKES, .value.integer = 0},

        /* HTTP/2 flow control. gRPC's BDP probe PINGs the broker on busy
         * connections to size the windows for bulk transfers: for ExHook's
         * small calls each probe is only a PING and its ACK more for the
         * broker's client to handle. Without it a large request still gets
         * through: the stream window grows to the announced message size.
         * The windows keep gRPC's defaults: the WINDOW_UPDATE that goes with
         * nearly every reply is gRPC topping the connection window up on
         * each write, whatever the window's size (README "HTTP/2 settings"). */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},

        /* What one client without credentials can make the server hold.
         * gRPC 1.51 keeps every header field of a HEADERS frame and its
         * CONTINUATION frames, whatever GRPC_ARG_MAX_METADATA_SIZE says
         * (150 MB sent: 2.6 GB held); only the quota on its buffers bounds
         * that. A connection that completes no handshake (TLS, or the
         * client's HTTP/2 SETTINGS) within the timeout is closed; gRPC's
         * own default is 2 minutes. 1.51 has no cap on connections, and
         * GRPC_ARG_MAX_CONNECTION_IDLE_MS is left off: it would close the
         * broker's pooled connections, which can go without calls (pings
         * do not count) for as long as the broker is quiet. */
        {.type = GRPC_ARG_POINTER,
         .key = GRPC_ARG_RESOURCE_QUOTA,
         .value.pointer = {.p = quota, .vtable = grpc_resource_quota_arg_vtable()}},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
         .value.integer = (int)cfg->handshake_timeout_ms},
    };
    grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
    s->grpc = grpc_server_create(&chargs, NULL);
    grpc_resource_quota_unref(quota); /* the server holds its own reference */

    for (int k = 0; k < METHOD_COUNT; k++) {
        struct method *m = &s->methods[k];
        if (k == HEALTH_METHOD) {
            snprintf(m->path, sizeof m->path, "%s", HEALTH_CHECK_PATH);
        } else {
            const struct hook_generation *g = &hook_generations[k / HOOK_COUNT];
            m->hook = (enum hook_id)(k % HOOK_COUNT);
            m->version = g->version;
            hooks_path(m->path, sizeof m->path, m->hook, m->version);
        }
        m->handle = grpc_server_register_method(s->grpc, m->path, NULL,
                                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }

    s->worker_count = worker_count(cfg);
    s->workers = calloc((size_t)s->worker_count, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(s->watchdog = wd_create(s->worker_count, cfg->watchdog_ms, on_stuck, s))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        w->srv = s;
        w->id = i + 1;
        pthread_mutex_init(&w->post_lock, NULL);
        w->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->grpc, w->cq, NULL);
        if (!(w->engine = reload_engine_new(cfg, w->id, err, errlen)))
            goto fail;
    }

    grpc_server_credentials *creds = tls_server_credentials(cfg, err, errlen);
    if (!creds)
        goto fail;
    s->port = grpc_server_add_http2_port(s->grpc, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        snprintf(err, errlen,
                 "cannot listen on %s: the address is in use or not an address of this host",
                 cfg->listen);
        goto fail;
    }
    return s;
fail:
    srv_destroy(s);
    return NULL;
}

int srv_port(const struct server *s) { return s->port; }

int srv_worker_count(const struct server *s) { return s->worker_count; }

void srv_on_stuck(struct server *s, srv_stuck_fn *fn, void *ctx)
{
    s->on_stuck = fn;
    s->on_stuck_ctx = ctx;
}

int srv_start(struct server *s, char *err, size_t errlen)
{
    grpc_server_start(s->grpc);
    size_t per_worker = (size_t)METHOD_COUNT * CALLS_PER_METHOD + UNKNOWN_CALLS;
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        w->calls = calloc(per_worker, sizeof *w->calls);
        if (!w->calls) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < per_worker; k++) {
            struct call *c = &w->calls[k];
            c->w = w;
            c->method = k < UNKNOWN_CALLS ? -1 : (int)((k - UNKNOWN_CALLS) / CALLS_PER_METHOD);
            c->status_details = grpc_empty_slice();
            post(c);
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", w->id);
            return -1;
        }
        w->started = true;
    }
    if (wd_start(s->watchdog) != 0) {
        snprintf(err, errlen, "cannot start the watchdog thread");
        return -1;
    }
    if (trim_start() != 0) {
        snprintf(err, errlen, "cannot start the memory trim thread");
        return -1;
    }
    return 0;
}

/* Joins `t` by `at_ns` (the scripts' monotonic clock). */
static bool join_by(pthread_t t, int64_t at_ns)
{
    /* pthread_timedjoin_np wants CLOCK_REALTIME. */
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    int64_t left = at_ns - script_now_ns();
    int64_t ns = at.tv_nsec + (left > 0 ? left : 0);
    at.tv_sec += (time_t)(ns / 1000000000);
    at.tv_nsec = (long)(ns % 1000000000);
    return pthread_timedjoin_np(t, NULL, &at) == 0;
}

/* When the stop gives up on the workers: STOP_SLACK_MS after the grace
 * period, or after the deadline of a handler still within its time limit
 * (the time limit stops Lua code; past it, a worker is stuck). */
static int64_t stop_by(struct server *s, int64_t grace_end)
{
    int64_t last = grace_end;
    for (int i = 0; s->watchdog && i < s->worker_count; i++) {
        int64_t d = wd_deadline(s->watchdog, i);
        if (d != INT64_MAX && d > last)
            last = d;
    }
    return last + (int64_t)STOP_SLACK_MS * 1000000;
}

int srv_destroy(struct server *s)
{
    if (!s)
        return 0;
    atomic_store(&s->stopping, true);
    trim_stop();
    unsigned grace_ms = s->reload.cfg.shutdown_timeout_ms;
    int64_t grace_end = script_now_ns() + (int64_t)grace_ms * 1000000;
    /* Everything must be over by then, stuck workers or not. */
    int64_t end = grace_end + (int64_t)STOP_SLACK_MS * 1000000;
    if (s->grpc) {
        grpc_completion_queue *done = grpc_completion_queue_create_for_pluck(NULL);
        grpc_server_shutdown_and_notify(s->grpc, done, s);
        gpr_timespec grace = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_pluck(done, s, grace, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            log_warn("calls still running after %u ms: cancelling them", grace_ms);
            grpc_server_cancel_all_calls(s->grpc);
            /* A stuck worker may hold a call for good. */
            end = stop_by(s, grace_end);
            gpr_timespec until =
                gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                             gpr_time_from_millis((end - script_now_ns()) / 1000000, GPR_TIMESPAN));
            grpc_completion_queue_pluck(done, s, until, NULL);
        }
        grpc_completion_queue_shutdown(done);
        grpc_completion_queue_destroy(done);
    }
    for (int i = 0; i < s->worker_count && s->workers; i++) {
        struct worker *w = &s->workers[i];
        if (!w->cq)
            continue;
        pthread_mutex_lock(&w->post_lock);
        w->cq_closed = true;
        grpc_completion_queue_shutdown(w->cq);
        pthread_mutex_unlock(&w->post_lock);
        if (w->started) {
            if (!join_by(w->thread, end) ||
                (atomic_load(&w->stand_in_started) && !join_by(w->stand_in, end))) {
                /* Nothing can be freed that the stuck thread may touch. */
                log_error("worker w%d did not stop within shutdown_timeout (or its time limit) + "
                          "%d ms: stuck in code that cannot be interrupted; exiting without it",
                          w->id, STOP_SLACK_MS);
                return -1;
            }
        } else {
            /* Never started: drain here the requests the shutdown failed. */
            for (;;) {
                grpc_event ev =
                    grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                    break;
                if (ev.type == GRPC_OP_COMPLETE)
                    release(ev.tag);
            }
        }
    }
    wd_destroy(s->watchdog);
    if (s->grpc)
        grpc_server_destroy(s->grpc);
    /* Every call has been answered or cancelled: the counters are final. */
    if (s->workers && s->port)
        srv_log_stats(s);
    if (s->workers)
        close_workers(s);
    reload_destroy(&s->reload);
    free(s);
    grpc_shutdown();
    return 0;
}

/* A state a worker has not taken up yet is replaced unused. */
static void publish_engines(void *ctx, struct script_engine **engines, int count)
{
    struct server *s = ctx;
    for (int i = 0; i < count; i++)
        reload_engine_free(atomic_exchange(&s->workers[i].pending, engines[i]));
}

int srv_reload(struct server *s)
{
    return reload_build(&s->reload, s->worker_count, publish_engines, s);
}

void srv_log_stats(struct server *s)
{
    uint64_t sum[4] = {0}, per[HOOK_COUNT][5] = {{0}};
    for (int h = 0; h < HOOK_COUNT; h++) {
        for (int i = 0; i < s->worker_count; i++) {
            struct hook_counters *n = &s->workers[i].counters[h];
            per[h][0] += atomic_load_explicit(&n->calls, memory_order_relaxed);
            per[h][1] += atomic_load_explicit(&n->errors, memory_order_relaxed);
            per[h][2] += atomic_load_explicit(&n->timeouts, memory_order_relaxed);
            per[h][3] += atomic_load_explicit(&n->memory, memory_order_relaxed);
            per[h][4] += atomic_load_explicit(&n->unhandled, memory_order_relaxed);
        }
        for (int k = 0; k < 4; k++)
            sum[k] += per[h][k];
    }
    log_info("stats: %llu calls, %llu errors, %llu timeouts, %llu memory failures since start",
             (unsigned long long)sum[0], (unsigned long long)sum[1],
             (unsigned long long)sum[2], (unsigned long long)sum[3]);
    for (int h = 0; h < HOOK_COUNT; h++) {
        if (per[h][0])
            log_info("stats: %-20s calls=%llu errors=%llu timeouts=%llu memory=%llu unhandled=%llu",
                     hook_defs[h].name ? hook_defs[h].name : hook_defs[h].rpc,
                     (unsigned long long)per[h][0], (unsigned long long)per[h][1],
                     (unsigned long long)per[h][2], (unsigned long long)per[h][3],
                     (unsigned long long)per[h][4]);
    }
}
