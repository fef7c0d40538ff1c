#include "server_internal.h"

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "dispatch.h"
#include "health.h"
#include "log.h"
#include "reload.h"
#include "script.h"
#include "stale.h"
#include "watchdog.h"

/* The worker's reply: without a completion to come, the call is recycled
 * now (re-posted, unless the server is closing). */
static void worker_reply(struct call *c, grpc_status_code status, const char *error,
                         const uint8_t *data, size_t len)
{
    enum reply_outcome r = call_reply(c, status, error, data, len);
    if (r != REPLY_STARTED)
        call_release(c);
    if (r == REPLY_FAILED)
        call_post(c);
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

/* One call, from the request that arrived to its reply: an unknown path,
 * the health check, or a hook run through the worker's scripts. */
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
    bool hook_call = c->method != HEALTH_METHOD;
    int64_t start = c->start_ns = srvm_call_start(w, c->method, hook_call);
    if (!hook_call) {
        /* A check without a message asks about the whole server, as an
         * empty HealthCheckRequest would. */
        grpc_slice req = c->payload ? call_read_payload(c->payload) : grpc_empty_slice();
        health_check(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req),
                     !atomic_load(&w->srv->stopping) && health_scripts_serving(), &w->reply);
        grpc_slice_unref(req);
        srvm_answered(w->srv, w->id, c->method, w->reply.status, start);
        worker_reply(c, w->reply.status, w->reply.error, w->reply.data, w->reply.len);
        return;
    }
    if (!c->payload) {
        w->reply.status = GRPC_STATUS_INVALID_ARGUMENT;
        w->reply.failed_module = NULL;
        srvm_call_end(w, c->method, &w->reply);
        srvm_answered(w->srv, w->id, c->method, GRPC_STATUS_INVALID_ARGUMENT, start);
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
        srvm_unhandled(w, m->hook);
        stale_note(&w->srv->stale, m->hook, m->version, script_now_ns());
    }

    grpc_slice req = call_read_payload(c->payload);
    int64_t deadline = call_deadline_ns(c->deadline);
    uint64_t id = wd_busy(w->srv->watchdog, w->id - 1, WD_CALL, c,
                          engine_deadline(w->engine, w->engine->module_count, deadline), &c->token);
    dispatch_call(w->engine, m->hook, m->version, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req),
                  deadline, &w->reply);
    wd_idle(w->srv->watchdog, w->id - 1);
    grpc_slice_unref(req);
    srvm_call_end(w, c->method, &w->reply);
    if (!atomic_compare_exchange_strong(&c->token, &id, 0))
        return; /* The watchdog answered it: the worker was stuck. */
    srvm_answered(w->srv, w->id, c->method, w->reply.status, start);
    worker_reply(c, w->reply.status, w->reply.error, w->reply.data, w->reply.len);
}

void *worker_main(void *arg)
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
                call_release(c);
                continue;
            }
            serve(c);
        } else {
            call_release(c);
            call_post(c);
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
            call_reply(c, GRPC_STATUS_UNAVAILABLE, msg, NULL, 0) == REPLY_STARTED) {
            if (c->method >= 0)
                srvm_answered(w->srv, w->id, c->method, GRPC_STATUS_UNAVAILABLE,
                              srvm_call_start(w, c->method, false));
            continue;
        }
        call_release(c);
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
void worker_on_stuck(void *ctx, int slot, enum wd_busy kind, void *what, uint64_t id,
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
        srvm_answered(s, 0, c->method, GRPC_STATUS_DEADLINE_EXCEEDED, c->start_ns);
    } else {
        log_error("worker w%d stuck in code that cannot be interrupted while closing a Lua state "
                  "(deinit() or a __gc finalizer), %.3f s past its deadline",
                  w->id, late_s);
    }
    srvm_stuck(s);
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
        call_reply(c, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL, 0);
}
