#include "server_internal.h"

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dispatch.h"
#include "health.h"
#include "log.h"
#include "lua_timer.h"
#include "reload.h"
#include "script.h"
#include "stale.h"
#include "watchdog.h"
#include "webhook.h"

/* Work for whoever holds a slot next. */
enum { PEND_IO = 1, PEND_MAIL = 2, PEND_ENGINE = 4 };

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

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

/* Closes `e` (deinit() and the finalizers, under the watchdog). */
static void close_engine(struct worker *w, struct script_engine *e)
{
    wd_busy(w->srv->watchdog, w->id - 1, WD_CLOSING, NULL,
            engine_deadline(e, e->module_count + 1, INT64_MAX), NULL);
    reload_engine_free(e);
    wd_idle(w->srv->watchdog, w->id - 1);
}

void worker_adopt(struct worker *w, struct script_engine *e)
{
    script_engine_attach(e, w->net, &w->ready);
    struct script_engine *old = w->engine;
    w->engine = e;
    if (!old)
        return;
    lua_timer_retire(old);
    if (old->live_tasks == 0 || w->retired_count == sizeof w->retired / sizeof w->retired[0])
        close_engine(w, old);
    else
        w->retired[w->retired_count++] = old;
}

/* Closes the retired states whose last call is done. */
static void close_retired(struct worker *w)
{
    for (size_t i = 0; i < w->retired_count;) {
        struct script_engine *e = w->retired[i];
        if (e->live_tasks > 0) {
            i++;
            continue;
        }
        w->retired[i] = w->retired[--w->retired_count];
        close_engine(w, e);
    }
}

void worker_close_engines(struct worker *w)
{
    struct script_engine *pending = atomic_exchange(&w->pending_engine, NULL);
    if (pending)
        worker_adopt(w, pending);
    for (size_t i = 0; i < w->retired_count; i++)
        close_engine(w, w->retired[i]);
    w->retired_count = 0;
    if (w->engine)
        close_engine(w, w->engine);
    w->engine = NULL;
}

void worker_ring(struct worker *w)
{
    struct server *s = w->srv;
    pthread_mutex_lock(&s->post_lock);
    if (!s->cq_closed)
        grpc_call_start_batch(w->bell, NULL, 0, &w->bell_tag, NULL);
    pthread_mutex_unlock(&s->post_lock);
}

static void notify(struct worker *w, unsigned what)
{
    atomic_fetch_or(&w->pending, what);
    worker_ring(w);
}

void worker_new_engine(struct worker *w) { notify(w, PEND_ENGINE); }

/* The reply to a call that is done: counted, and sent unless the watchdog
 * answered it already. */
static void answer(struct call *c)
{
    struct worker *w = c->w;
    struct server *s = c->srv;
    const struct dispatch_reply *r = &c->out;
    srvm_call_end(w, c->method, r, true);
    grpc_slice_unref(c->req);
    c->req = grpc_empty_slice();
    w->live_calls--;
    close_retired(w);
    /* Zero: the watchdog answered it, the slot was stuck. */
    if (atomic_exchange(&c->token, 0) != 0) {
        srvm_answered(s, w->id, c->method, r->status, c->start_ns);
        call_reply(c, r->status, r->fail.message, r->data, r->len);
    }
    call_unref(c); /* the reference of the running call */
}

static void task_ready(struct task *t);

/* Runs `c`'s scripts on `w` from the start (`start`) or on from a wait, with
 * the watchdog watching; answers the call when they are done. */
static void run(struct worker *w, struct call *c, bool start)
{
    struct server *s = w->srv;
    const struct method *m = &s->methods[c->method];
    const struct script_engine *e = start ? w->engine : c->d.e;
    wd_busy(s->watchdog, w->id - 1, WD_CALL, c,
            engine_deadline(e, e->module_count, c->deadline_ns), &c->token);
    enum dispatch_state st;
    if (start)
        st = dispatch_start(&c->d, w->engine, m->hook, m->version, GRPC_SLICE_START_PTR(c->req),
                            GRPC_SLICE_LENGTH(c->req), c->deadline_ns, &c->out, task_ready);
    else
        st = dispatch_resume(&c->d);
    wd_idle(s->watchdog, w->id - 1);
    if (st == DISPATCH_DONE) {
        answer(c);
        return;
    }
    /* It waits: learn if the broker gives up on it meanwhile. */
    call_watch_close(c);
}

