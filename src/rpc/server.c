#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "server.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dispatch.h"
#include "health.h"
#include "log.h"
#include "metrics_http.h"
#include "reload.h"
#include "script.h"
#include "server_internal.h"
#include "shared_dicts.h"
#include "stale.h"
#include "tls.h"
#include "trim.h"
#include "watchdog.h"
#include "webhook.h"

/* Requests kept posted per method and worker: enough that a burst of calls
 * for one rpc rarely waits for a worker to re-post. */
#define CALLS_PER_METHOD 4
/* Catch-all requests per worker for method paths we do not serve. */
#define UNKNOWN_CALLS 2
/* At a stop, how long past shutdown_timeout (or past the deadline of a
 * handler still within its time limit then) the cancelled calls, deinit()
 * and the closing of the Lua states may take before exhookd gives up on a
 * worker and exits without it. */
#define STOP_SLACK_MS 2000

/* What the slots hold, once no thread runs them. */
static void close_workers(struct server *s)
{
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        if (w->net)
            worker_close_engines(w);
        net_close(w->net);
        if (w->bell)
            grpc_call_unref(w->bell);
        pthread_mutex_destroy(&w->mail_lock);
    }
    free(s->workers);
    s->workers = NULL;
    if (s->bell_channel)
        grpc_channel_destroy(s->bell_channel);
    if (s->cq)
        grpc_completion_queue_destroy(s->cq);
    if (s->poll_fd >= 0)
        close(s->poll_fd);
    if (s->poll_stop_fd >= 0)
        close(s->poll_stop_fd);
}

/* Slot `w`: its loop, watched by the poller, and its bell: a call on a
 * channel that goes nowhere, bound to the server's queue, on which a batch
 * of no operations completes at once, from any thread. */
