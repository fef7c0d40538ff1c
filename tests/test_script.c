#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fixtures.h"
#include "hooks.h"
#include "script.h"

#define ERR_LEN 1024

/* ---- helpers ---------------------------------------------------------- */

static void open_ok(struct script_engine *e, struct fixture *fx, int worker_id)
{
    char err[ERR_LEN] = "";

    if (script_engine_open(e, &fx->cfg, worker_id, err, sizeof err) != 0)
        fail_msg("script_engine_open failed: %s", err);
    assert_non_null(e->L);
    assert_int_equal(e->worker_id, worker_id);
}

/* Opens, expects failure, and checks the engine is left closed; the error
 * goes to `err`. */
static void open_fails(struct fixture *fx, char *err, size_t errlen)
{
    struct script_engine e;

    memset(&e, 0x5a, sizeof e);
    err[0] = '\0';
    if (script_engine_open(&e, &fx->cfg, 1, err, errlen) != -1)
        fail_msg("script_engine_open unexpectedly succeeded");
    assert_null(e.L);
    assert_null(e.modules);
    assert_int_equal(e.module_count, 0);
    assert_int_not_equal(err[0], '\0');
    /* Closing a failed engine again is harmless. */
    script_engine_close(&e);
    assert_null(e.L);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static void assert_starts_with(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", s, prefix);
}

/* Expects exactly `expected` (printf format, %s = fixture dir) as the error. */
static void assert_open_error(struct fixture *fx, const char *fmt)
{
    char err[ERR_LEN], expected[ERR_LEN];

    open_fails(fx, err, sizeof err);
    snprintf(expected, sizeof expected, fmt, fx->dir);
    assert_string_equal(err, expected);
}

/* Calls the function behind registry ref `ref` with no arguments and leaves
 * its one result on the stack. */
static void call_ref(lua_State *L, int ref)
{
    assert_int_not_equal(ref, LUA_NOREF);
    assert_int_equal(lua_rawgeti(L, LUA_REGISTRYINDEX, ref), LUA_TFUNCTION);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        fail_msg("handler failed: %s", lua_tostring(L, -1));
}

static lua_Integer call_int(lua_State *L, int ref)
{
    call_ref(L, ref);
    assert_true(lua_isinteger(L, -1));
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Runs a chunk of assert(...) lines in the engine's state. */
static void run_checks(lua_State *L, const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("Lua check failed: %s", lua_tostring(L, -1));
}

static void assert_only_handlers(const struct script_module *m, const int *ids, size_t n)
{
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        bool want = false;
        for (size_t i = 0; i < n; i++)
            want = want || ids[i] == hk;
        if (want && m->handlers[hk] == LUA_NOREF)
            fail_msg("module '%s': %s not resolved", m->name, hook_defs[hk].handler);
        if (!want && m->handlers[hk] != LUA_NOREF)
            fail_msg("module '%s': %s unexpectedly resolved", m->name, hook_defs[hk].handler);
    }
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");

    buf[0] = '\0';
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* ---- handler resolution ---------------------------------------------------- */

static void test_module_returning_table_resolves_its_handlers(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;
    char file[512];

    fx_init(&fx);
    fx_write(&fx, "tbl.lua",
             "local M = {}\n"
             "function M.on_client_connected() return 11 end\n"
             "function M.on_message_publish() return 12 end\n"
             "on_client_authenticate = function() end -- a global, not in the table\n"
             "return M\n");
    fx_configure(&fx, "tbl", NULL);
    open_ok(&e, &fx, 1);

    assert_int_equal(e.module_count, 1);
    assert_string_equal(e.modules[0].name, "tbl");
    snprintf(file, sizeof file, "%s/tbl.lua", fx.dir);
    assert_string_equal(e.modules[0].file, file);
    int ids[] = {HOOK_CLIENT_CONNECTED, HOOK_MESSAGE_PUBLISH};
    assert_only_handlers(&e.modules[0], ids, 2);
    assert_int_equal(e.modules[0].deinit_ref, LUA_NOREF);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]), 11);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_MESSAGE_PUBLISH]), 12);

    script_engine_close(&e);
    assert_null(e.L);
    fx_free(&fx);
}

