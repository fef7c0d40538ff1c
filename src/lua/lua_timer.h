#ifndef EXHOOKD_LUA_TIMER_H
#define EXHOOKD_LUA_TIMER_H

/* exhook.sleep(seconds), in a handler or a timer function: waits without
 * holding the worker. exhook.timer(delay, fn, ...): runs fn(...) once,
 * `delay` seconds from now, in a task of its own (it may wait), under the
 * same time and memory limits as a handler; at most [lua] max_timers pending
 * per worker state. Returns true, or false on a state a reload replaced. */

#include <lua.h>

struct script_engine;

/* Sets exhook.sleep and exhook.timer in the table on top of the stack. */
void lua_timer_open(lua_State *L, struct script_engine *e);

/* The state was taken up by a worker slot (e->net is set): timers set at
 * load time start now. */
void lua_timer_attach(struct script_engine *e);

/* A reload replaced the state: its pending timers are dropped, and
 * exhook.timer returns false from now on (running ones finish). */
void lua_timer_retire(struct script_engine *e);

/* Stops every timer of the state (at its close). */
void lua_timer_close_all(struct script_engine *e);

#endif
