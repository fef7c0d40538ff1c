#ifndef EXHOOKD_LUA_API_H
#define EXHOOKD_LUA_API_H

/* The `exhook` module that scripts see: exhook.worker_id, exhook.version,
 * and one family of functions per file: exhook.log (lua_log.h),
 * exhook.health (lua_health.h), exhook.topic_match, topic_overlaps and
 * topic_filter (lua_topic.h), exhook.crypto (lua_crypto.h),
 * exhook.sleep and exhook.timer (lua_timer.h), exhook.http (lua_http.h),
 * exhook.redis (lua_redis.h), exhook.shared (lua_shared.h). */

#include <lua.h>

struct script_engine;

/* Creates the `exhook` table as a global and in package.loaded. */
void lua_api_open(lua_State *L, struct script_engine *e);

#endif
