/* exhook-bench: a load generator for ExHook servers that calls them the way
 * an EMQX broker does: a pool of HTTP/2 connections, many unary calls in
 * flight on each, the calls of one MQTT client in order on one connection,
 * and request bodies filled like a broker fills them. Every reply is checked
 * against the decisions of scripts/example.lua, so a fast wrong answer is
 * never counted as a good one; or, for a server running other scripts,
 * counted by status and verdict and held against the expectations given.
 *
 * This file is the connections, the client threads and their call loops
 * (closed and open loop). The options are read in bench_cli.c; what is sent
 * and what must come back is in bench_requests.c; latencies and the result
 * line in bench_stats.c. */

#define _GNU_SOURCE
#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench_cli.h"
#include "bench_requests.h"
#include "bench_stats.h"
#include "hooks.h"

#define CONNECT_TIMEOUT_MS 5000 /* all connections must be up by then */
#define SHOWN_ERRORS 5

/* ---- settings and shared state ------------------------------------------ */

static struct bcli_opts opt;

static char g_paths[HOOK_COUNT][96];
static int64_t g_start, g_warm_end, g_end; /* monotonic ns */
static atomic_llong g_budget;              /* measured calls handed out (with -n) */
static atomic_llong g_shown;               /* errors printed so far */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gpr_timespec after_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* ---- calls -------------------------------------------------------------- */

struct conn {
    grpc_channel *ch;
    void *method[HOOK_COUNT]; /* registered method handles */
};

struct worker;

/* One call in flight; in mix, one simulated client. */
struct slot {
    struct worker *w;
    struct conn *conn;
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array imd, tmd;
    grpc_status_code status;
    grpc_slice details;
    const struct breq_step *step;
    unsigned ident;
    unsigned next_step; /* mix: the client's next call */
    bool client_ok;     /* mix: every call of this client so far was right */
    int64_t t0;         /* send time, or scheduled send time in open loop */
    bool measured;
    bool rest_pending; /* --split-frames: the headers are out, the rest is not */
};

struct worker {
    int id;
    pthread_t thread, sched_thread;
    grpc_completion_queue *cq;
    struct slot *slots;
    size_t nslots;
    uint64_t seq; /* position in the scenario's cycle / client counter */
    unsigned inflight;
    struct bstats st; /* measured calls; the warm-up's only in warm_errors */
    /* open loop: the scheduler thread and the completion thread share these */
    pthread_mutex_t mu;
    struct slot **freeq; /* idle slots, oldest first */
    size_t fq_head, fq_len;
    uint64_t next_tick, due_ticks; /* ticks [next_tick, due_ticks) wait for a slot */
    bool sched_done;
    double rate;
    long long share; /* -n: this worker's measured ticks */
};

static void pick_step(struct worker *w, struct slot *s)
{
    const struct breq_scenario *sc = opt.sc;
    if (sc->sequential) {
        if (s->next_step == 0) { /* a new client */
            s->ident =
                (unsigned)((w->seq++ * (uint64_t)opt.threads + (uint64_t)w->id) % breq_nids());
            s->client_ok = true;
        }
        s->step = &sc->steps[s->next_step];
        s->next_step = (s->next_step + 1) % sc->n;
    } else {
        uint64_t k = w->seq++;
        s->step = &sc->steps[k % sc->n];
        s->ident = (unsigned)((k / sc->n) % breq_nids());
    }
}

/* The ops of one call: [0] sends the headers, the others the message, the
 * end of the request and the receiving of the reply. */
enum { OPS_ALL = 6 };

static void fill_ops(struct slot *s, grpc_op ops[OPS_ALL])
{
    memset(ops, 0, OPS_ALL * sizeof *ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->imd;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->tmd;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
}

static void start_batch(struct slot *s, const grpc_op *ops, size_t n)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, s, NULL);
    if (e != GRPC_CALL_OK) {
        /* Only a bug here gets this far: the batches are always the same. */
        fprintf(stderr, "exhook-bench: grpc_call_start_batch failed (%d)\n", (int)e);
        abort();
    }
}

static void start_call(struct worker *w, struct slot *s, int64_t t0, bool measured)
{
    pick_step(w, s);
    s->t0 = t0;
    s->measured = measured;
    s->call = grpc_channel_create_registered_call(s->conn->ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                                  s->conn->method[s->step->hook],
                                                  after_ms(opt.deadline_ms), NULL);
    s->send = grpc_raw_byte_buffer_create(breq_body(s->step - opt.sc->steps, s->ident), 1);
    s->recv = NULL;
    grpc_op ops[OPS_ALL];
    fill_ops(s, ops);
    /* With --split-frames the headers go alone, and the rest follows in
     * send_rest once that batch completes, by when gRPC has written the
     * headers: the server gets the HEADERS and the DATA of the call in two
     * TCP segments, as from EMQX (a capture counts 2.0 segments a call at
     * 2,000 calls/s). Otherwise one batch, and one segment a call. */
    s->rest_pending = opt.split_frames;
    start_batch(s, ops, opt.split_frames ? 1 : OPS_ALL);
    w->inflight++;
}