static void task_ready(struct task *t)
{
    struct call *c = CONTAINER(CONTAINER(t, struct dispatch, task), struct call, d);
    run(c->w, c, false);
}

/* A hook call begins on slot `w`. */
static void begin(struct worker *w, struct call *c)
{
    struct server *s = w->srv;
    const struct method *m = &s->methods[c->method];
    c->w = w;
    c->state = CALL_RUNNING;
    atomic_store(&c->token, 1);
    w->live_calls++;
    if (stale_is_unhandled(w->engine, m->hook)) {
        srvm_unhandled(w, m->hook);
        stale_note(&s->stale, m->hook, m->version, script_now_ns());
    }
    c->req = call_read_payload(c->payload);
    /* The webhook gets the request as the broker sent it, whatever the
     * scripts answer; a hook only the webhook wants runs no script. */
    const struct script_hook_spec *spec = &w->engine->specs[m->hook];
    if (spec->webhook && s->webhook)
        webhook_offer(s->webhook, w->id, m->hook, m->version, GRPC_SLICE_START_PTR(c->req),
                      GRPC_SLICE_LENGTH(c->req), webhook_now_ms());
    if (spec->webhook && !spec->registered) {
        dispatch_no_handler(&c->out, m->hook);
        answer(c);
        return;
    }
    c->deadline_ns = call_deadline_ns(c->deadline);
    if (c->deadline_ns <= script_now_ns()) {
        /* The broker gave up before the call got here: nothing to run. */
        dispatch_refuse(&c->out, FAIL_LATE, "%s: past its deadline when a worker took it up; "
                        "not run", hooks_rpc(m->hook, m->version));
        answer(c);
        return;
    }
    run(w, c, true);
}

static bool try_hold(struct worker *w)
{
    bool free_ = false;
    return atomic_compare_exchange_strong(&w->held, &free_, true);
}

/* Takes the calls other threads handed over: cancelled ones, new ones that
 * found every slot held, and OnProviderLoaded calls whose reload is done. */
static void take_mail(struct worker *w)
{
    pthread_mutex_lock(&w->mail_lock);
    struct call *c = w->mail;
    w->mail = NULL;
    pthread_mutex_unlock(&w->mail_lock);
    while (c) {
        struct call *next = c->next_mail;
        if (c->deferred) {
            c->deferred = false;
            begin(w, c);
        } else {
            if (c->state == CALL_RUNNING && c->cancelled && dispatch_cancel(&c->d))
                answer(c);
            call_unref(c); /* the close completion's reference */
        }
        c = next;
    }
}

static void rearm_poller(struct worker *w)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = w};
    epoll_ctl(w->srv->poll_fd, EPOLL_CTL_MOD, loop_fd(w->net->loop), &ev);
}

/* Everything pending on a slot this thread holds. */
static void work(struct worker *w)
{
    unsigned p = atomic_exchange(&w->pending, 0);
    /* Also before PEND_ENGINE is seen: a thread that found the slot on
     * the new generation may bring it a call first. */
    if (atomic_load(&w->pending_engine)) {
        struct script_engine *e = atomic_exchange(&w->pending_engine, NULL);
        if (e)
            worker_adopt(w, e);
    }
    if (p & PEND_IO) {
        loop_dispatch(w->net->loop);
        rearm_poller(w);
    }
    if (p & PEND_MAIL)
        take_mail(w);
    struct task *t;
    while ((t = task_queue_pop(&w->ready)))
        t->ready(t);
}

/* Lets go of a slot, and takes it again while work arrived meanwhile: work
 * left by a thread that found the slot held is done by its holder. */
static void release(struct worker *w)
{
    for (;;) {
        atomic_store(&w->held, false);
        if (atomic_load(&w->pending) == 0 || !try_hold(w))
            return;
        work(w);
    }
}

/* Work for slot `w` from this thread: done now if the slot is free, else
 * left for the thread that holds it. */
static void poke(struct worker *w, unsigned what)
{
    atomic_fetch_or(&w->pending, what);
    if (!try_hold(w))
        return;
    work(w);
    release(w);
}

static void hand_over(struct worker *w, struct call *c)
{
    pthread_mutex_lock(&w->mail_lock);
    c->next_mail = w->mail;
    w->mail = c;
    pthread_mutex_unlock(&w->mail_lock);
    poke(w, PEND_MAIL);
}

