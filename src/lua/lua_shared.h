#ifndef EXHOOKD_LUA_SHARED_H
#define EXHOOKD_LUA_SHARED_H

/* exhook.shared: the dictionaries of [shared], one object per dictionary,
 * called with method syntax, the same for every backend:
 *
 *   local d = exhook.shared.sessions
 *   local ok, err, forcible = d:set(key, value [, ttl])
 *   local n, err, forcible = d:incr(key, 1, 0 [, init_ttl])
 *
 * Return values (OpenResty's ngx.shared.DICT conventions):
 *   get                            value, or nil
 *   set safe_set add safe_add replace
 *                                  true, nil, forcible | false, err, forcible
 *   delete flush_all               true
 *   incr                           new number, nil, forcible | nil, err, forcible
 *   expire                         true | nil, "not found"
 *   ttl                            seconds left (0: never) | nil, "not found"
 *   keys                           array of keys
 *   flush_expired                  how many were freed
 *   capacity free_space            bytes
 * where err is "exists", "not found", "no memory" or "not a number"; a
 * backend failure is nil (false for the writes), the message, false. */

#include <lua.h>

#include "shared_op.h"

struct script_engine;

/* Sets exhook.shared in the table on top of the stack: one object per
 * dictionary of this process (shared_dicts.h). */
void lua_shared_open(lua_State *L, struct script_engine *e);

/* Pushes the return values of `op` for result `r`; returns how many. */
int lua_shared_push_result(lua_State *L, const struct shared_op *op, const struct shared_result *r);

#endif