static int open_slot(struct server *s, struct worker *w, char *err, size_t errlen)
{
    pthread_mutex_init(&w->mail_lock, NULL);
    w->bell_tag.kind = TAG_BELL;
    if (!(w->net = net_open(s->reload.cfg.http_max_connections, err, errlen)))
        return -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = w};
    if (epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, loop_fd(w->net->loop), &ev) != 0) {
        snprintf(err, errlen, "cannot watch a worker's event loop: %s", strerror(errno));
        return -1;
    }
    w->bell = grpc_channel_create_call(s->bell_channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                       grpc_slice_from_static_string("/exhookd/bell"), NULL,
                                       gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (!w->bell) {
        snprintf(err, errlen, "cannot create a worker's wake-up call");
        return -1;
    }
    return 0;
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

struct server *srv_create(struct config *config, const char *config_path, char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s || reload_init(&s->reload, config_path, config) != 0) {
        free(s);
        cfg_free(config);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->poll_fd = s->poll_stop_fd = -1;
    pthread_mutex_init(&s->post_lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    pthread_cond_init(&s->reload_cond, NULL);
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
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_size},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_size},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
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

    s->max_waiting = cfg->max_waiting_calls;
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->grpc, s->cq, NULL);
    s->bell_channel =
        grpc_lame_client_channel_create("exhookd-bell", GRPC_STATUS_UNAVAILABLE, "not a channel");
    s->poll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->poll_stop_fd = eventfd(0, EFD_CLOEXEC);
    struct epoll_event stop = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->poll_fd < 0 || s->poll_stop_fd < 0 ||
        epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, s->poll_stop_fd, &stop) != 0) {
        snprintf(err, errlen, "cannot create the workers' poller: %s", strerror(errno));
        goto fail;
    }
    /* Made already by the master when there is one: then this keeps them. */
    if (shared_dicts_open(cfg, err, errlen) != 0)
        goto fail;
    s->worker_count = worker_count(cfg);
    s->workers = calloc((size_t)s->worker_count, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(s->watchdog = wd_create(s->worker_count, cfg->watchdog_ms, worker_on_stuck, s))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    uint64_t health_generation = health_generation_new();
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        w->srv = s;
        w->id = i + 1;
        if (open_slot(s, w, err, errlen) != 0)
            goto fail;
        struct script_engine *e = reload_engine_new(cfg, w->id, err, errlen);
        if (!e)
            goto fail;
        worker_adopt(w, e);
        health_adopt(w->engine, health_generation);
    }
    if (srvm_init(s) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    health_publish(health_generation);

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

int srv_port(const struct server *s)
{
    return s->port;
}

int srv_metrics_port(const struct server *s)
{
    return mxhttp_port(s->metrics_http);
}

static char *render_metrics(void *ctx, size_t *len)
{
    return srv_metrics_text(ctx, len);
}

int srv_worker_count(const struct server *s)
{
    return s->worker_count;
}

void srv_on_stuck(struct server *s, srv_stuck_fn *fn, void *ctx)
{
    s->on_stuck = fn;
    s->on_stuck_ctx = ctx;
}

int srv_start(struct server *s, char *err, size_t errlen)
{
    grpc_server_start(s->grpc);
    for (int i = 0; i < s->worker_count; i++) {
        for (int k = 0; k < UNKNOWN_CALLS; k++)
            call_post(s, -1);
        for (int m = 0; m < METHOD_COUNT; m++) {
            for (int k = 0; k < CALLS_PER_METHOD; k++)
                call_post(s, m);
        }
    }
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", w->id);
            return -1;
        }
        w->started = true;
    }
    if (pthread_create(&s->poller, NULL, worker_poller_main, s) != 0 ||
        !(s->poller_started = true) ||
        pthread_create(&s->reloader, NULL, worker_reloader_main, s) != 0) {
        snprintf(err, errlen, "cannot start the poller or the reload thread");
        return -1;
    }
    s->reloader_started = true;
    if (wd_start(s->watchdog) != 0) {
        snprintf(err, errlen, "cannot start the watchdog thread");
        return -1;
    }
    if (trim_start() != 0) {
        snprintf(err, errlen, "cannot start the memory trim thread");
        return -1;
    }
    const struct config *cfg = &s->reload.cfg;
    if (cfg->webhook.url &&
        !(s->webhook = webhook_start(&cfg->webhook, s->mx.registry, err, errlen)))
        return -1;
    if (cfg->metrics.listen &&
        !(s->metrics_http =
              mxhttp_start(cfg->metrics.listen, cfg->reuse_port, render_metrics, s, err, errlen)))
        return -1;
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
    mxhttp_stop(s->metrics_http);
    s->metrics_http = NULL;
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
    /* The calls are answered: what they queued for the webhook goes out
     * within the same grace, also when a stuck worker ends the stop below. */
    webhook_stop(s->webhook, grace_end > script_now_ns() ? grace_end : script_now_ns());
    if (s->reloader_started) {
        pthread_mutex_lock(&s->reload_lock);
        s->reload_quit = true;
        pthread_cond_signal(&s->reload_cond);
        pthread_mutex_unlock(&s->reload_lock);
        pthread_join(s->reloader, NULL);
    }
    /* No state goes to a slot from now on. */
    reload_stop(&s->reload);
    if (s->poller_started) {
        uint64_t one = 1;
        if (write(s->poll_stop_fd, &one, sizeof one) != sizeof one)
            log_error("cannot stop the poller thread");
        pthread_join(s->poller, NULL);
    }
    if (s->cq) {
        pthread_mutex_lock(&s->post_lock);
        s->cq_closed = true;
        grpc_completion_queue_shutdown(s->cq);
        pthread_mutex_unlock(&s->post_lock);
    }
    bool threads = false;
    for (int i = 0; i < s->worker_count && s->workers; i++) {
        struct worker *w = &s->workers[i];
        if (!w->started)
            continue;
        threads = true;
        if (!join_by(w->thread, end) ||
            (atomic_load(&w->stand_in_started) && !join_by(w->stand_in, end))) {
            /* Nothing can be freed that the stuck thread may touch. */
            log_error("worker w%d did not stop within shutdown_timeout (or its time limit) + "
                      "%d ms: stuck in code that cannot be interrupted; exiting without it",
                      w->id, STOP_SLACK_MS);
            return -1;
        }
    }
    if (!threads && s->cq) {
        /* Never started: drain here the requests the shutdown failed. */
        for (;;) {
            grpc_event ev =
                grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            if (ev.type == GRPC_OP_COMPLETE && *(enum tag_kind *)ev.tag == TAG_CALL)
                call_unref(ev.tag);
        }
    }
    call_spares_free();
    if (s->grpc)
        grpc_server_destroy(s->grpc);
    /* Every call has been answered or cancelled: the counters are final. */
    if (s->workers && s->port)
        srv_log_stats(s);
    if (s->workers)
        close_workers(s);
    webhook_free(s->webhook);
    wd_destroy(s->watchdog);
    srvm_free(s);
    reload_destroy(&s->reload);
    free(s);
    grpc_shutdown();
    return 0;
}

/* A state a slot has not taken up yet is replaced unused. */
static void publish_engine(void *ctx, int slot, struct script_engine *e, uint64_t generation)
{
    struct worker *w = &((struct server *)ctx)->workers[slot];
    reload_engine_free(atomic_exchange(&w->pending_engine, e));
    atomic_store(&w->generation, generation);
    worker_new_engine(w);
}

static void commit_generation(void *ctx, uint64_t generation, const struct config *cfg)
{
    struct server *s = ctx;
    atomic_store(&s->generation, generation);
    if (s->webhook)
        webhook_reconfigure(s->webhook, &cfg->webhook);
    if (!s->webhook != !cfg->webhook.url)
        log_warn("reload: turning the webhook ([webhook] url) on or off takes effect after a "
                 "restart");
}

static enum reload_result reload(struct server *s, bool force)
{
    struct reload_target t = {.count = s->worker_count,
                              .publish = publish_engine,
                              .commit = commit_generation,
                              .ctx = s};
    int64_t start = script_now_ns();
    enum reload_result rc = reload_build(&s->reload, &t, force);
    if (rc != RELOAD_KEPT)
        srvm_reloaded(s, rc == RELOAD_DONE, script_now_ns() - start);
    return rc;
}

int srv_reload(struct server *s)
{
    return reload(s, true) == RELOAD_FAILED ? -1 : 0;
}

enum reload_result srv_reload_if_changed(struct server *s)
{
    return reload(s, false);
}
