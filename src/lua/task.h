#ifndef EXHOOKD_TASK_H
#define EXHOOKD_TASK_H

/* A task: Lua code running in a coroutine of its own on an engine, that may
 * wait (wait.h): a hook call's chain of handlers, or an exhook.timer
 * function. The engine's worker slot resumes it when what it waits for is
 * there, and stops it when its time is up. */

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "failure.h"
#include "loop.h"
#include "wait.h"

struct script_engine;
struct task;

struct wait {
    void *op;
    wait_cancel_fn *cancel;
    wait_push_fn *push; /* set by wait_complete */
    char what[160];
    int64_t since_ns;
};

/* The slot's queue of tasks whose wait completed. */
struct task_queue {
    struct task *head, *tail;
};

struct task {
    struct script_engine *e;
    lua_State *co;
    int co_ref;
    int64_t deadline_ns;       /* of the code running now; INT64_MAX: none */
    const char *module;        /* whose code runs, for exhook.log and messages */
    const char *hook;          /* EMQX's name of the hook it runs for, or NULL */
    const char *handler;       /* "on_client_authenticate", or "exhook.timer function" */
    int64_t started_ns;        /* when the handler (or timer function) started */
    bool waiting;              /* `wait` holds a pending operation */
    struct wait wait;
    struct loop_timer timer;   /* fires at deadline_ns while waiting */
    /* The wait completed (or the time ran out): the owner resumes or ends
     * the task. */
    void (*ready)(struct task *t);
    struct task *next;
    bool queued;
};

/* Takes a coroutine of `e` for `t` (anchored, pooled). -1 when out of
 * memory. */
int task_open(struct task *t, struct script_engine *e, void (*ready)(struct task *));

/* Resumes `t` (first run: the function and its `nargs` arguments are on
 * t->co; after a wait: nothing, the results of the wait are pushed here).
 * Returns what lua_resume returns, LUA_YIELD only while a wait is pending:
 * a coroutine.yield outside a coroutine of the script's own is an error. */
int task_resume(struct task *t, int nargs, int *nres);

/* Gives up a task that is waiting: cancels the operation, and fills `f`
 * with `kind` and "module 'm' on_x: waiting for <what> after N ms". */
void task_abandon(struct task *t, enum failure_kind kind, struct failure *f);

/* The failure of the handler or timer function that ended on `L` with
 * status `st` (its error object on top of the stack): a time limit, the
 * memory limit, or an error, with the "file:line: what" part and the Lua
 * traceback (when the code ran under script_push_msgh's handler). Clears
 * the time limit's state. */
void task_failure(struct task *t, lua_State *L, int st, struct failure *f);

/* Returns the coroutine to the engine's pool (when it ended cleanly) or
 * lets it be collected. The task must not be waiting. */
void task_close(struct task *t, bool clean);

/* The engine's ready tasks, one at a time; NULL when none. */
struct task *task_queue_pop(struct task_queue *q);

/* The running code's task, or NULL when not in one. */
struct task *task_current(lua_State *L);

#endif
