#include "sandbox.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pattern.h"

/* Every loader below passes this mode to the core, which refuses a chunk
 * starting with the bytecode signature whatever the caller asked for. */
#define TEXT_ONLY "t"

/* Stack slot where load() keeps the last piece a reader function returned:
 * the core reads from the returned pointer after the reader is back, so the
 * string must stay referenced from the stack until the next call. */
#define READER_SLOT 5

/* The most matching steps a pattern function may be about to take: about a
 * second of the matcher's backtracking on a common CPU, far more than any
 * pattern that does not backtrack on its subject needs. */
#define PATTERN_BUDGET 1e8

/* Why a finalizer cannot be allowed: Lua switches hooks off while one runs,
 * so the time limit cannot stop a __gc that loops. */
#define NO_FINALIZERS                                                                              \
    "finalizers (__gc) are not allowed in scripts: Lua runs them with the time limit off"

/* Sets `field` of the table at the top of the stack to nil. */
static void remove_field(lua_State *L, const char *field)
{
    lua_pushnil(L);
    lua_setfield(L, -2, field);
}

/* Removes fields of global table `lib`; a library that is not open is left
 * alone. The table is shared with package.loaded, so require("os") sees the
 * same restricted library. */
static void remove_fields(lua_State *L, const char *lib, const char *const *fields)
{
    if (lua_getglobal(L, lib) == LUA_TTABLE) {
        for (; *fields; fields++)
            remove_field(L, *fields);
    }
    lua_pop(L, 1);
}

/* Leaves in the debug library only the functions that read stack
 * information. Pruning by keeping a list (rather than removing a list) means
 * a function added by a later Lua version is not exposed by accident. */
static void prune_debug(lua_State *L)
{
    static const char *const keep[] = {"traceback", "getinfo", NULL};

    if (lua_getglobal(L, "debug") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int tbl = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        lua_pop(L, 1);
        bool kept = false;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *key = lua_tostring(L, -1);
            for (const char *const *k = keep; *k && !kept; k++)
                kept = strcmp(key, *k) == 0;
        }
        if (kept)
            continue;
        /* Clearing a field that exists is allowed during a traversal. */
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, tbl);
    }
    lua_pop(L, 1);
}

/* Sets the first upvalue (_ENV of a main chunk) of the function at the top
 * of the stack to the value at `env`, as load and loadfile do when given an
 * env argument. */
static void set_env(lua_State *L, int env)
{
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
}

/* Result of a load: the function, or nil and the message. */
static int load_result(lua_State *L, int status, int env)
{
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env != 0)
        set_env(L, env);
    return 1;
}

/* Feeds load() from a reader function: calls it until it returns nil or an
 * empty string. */
static const char *read_from_function(lua_State *L, void *ud, size_t *size)
{
    (void)ud;
    luaL_checkstack(L, 2, "too many nested functions");
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *size = 0;
        return NULL;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "reader function must return a string");
    lua_replace(L, READER_SLOT);
    return lua_tolstring(L, READER_SLOT, size);
}

/* load(chunk [, chunkname [, mode [, env]]]) with the mode always "t". */
static int sandbox_load(lua_State *L)
{
    /* An explicit env, even nil, replaces _ENV: decide before the stack is
     * padded below. */
    int env = lua_isnone(L, 4) ? 0 : 4;
    size_t len;
    const char *text = lua_tolstring(L, 1, &len);
    int status;

    /* The mode is checked for type only, so a wrong call still reports the
     * usual error; its value is ignored. */
    luaL_optstring(L, 3, "bt");
    if (text) {
        const char *name = luaL_optstring(L, 2, text);
        status = luaL_loadbufferx(L, text, len, name, TEXT_ONLY);
    } else {
        const char *name = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_settop(L, READER_SLOT);
        status = lua_load(L, read_from_function, NULL, name, TEXT_ONLY);
    }
    return load_result(L, status, env);
}

/* loadfile([filename [, mode [, env]]]) with the mode always "t". */
static int sandbox_loadfile(lua_State *L)
{
    const char *fname = luaL_optstring(L, 1, NULL);
    int env = lua_isnone(L, 3) ? 0 : 3;

    luaL_optstring(L, 2, "bt");
    return load_result(L, luaL_loadfilex(L, fname, TEXT_ONLY), env);
}

/* Everything above the file name argument is what the chunk returned. */
static int dofile_results(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L) - 1;
}

/* dofile([filename]): runs the file, returns its results, raises its
 * errors. A continuation keeps a yield inside the file working, as in
 * standard Lua. */
static int sandbox_dofile(lua_State *L)
{
    const char *fname = luaL_optstring(L, 1, NULL);

    lua_settop(L, 1);
    if (luaL_loadfilex(L, fname, TEXT_ONLY) != LUA_OK)
        return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_results);
    return dofile_results(L, LUA_OK, 0);
}

/* package.searchers[2] that loads Lua files in text mode.
 * Upvalues: the package table (package.path is read at each call, as the
 * standard searcher does) and the original package.searchpath, held here so
 * that a script replacing package.searchpath cannot break other requires.
 * Not found: returns the "no file '...'" list searchpath made. Found:
 * returns the loader and the file name, which require passes to it. */
