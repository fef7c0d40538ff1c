/* What a sandboxed state refuses and what it keeps. Every test gets a fresh
 * state and an empty temporary folder (global TMP), and checks behaviour by
 * running Lua snippets that assert. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "sandbox.h"
#include "script.h"

struct env {
    lua_State *L;
    char dir[64];
};

/* Runs `code`; a Lua error fails the test with its message. */
static void run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fail_msg("Lua error: %s", msg ? msg : "(not a string)");
    }
    lua_settop(L, 0);
}

/* Helpers every snippet can use: write_file(name, data) -> path, and a
 * bytecode chunk that returns 42. */
static const char prelude[] =
    "function write_file(name, data)\n"
    "    local path = TMP .. '/' .. name\n"
    "    local f = assert(io.open(path, 'wb'))\n"
    "    assert(f:write(data))\n"
    "    assert(f:close())\n"
    "    return path\n"
    "end\n"
    "BYTECODE = string.dump(function() return 42 end)\n";

static int open_env(void **state, int sandboxed)
{
    struct env *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/test_sandbox_XXXXXX");
    if (!mkdtemp(t->dir) || !(t->L = luaL_newstate())) {
        free(t);
        return -1;
    }
    luaL_openlibs(t->L);
    if (sandboxed)
        sandbox_apply(t->L);
    lua_pushstring(t->L, t->dir);
    lua_setglobal(t->L, "TMP");
    *state = t;
    run(t->L, prelude);
    return 0;
}

static int setup_sandboxed(void **state) { return open_env(state, 1); }
static int setup_plain(void **state) { return open_env(state, 0); }