/* --split-frames: the headers were written; now the message and the rest. */
static void send_rest(struct slot *s)
{
    grpc_op ops[OPS_ALL];
    fill_ops(s, ops);
    s->rest_pending = false;
    start_batch(s, ops + 1, OPS_ALL - 1);
}

static void report_error(const struct slot *s, const char *why)
{
    if (atomic_fetch_add(&g_shown, 1) < SHOWN_ERRORS)
        fprintf(stderr, "exhook-bench: error: %s [%s]%s: %s\n", g_paths[s->step->hook],
                s->step->label, s->measured ? "" : " (warm-up)", why);
}

static void finish_call(struct worker *w, struct slot *s, bool batch_ok, int64_t now)
{
    char why[768];
    bool ok;
    struct breq_reply reply = {0};
    if (opt.check == BCLI_CHECK_EXAMPLE) {
        ok = breq_check_reply(s->step, batch_ok, s->status, s->details, s->recv, why, sizeof why);
    } else {
        breq_classify(s->step, s->ident, batch_ok, s->status, s->recv, &reply);
        ok = breq_judge(&opt.expect, s->step, s->ident, &reply, s->details, why, sizeof why);
    }
    if (s->measured) {
        bstats_record(&w->st, s->t0, now, ok);
        if (opt.check == BCLI_CHECK_COUNT)
            bstats_count(&w->st, reply.status, reply.verdict);
        if (opt.sc->sequential && s->client_ok && ok && s->step == &opt.sc->steps[opt.sc->n - 1])
            w->st.clients++;
    } else {
        w->st.warm_errors += !ok;
    }
    s->client_ok &= ok;
    if (!ok)
        report_error(s, why);

    grpc_byte_buffer_destroy(s->send);
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    grpc_slice_unref(s->details);
    s->details = grpc_empty_slice();
    grpc_call_unref(s->call);
    s->call = NULL;
    /* The arrays are reused; the call appended to them from `count`. */
    s->imd.count = s->tmd.count = 0;
    w->inflight--;
}

/* Closed loop: may a call start now, and is it measured? */
static bool may_start(int64_t t0, bool *measured)
{
    *measured = t0 >= g_warm_end;
    if (!*measured)
        return true;
    if (opt.calls > 0)
        return atomic_fetch_add(&g_budget, 1) < opt.calls;
    return t0 < g_end;
}

/* ---- open loop ---------------------------------------------------------- */

/* Worker i of T sends at i/T of the interval, so that the threads' ticks
 * interleave instead of arriving in bursts of T. */
static int64_t tick_time(const struct worker *w, uint64_t k)
{
    return g_start + (int64_t)(((double)k + (double)w->id / opt.threads) * 1e9 / w->rate);
}

/* Hands the oldest call that is due and waits for a slot to `s`, if any.
 * Called with w->mu held. */
static bool take_tick(struct worker *w, struct slot *s)
{
    if (w->next_tick >= w->due_ticks)
        return false;
    int64_t t = tick_time(w, w->next_tick++);
    start_call(w, s, t, t >= g_warm_end);
    return true;
}

/* Sends each call at its scheduled time. When every slot is busy the call
 * waits in the backlog, and the wait counts in its latency: the latency of
 * an open-loop run is what a broker producing calls at this rate sees. */
static void *sched_main(void *arg)
{
    struct worker *w = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* lateness would be latency */
    uint64_t k = 0;
    long long measured = 0;
    for (;;) {
        int64_t now = now_ns(), t;
        uint64_t k0 = k;
        bool stop = false;
        while ((t = tick_time(w, k)) <= now) {
            bool m = t >= g_warm_end;
            if (m && (opt.calls > 0 ? measured >= w->share : t >= g_end)) {
                stop = true;
                break;
            }
            measured += m;
            k++;
        }
        if (!stop && k == k0) {
            /* Nothing due yet: sleep until the next tick. Checking the stop
             * condition again on waking keeps the last tick from slipping. */
            struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
            continue;
        }
        pthread_mutex_lock(&w->mu);
        w->due_ticks = k;
        while (w->fq_len > 0 && w->next_tick < w->due_ticks) {
            struct slot *s = w->freeq[w->fq_head];
            w->fq_head = (w->fq_head + 1) % w->nslots;
            w->fq_len--;
            take_tick(w, s);
        }
        w->sched_done = stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            return NULL;
    }
}

