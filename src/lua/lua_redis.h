#ifndef EXHOOKD_LUA_REDIS_H
#define EXHOOKD_LUA_REDIS_H

/* exhook.redis: Redis from scripts, on the worker slot's pools (redis.h).
 *
 *   local red = exhook.redis.connect(url [, {timeout = seconds}])
 *   local value, err, kind = red:call("GET", key)
 *
 * connect checks the URL and names a pool; it opens nothing, so modules
 * call it at load time. call waits (wait.h) for any command's reply:
 * nil for a nil reply, an integer, a string (status replies too), a table
 * for an array (nested: nil as false, error replies as {err = text}); on
 * an error reply `nil, text, "reply"`; when the command got no reply
 * `nil, text, kind` with kind "timeout", "refused" or "failed". Without a
 * timeout (or with one past the call's deadline) a command may take the
 * time left for the call, whose deadline then ends the wait. */

#include <lua.h>

struct script_engine;

/* Sets field `redis` in the table on top of the stack. */
void lua_redis_open(lua_State *L, struct script_engine *e);

#endif
