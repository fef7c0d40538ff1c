#include "lua_health.h"

#include <lauxlib.h>

#include "health.h"

static int api_health_set(lua_State *L)
{
    struct script_engine *e = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    const char *reason = luaL_optstring(L, 2, NULL);
    health_script_set(e, lua_toboolean(L, 1), reason);
    return 0;
}

void lua_health_open(lua_State *L, struct script_engine *e)
{
    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, api_health_set, 1);
    lua_setfield(L, -2, "set");
    lua_setfield(L, -2, "health");
}