/* ---- worker ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bool open = opt.rate > 0;
    if (open) {
        pthread_create(&w->sched_thread, NULL, sched_main, w);
    } else {
        int64_t now = now_ns();
        bool m;
        for (size_t i = 0; i < w->nslots; i++)
            if (may_start(now, &m))
                start_call(w, &w->slots[i], now, m);
    }
    for (;;) {
        if (open) {
            pthread_mutex_lock(&w->mu);
            bool done = w->sched_done && w->inflight == 0;
            pthread_mutex_unlock(&w->mu);
            if (done)
                break;
        } else if (w->inflight == 0) {
            break;
        }
        /* Open loop wakes now and then to see whether the scheduler is done. */
        grpc_event ev = grpc_completion_queue_next(
            w->cq, open ? after_ms(20) : gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT)
            continue;
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        struct slot *s = ev.tag;
        if (s->rest_pending) {
            /* Even if the headers failed: the rest then fails too, and the
             * status says why. */
            send_rest(s);
            continue;
        }
        int64_t now = now_ns();
        if (open) {
            pthread_mutex_lock(&w->mu);
            finish_call(w, s, ev.success, now);
            if (!take_tick(w, s)) {
                w->freeq[(w->fq_head + w->fq_len++) % w->nslots] = s;
            }
            pthread_mutex_unlock(&w->mu);
        } else {
            finish_call(w, s, ev.success, now);
            bool m;
            if (may_start(now, &m))
                start_call(w, s, now, m);
        }
    }
    if (open)
        pthread_join(w->sched_thread, NULL);
    return NULL;
}

/* ---- connections -------------------------------------------------------- */

static const char *const state_names[] = {"IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE",
                                          "SHUTDOWN"};

/* Connects every channel, so that a missing server is reported at once and
 * the measured run starts with the whole pool up. */