static void test_module_defining_globals_resolves_its_handlers(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "glob.lua",
             "function on_client_disconnected() return 21 end\n"
             "function on_session_created() return 22 end\n"
             "function deinit() end\n"
             "helper = 5\n");
    fx_configure(&fx, "glob", NULL);
    open_ok(&e, &fx, 1);

    assert_int_equal(e.module_count, 1);
    int ids[] = {HOOK_CLIENT_DISCONNECTED, HOOK_SESSION_CREATED};
    assert_only_handlers(&e.modules[0], ids, 2);
    assert_int_not_equal(e.modules[0].deinit_ref, LUA_NOREF);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_DISCONNECTED]), 21);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_SESSION_CREATED]), 22);
    /* The module's globals stay in its own environment. */
    assert_int_equal(lua_getglobal(e.L, "on_client_disconnected"), LUA_TNIL);
    assert_int_equal(lua_getglobal(e.L, "helper"), LUA_TNIL);
    lua_pop(e.L, 2);

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_modules_defining_same_global_do_not_clobber_each_other(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "a.lua",
             "x = 1\n"
             "function on_client_connected() return x end\n");
    fx_write(&fx, "b.lua",
             "x = 2\n"
             "function on_client_connected() return x end\n");
    fx_configure(&fx, "a, b", NULL);
    open_ok(&e, &fx, 1);

    assert_int_equal(e.module_count, 2);
    assert_string_equal(e.modules[0].name, "a");
    assert_string_equal(e.modules[1].name, "b");
    assert_int_not_equal(e.modules[0].handlers[HOOK_CLIENT_CONNECTED],
                         e.modules[1].handlers[HOOK_CLIENT_CONNECTED]);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]), 1);
    assert_int_equal(call_int(e.L, e.modules[1].handlers[HOOK_CLIENT_CONNECTED]), 2);
    assert_int_equal(lua_getglobal(e.L, "x"), LUA_TNIL);
    lua_pop(e.L, 1);

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_global_handler_of_required_library_is_not_taken_as_handler(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    /* `require` runs the library in _G, so its on_* global lands there. */
    fx_write(&fx, "helperlib.lua",
             "function on_client_authenticate() return true end\n"
             "return { loaded = true }\n");
    fx_write(&fx, "user.lua",
             "local h = require('helperlib')\n"
             "function on_client_connected() return h.loaded and 1 or 0 end\n");
    fx_configure(&fx, "user", NULL);
    open_ok(&e, &fx, 1);

    /* The global really exists and the module can see it... */
    assert_int_equal(lua_getglobal(e.L, "on_client_authenticate"), LUA_TFUNCTION);
    lua_pop(e.L, 1);
    /* ...but it is not the module's own. */
    int ids[] = {HOOK_CLIENT_CONNECTED};
    assert_only_handlers(&e.modules[0], ids, 1);
    assert_int_equal(e.modules[0].handlers[HOOK_CLIENT_AUTHENTICATE], LUA_NOREF);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]), 1);

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_aliases_check_acl_and_takeovered_resolve_their_hooks(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "old.lua",
             "function on_client_check_acl() return 31 end\n"
             "function on_session_takeovered() return 32 end\n");
    fx_write(&fx, "oldtbl.lua",
             "return { on_client_check_acl = function() return 41 end,\n"
             "         on_session_takeovered = function() return 42 end }\n");
    /* Both names defined: the canonical one wins. */
    fx_write(&fx, "both.lua",
             "function on_client_authorize() return 51 end\n"
             "function on_client_check_acl() return 52 end\n");
    fx_configure(&fx, "old, oldtbl, both", NULL);
    open_ok(&e, &fx, 1);

    int ids[] = {HOOK_CLIENT_AUTHORIZE, HOOK_SESSION_TAKENOVER};
    assert_only_handlers(&e.modules[0], ids, 2);
    assert_only_handlers(&e.modules[1], ids, 2);
    assert_only_handlers(&e.modules[2], ids, 1);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_AUTHORIZE]), 31);
    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_SESSION_TAKENOVER]), 32);
    assert_int_equal(call_int(e.L, e.modules[1].handlers[HOOK_CLIENT_AUTHORIZE]), 41);
    assert_int_equal(call_int(e.L, e.modules[1].handlers[HOOK_SESSION_TAKENOVER]), 42);
    assert_int_equal(call_int(e.L, e.modules[2].handlers[HOOK_CLIENT_AUTHORIZE]), 51);

    script_engine_close(&e);
    fx_free(&fx);
}

/* ---- init / deinit ----------------------------------------------------------- */

#define TRACE_MODULE(name)                                                      \
    "_G.trace = _G.trace or {}\n"                                               \
    "table.insert(_G.trace, '" name ":body')\n"                                 \
    "function init() table.insert(_G.trace, '" name ":init') end\n"            \
    "function on_client_connected() end\n"

static void test_init_runs_once_right_after_each_module_loads_in_order(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e1, e2;

    fx_init(&fx);
    fx_write(&fx, "a.lua", TRACE_MODULE("a"));
    fx_write(&fx, "b.lua", TRACE_MODULE("b"));
    fx_write(&fx, "c.lua",
             "_G.trace = _G.trace or {}\n"
             "table.insert(_G.trace, 'c:body')\n"
             "return { init = function() table.insert(_G.trace, 'c:init') end }\n");
    fx_configure(&fx, "b, a, c", NULL);
    open_ok(&e1, &fx, 1);
    open_ok(&e2, &fx, 2);

    /* Each state ran every init exactly once. */
    run_checks(e1.L, "assert(table.concat(trace, ',') == "
                     "'b:body,b:init,a:body,a:init,c:body,c:init', table.concat(trace, ','))\n");
    run_checks(e2.L, "assert(table.concat(trace, ',') == "
                     "'b:body,b:init,a:body,a:init,c:body,c:init', table.concat(trace, ','))\n");

    script_engine_close(&e1);
    script_engine_close(&e2);
    fx_free(&fx);
}