static int search_lua_text(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);

    lua_getfield(L, lua_upvalueindex(1), "path");
    const char *path = lua_tostring(L, -1);
    if (!path)
        return luaL_error(L, "'package.path' must be a string");
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushstring(L, name);
    lua_pushstring(L, path);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
        return 1;
    lua_pop(L, 1);
    const char *filename = lua_tostring(L, -1);
    if (luaL_loadfilex(L, filename, TEXT_ONLY) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                          lua_tostring(L, -1));
    lua_pushvalue(L, -2);
    return 2;
}

/* Puts search_lua_text in place of the standard Lua-file searcher. The
 * preload searcher ([1]) and the C searchers ([3], [4]) stay, so C modules
 * installed for Lua 5.4 still load through package.cpath. */
static void replace_lua_searcher(lua_State *L)
{
    if (lua_getglobal(L, "package") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int pkg = lua_gettop(L);
    if (lua_getfield(L, pkg, "searchers") == LUA_TTABLE &&
        lua_getfield(L, pkg, "searchpath") == LUA_TFUNCTION) {
        lua_pushvalue(L, pkg);
        lua_insert(L, -2);
        lua_pushcclosure(L, search_lua_text, 2);
        lua_rawseti(L, pkg + 1, 2);
    } else if (lua_istable(L, pkg + 1)) {
        /* Without searchpath there is nothing to search with, and a searcher
         * that could load bytecode must not stay: drop it, moving the C
         * searchers down, since require stops at the first nil entry. */
        lua_Integer n = (lua_Integer)lua_rawlen(L, pkg + 1);
        for (lua_Integer i = 2; i <= n; i++) {
            lua_rawgeti(L, pkg + 1, i + 1);
            lua_rawseti(L, pkg + 1, i);
        }
    }
    lua_settop(L, pkg - 1);
}

/* setmetatable(t, mt) refusing a metatable with a __gc field. Lua marks an
 * object for finalization only if its metatable has the field (raw, any
 * value but nil) when it is set: a __gc added afterwards is never called,
 * so checking here is enough. Upvalue: the original setmetatable. */
static int sandbox_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "%s", NO_FINALIZERS);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* getmetatable(v) that does not hand out a metatable with a __gc field
 * (a file handle's, a C module's object): replacing its __gc would run
 * script code as a finalizer of an object already marked. A __metatable
 * field is returned instead, as standard getmetatable does. */
static int sandbox_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return 1;
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, -2) != LUA_TNIL)
        return luaL_error(L, "%s; this %s's metatable has one and is not given out", NO_FINALIZERS,
                          luaL_typename(L, 1));
    lua_pop(L, 1);
    return 1;
}

/* string.find, match, gmatch and gsub, refused when pattern_cost says the
 * match could run past PATTERN_BUDGET steps. Upvalues: the original
 * function and its name. Arguments that are not strings are left to the
 * original to report. */
static int bounded_pattern_call(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    size_t n, plen;
    bool plain = strcmp(name, "find") == 0 && lua_toboolean(L, 4);
    if (!plain && lua_type(L, 1) == LUA_TSTRING && lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, 1, &n);
        const char *p = lua_tolstring(L, 2, &plen);
        double cost = pattern_cost(s, n, p, plen, strcmp(name, "gmatch") != 0);
        if (cost > PATTERN_BUDGET) {
            /* lua_pushfstring knows neither widths nor %g. */
            char msg[320];
            snprintf(msg, sizeof msg,
                     "string.%s: pattern '%.60s' could backtrack for up to %.3g steps on this "
                     "%zu-byte subject (the limit is %.3g): anchor it with '^', narrow its "
                     "'.-', '.*' and '.+', or use string.find with plain = true",
                     name, p, cost, n, PATTERN_BUDGET);
            return luaL_error(L, "%s", msg);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps the pattern functions in the string table, which is also the
 * __index of the strings' metatable: s:find(...) goes through them too. */
static void bound_patterns(lua_State *L)
{
    static const char *const names[] = {"find", "match", "gmatch", "gsub", NULL};

    if (lua_getglobal(L, "string") == LUA_TTABLE) {
        for (const char *const *name = names; *name; name++) {
            lua_getfield(L, -1, *name);
            lua_pushstring(L, *name);
            lua_pushcclosure(L, bounded_pattern_call, 2);
            lua_setfield(L, -2, *name);
        }
    }
    lua_pop(L, 1);
}

/* Replaces global `name` with `fn`, given the original as upvalue. */
static void wrap_global(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, fn, 1);
    lua_setglobal(L, name);
}

void sandbox_apply(lua_State *L)
{
    static const char *const os_removed[] = {"exit", "execute", NULL};
    static const char *const io_removed[] = {"popen", NULL};

    remove_fields(L, "os", os_removed);
    remove_fields(L, "io", io_removed);
    prune_debug(L);

    lua_pushcfunction(L, sandbox_load);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, sandbox_loadfile);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, sandbox_dofile);
    lua_setglobal(L, "dofile");
    replace_lua_searcher(L);
    wrap_global(L, "setmetatable", sandbox_setmetatable);
    lua_pushcfunction(L, sandbox_getmetatable);
    lua_setglobal(L, "getmetatable");
    bound_patterns(L);
}