static bool connect_all(struct conn *conns, int n)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = after_ms(CONNECT_TIMEOUT_MS);
    int pending = 0, bad = -1;
    grpc_connectivity_state bad_state = GRPC_CHANNEL_READY;
    for (int i = 0; i < n; i++) {
        grpc_connectivity_state st = grpc_channel_check_connectivity_state(conns[i].ch, 1);
        if (st != GRPC_CHANNEL_READY) {
            grpc_channel_watch_connectivity_state(conns[i].ch, st, deadline, cq,
                                                  (void *)(intptr_t)i);
            pending++;
        }
    }
    while (pending > 0) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        pending--;
        int i = (int)(intptr_t)ev.tag;
        grpc_connectivity_state st = grpc_channel_check_connectivity_state(conns[i].ch, 0);
        if (st == GRPC_CHANNEL_READY)
            continue;
        if (!ev.success || st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) {
            if (bad < 0)
                bad = i, bad_state = st;
        } else if (bad < 0) {
            grpc_channel_watch_connectivity_state(conns[i].ch, st, deadline, cq, ev.tag);
            pending++;
        }
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    if (bad >= 0)
        fprintf(stderr,
                "exhook-bench: cannot connect to %s (connection %d of %d is %s%s); "
                "is the server running there, without TLS?\n",
                opt.target, bad + 1, n, state_names[bad_state],
                bad_state == GRPC_CHANNEL_TRANSIENT_FAILURE ? "" : " after 5 s");
    return bad < 0;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bcli_parse(argc, argv, &opt);
    for (int h = 0; h < HOOK_COUNT; h++)
        hooks_path(g_paths[h], sizeof g_paths[h], h, opt.version);
    breq_build(opt.sc, opt.version, &opt.content);

    grpc_init();
    /* Every connection its own TCP connection: a local subchannel pool per
     * channel, and distinct args so no two channels could share one anyway. */
    struct conn *conns = calloc(opt.connections, sizeof *conns);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    for (int i = 0; i < opt.connections; i++) {
        grpc_arg args[2] = {
            {.type = GRPC_ARG_INTEGER,
             .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
             .value.integer = 1},
            {.type = GRPC_ARG_INTEGER, .key = "exhook_bench.connection", .value.integer = i},
        };
        grpc_channel_args ca = {.num_args = 2, .args = args};
        conns[i].ch = grpc_channel_create(opt.target, creds, &ca);
        for (int h = 0; h < HOOK_COUNT; h++)
            conns[i].method[h] = grpc_channel_register_call(conns[i].ch, g_paths[h], NULL, NULL);
    }
    grpc_channel_credentials_release(creds);

    if (!opt.quiet) {
        char load[64], stop[64];
        if (opt.rate > 0)
            snprintf(load, sizeof load, "open loop at %.0f calls/s", opt.rate);
        else
            snprintf(load, sizeof load, "closed loop");
        if (opt.calls > 0)
            snprintf(stop, sizeof stop, "calls=%lld", opt.calls);
        else
            snprintf(stop, sizeof stop, "duration=%gs", opt.duration);
        printf("exhook-bench: target=%s interface=v%d (/emqx.exhook.v%d.HookProvider) rpc=%s\n"
               "exhook-bench: connections=%d in_flight=%d threads=%d warmup=%gs %s, %s, %s\n",
               opt.target, opt.version, opt.version, opt.sc->name, opt.connections, opt.in_flight,
               opt.threads, opt.warmup, stop, load,
               opt.split_frames ? "headers and message in separate writes" : "one write per call");
        fflush(stdout);
    }
    int64_t t_conn = now_ns();
    bool connected = connect_all(conns, opt.connections);
    if (connected && !opt.quiet) {
        printf("exhook-bench: %d connections ready in %.1f ms\n", opt.connections,
               (double)(now_ns() - t_conn) / 1e6);
        fflush(stdout);
    }

    struct worker *workers = calloc(opt.threads, sizeof *workers);
    if (connected) {
        g_start = now_ns();
        g_warm_end = g_start + (int64_t)(opt.warmup * 1e9);
        g_end = g_warm_end + (int64_t)(opt.duration * 1e9);
        for (int t = 0; t < opt.threads; t++) {
            struct worker *w = &workers[t];
            w->id = t;
            w->cq = grpc_completion_queue_create_for_next(NULL);
            pthread_mutex_init(&w->mu, NULL);
            int nconn = (opt.connections - t + opt.threads - 1) / opt.threads;
            w->nslots = (size_t)nconn * opt.in_flight;
            w->slots = calloc(w->nslots, sizeof *w->slots);
            w->freeq = calloc(w->nslots, sizeof *w->freeq);
            /* Slots interleave the connections so that idle slots, taken
             * oldest first, spread calls over the whole pool. */
            for (size_t i = 0; i < w->nslots; i++) {
                struct slot *s = &w->slots[i];
                s->w = w;
                s->conn = &conns[t + (int)(i % nconn) * opt.threads];
                s->details = grpc_empty_slice();
                grpc_metadata_array_init(&s->imd);
                grpc_metadata_array_init(&s->tmd);
                w->freeq[i] = s;
            }
            w->fq_len = w->nslots;
            w->rate = opt.rate / opt.threads;
            w->share = opt.calls / opt.threads + (t < opt.calls % opt.threads);
            pthread_create(&w->thread, NULL, worker_main, w);
        }
        for (int t = 0; t < opt.threads; t++)
            pthread_join(workers[t].thread, NULL);
    }

    struct bstats total = {.last_done = g_warm_end};
    for (int t = 0; t < opt.threads; t++)
        bstats_merge(&total, &workers[t].st);
    if (connected) {
        struct bstats_run run = {.rpc = opt.sc->name,
                                 .version = opt.version,
                                 .connections = opt.connections,
                                 .in_flight = opt.in_flight,
                                 .threads = opt.threads,
                                 .count_clients = opt.sc->sequential,
                                 .count_replies = opt.check == BCLI_CHECK_COUNT,
                                 .rate = opt.rate};
        bstats_print(&total, &run, g_warm_end);
    }

    /* Everything goes, so that a leak checker sees only real leaks. */
    bstats_free(&total);
    for (int i = 0; i < opt.connections; i++)
        grpc_channel_destroy(conns[i].ch);
    for (int t = 0; connected && t < opt.threads; t++) {
        struct worker *w = &workers[t];
        grpc_completion_queue_shutdown(w->cq);
        while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(w->cq);
        for (size_t i = 0; i < w->nslots; i++) {
            grpc_metadata_array_destroy(&w->slots[i].imd);
            grpc_metadata_array_destroy(&w->slots[i].tmd);
        }
        pthread_mutex_destroy(&w->mu);
        free(w->slots);
        free(w->freeq);
        bstats_free(&w->st);
    }
    free(workers);
    free(conns);
    breq_free();
    bcli_free(&opt);
    grpc_shutdown();

    if (!connected)
        return 1;
    bool clean = total.errors + total.warm_errors <= (uint64_t)opt.max_errors && total.calls > 0;
    return clean ? 0 : 1;
}