static void test_deinit_runs_at_close_in_reverse_module_order(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;
    char text[1024], path[512], got[256];

    fx_init(&fx);
    snprintf(path, sizeof path, "%s/deinit.txt", fx.dir);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char file[16];
        snprintf(text, sizeof text,
                 "function deinit()\n"
                 "  local f = assert(io.open('%s', 'a'))\n"
                 "  f:write('%s\\n')\n"
                 "  f:close()\n"
                 "end\n",
                 path, names[i]);
        snprintf(file, sizeof file, "%s.lua", names[i]);
        fx_write(&fx, file, text);
    }
    fx_write(&fx, "none.lua", "function on_client_connected() end\n");
    fx_configure(&fx, "a, none, b, c", NULL);
    open_ok(&e, &fx, 1);

    assert_int_equal(access(path, F_OK), -1); /* nothing ran at open */
    script_engine_close(&e);
    assert_null(e.L);
    read_file(path, got, sizeof got);
    assert_string_equal(got, "c\nb\na\n");
    fx_free(&fx);
}

/* Writes module `file`: `prefix` then a deinit() that appends "ok" to the
 * file whose path it stores in `path`. */
static void write_deinit_module(struct fixture *fx, const char *file, const char *prefix,
                                char *path, size_t pathlen)
{
    char text[1024];
    snprintf(path, pathlen, "%s/deinit.txt", fx->dir);
    snprintf(text, sizeof text,
             "%sfunction deinit()\n"
             "  local f = assert(io.open('%s', 'a'))\n"
             "  f:write('ok\\n')\n"
             "  f:close()\n"
             "end\n",
             prefix, path);
    fx_write(fx, file, text);
}

static void test_deinit_of_loaded_modules_runs_when_a_later_module_fails(void **state)
{
    (void)state;
    struct fixture fx;
    char path[512], got[256], err[ERR_LEN];

    fx_init(&fx);
    write_deinit_module(&fx, "ok.lua", "", path, sizeof path);
    fx_write(&fx, "broken.lua", "error('nope')\n");
    fx_configure(&fx, "ok, broken", NULL);
    open_fails(&fx, err, sizeof err);
    assert_contains(err, "broken.lua:1: nope");
    read_file(path, got, sizeof got);
    assert_string_equal(got, "ok\n");
    fx_free(&fx);
}

static void test_deinit_is_not_called_for_a_module_whose_init_failed(void **state)
{
    (void)state;
    struct fixture fx;
    char path[512], got[256], err[ERR_LEN];

    fx_init(&fx);
    write_deinit_module(&fx, "db.lua", "function init() error('no database') end\n", path,
                        sizeof path);
    fx_configure(&fx, "db", NULL);
    open_fails(&fx, err, sizeof err);
    assert_contains(err, "db.lua:1: no database");
    read_file(path, got, sizeof got);
    assert_string_equal(got, "");
    fx_free(&fx);
}

static void test_deinit_checked_at_load_is_the_one_called_whatever_init_does(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;
    char path[512], got[256];

    fx_init(&fx);
    write_deinit_module(&fx, "m.lua", "function init() deinit = 42 end\n", path, sizeof path);
    fx_configure(&fx, "m", NULL);
    open_ok(&e, &fx, 1);
    script_engine_close(&e);
    read_file(path, got, sizeof got);
    assert_string_equal(got, "ok\n");
    fx_free(&fx);
}

/* ---- require, exhook API ----------------------------------------------------- */

static void test_require_finds_modules_in_scripts_folder_and_subfolders(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "lib/util.lua", "return { answer = 42 }\n");
    fx_write(&fx, "flat.lua", "return { value = 7 }\n");
    fx_write(&fx, "pkg/init.lua", "return { value = 100 }\n");
    fx_write(&fx, "main.lua",
             "local util = require('lib.util')\n"
             "local flat = require('flat')\n"
             "local pkg = require('pkg')\n"
             "function on_client_connected()\n"
             "  return util.answer + flat.value + pkg.value\n"
             "end\n");
    fx_configure(&fx, "main", NULL);
    open_ok(&e, &fx, 1);

    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]), 149);
    run_checks(e.L, "assert(package.loaded['lib.util'].answer == 42)\n");

    script_engine_close(&e);
    fx_free(&fx);
}

/* The ACL helpers as a script sees them: the rule "a client subscribes
 * only under its own clientid", checked with a filter built from the
 * clientid, against clients trying to widen it. */