/* True if `w` has (or is about to take up) a state of the committed
 * generation: only such slots take new calls, so that from the commit of
 * a reload on every call runs the new scripts. A commit gives slots their
 * states before it moves the generation on: in between, a slot may be one
 * ahead, and it counts as current too (else a call arriving then found no
 * slot at all and was refused). */
static bool current(const struct worker *w)
{
    return atomic_load(&w->generation) >= atomic_load(&w->srv->generation);
}

/* A free slot for a new call: `home` first, else any other, skipping the
 * slots that have max_waiting calls. NULL when every free slot is full. */
static struct worker *hold_slot(struct server *s, struct worker *home, bool *full)
{
    *full = false;
    for (int i = 0; i < s->worker_count; i++) {
        struct worker *w = &s->workers[(home->id - 1 + i) % s->worker_count];
        if (!current(w) || !try_hold(w))
            continue;
        if (w->live_calls < s->max_waiting)
            return w;
        *full = true;
        work(w);
        release(w);
    }
    return NULL;
}

/* A hook call answered before any slot takes it (counted on `home`). */
static void refuse(struct worker *home, struct call *c)
{
    srvm_call_end(home, c->method, &c->out, false);
    srvm_answered(c->srv, home->id, c->method, c->out.status, c->start_ns);
    call_reply(c, c->out.status, c->out.fail.message, NULL, 0);
    call_unref(c);
}

/* The reload thread takes OnProviderLoaded calls: the scripts are loaded
 * again off the workers' threads, and the call runs on the new ones. */
static void queue_reload(struct call *c)
{
    struct server *s = c->srv;
    pthread_mutex_lock(&s->reload_lock);
    c->deferred = true;
    c->next_mail = s->reload_queue;
    s->reload_queue = c;
    pthread_cond_signal(&s->reload_cond);
    pthread_mutex_unlock(&s->reload_lock);
}

/* A request arrived (on thread `home`'s slot first): a new request takes
 * its place, then the call is served. */
static void arrived(struct worker *home, struct call *c)
{
    struct server *s = home->srv;
    call_post(s, c->method);
    if (c->method < 0) {
        char *path = grpc_slice_to_c_string(c->details.method);
        char msg[256];
        snprintf(msg, sizeof msg, "Method not found: %s", path);
        log_warn("call to unknown method %s", path);
        gpr_free(path);
        call_reply(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL, 0);
        call_unref(c);
        return;
    }
    if (c->method == HEALTH_METHOD) {
        /* A check without a message asks about the whole server, as an
         * empty HealthCheckRequest would. */
        int64_t start = srvm_call_start(home, c->method, false);
        grpc_slice req = c->payload ? call_read_payload(c->payload) : grpc_empty_slice();
        health_check(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req),
                     !atomic_load(&s->stopping) && health_scripts_serving(), &c->out);
        grpc_slice_unref(req);
        srvm_answered(s, home->id, c->method, c->out.status, start);
        call_reply(c, c->out.status, c->out.fail.message, c->out.data, c->out.len);
        call_unref(c);
        return;
    }
    c->start_ns = srvm_call_start(home, c->method, true);
    if (!c->payload) {
        dispatch_refuse(&c->out, FAIL_MALFORMED, "the call carried no request message");
        refuse(home, c);
        return;
    }
    if (s->methods[c->method].hook == HOOK_PROVIDER_LOADED) {
        queue_reload(c);
        return;
    }
    bool full;
    struct worker *w = hold_slot(s, home, &full);
    if (!w && full) {
        dispatch_refuse(&c->out, FAIL_OVERLOADED,
                        "every worker has %u calls in progress (max_waiting_calls): call refused",
                        s->max_waiting);
        refuse(home, c);
        return;
    }
    if (!w) {
        /* Every slot is held by another thread: the first that is not
         * stuck takes the call when it is done with what it runs. */
        for (int i = 0; i < s->worker_count; i++) {
            struct worker *o = &s->workers[(home->id - 1 + i) % s->worker_count];
            if (!atomic_load(&o->stuck) && current(o)) {
                c->deferred = true;
                hand_over(o, c);
                return;
            }
        }
        dispatch_refuse(&c->out, FAIL_STUCK,
                        "exhookd workers are stuck in code that cannot be interrupted; call not "
                        "run");
        refuse(home, c);
        return;
    }
    work(w);
    begin(w, c);
    release(w);
}

