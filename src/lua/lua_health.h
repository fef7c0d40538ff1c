#ifndef EXHOOKD_LUA_HEALTH_H
#define EXHOOKD_LUA_HEALTH_H

/* exhook.health: what the scripts tell the gRPC health check (health.h).
 *
 *   exhook.health.set(serving [, reason])
 *
 * `serving` is a boolean; false makes the whole server NOT_SERVING, with
 * `reason` logged, until a call sets it true or a reload starts afresh. */

#include <lua.h>

struct script_engine;

/* Sets exhook.health, for the state of `e`, in the table at the top of the
 * stack. */
void lua_health_open(lua_State *L, struct script_engine *e);

#endif