static void test_exhook_topic_helpers_for_an_acl(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "acl.lua", "return {}\n");
    fx_configure(&fx, "acl", NULL);
    open_ok(&e, &fx, 1);

    run_checks(e.L,
               "local function allowed(clientid, topic)\n"
               "  local own, err = exhook.topic_filter('clients/%s/#', clientid)\n"
               "  if not own then return false, err end\n"
               "  return exhook.topic_match(own, topic)\n"
               "end\n"
               "assert(allowed('dev1', 'clients/dev1/up') == true)\n"
               "assert(allowed('dev1', 'clients/dev1') == true)\n"
               /* Filters: covered or not. */
               "assert(allowed('dev1', 'clients/dev1/+') == true)\n"
               "assert(allowed('dev1', 'clients/dev1/#') == true)\n"
               "assert(allowed('dev1', 'clients/+/up') == false)\n"
               "assert(allowed('dev1', 'clients/#') == false)\n"
               "assert(allowed('dev1', '#') == false)\n"
               "assert(allowed('dev1', 'clients/dev2/up') == false)\n"
               /* The widening attack: the clientid is a wildcard. */
               "for _, cid in ipairs{'+', '#', 'a/b', '', 'x#'} do\n"
               "  local ok, err = allowed(cid, 'clients/victim/up')\n"
               "  assert(ok == false, cid)\n"
               "end\n"
               "local ok, err = allowed('+', 'clients/victim/up')\n"
               "assert(err == \"exhook.topic_filter: argument 2 ('+') contains '+'\", err)\n"
               "ok, err = allowed('#', 'clients/#')\n"
               "assert(err == \"exhook.topic_filter: argument 2 ('#') contains '#'\", err)\n"
               "local f, err = exhook.topic_filter('%s/x', '$SYS')\n"
               "assert(f == nil and err:find(\"starts with '$' at the first level\", 1, true))\n"
               "f, err = exhook.topic_filter('c/%s', 'a\\0b')\n"
               "assert(f == nil and err:find('contains a NUL byte', 1, true), err)\n"
               "assert(select('#', exhook.topic_filter('c/%s', 'ok')) == 1)\n"
               "assert(exhook.topic_filter('c/%s/%s', 'a', 42) == 'c/a/42')\n"
               "f, err = exhook.topic_filter('c/%s', string.rep('v', 70000))\n"
               "assert(f == nil)\n"
               "assert(err == 'exhook.topic_filter: the filter would be longer than 65535 bytes', "
               "err)\n"
               "ok, err = pcall(exhook.topic_filter, 'c/x%s', 'a')\n"
               "assert(not ok and err:find(\"template 'c/x%s': '%s' must be a whole level\", 1, "
               "true), err)\n"
               "ok, err = pcall(exhook.topic_filter, 'c/%s')\n"
               "assert(not ok and err:find(\"more '%s' than values\", 1, true), err)\n"
               "ok, err = pcall(exhook.topic_filter, 'c/%s', {})\n"
               "assert(not ok and err:find('bad argument #2', 1, true), err)\n"
               /* topic_match: $ topics, "#" against "a/#", "+" levels. */
               "assert(exhook.topic_match('#', 'a/#') == true)\n"
               "assert(exhook.topic_match('a/#', '#') == false)\n"
               "assert(exhook.topic_match('#', '$SYS/#') == false)\n"
               "assert(exhook.topic_match('+/#', '#') == true)\n"
               "assert(exhook.topic_match('a/+', 'a/+') == true)\n"
               "assert(exhook.topic_match('a/b', 'a/+') == false)\n"
               /* A second argument that is no valid filter covers nothing. */
               "assert(exhook.topic_match('#', 'a/#/b') == false)\n"
               "assert(exhook.topic_match('#', 'a\\0b') == false)\n"
               "assert(exhook.topic_match('a', 'a\\0/b') == false)\n"
               "ok, err = pcall(exhook.topic_match, 'a\\0b', 'a')\n"
               "assert(not ok and err:find('exhook.topic_match: argument 1 contains a NUL byte', "
               "1, true), err)\n"
               /* A deny rule: overlapping, not covered. */
               "assert(exhook.topic_overlaps('secret/#', '+/#') == true)\n"
               "assert(exhook.topic_match('secret/#', '+/#') == false)\n"
               "assert(exhook.topic_overlaps('secret/#', 'public/+') == false)\n"
               "assert(exhook.topic_overlaps('#', '$SYS/x') == false)\n"
               "ok, err = pcall(exhook.topic_overlaps, 'secret/#', 'a/#/b')\n"
               "assert(not ok and err:find(\"exhook.topic_overlaps: invalid filter 'a/#/b'\", 1, "
               "true), err)\n");

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_exhook_api_worker_id_version_topic_match_and_log(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "api.lua",
             "seen_worker = exhook.worker_id\n"
             "function on_client_connected() return seen_worker end\n");
    fx_configure(&fx, "api", NULL);
    open_ok(&e, &fx, 7);

    assert_int_equal(call_int(e.L, e.modules[0].handlers[HOOK_CLIENT_CONNECTED]), 7);
    run_checks(e.L,
               "assert(math.type(exhook.worker_id) == 'integer' and exhook.worker_id == 7)\n"
               "assert(type(exhook.version) == 'string' and #exhook.version > 0)\n"
               "assert(exhook.version == '" EXHOOKD_VERSION "')\n"
               "assert(require('exhook') == exhook)\n"
               "assert(exhook.topic_match('a/+', 'a/b') == true)\n"
               "assert(exhook.topic_match('#', '$SYS/x') == false)\n"
               "assert(exhook.topic_match('$SYS/#', '$SYS/x') == true)\n"
               "assert(exhook.topic_match('a/b', 'a/c') == false)\n"
               "local ok, msg = pcall(exhook.topic_match, 'a/#/b', 'a/x/b')\n"
               "assert(not ok)\n"
               "assert(msg:find(\"invalid filter 'a/#/b'\", 1, true), msg)\n"
               "ok, msg = pcall(exhook.log, 'loud', 'hello')\n"
               "assert(not ok)\n"
               "assert(msg:find(\"unknown level 'loud'\", 1, true), msg)\n"
               "assert(pcall(exhook.log, 'debug', 'fine', 1, nil, true))\n");

    script_engine_close(&e);
    fx_free(&fx);
}

