#ifndef EXHOOKD_LUA_HTTP_H
#define EXHOOKD_LUA_HTTP_H

/* exhook.http: HTTP(S) requests from handlers and exhook.timer functions,
 * which wait without holding the worker (wait.h), on the worker slot's
 * client (net/http.h).
 *
 *   exhook.http.request{method=, url=, headers={...}, body=, timeout=,
 *                       ca_file=, verify=, max_body=}
 *   exhook.http.get(url [, opts])
 *   exhook.http.post(url, body [, opts])
 *
 * return a response {status=, headers={lower-case name = value}, body=},
 * or nil and an error text ("timeout: ...", "cannot connect: ..."). */

#include <lua.h>

struct script_engine;

/* Sets exhook.http in the table on top of the stack. */
void lua_http_open(lua_State *L, struct script_engine *e);

#endif
