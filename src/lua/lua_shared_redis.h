#ifndef EXHOOKD_LUA_SHARED_REDIS_H
#define EXHOOKD_LUA_SHARED_REDIS_H

/* The Redis backend of exhook.shared from Lua: runs one operation on the
 * running worker slot's Redis pool for `url` (the pools exhook.redis uses)
 * and waits for it (wait.h) without blocking the worker, then returns what
 * lua_shared_push_result pushes, as the local store would. The call's
 * deadline ends the wait like any other (the operation is cancelled).
 * Raises the wait.h error where the code cannot wait (a module's body,
 * init()). Use as `return lua_shared_redis_run(...)`. */

#include <lua.h>

#include "shared_op.h"

int lua_shared_redis_run(lua_State *L, const char *dict_name, const char *url,
                         const struct shared_op *op);

#endif