/* ---- topics and advertised specs ---------------------------------------------- */

static void assert_filters(const struct cfg_filters *f, const char *const *want, size_t n)
{
    assert_int_equal(f->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(f->items[i], want[i]);
}

static void test_publish_spec_is_union_of_module_filters(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "a.lua",
             "topics = { ['message.publish'] = { 'a/#', 'shared/+' } }\n"
             "function on_message_publish() end\n");
    fx_write(&fx, "b.lua",
             "return { topics = { ['message.publish'] = { 'shared/+', 'b/#' } },\n"
             "         on_message_publish = function() end }\n");
    /* Declares a filter but has no handler: contributes nothing. */
    fx_write(&fx, "c.lua",
             "topics = { ['message.publish'] = 'c/#', ['message.acked'] = 'c/#' }\n"
             "function on_client_connected() end\n");
    fx_configure(&fx, "a, b, c", NULL);
    open_ok(&e, &fx, 1);

    const char *want[] = {"a/#", "shared/+", "b/#"};
    assert_true(e.specs[HOOK_MESSAGE_PUBLISH].registered);
    assert_filters(&e.specs[HOOK_MESSAGE_PUBLISH].topics, want, 3);
    const char *a[] = {"a/#", "shared/+"};
    assert_filters(&e.modules[0].filters[HOOK_MESSAGE_PUBLISH], a, 2);
    assert_false(e.specs[HOOK_MESSAGE_ACKED].registered);
    assert_int_equal(e.specs[HOOK_MESSAGE_ACKED].topics.count, 0);
    assert_true(e.specs[HOOK_CLIENT_CONNECTED].registered);
    assert_false(e.specs[HOOK_CLIENT_AUTHENTICATE].registered);

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_module_without_filter_makes_hook_advertised_for_every_topic(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "a.lua",
             "topics = { ['message.publish'] = 'a/#' }\n"
             "function on_message_publish() end\n");
    fx_write(&fx, "all.lua", "function on_message_publish() end\n");
    fx_configure(&fx, "a, all", NULL);
    open_ok(&e, &fx, 1);

    assert_true(e.specs[HOOK_MESSAGE_PUBLISH].registered);
    assert_int_equal(e.specs[HOOK_MESSAGE_PUBLISH].topics.count, 0);
    assert_null(e.specs[HOOK_MESSAGE_PUBLISH].topics.items);
    assert_int_equal(e.modules[0].filters[HOOK_MESSAGE_PUBLISH].count, 1);
    assert_int_equal(e.modules[1].filters[HOOK_MESSAGE_PUBLISH].count, 0);

    char buf[256];
    script_describe_hooks(&e, buf, sizeof buf);
    assert_string_equal(buf, "message.publish");

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_config_topics_apply_to_modules_without_their_own(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "plain.lua", "function on_message_publish() end\n");
    fx_write(&fx, "own.lua",
             "topics = { ['message.publish'] = 'own/#' }\n"
             "function on_message_publish() end\n");
    fx_configure(&fx, "plain, own", "[topics]\nmessage.publish = cfg/#\n");
    open_ok(&e, &fx, 1);

    const char *cfg[] = {"cfg/#"};
    const char *own[] = {"own/#"};
    const char *both[] = {"cfg/#", "own/#"};
    assert_filters(&e.modules[0].filters[HOOK_MESSAGE_PUBLISH], cfg, 1);
    assert_filters(&e.modules[1].filters[HOOK_MESSAGE_PUBLISH], own, 1);
    assert_true(e.specs[HOOK_MESSAGE_PUBLISH].registered);
    assert_filters(&e.specs[HOOK_MESSAGE_PUBLISH].topics, both, 2);

    assert_true(script_module_wants(&e.modules[0], HOOK_MESSAGE_PUBLISH, "cfg/x"));
    assert_false(script_module_wants(&e.modules[0], HOOK_MESSAGE_PUBLISH, "own/x"));
    assert_true(script_module_wants(&e.modules[1], HOOK_MESSAGE_PUBLISH, "own/x"));
    assert_false(script_module_wants(&e.modules[1], HOOK_MESSAGE_PUBLISH, "cfg/x"));

    char buf[256];
    script_describe_hooks(&e, buf, sizeof buf);
    assert_string_equal(buf, "message.publish [cfg/#, own/#]");

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_module_wants_honours_handlers_and_filters(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "f.lua",
             "topics = { ['message.publish'] = { 'sensors/+/temp', 'alerts/#' } }\n"
             "function on_message_publish() end\n"
             "function on_message_delivered() end\n"
             "function on_client_connected() end\n");
    fx_configure(&fx, "f", NULL);
    open_ok(&e, &fx, 1);

    const struct script_module *m = &e.modules[0];
    assert_true(script_module_wants(m, HOOK_MESSAGE_PUBLISH, "sensors/1/temp"));
    assert_true(script_module_wants(m, HOOK_MESSAGE_PUBLISH, "alerts"));
    assert_true(script_module_wants(m, HOOK_MESSAGE_PUBLISH, "alerts/fire/now"));
    assert_false(script_module_wants(m, HOOK_MESSAGE_PUBLISH, "sensors/1/hum"));
    assert_false(script_module_wants(m, HOOK_MESSAGE_PUBLISH, "other"));
    /* No filter for delivered: every topic. */
    assert_true(script_module_wants(m, HOOK_MESSAGE_DELIVERED, "anything/at/all"));
    /* Not a message hook: the topic is ignored. */
    assert_true(script_module_wants(m, HOOK_CLIENT_CONNECTED, "ignored"));
    /* Not handled at all. */
    assert_false(script_module_wants(m, HOOK_MESSAGE_ACKED, "alerts/x"));
    assert_false(script_module_wants(m, HOOK_CLIENT_AUTHENTICATE, "x"));

    script_engine_close(&e);
    fx_free(&fx);
}

