#ifndef EXHOOKD_LUA_LOG_H
#define EXHOOKD_LUA_LOG_H

/* exhook.log: a script's lines in the server's log.
 *
 *   exhook.log(level, ...)
 *
 * `level` is "debug", "info", "warn" or "error"; the other arguments are
 * converted with tostring and joined by spaces, like print. The line is
 * tagged with the module (and hook) whose code is running. */

#include <lua.h>

struct script_engine;

/* Sets exhook.log in the table at the top of the stack. */
void lua_log_open(lua_State *L, struct script_engine *e);

#endif
