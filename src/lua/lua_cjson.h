#ifndef EXHOOKD_LUA_CJSON_H
#define EXHOOKD_LUA_CJSON_H

/* `require "cjson"` (Debian's lua-cjson) with its decode kept within
 * memory_limit without leaking: see lua_cjson.c. */

#include <lua.h>

/* Installs the guarded loaders in package.preload. */
void lua_cjson_guard(lua_State *L);

#endif