void *worker_main(void *arg)
{
    struct worker *home = arg;
    struct server *s = home->srv;
    char name[16];
    snprintf(name, sizeof name, "w%d", home->id);
    log_set_thread_name(name);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        enum tag_kind kind = *(enum tag_kind *)ev.tag;
        if (kind == TAG_BELL) {
            poke(CONTAINER(ev.tag, struct worker, bell_tag), PEND_IO);
        } else if (kind == TAG_CLOSE) {
            struct call *c = CONTAINER(ev.tag, struct call, close);
            if (c->cancelled && c->w)
                hand_over(c->w, c);
            else
                call_unref(c);
        } else {
            struct call *c = ev.tag;
            if (c->state == CALL_WAITING && ev.success)
                arrived(home, c);
            else
                call_unref(c); /* a request the shutdown failed, or a reply sent */
        }
    }
    call_spares_free();
    /* The home slot's states close on its own thread, so that a finalizer
     * that never returns holds this thread, which the stop can give up on.
     * Another thread may still be finishing its work there. */
    while (!try_hold(home))
        usleep(1000);
    worker_close_engines(home);
    atomic_store(&home->held, false);
    return NULL;
}

/* One thread for every slot: waits on the slots' loops, and wakes a worker
 * thread for a slot whose loop has something ready. Each loop is watched
 * once (EPOLLONESHOT) until its slot has run it. */
void *worker_poller_main(void *arg)
{
    struct server *s = arg;
    log_set_thread_name("poller");
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(s->poll_fd, evs, 16, -1);
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr)
                return NULL;
            worker_ring(evs[i].data.ptr);
        }
    }
}

/* The first slot of the committed generation from slot `i` on. There is
 * one: a slot is given its state before the generation is committed. */
static struct worker *current_slot(struct server *s, int i)
{
    for (int k = i;; k++) {
        struct worker *w = &s->workers[k % s->worker_count];
        if (current(w))
            return w;
    }
}

void *worker_reloader_main(void *arg)
{
    struct server *s = arg;
    log_set_thread_name("reload");
    pthread_mutex_lock(&s->reload_lock);
    for (;;) {
        while (!s->reload_queue && !s->reload_quit)
            pthread_cond_wait(&s->reload_cond, &s->reload_lock);
        struct call *calls = s->reload_queue;
        s->reload_queue = NULL;
        if (!calls && s->reload_quit)
            break;
        pthread_mutex_unlock(&s->reload_lock);
        /* The broker loads the provider: the moment edited scripts take
         * effect. One reload serves every call that was waiting for it,
         * and the calls run on a slot of the generation it left. */
        srv_reload_if_changed(s);
        for (int i = 0; calls; i++) {
            struct call *next = calls->next_mail;
            hand_over(current_slot(s, i), calls);
            calls = next;
        }
        pthread_mutex_lock(&s->reload_lock);
    }
    pthread_mutex_unlock(&s->reload_lock);
    call_spares_free();
    return NULL;
}

/* "module example" or "modules a, b": those of the slot's scripts that
 * handle `hook`. The slot is held by the stuck thread, which does not swap
 * its state while stuck. */
static void describe_modules(struct worker *w, enum hook_id hook, char *buf, size_t len)
{
    char names[200] = "";
    size_t n = 0, count = 0;
    const struct script_engine *e = w->engine;
    for (size_t i = 0; e && i < e->module_count; i++) {
        if (e->modules[i].handlers[hook] == LUA_NOREF || n >= sizeof names)
            continue;
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", count ? ", " : "",
                              e->modules[i].name);
        count++;
    }
    snprintf(buf, len, "%s%s", count == 1 ? "module " : count ? "modules " : "no module", names);
}

/* The watchdog found slot `slot` stuck: answer the call it holds, if it
 * still holds it, and tell the owner of the server (the master process then
 * replaces this one). The other threads go on serving with the other
 * slots. */
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
            return; /* Answered meanwhile: not stuck after all. */
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
    atomic_store(&w->stuck, true);
    /* A thread takes the stuck one's place: the other slots, if any, go on
     * serving at full strength; calls no slot can take are refused. */
    if (!atomic_exchange(&w->stand_in_started, true) &&
        pthread_create(&w->stand_in, NULL, worker_main, w) != 0) {
        atomic_store(&w->stand_in_started, false);
        log_error("cannot start a thread in place of worker w%d", w->id);
    }
    /* The owner first: whoever gets the answer can count on it knowing. */
    if (s->on_stuck)
        s->on_stuck(s->on_stuck_ctx);
    /* Whatever the outcome, the call stays with its slot. */
    if (c)
        call_reply(c, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL, 0);
}