/* Snippets only create plain files directly in the folder. */
static int teardown(void **state)
{
    struct env *t = *state;
    lua_close(t->L);
    DIR *d = opendir(t->dir);
    if (d) {
        char path[512];
        for (struct dirent *de; (de = readdir(d));) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", t->dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    int rc = rmdir(t->dir);
    free(t);
    return rc == 0 ? 0 : -1;
}

static lua_State *L_of(void **state) { return ((struct env *)*state)->L; }

/* ---- os / io ------------------------------------------------------------ */

static void test_process_control_removed(void **state)
{
    run(L_of(state),
        "assert(os.exit == nil, 'os.exit')\n"
        "assert(os.execute == nil, 'os.execute')\n"
        "assert(io.popen == nil, 'io.popen')\n"
        /* require('os') is the same table, not a way back to the originals. */
        "assert(package.loaded.os == os and require('os').exit == nil)\n"
        "assert(package.loaded.io == io and require('io').popen == nil)\n");
}

static void test_kept_functions(void **state)
{
    run(L_of(state),
        "for _, name in ipairs{'open', 'read', 'write', 'lines', 'close', 'type'} do\n"
        "    assert(type(io[name]) == 'function', 'io.' .. name)\n"
        "end\n"
        "for _, name in ipairs{'time', 'clock', 'getenv', 'date', 'remove', 'rename',\n"
        "                      'tmpname', 'difftime'} do\n"
        "    assert(type(os[name]) == 'function', 'os.' .. name)\n"
        "end\n"
        "for _, lib in ipairs{'string', 'table', 'math', 'utf8', 'coroutine', 'package'} do\n"
        "    assert(type(_G[lib]) == 'table', lib)\n"
        "end\n"
        "for _, name in ipairs{'collectgarbage', 'load', 'loadfile', 'dofile', 'require',\n"
        "                      'pcall', 'xpcall', 'error', 'setmetatable', 'getmetatable',\n"
        "                      'rawget', 'rawset', 'select', 'tostring', 'tonumber'} do\n"
        "    assert(type(_G[name]) == 'function', name)\n"
        "end\n"
        "assert(type(string.dump) == 'function', 'string.dump')\n"
        "assert(math.type(os.time()) == 'integer')\n"
        "assert(type(os.clock()) == 'number')\n"
        "assert(os.date('!%Y', 0) == '1970')\n"
        "assert(type(collectgarbage('count')) == 'number')\n"
        "local path = write_file('gone.txt', 'x')\n"
        "assert(os.remove(path) == true)\n"
        "assert(io.open(path) == nil)\n");
}

/* ---- load --------------------------------------------------------------- */

static void test_load_refuses_bytecode(void **state)
{
    run(L_of(state),
        "local f, err = load(BYTECODE)\n"
        "assert(f == nil)\n"
        "assert(err == \"attempt to load a binary chunk (mode is 't')\", err)\n"
        "assert(err:find('binary chunk', 1, true))\n");
}

static void test_load_text(void **state)
{
    run(L_of(state),
        "assert(load('return 1')() == 1)\n"
        "assert(load('return ...', 'args')(7, 8) == 7)\n"
        /* The chunk name is the one given. */
        "local f, err = load('syntax error here', '=mychunk')\n"
        "assert(f == nil and err:find('^mychunk:1:'), err)\n");
}

static void test_load_explicit_binary_mode_refused(void **state)
{
    run(L_of(state),
        "for _, mode in ipairs{'b', 'bt', 't'} do\n"
        "    local f, err = load(BYTECODE, 'x', mode)\n"
        "    assert(f == nil, mode)\n"
        "    assert(err == \"attempt to load a binary chunk (mode is 't')\", err)\n"
        "end\n"
        /* Text still loads when the caller asked for binary only. */
        "assert(load('return 2', 'x', 'b')() == 2)\n");
}

static void test_load_reader_function(void **state)
{
    run(L_of(state),
        "local function reader(s)\n"
        "    local i = 0\n"
        "    return function()\n"
        "        i = i + 1\n"
        "        return i <= #s and s:sub(i, i) or nil\n"
        "    end\n"
        "end\n"
        "assert(load(reader('return 3'))() == 3)\n"
        "local f, err = load(reader(BYTECODE), 'r', 'b')\n"
        "assert(f == nil)\n"
        "assert(err == \"attempt to load a binary chunk (mode is 't')\", err)\n"
        "f, err = load(function() return {} end)\n"
        /* Reported at the caller of load, as standard Lua does. */
        "assert(f == nil and err:find(':12: reader function must return a string$'), err)\n");
}

static void test_load_env(void **state)
{
    run(L_of(state),
        "x = 'global'\n"
        "local env = {x = 5}\n"
        "assert(load('return x', 'c', 't', env)() == 5)\n"
        "assert(load('y = 6', 'c', 'bt', env)() == nil and env.y == 6 and y == nil)\n"
        /* Without env the chunk sees the globals. */
        "assert(load('return x')() == 'global')\n"
        /* An explicit nil env is an env, as in standard Lua. */
        "local ok, err = pcall(load('return x', 'c', 't', nil))\n"
        "assert(not ok and err:find('upvalue \\'_ENV\\'', 1, true), err)\n");
}

static void test_load_argument_errors(void **state)
{
    run(L_of(state),
        "local ok, err = pcall(load)\n"
        "assert(not ok and err:find(\"bad argument #1 to 'load'\", 1, true), err)\n"
        "ok, err = pcall(load, 'return 1', 'c', {})\n"
        "assert(not ok and err:find(\"bad argument #3 to 'load'\", 1, true), err)\n");
}

/* ---- loadfile / dofile -------------------------------------------------- */

static void test_loadfile_refuses_bytecode(void **state)
{
    run(L_of(state),
        "local path = write_file('b.lua', BYTECODE)\n"
        "for _, mode in ipairs{false, 'b', 'bt'} do\n"
        "    local f, err = loadfile(path, mode or nil)\n"
        "    assert(f == nil, tostring(mode))\n"
        "    assert(err == \"attempt to load a binary chunk (mode is 't')\", err)\n"
        "end\n"
        /* A '#' first line is skipped before the signature check, as Lua
         * does for scripts: still refused. */
        "local f, err = loadfile(write_file('hash.lua', '#!/usr/bin/lua\\n' .. BYTECODE))\n"
        "assert(f == nil and err:find('binary chunk', 1, true), err)\n");
}

static void test_dofile_refuses_bytecode(void **state)
{
    run(L_of(state),
        "local ok, err = pcall(dofile, write_file('b.lua', BYTECODE))\n"
        "assert(not ok)\n"
        "assert(err == \"attempt to load a binary chunk (mode is 't')\", err)\n");
}

static void test_loadfile_text(void **state)
{
    run(L_of(state),
        "y = 'global'\n"
        "local path = write_file('t.lua', 'return y, ...')\n"
        "local f = assert(loadfile(path))\n"
        "local a, b = f('arg')\n"
        "assert(a == 'global' and b == 'arg')\n"
        "assert(assert(loadfile(path, 't', {y = 7}))() == 7)\n"
        "assert(assert(loadfile(path, 'b', {y = 8}))() == 8)\n"
        "local g, err = loadfile(TMP .. '/missing.lua')\n"
        "assert(g == nil and err:find('cannot open', 1, true), err)\n"
        "g, err = loadfile(write_file('bad.lua', 'return +'))\n"
        "assert(g == nil and err:find('bad.lua:1:', 1, true), err)\n");
}

static void test_dofile_text(void **state)
{
    run(L_of(state),
        "local path = write_file('m.lua', 'return 1, nil, 3')\n"
        "local n = select('#', dofile(path))\n"
        "assert(n == 3, n)\n"
        "local a, b, c = dofile(path)\n"
        "assert(a == 1 and b == nil and c == 3)\n"
        "assert(select('#', dofile(write_file('none.lua', 'local z = 1'))) == 0)\n"
        /* A yield inside the file goes through dofile. */
        "local co = coroutine.wrap(function()\n"
        "    return dofile(write_file('y.lua', 'coroutine.yield(1) return 2'))\n"
        "end)\n"
        "assert(co() == 1 and co() == 2)\n");
}

static void test_dofile_propagates_errors(void **state)
{
    run(L_of(state),
        "local ok, err = pcall(dofile, write_file('e.lua', '\\nerror(\"boom\")'))\n"
        "assert(not ok and err == TMP .. '/e.lua:2: boom', err)\n"
        "ok, err = pcall(dofile, write_file('t.lua', 'error({code = 7})'))\n"
        "assert(not ok and type(err) == 'table' and err.code == 7)\n"
        "ok, err = pcall(dofile, TMP .. '/missing.lua')\n"
        "assert(not ok and err:find('cannot open', 1, true), err)\n"
        "ok, err = pcall(dofile, write_file('s.lua', 'return +'))\n"
        "assert(not ok and err:find('s.lua:1:', 1, true), err)\n");
}

/* ---- require ------------------------------------------------------------ */

static void test_require_refuses_bytecode(void **state)
{
    run(L_of(state),
        "package.path = TMP .. '/?.lua'\n"
        "local path = write_file('bmod.lua', BYTECODE)\n"
        "local ok, err = pcall(require, 'bmod')\n"
        "assert(not ok)\n"
        "assert(err == \"error loading module 'bmod' from file '\" .. path ..\n"
        "              \"':\\n\\tattempt to load a binary chunk (mode is 't')\", err)\n"
        "assert(package.loaded.bmod == nil)\n");
}

static void test_require_text_module(void **state)
{
    run(L_of(state),
        "package.path = TMP .. '/?.lua'\n"
        "local path = write_file('tmod.lua',\n"
        "    'LOADS = (LOADS or 0) + 1\\n'\n"
        "    .. 'local name, file = ...\\n'\n"
        "    .. 'return {name = name, file = file}')\n"
        "local m, extra = require('tmod')\n"
        "assert(type(m) == 'table')\n"
        /* The loader gets the module name and the file, as in Lua. */
        "assert(m.name == 'tmod' and m.file == path)\n"
        "assert(extra == path, extra)\n"
        "assert(package.loaded.tmod == m)\n"
        "assert(require('tmod') == m)\n"
        "assert(LOADS == 1, LOADS)\n"
        /* The searcher itself returns the loader and the file name. */
        "local loader, file = package.searchers[2]('tmod')\n"
        "assert(type(loader) == 'function' and file == path)\n"
        /* A module returning nothing is recorded as true. */
        "write_file('empty.lua', 'local x = 1')\n"
        "assert(require('empty') == true and package.loaded.empty == true)\n");
}

static void test_require_missing_lists_tried_files(void **state)
{
    run(L_of(state),
        "package.path = TMP .. '/?.lua;' .. TMP .. '/?/init.lua'\n"
        "package.cpath = TMP .. '/?.so'\n"
        "local tried = \"no file '\" .. TMP .. \"/nomod.lua'\\n\\t\"\n"
        "           .. \"no file '\" .. TMP .. \"/nomod/init.lua'\"\n"
        "assert(package.searchers[2]('nomod') == tried, package.searchers[2]('nomod'))\n"
        "local ok, err = pcall(require, 'nomod')\n"
        "assert(not ok)\n"
        "assert(err:find(\"^module 'nomod' not found:\"), err)\n"
        "assert(err:find('\\n\\t' .. tried .. '\\n\\t', 1, true), err)\n"
        "assert(err:find(\"no file '\" .. TMP .. \"/nomod.so'\", 1, true), err)\n"
        /* Dots in the name are directory separators. */
        "assert(package.searchers[2]('a.b') == \"no file '\" .. TMP .. \"/a/b.lua'\\n\\t\"\n"
        "       .. \"no file '\" .. TMP .. \"/a/b/init.lua'\")\n"
        "package.path = {}\n"
        "ok, err = pcall(require, 'nomod2')\n"
        "assert(not ok and err:find(\"'package.path' must be a string\", 1, true), err)\n");
}

static void test_c_searchers_kept(void **state)
{
    run(L_of(state),
        "assert(#package.searchers == 4, #package.searchers)\n"
        "for i = 1, 4 do assert(type(package.searchers[i]) == 'function', i) end\n"
        "assert(type(package.loadlib) == 'function')\n"
        "package.cpath = TMP .. '/?.so'\n"
        "assert(package.searchers[3]('cmod') == \"no file '\" .. TMP .. \"/cmod.so'\")\n"
        "assert(package.searchers[4]('cmod.sub') == \"no file '\" .. TMP .. \"/cmod.so'\")\n"
        /* The preload searcher still comes first. */
        "package.preload.pre = function(name) return 'preloaded ' .. name end\n"
        "assert(require('pre') == 'preloaded pre')\n");
}

/* ---- debug -------------------------------------------------------------- */

static void test_debug_pruned(void **state)
{
    run(L_of(state),
        "for _, name in ipairs{'sethook', 'gethook', 'getregistry', 'setupvalue',\n"
        "                      'getupvalue', 'upvaluejoin', 'upvalueid', 'setlocal',\n"
        "                      'getlocal', 'setmetatable', 'getmetatable', 'setuservalue',\n"
        "                      'getuservalue', 'setcstacklimit', 'debug'} do\n"
        "    assert(debug[name] == nil, 'debug.' .. name)\n"
        "end\n"
        "local keys = {}\n"
        "for k in pairs(debug) do keys[#keys + 1] = k end\n"
        "table.sort(keys)\n"
        "assert(table.concat(keys, ',') == 'getinfo,traceback', table.concat(keys, ','))\n"
        "assert(require('debug') == debug)\n");
}

static void test_debug_kept_functions_work(void **state)
{
    run(L_of(state),
        "local tb = debug.traceback('msg')\n"
        "assert(tb:find('^msg\\nstack traceback:'), tb)\n"
        "local info = debug.getinfo(1, 'Sl')\n"
        "assert(info.currentline == 3, info.currentline)\n"
        "assert(info.what == 'main')\n"
        "local function f() end\n"
        "assert(debug.getinfo(f, 'S').what == 'Lua')\n");
}

/* ---- control ------------------------------------------------------------ */

/* Without sandbox_apply the same snippets would load bytecode: the checks
 * above can fail. */
static void test_plain_state_loads_bytecode(void **state)
{
    run(L_of(state),
        "assert(load(BYTECODE)() == 42)\n"
        "assert(assert(loadfile(write_file('b.lua', BYTECODE)))() == 42)\n"
        "assert(dofile(TMP .. '/b.lua') == 42)\n"
        "package.path = TMP .. '/?.lua'\n"
        "write_file('bmod.lua', BYTECODE)\n"
        "assert(require('bmod') == 42)\n"
        "assert(type(os.exit) == 'function' and type(io.popen) == 'function')\n"
        "assert(type(debug.sethook) == 'function')\n");
}

/* ---- finalizers and patterns: code the time limit cannot stop --------- */

static void test_gc_metamethod_refused(void **state)
{
    run(L_of(state),
        "local msg = 'finalizers (__gc) are not allowed in scripts: Lua runs them with the '\n"
        "         .. 'time limit off'\n"
        "for _, gc in ipairs{function() end, false, 0} do\n"
        "    local ok, err = pcall(setmetatable, {}, {__gc = gc})\n"
        "    assert(not ok and err == msg, tostring(err))\n"
        "end\n"
        /* Without __gc, setmetatable is standard: returns its table. */
        "local t = {}\n"
        "assert(setmetatable(t, {__index = {x = 1}}) == t and t.x == 1)\n"
        /* A __gc added afterwards never runs: Lua marks at setmetatable. */
        "local mt, ran = {}, false\n"
        "setmetatable({}, mt)\n"
        "mt.__gc = function() ran = true end\n"
        "collectgarbage(); collectgarbage()\n"
        "assert(not ran, 'a __gc added after setmetatable ran')\n");
}

static void test_metatable_with_gc_not_given_out(void **state)
{
    run(L_of(state),
        "local f = assert(io.open(write_file('f.txt', 'x')))\n"
        "local ok, err = pcall(getmetatable, f)\n"
        "assert(not ok and err == 'finalizers (__gc) are not allowed in scripts: Lua runs '\n"
        "    .. 'them with the time limit off; this userdata\\'s metatable has one and is '\n"
        "    .. 'not given out', tostring(err))\n"
        "f:close()\n"
        "assert(getmetatable('').__index == string)\n"
        "local mt = {}\n"
        "assert(getmetatable(setmetatable({}, mt)) == mt)\n"
        "assert(getmetatable(setmetatable({}, {__metatable = 'locked'})) == 'locked')\n"
        "assert(getmetatable({}) == nil)\n");
}

static void test_backtracking_pattern_refused(void **state)
{
    run(L_of(state),
        /* Cheap enough to run to the end unbounded (about a second). */
        "local ok, err = pcall(string.find, string.rep('a', 30000), '.-b')\n"
        "assert(not ok, 'a quadratic match on 30000 bytes was run')\n"
        "local t = os.clock()\n"
        "ok, err = pcall(string.find, string.rep('a', 30000), '.-.-.-.-b')\n"
        "assert(os.clock() - t < 1, 'the refusal took ' .. os.clock() - t .. ' s')\n"
        "assert(not ok and err == \"string.find: pattern '.-.-.-.-b' could backtrack for up \"\n"
        "    .. 'to 2.43e+22 steps on this 30000-byte subject (the limit is 1e+08): anchor '\n"
        "    .. \"it with '^', narrow its '.-', '.*' and '.+', or use string.find with plain \"\n"
        "    .. '= true', tostring(err))\n"
        /* The same through the strings' metatable and the other functions. */
        "local s = string.rep('a', 30000)\n"
        "for _, f in ipairs{function() return s:find('.-.-.-.-b') end,\n"
        "                   function() return s:match('(.-)(.-)b') end,\n"
        "                   function() for _ in s:gmatch('.*.*b') do end end,\n"
        "                   function() return s:gsub('a*a*b', '') end,\n"
        "                   function() return ('('):rep(30000):find('%b()') end} do\n"
        "    local ok, err = pcall(f)\n"
        "    assert(not ok and err:find('could backtrack', 1, true), tostring(err))\n"
        "end\n");
}

static void test_ordinary_patterns_unaffected(void **state)
{
    run(L_of(state),
        "assert(select(2, ('sensors/room1/temp'):match('^(%w+)/(.+)$')) == 'room1/temp')\n"
        "local n = 0\n"
        "for _ in string.rep('level/', 100000):gmatch('[^/]+') do n = n + 1 end\n"
        "assert(n == 100000)\n"
        "assert(select(2, ('hello world'):gsub('o', '0')) == 2)\n"
        "local json = string.rep('{\"k\": 1}, ', 100000) .. '\"temp\": 42'\n"
        "assert(json:match('\"temp\":%s*(%d+)') == '42')\n"
        "local padded = '  ' .. string.rep('x', 100000) .. '  '\n"
        "assert(#padded:match('^%s*(.-)%s*$') == 100000)\n"
        "assert(select(2, string.rep('x', 1000000):gsub('x', 'y')) == 1000000)\n"
        /* Plain find never backtracks: allowed whatever the pattern. */
        "assert(string.rep('a', 30000):find('.-.-.-.-b', 1, true) == nil)\n"
        /* A malformed pattern is still Lua's error. */
        "local ok, err = pcall(string.find, 'abc', '[a')\n"
        "assert(not ok and err:find('malformed pattern', 1, true), tostring(err))\n");
}

/* ---- JSON: Debian's lua-cjson ---------------------------------------------- */

static void test_cjson_round_trip(void **state)
{
    run(L_of(state),
        "local cjson = require 'cjson'\n"
        "assert(package.loaded.cjson == cjson)\n"
        "local doc = {user = 'dev1', roles = {'pub', 'sub'}, n = 3, ok = true,\n"
        "             nested = {x = {y = 1.5}}}\n"
        "local back = cjson.decode(cjson.encode(doc))\n"
        "assert(back.user == 'dev1' and back.roles[1] == 'pub' and back.roles[2] == 'sub')\n"
        "assert(back.n == 3 and back.ok == true and back.nested.x.y == 1.5)\n"
        "assert(cjson.encode({1, 2, 3}) == '[1,2,3]')\n"
        "assert(cjson.encode('a\"b\\n') == '\"a\\\\\"b\\\\n\"')\n"
        "assert(cjson.decode('{\"a\":null}').a == cjson.null)\n"
        "local ok, err = pcall(cjson.decode, '{bad')\n"
        "assert(not ok and err:find('Expected object key string', 1, true), err)\n"
        /* cjson.safe answers nil, err where cjson raises. */
        "local safe = require 'cjson.safe'\n"
        "assert(safe.decode('[1,\"x\"]')[2] == 'x')\n"
        "local v, err = safe.decode('{bad')\n"
        "assert(v == nil and err:find('Expected object key string', 1, true), err)\n"
        "local t = {} t.self = t\n"
        "v, err = safe.encode(t)\n"
        "assert(v == nil and err:find('excessive nesting', 1, true), err)\n");
}

/* Loading the module adds it and nothing else: no global, no other module,
 * none of what the sandbox removed, and no way for it to run a script's
 * code (cjson reads tables raw, so a metamethod is never called). */
static void test_cjson_loading_keeps_the_sandbox(void **state)
{
    run(L_of(state),
        "local globals, loaded = {}, {}\n"
        "for k in pairs(_G) do globals[k] = true end\n"
        "for k in pairs(package.loaded) do loaded[k] = true end\n"
        "local cjson = require 'cjson'\n"
        "local safe = require 'cjson.safe'\n"
        "for k in pairs(_G) do assert(globals[k], 'new global ' .. tostring(k)) end\n"
        "local new = {}\n"
        "for k in pairs(package.loaded) do if not loaded[k] then new[#new + 1] = k end end\n"
        "table.sort(new)\n"
        "assert(table.concat(new, ',') == 'cjson,cjson.safe', table.concat(new, ','))\n"
        "assert(os.exit == nil and os.execute == nil and io.popen == nil)\n"
        "assert(debug.sethook == nil and debug.getregistry == nil)\n"
        "assert(load(BYTECODE) == nil)\n"
        "for _, m in ipairs{cjson, safe, cjson.new()} do\n"
        "  for k, v in pairs(m) do\n"
        "    assert(type(v) ~= 'userdata' or getmetatable(v) == nil, k)\n"
        "  end\n"
        "end\n"
        "local trap = setmetatable({a = 1}, {\n"
        "  __index = function() error('__index called') end,\n"
        "  __pairs = function() error('__pairs called') end,\n"
        "  __len = function() error('__len called') end})\n"
        "assert(cjson.encode(trap) == '{\"a\":1}')\n");
}

/* As a script module gets it: the engine's sandbox is on by default. */
static void test_cjson_in_a_script_module(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;
    char err[512];

    fx_init(&fx);
    fx_write(&fx, "j.lua",
             "local cjson = require 'cjson'\n"
             "local safe = require 'cjson.safe'\n"
             "assert(cjson.decode(cjson.encode({a = {1, 2}})).a[2] == 2)\n"
             "assert(safe.decode('{') == nil)\n"
             "assert(os.execute == nil)\n"
             "function on_client_connected() return cjson.encode({ok = true}) end\n");
    fx_configure(&fx, "j", NULL);
    assert_true(fx.cfg.sandbox);
    if (script_engine_open(&e, &fx.cfg, 1, err, sizeof err) != 0)
        fail_msg("script_engine_open: %s", err);
    lua_rawgeti(e.L, LUA_REGISTRYINDEX, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]);
    lua_call(e.L, 0, 1);
    assert_string_equal(lua_tostring(e.L, -1), "{\"ok\":true}");
    lua_pop(e.L, 1);
    script_engine_close(&e);
    fx_free(&fx);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_sandboxed, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_process_control_removed),
        T(test_kept_functions),
        T(test_load_refuses_bytecode),
        T(test_load_text),
        T(test_load_explicit_binary_mode_refused),
        T(test_load_reader_function),
        T(test_load_env),
        T(test_load_argument_errors),
        T(test_loadfile_refuses_bytecode),
        T(test_dofile_refuses_bytecode),
        T(test_loadfile_text),
        T(test_dofile_text),
        T(test_dofile_propagates_errors),
        T(test_require_refuses_bytecode),
        T(test_require_text_module),
        T(test_require_missing_lists_tried_files),
        T(test_c_searchers_kept),
        T(test_debug_pruned),
        T(test_debug_kept_functions_work),
        T(test_gc_metamethod_refused),
        T(test_metatable_with_gc_not_given_out),
        T(test_backtracking_pattern_refused),
        T(test_ordinary_patterns_unaffected),
        T(test_cjson_round_trip),
        T(test_cjson_loading_keeps_the_sandbox),
        cmocka_unit_test(test_cjson_in_a_script_module),
        cmocka_unit_test_setup_teardown(test_plain_state_loads_bytecode, setup_plain, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
