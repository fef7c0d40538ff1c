#include "lua_cjson.h"

#include <lauxlib.h>

#include "script.h"

/* lua-cjson decodes into a buffer of its own, outside Lua's allocator, and
 * does not free it when Lua raises a memory error in the middle: each
 * decode that ran into memory_limit would leak a buffer the size of its
 * input. So a decode runs with the limit lifted, and its result is refused
 * afterwards if it left the state over the limit. The state may go over by
 * what one decode builds, for as long as the decode runs. */
static int guarded_decode(lua_State *L)
{
    struct script_engine *e = *(struct script_engine **)lua_getextraspace(L);
    size_t limit = e->mem_limit;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    e->mem_limit = 0;
    int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    e->mem_limit = limit;
    if (st != LUA_OK)
        return lua_error(L);
    if (limit && e->mem_used > limit) {
        lua_settop(L, 0);
        lua_gc(L, LUA_GCCOLLECT);
        return luaL_error(L, "cjson.decode: not enough memory (memory_limit)");
    }
    return lua_gettop(L);
}

static void wrap_module(lua_State *L, int idx);

/* cjson.new(): a new instance, guarded the same way. */
static int guarded_new(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    if (lua_istable(L, -1))
        wrap_module(L, lua_gettop(L));
    return 1;
}

static void wrap_field(lua_State *L, int idx, const char *name, lua_CFunction fn)
{
    if (lua_getfield(L, idx, name) == LUA_TFUNCTION) {
        lua_pushcclosure(L, fn, 1);
        lua_setfield(L, idx, name);
    } else {
        lua_pop(L, 1);
    }
}

static void wrap_module(lua_State *L, int idx)
{
    wrap_field(L, idx, "decode", guarded_decode);
    wrap_field(L, idx, "new", guarded_new);
}

/* package.preload entry: loads the module through the C searchers
 * (package.searchers[3], then [4] for "cjson.safe" inside cjson.so), as
 * require would, then guards it. */
static int load_guarded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    int searchers = lua_gettop(L);
    for (int i = 3; i <= 4; i++) {
        lua_rawgeti(L, searchers, i);
        lua_pushstring(L, name);
        lua_call(L, 1, 2);
        if (lua_isfunction(L, -2)) {
            lua_pushstring(L, name);
            lua_insert(L, -2);
            lua_call(L, 2, 1);
            if (lua_istable(L, -1))
                wrap_module(L, lua_gettop(L));
            return 1;
        }
        lua_pop(L, 2);
    }
    return luaL_error(L, "module '%s' not found", name);
}

void lua_cjson_guard(lua_State *L)
{
    lua_getglobal(L, "package");
    if (lua_getfield(L, -1, "preload") == LUA_TTABLE) {
        lua_pushcfunction(L, load_guarded);
        lua_setfield(L, -2, "cjson");
        lua_pushcfunction(L, load_guarded);
        lua_setfield(L, -2, "cjson.safe");
    }
    lua_pop(L, 2);
}
