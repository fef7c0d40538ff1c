#include "lua_api.h"

#include <lauxlib.h>

#include "lua_crypto.h"
#include "lua_health.h"
#include "lua_http.h"
#include "lua_log.h"
#include "lua_redis.h"
#include "lua_shared.h"
#include "lua_timer.h"
#include "lua_topic.h"
#include "script.h"

/* Each family of the API, in its own file, sets its fields in the table. */
static void (*const families[])(lua_State *L, struct script_engine *e) = {
    lua_log_open,
    lua_health_open,
    lua_topic_open,
    lua_crypto_open,
    lua_timer_open,
    lua_http_open,
    lua_redis_open,
    lua_shared_open,
};

void lua_api_open(lua_State *L, struct script_engine *e)
{
    lua_createtable(L, 0, 12);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        families[i](L, e);
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
