#include "lua_api.h"

#include <lauxlib.h>
#include <string.h>

#include "log.h"
#include "lua_health.h"
#include "lua_http.h"
#include "lua_timer.h"
#include "script.h"
#include "topic.h"

/* exhook.log(level, ...): the arguments are converted with tostring and
 * joined by spaces, like print; the line is tagged with the module whose code
 * is running. */
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

static int api_topic_match(lua_State *L)
{
    const char *filter = luaL_checkstring(L, 1);
    const char *topic = luaL_checkstring(L, 2);
    const char *why;
    if (topic_filter_valid(filter, &why) != 0)
        return luaL_error(L, "exhook.topic_match: invalid filter '%s': %s", filter, why);
    lua_pushboolean(L, topic_match(filter, topic));
    return 1;
}

void lua_api_open(lua_State *L, struct script_engine *e)
{
    lua_createtable(L, 0, 5);
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, api_log, 1);
    lua_setfield(L, -2, "log");
    lua_health_open(L, e);
    lua_setfield(L, -2, "health");
    lua_timer_open(L, e);
    lua_http_open(L, e);
    lua_pushcfunction(L, api_topic_match);
    lua_setfield(L, -2, "topic_match");
    lua_pushinteger(L, e->worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushstring(L, EXHOOKD_VERSION);
    lua_setfield(L, -2, "version");

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "exhook");
    lua_pop(L, 1);
    lua_setglobal(L, "exhook");
}