static void test_describe_hooks_lists_registered_hooks_with_filters(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;
    char buf[512];

    fx_init(&fx);
    fx_write(&fx, "a.lua",
             "local M = { topics = { ['message.publish'] = { 'sensors/#', 'alerts/+' } } }\n"
             "function M.on_client_authenticate() end\n"
             "function M.on_message_publish() end\n"
             "function M.on_provider_loaded() end\n"
             "return M\n");
    fx_write(&fx, "b.lua",
             "topics = { ['message.delivered'] = 'x/#' }\n"
             "function on_client_connected() end\n"
             "function on_message_delivered() end\n");
    fx_configure(&fx, "a, b", NULL);
    open_ok(&e, &fx, 1);

    script_describe_hooks(&e, buf, sizeof buf);
    assert_string_equal(buf, "client.connected, client.authenticate, "
                             "message.publish [sensors/#, alerts/+], message.delivered [x/#]");
    /* The provider rpcs have no EMQX hook name and are never advertised. */
    assert_true(e.specs[HOOK_PROVIDER_LOADED].registered);
    script_engine_close(&e);

    fx_write(&fx, "empty.lua", "local x = 1\n");
    fx_configure(&fx, "empty", NULL);
    open_ok(&e, &fx, 1);
    script_describe_hooks(&e, buf, sizeof buf);
    assert_string_equal(buf, "(none)");
    script_engine_close(&e);
    fx_free(&fx);
}

/* A "strict" handler table whose __index raises on unknown keys is a common
 * Lua idiom. Looking up the handlers it does not define must not take the
 * process down: the open either succeeds with the handlers the table holds,
 * or fails with an error naming the file. It runs in a child process, since
 * an unprotected Lua error aborts. */
struct strict_result {
    int rc;
    int connected;  /* on_client_connected resolved */
    int others;     /* other handlers resolved */
    char err[ERR_LEN];
};

