#include "lua_log.h"

#include <lauxlib.h>

#include "log.h"
#include "script.h"

static int api_log(lua_State *L)
{
    struct script_engine *e = lua_touserdata(L, lua_upvalueindex(1));
    const char *level_name = luaL_checkstring(L, 1);
    enum log_level level;
    if (log_level_parse(level_name, &level) != 0)
        return luaL_error(L, "exhook.log: unknown level '%s' (use debug, info, warn or error)",
                          level_name);
    if (level < log_get_level())
        return 0;
    /* Counted before luaL_buffinit, which may push a box of its own. */
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= n; i++) {
        if (i > 2)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    const char *module = e->current_module ? e->current_module : "lua";
    struct log_fields fields = {module, e->current_hook, NULL};
    log_fields_msg(level, &fields, "[%s] %s", module, lua_tostring(L, -1));
    return 0;
}

void lua_log_open(lua_State *L, struct script_engine *e)
{
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, api_log, 1);
    lua_setfield(L, -2, "log");
}
