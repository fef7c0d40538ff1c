#include "lua_timer.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "failure.h"
#include "loop.h"
#include "net.h"
#include "script.h"
#include "task.h"

/* The longest delay of exhook.sleep and exhook.timer: a day. */
#define MAX_DELAY_S 86400.0

static lua_Number check_delay(lua_State *L, const char *fname)
{
    lua_Number s = luaL_checknumber(L, 1);
    if (!(s >= 0 && s <= MAX_DELAY_S))
        luaL_error(L, "%s: the delay must be 0 to %d seconds, got %f", fname, (int)MAX_DELAY_S,
                   (double)s);
    return s;
}

/* exhook.sleep(seconds) */

struct sleep_op {
    struct loop_timer timer;
    struct loop *loop;
    struct wait *w;
};

static int sleep_push(lua_State *co, void *p)
{
    (void)co;
    free(p);
    return 0;
}

static void sleep_fired(struct loop_timer *t)
{
    struct sleep_op *op = t->ctx;
    wait_complete(op->w, sleep_push);
}

static void sleep_cancel(void *p)
{
    struct sleep_op *op = p;
    loop_timer_stop(op->loop, &op->timer);
    free(op);
}

static int api_sleep(lua_State *L)
{
    lua_Number s = check_delay(L, "exhook.sleep");
    struct wait_ctx ctx;
    struct wait *w = wait_begin(L, "exhook.sleep", &ctx);
    struct sleep_op *op = malloc(sizeof *op);
    if (!op)
        return luaL_error(L, "exhook.sleep: out of memory");
    op->loop = ctx.net->loop;
    op->w = w;
    loop_timer_init(&op->timer, sleep_fired, op);
    loop_timer_start(op->loop, &op->timer, loop_now_ns() + (int64_t)(s * 1e9));
    char what[64];
    snprintf(what, sizeof what, "exhook.sleep(%g)", (double)s);
    return wait_yield(L, w, op, sleep_cancel, what);
}

/* exhook.timer(delay, fn, ...): `fn(...)` runs once, `delay` seconds from
 * now, in a task of its own on the state that created it. */

struct timer_job {
    struct loop_timer timer;
    struct task task;
    struct script_engine *e;
    int64_t at_ns;
    int fn_ref; /* a table {fn, arg1, ...} */
    int nargs;
    const char *module; /* that created it */
    struct timer_job *prev, *next;
};

static void job_free(struct timer_job *j)
{
    struct script_engine *e = j->e;
    if (j->prev)
        j->prev->next = j->next;
    else
        e->timers = j->next;
    if (j->next)
        j->next->prev = j->prev;
    e->timer_count--;
    luaL_unref(e->L, LUA_REGISTRYINDEX, j->fn_ref);
    free(j);
}

/* The function's task ended with `st`. */
static void job_ended(struct timer_job *j, int st)
{
    if (st == LUA_YIELD)
        return;
    if (st != LUA_OK) {
        struct failure f;
        task_failure(&j->task, j->task.co, st, &f);
        failure_log(&f, NULL);
    }
    task_close(&j->task, st == LUA_OK);
    job_free(j);
}

static void job_ready(struct task *t)
{
    struct timer_job *j = (struct timer_job *)((char *)t - offsetof(struct timer_job, task));
    if (t->waiting && !t->wait.push) {
        struct failure f;
        task_abandon(t, FAIL_WAIT_TIMEOUT, &f);
        failure_log(&f, NULL);
        job_ended(j, LUA_OK);
        return;
    }
    int nres;
    job_ended(j, task_resume(t, 0, &nres));
}

static void job_fired(struct loop_timer *timer)
{
    struct timer_job *j = timer->ctx;
    struct script_engine *e = j->e;
    if (task_open(&j->task, e, job_ready) != 0) {
        struct failure f;
        failure_set(&f, FAIL_MEMORY, j->module,
                    "module '%s' exhook.timer function: out of memory (memory_limit)", j->module);
        failure_log(&f, NULL);
        job_free(j);
        return;
    }
    lua_State *co = j->task.co;
    lua_rawgeti(e->L, LUA_REGISTRYINDEX, j->fn_ref);
    lua_xmove(e->L, co, 1);
    int tbl = lua_gettop(co);
    for (int i = 1; i <= j->nargs + 1; i++)
        lua_rawgeti(co, tbl, i);
    lua_remove(co, tbl);
    j->task.module = j->module;
    j->task.handler = "exhook.timer function";
    j->task.started_ns = loop_now_ns();
    j->task.deadline_ns =
        e->call_timeout_ms ? loop_now_ns() + (int64_t)e->call_timeout_ms * 1000000 : INT64_MAX;
    int nres;
    job_ended(j, task_resume(&j->task, j->nargs, &nres));
}

static int api_timer(lua_State *L)
{
    struct script_engine *e = *(struct script_engine **)lua_getextraspace(L);
    lua_Number s = check_delay(L, "exhook.timer");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    /* A reload replaced this state: what it would start, it could not
     * finish. */
    if (e->retired) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (e->timer_count >= e->max_timers)
        /* lua_pushfstring knows %d, not %u: max_timers is at most 10^6. */
        return luaL_error(L, "exhook.timer: %d timers are pending on this worker (max_timers)",
                          (int)e->max_timers);
    int n = lua_gettop(L);
    lua_createtable(L, n - 1, 0);
    for (int i = 2; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - 1);
    }
    struct timer_job *j = calloc(1, sizeof *j);
    if (!j)
        return luaL_error(L, "exhook.timer: out of memory");
    j->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    j->e = e;
    j->nargs = n - 2;
    j->module = e->current_module ? e->current_module : "?";
    j->at_ns = loop_now_ns() + (int64_t)(s * 1e9);
    loop_timer_init(&j->timer, job_fired, j);
    j->next = e->timers;
    if (e->timers)
        e->timers->prev = j;
    e->timers = j;
    e->timer_count++;
    /* A timer set at load time starts when a worker slot takes the state
     * up (lua_timer_attach). */
    if (e->net)
        loop_timer_start(e->net->loop, &j->timer, j->at_ns);
    lua_pushboolean(L, 1);
    return 1;
}

void lua_timer_attach(struct script_engine *e)
{
    for (struct timer_job *j = e->timers; j; j = j->next)
        if (!j->task.e)
            loop_timer_start(e->net->loop, &j->timer, j->at_ns);
}

void lua_timer_retire(struct script_engine *e)
{
    e->retired = true;
    for (struct timer_job *j = e->timers, *next; j; j = next) {
        next = j->next;
        if (!j->task.e) {
            if (e->net)
                loop_timer_stop(e->net->loop, &j->timer);
            job_free(j);
        }
    }
}

void lua_timer_close_all(struct script_engine *e)
{
    while (e->timers) {
        struct timer_job *j = e->timers;
        if (e->net)
            loop_timer_stop(e->net->loop, &j->timer);
        if (j->task.e) {
            if (j->task.waiting && !j->task.wait.push) {
                struct failure f;
                task_abandon(&j->task, FAIL_CANCELLED, &f);
            }
            task_close(&j->task, false);
        }
        job_free(j);
    }
}

void lua_timer_open(lua_State *L, struct script_engine *e)
{
    (void)e;
    lua_pushcfunction(L, api_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, api_timer);
    lua_setfield(L, -2, "timer");
}