static void test_strict_handler_table_raising_on_unknown_keys_does_not_abort(void **state)
{
    (void)state;
    struct fixture fx;
    struct strict_result r;
    int fds[2];

    fx_init(&fx);
    fx_write(&fx, "strict.lua",
             "local M = {}\n"
             "function M.on_client_connected() return 1 end\n"
             "return setmetatable(M, { __index = function(_, k) error('undefined field ' .. k) end })\n");
    fx_configure(&fx, "strict", NULL);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct script_engine e;
        memset(&r, 0, sizeof r);
        close(fds[0]);
        r.rc = script_engine_open(&e, &fx.cfg, 1, r.err, sizeof r.err);
        if (r.rc == 0) {
            for (int hk = 0; hk < HOOK_COUNT; hk++) {
                if (e.modules[0].handlers[hk] == LUA_NOREF)
                    continue;
                if (hk == HOOK_CLIENT_CONNECTED)
                    r.connected = 1;
                else
                    r.others++;
            }
            script_engine_close(&e);
        }
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 3);
    }
    close(fds[1]);
    memset(&r, 0, sizeof r);
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    fx_free(&fx);

    if (!WIFEXITED(status))
        fail_msg("script_engine_open killed the process (signal %d)",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(got, (ssize_t)sizeof r);
    if (r.rc == 0) {
        assert_int_equal(r.connected, 1);
        assert_int_equal(r.others, 0);
    } else {
        assert_int_equal(r.rc, -1);
        assert_contains(r.err, "strict.lua");
        assert_contains(r.err, "undefined field");
    }
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_module_table_is_read_raw_without_running_its_metamethods(void **state)
{
    (void)state;
    struct fixture fx;
    struct script_engine e;

    fx_init(&fx);
    fx_write(&fx, "proxy.lua",
             "local M = {on_client_connected = function() return 1 end}\n"
             "return setmetatable(M, {__index = function(_, k)\n"
             "  if k == 'on_client_authenticate' then return function() return 2 end end\n"
             "  error(nil)\n"
             "end})\n");
    fx_configure(&fx, "proxy", NULL);
    open_ok(&e, &fx, 1);
    static const int only[] = {HOOK_CLIENT_CONNECTED};
    assert_only_handlers(&e.modules[0], only, 1);
    script_engine_close(&e);
    fx_free(&fx);
}

static void test_missing_init_module_names_the_folder_and_tried_files(void **state)
{
    (void)state;
    struct fixture fx;
    char err[ERR_LEN], want[ERR_LEN];

    char dir[sizeof fx.dir];

    fx_init(&fx);
    fx_configure(&fx, "nope", NULL);
    open_fails(&fx, err, sizeof err);
    memcpy(dir, fx.dir, sizeof dir);
    fx_free(&fx); /* before the checks: a failure must not leak the fixture */

    /* Each file tried, on one line. */
    snprintf(want, sizeof want,
             "init module 'nope' not found in '%s/': no file '%s/nope.lua', no file "
             "'%s/nope/init.lua'",
             dir, dir, dir);
    assert_string_equal(err, want);
}

static void test_syntax_error_names_file_and_line(void **state)
{
    (void)state;
    struct fixture fx;
    char err[ERR_LEN], want[ERR_LEN];

    fx_init(&fx);
    fx_write(&fx, "bad.lua", "x = 1\nfunction (\n");
    fx_configure(&fx, "bad", NULL);
    open_fails(&fx, err, sizeof err);
    snprintf(want, sizeof want, "%s/bad.lua:2:", fx.dir);
    assert_starts_with(err, want);
    assert_null(strchr(err, '\n'));
    fx_free(&fx);
}

static void test_runtime_error_in_module_body_names_file_and_line(void **state)
{
    (void)state;
    struct fixture fx;
    char err[ERR_LEN], want[ERR_LEN];

    fx_init(&fx);
    fx_write(&fx, "rt.lua", "local x = 1\nerror('boom')\n");
    fx_configure(&fx, "rt", NULL);
    open_fails(&fx, err, sizeof err);
    snprintf(want, sizeof want, "%s/rt.lua:2: boom", fx.dir);
    assert_string_equal(err, want);
    fx_free(&fx);
}

static void test_error_in_init_is_prefixed_and_names_file_and_line(void **state)
{
    (void)state;
    struct fixture fx;
    char err[ERR_LEN], want[ERR_LEN];

    fx_init(&fx);
    fx_write(&fx, "i.lua",
             "function init()\n"
             "  error('no database')\n"
             "end\n");
    fx_configure(&fx, "i", NULL);
    open_fails(&fx, err, sizeof err);
    snprintf(want, sizeof want, "init() failed: %s/i.lua:2: no database", fx.dir);
    assert_string_equal(err, want);
    fx_free(&fx);
}

static void test_handler_that_is_not_a_function_is_an_error(void **state)
{
    (void)state;
    struct fixture fx;

    fx_init(&fx);
    fx_write(&fx, "h.lua", "on_client_connected = 42\n");
    fx_configure(&fx, "h", NULL);
    assert_open_error(&fx, "%s/h.lua: 'on_client_connected' is a number, expected a function");

    fx_write(&fx, "h.lua", "return { on_client_check_acl = 'allow' }\n");
    assert_open_error(&fx, "%s/h.lua: 'on_client_check_acl' is a string, expected a function");

    fx_write(&fx, "h.lua", "deinit = true\n");
    assert_open_error(&fx, "%s/h.lua: 'deinit' is a boolean, expected a function");

    fx_write(&fx, "h.lua", "init = {}\n");
    assert_open_error(&fx, "%s/h.lua: 'init' is a table, expected a function");
    fx_free(&fx);
}

static void test_topics_not_a_table_is_an_error(void **state)
{
    (void)state;
    struct fixture fx;

    fx_init(&fx);
    fx_write(&fx, "t.lua", "topics = 'a/#'\nfunction on_message_publish() end\n");
    fx_configure(&fx, "t", NULL);
    assert_open_error(&fx, "%s/t.lua: 'topics' must be a table of hook name = filters, got a string");
    fx_free(&fx);
}

static void test_topics_for_non_message_hook_is_an_error(void **state)
{
    (void)state;
    struct fixture fx;

    fx_init(&fx);
    fx_write(&fx, "t.lua", "topics = { ['client.connected'] = 'a/#' }\n");
    fx_configure(&fx, "t", NULL);
    assert_open_error(&fx, "%s/t.lua: topics: 'client.connected' is not a message hook (use "
                           "message.publish, message.delivered, message.acked or "
                           "message.dropped)");

    fx_write(&fx, "t.lua", "topics = { ['message.publsh'] = 'a/#' }\n");
    assert_open_error(&fx, "%s/t.lua: topics: 'message.publsh' is not a message hook (use "
                           "message.publish, message.delivered, message.acked or "
                           "message.dropped)");
    fx_free(&fx);
}

static void test_topics_with_invalid_filter_is_an_error(void **state)
{
    (void)state;
    struct fixture fx;

    fx_init(&fx);
    fx_write(&fx, "t.lua", "topics = { ['message.publish'] = { 'ok/#', 'a/#/b' } }\n");
    fx_configure(&fx, "t", NULL);
    assert_open_error(&fx, "%s/t.lua: topics[\"message.publish\"]: invalid filter 'a/#/b': "
                           "'#' must be the whole last level");

    fx_write(&fx, "t.lua", "topics = { ['message.acked'] = 'a+' }\n");
    assert_open_error(&fx, "%s/t.lua: topics[\"message.acked\"]: invalid filter 'a+': "
                           "'+' must be a whole level");

    fx_write(&fx, "t.lua", "topics = { ['message.publish'] = {} }\n");
    assert_open_error(&fx, "%s/t.lua: topics[\"message.publish\"] must be a filter or a "
                           "non-empty list of filters");

    /* C would read 'a/#\0b' as the valid 'a/#' */
    fx_write(&fx, "t.lua", "topics = { ['message.publish'] = 'a/#\\0b' }\n");
    assert_open_error(&fx, "%s/t.lua: topics[\"message.publish\"]: invalid filter '?': "
                           "not a string without NUL bytes");
    fx_free(&fx);
}

/* ---- the shipped example ------------------------------------------------------------ */

static void test_shipped_example_registers_its_five_hooks(void **state)
{
    (void)state;
    struct config cfg;
    struct script_engine e;
    char err[ERR_LEN] = "", buf[512];

    cfg_defaults(&cfg);
    if (cfg_load_string(&cfg,
                        "[lua]\npath = " EXHOOKD_SOURCE_DIR "/scripts\ninit_module = example\n",
                        "example.ini", err, sizeof err) != 0)
        fail_msg("config: %s", err);
    if (script_engine_open(&e, &cfg, 1, err, sizeof err) != 0)
        fail_msg("example.lua does not load: %s", err);

    assert_int_equal(e.module_count, 1);
    assert_string_equal(e.modules[0].file, EXHOOKD_SOURCE_DIR "/scripts/example.lua");
    int ids[] = {HOOK_CLIENT_CONNECTED, HOOK_CLIENT_DISCONNECTED, HOOK_CLIENT_AUTHENTICATE,
                 HOOK_CLIENT_AUTHORIZE, HOOK_MESSAGE_PUBLISH};
    assert_only_handlers(&e.modules[0], ids, 5);
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        bool want = false;
        for (size_t i = 0; i < 5; i++)
            want = want || ids[i] == hk;
        assert_int_equal(e.specs[hk].registered, want);
    }
    script_describe_hooks(&e, buf, sizeof buf);
    assert_string_equal(buf, "client.connected, client.disconnected, client.authenticate, "
                             "client.authorize, message.publish [demo/#]");

    script_engine_close(&e);
    cfg_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_module_returning_table_resolves_its_handlers),
        cmocka_unit_test(test_module_defining_globals_resolves_its_handlers),
        cmocka_unit_test(test_modules_defining_same_global_do_not_clobber_each_other),
        cmocka_unit_test(test_global_handler_of_required_library_is_not_taken_as_handler),
        cmocka_unit_test(test_aliases_check_acl_and_takeovered_resolve_their_hooks),
        cmocka_unit_test(test_init_runs_once_right_after_each_module_loads_in_order),
        cmocka_unit_test(test_deinit_runs_at_close_in_reverse_module_order),
        cmocka_unit_test(test_deinit_of_loaded_modules_runs_when_a_later_module_fails),
        cmocka_unit_test(test_deinit_is_not_called_for_a_module_whose_init_failed),
        cmocka_unit_test(test_deinit_checked_at_load_is_the_one_called_whatever_init_does),
        cmocka_unit_test(test_require_finds_modules_in_scripts_folder_and_subfolders),
        cmocka_unit_test(test_exhook_api_worker_id_version_topic_match_and_log),
        cmocka_unit_test(test_exhook_topic_helpers_for_an_acl),
        cmocka_unit_test(test_publish_spec_is_union_of_module_filters),
        cmocka_unit_test(test_module_without_filter_makes_hook_advertised_for_every_topic),
        cmocka_unit_test(test_config_topics_apply_to_modules_without_their_own),
        cmocka_unit_test(test_module_wants_honours_handlers_and_filters),
        cmocka_unit_test(test_describe_hooks_lists_registered_hooks_with_filters),
        cmocka_unit_test(test_strict_handler_table_raising_on_unknown_keys_does_not_abort),
        cmocka_unit_test(test_module_table_is_read_raw_without_running_its_metamethods),
        cmocka_unit_test(test_missing_init_module_names_the_folder_and_tried_files),
        cmocka_unit_test(test_syntax_error_names_file_and_line),
        cmocka_unit_test(test_runtime_error_in_module_body_names_file_and_line),
        cmocka_unit_test(test_error_in_init_is_prefixed_and_names_file_and_line),
        cmocka_unit_test(test_handler_that_is_not_a_function_is_an_error),
        cmocka_unit_test(test_topics_not_a_table_is_an_error),
        cmocka_unit_test(test_topics_for_non_message_hook_is_an_error),
        cmocka_unit_test(test_topics_with_invalid_filter_is_an_error),
        cmocka_unit_test(test_shipped_example_registers_its_five_hooks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
