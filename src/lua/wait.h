#ifndef EXHOOKD_WAIT_H
#define EXHOOKD_WAIT_H

/* Waiting functions: how an exhook.* function that waits (for HTTP, Redis,
 * a timer) suspends the code that called it, so that its worker serves
 * other calls meanwhile.
 *
 * Every handler call runs in a coroutine of its own on its worker's Lua
 * state (so does every exhook.timer function). A waiting function is four
 * steps (the shape of OpenResty's): check that the running code can wait,
 * start the operation on the slot's event loop, register how to cancel it,
 * yield. When the operation completes, its loop callback calls
 * wait_complete; the coroutine resumes on the same worker slot, with what
 * the operation's push function pushes as the waiting function's results.
 *
 *     static int l_sleep(lua_State *L)
 *     {
 *         struct wait_ctx ctx;
 *         struct wait *w = wait_begin(L, "exhook.sleep", &ctx); // raises if it cannot wait
 *         struct op *op = ...;                 // start it on ctx.net->loop
 *         return wait_yield(L, w, op, op_cancel, "sleep 1.5 s");
 *     }
 *     // later, from a loop callback:
 *     wait_complete(op->w, op_push);
 *
 * If the call ends first (its deadline, the broker cancelling it, shutdown),
 * `cancel(op)` runs instead, once, and wait_complete must then never be
 * called with that wait. Either `push` or `cancel` runs (both only when
 * `push` raised before its end), and each owns `op` from then on (frees
 * it). */

#include <lua.h>
#include <stdint.h>

struct net;
struct wait;

/* Stops the operation for good and frees it. */
typedef void wait_cancel_fn(void *op);
/* Pushes the operation's results onto `L` (room for LUA_MINSTACK values is
 * there; they are moved to the resumed coroutine) and, as its last step,
 * frees `op`. Returns how many it pushed. Runs in a protected call: should
 * it raise (memory), `cancel(op)` frees the operation and the waiting
 * function returns nil and a message instead. */
typedef int wait_push_fn(lua_State *co, void *op);

struct wait_ctx {
    struct net *net;     /* the worker slot's event loop and connections */
    int64_t deadline_ns; /* when the running call or timer must be done (loop_now_ns clock); INT64_MAX: none */
};

/* Checks that the running code may wait: inside a handler or an
 * exhook.timer function, not in a module body or init(), and not where Lua
 * cannot yield (a table.sort comparator, a string.gsub callback, a __gc
 * metamethod, a coroutine of the script's own). Otherwise raises an error
 * naming `fname` and saying where to call it instead. */
struct wait *wait_begin(lua_State *L, const char *fname, struct wait_ctx *ctx);

/* Suspends the running coroutine on `op`; `what` (copied) says what it
 * waits for, for the error if the call runs out of time meanwhile, e.g.
 * "GET http://auth:8080/u". Use as `return wait_yield(...)`. */
int wait_yield(lua_State *L, struct wait *w, void *op, wait_cancel_fn *cancel, const char *what);

/* The operation of `w` completed: its coroutine is resumed once the current
 * loop callback returns, with the values `push` pushes. */
void wait_complete(struct wait *w, wait_push_fn *push);

#endif
