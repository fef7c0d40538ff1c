#ifndef EXHOOKD_LUA_API_H
#define EXHOOKD_LUA_API_H

/* The `exhook` module that scripts see: exhook.log, exhook.health.set, exhook.topic_match,
 * exhook.worker_id, exhook.version; exhook.sleep, exhook.timer (lua_timer.h) and
 * exhook.http (lua_http.h). */

#include <lua.h>

struct script_engine;

/* Creates the `exhook` table as a global and in package.loaded. */
void lua_api_open(lua_State *L, struct script_engine *e);

#endif
