#include "task.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "script.h"

/* Coroutines kept for reuse per engine: enough for the calls of a busy
 * worker, few enough that an idle one holds little. */
#define POOL_MAX 64

static struct script_engine *engine_of(lua_State *L)
{
    return *(struct script_engine **)lua_getextraspace(L);
}

int task_open(struct task *t, struct script_engine *e, void (*ready)(struct task *))
{
    memset(t, 0, sizeof *t);
    t->e = e;
    t->ready = ready;
    t->deadline_ns = INT64_MAX;
    if (e->pool_len > 0) {
        t->co_ref = e->pool[--e->pool_len];
        lua_rawgeti(e->L, LUA_REGISTRYINDEX, t->co_ref);
        t->co = lua_tothread(e->L, -1);
        lua_pop(e->L, 1);
    } else {
        if (!lua_checkstack(e->L, 2))
            return -1;
        /* lua_newthread raises only on memory, which a protected call
         * around this is not worth: the state is at its limit anyway. */
        t->co = lua_newthread(e->L);
        t->co_ref = luaL_ref(e->L, LUA_REGISTRYINDEX);
    }
    e->live_tasks++;
    return 0;
}

void task_close(struct task *t, bool clean)
{
    struct script_engine *e = t->e;
    if (!e)
        return;
    if (clean && e->pool_len < POOL_MAX && lua_status(t->co) == LUA_OK) {
        lua_settop(t->co, 0);
        e->pool[e->pool_len++] = t->co_ref;
    } else {
        lua_resetthread(t->co);
        luaL_unref(e->L, LUA_REGISTRYINDEX, t->co_ref);
    }
    e->live_tasks--;
    t->e = NULL;
    t->co = NULL;
}

static void task_wake(struct task *t)
{
    struct task_queue *q = t->e->ready;
    if (t->queued)
        return;
    t->queued = true;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
}

/* The owner, woken, sees that the wait is still pending and abandons it;
 * unless the operation completed meanwhile, and the task goes on. */
static void deadline_passed(struct loop_timer *timer)
{
    task_wake(timer->ctx);
}

static int run_push(lua_State *L)
{
    struct wait *w = lua_touserdata(L, 1);
    lua_pop(L, 1);
    return w->push(L, w->op);
}

/* The wait's results, onto `t`'s coroutine: built in a protected call on
 * the state's main thread (not running now), so that running out of memory
 * there is the waiting function's `nil, err`, not an error nothing
 * catches. Returns how many. */
static int push_results(struct task *t)
{
    lua_State *L = t->e->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, run_push);
    lua_pushlightuserdata(L, &t->wait);
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    int n = lua_gettop(L) - base;
    if (st != LUA_OK || !lua_checkstack(t->co, n + 2)) {
        if (st != LUA_OK)
            t->wait.cancel(t->wait.op); /* frees what push left */
        lua_settop(L, base);
        lua_pushnil(t->co);
        lua_pushliteral(t->co, "out of memory (memory_limit) reading the result");
        return 2;
    }
    lua_xmove(L, t->co, n);
    return n;
}

int task_resume(struct task *t, int nargs, int *nres)
{
    struct script_engine *e = t->e;
    if (t->waiting) {
        t->waiting = false;
        loop_timer_stop(e->net->loop, &t->timer);
        nargs = push_results(t);
    }
    struct task *outer = e->running;
    e->running = t;
    e->current_module = t->module;
    e->current_hook = t->hook;
    e->deadline_ns = t->deadline_ns;
    int st = lua_resume(t->co, e->L, nargs, nres);
    e->running = outer;
    e->deadline_ns = outer ? outer->deadline_ns : INT64_MAX;
    e->current_module = outer ? outer->module : NULL;
    e->current_hook = outer ? outer->hook : NULL;
    if (st == LUA_YIELD && !t->waiting) {
        lua_pushstring(t->co, "coroutine.yield called outside a coroutine of the script's own");
        return LUA_ERRRUN;
    }
    if (st == LUA_YIELD && t->deadline_ns != INT64_MAX) {
        loop_timer_init(&t->timer, deadline_passed, t);
        loop_timer_start(e->net->loop, &t->timer, t->deadline_ns);
    }
    return st;
}

void task_abandon(struct task *t, enum failure_kind kind, struct failure *f)
{
    struct wait *w = &t->wait;
    long ms = (long)((loop_now_ns() - w->since_ns) / 1000000);
    failure_set(f, kind, t->module, "module '%s' %s: waiting for %s after %ld ms",
                t->module ? t->module : "?", t->handler ? t->handler : "?", w->what, ms);
    if (t->waiting) {
        t->waiting = false;
        loop_timer_stop(t->e->net->loop, &t->timer);
        w->cancel(w->op);
    }
}

void task_failure(struct task *t, lua_State *L, int st, struct failure *f)
{
    struct script_engine *e = t->e;
    const char *module = t->module ? t->module : "?";
    char where[sizeof e->timeout_where];
    snprintf(where, sizeof where, "%s", e->timeout_where);
    if (script_clear_timeout(e, L)) {
        long ms = (long)((loop_now_ns() - t->started_ns) / 1000000);
        failure_set(f, FAIL_TIME_LIMIT, t->module, "module '%s' %s: stopped at %s after %ld ms",
                    module, t->handler, where, ms);
    } else if (st == LUA_ERRMEM) {
        failure_set(f, FAIL_MEMORY, t->module, "module '%s' %s: out of memory (memory_limit)",
                    module, t->handler);
    } else {
        const char *msg = lua_tostring(L, -1);
        if (!msg)
            msg = "error object is not a string";
        size_t len = script_error_length(msg);
        failure_set(f, FAIL_RUNTIME, t->module, "module '%s' %s: %.*s", module, t->handler,
                    (int)strcspn(msg, "\n"), msg);
        f->traceback = msg[len] ? msg + len + 1 : NULL;
    }
}

struct task *task_queue_pop(struct task_queue *q)
{
    struct task *t = q->head;
    if (t) {
        q->head = t->next;
        if (!q->head)
            q->tail = NULL;
        t->next = NULL;
        t->queued = false;
    }
    return t;
}

struct task *task_current(lua_State *L)
{
    struct task *t = engine_of(L)->running;
    return t && t->co == L ? t : NULL;
}

/* The waiting functions' side (wait.h). */

struct wait *wait_begin(lua_State *L, const char *fname, struct wait_ctx *ctx)
{
    struct script_engine *e = engine_of(L);
    struct task *t = e->running;
    if (!t)
        luaL_error(L, "%s: cannot wait here: a module's body and init() run at load time; "
                      "call it from a handler, or from an exhook.timer function to load "
                      "data in the background", fname);
    if (t->co != L)
        luaL_error(L, "%s: cannot wait inside a coroutine the script created; call it from "
                      "the handler itself", fname);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s: cannot wait here: Lua cannot suspend inside a table.sort "
                      "comparator, a string.gsub callback or a metamethod called from C; "
                      "call it from the handler itself", fname);
    if (!e->net)
        luaL_error(L, "%s: cannot wait: this Lua state has no event loop", fname);
    ctx->net = e->net;
    ctx->deadline_ns = t->deadline_ns;
    return &t->wait;
}

int wait_yield(lua_State *L, struct wait *w, void *op, wait_cancel_fn *cancel, const char *what)
{
    struct task *t = (struct task *)((char *)w - offsetof(struct task, wait));
    w->op = op;
    w->cancel = cancel;
    w->push = NULL;
    w->since_ns = loop_now_ns();
    snprintf(w->what, sizeof w->what, "%s", what);
    t->waiting = true;
    return lua_yield(L, 0);
}

void wait_complete(struct wait *w, wait_push_fn *push)
{
    struct task *t = (struct task *)((char *)w - offsetof(struct task, wait));
    w->push = push;
    task_wake(t);
}
