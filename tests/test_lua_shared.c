/* exhook.shared over the local store: each method's return values as
 * OpenResty's ngx.shared.DICT gives them, and the argument errors. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "fixtures.h"
#include "script.h"
#include "shared_dicts.h"

static struct fixture fx;
static struct script_engine engine;

static int setup(void **state)
{
    (void)state;
    char err[1024];
    fx_init(&fx);
    /* The local store never waits: a module's body and init() may use it. */
    fx_write(&fx, "m.lua",
             "exhook.shared.big:set('body', 'set in the module body')\n"
             "local M = {}\n"
             "function M.init() exhook.shared.big:incr('inits', 1, 0) end\n"
             "return M\n");
    fx_configure(&fx, "m",
                 "[shared]\n"
                 "d = 64KB\n"
                 "big = 1MB\n"
                 "remote = redis://127.0.0.1:6379/0\n");
    if (shared_dicts_open(&fx.cfg, err, sizeof err) != 0)
        fail_msg("shared_dicts_open: %s", err);
    if (script_engine_open(&engine, &fx.cfg, 1, err, sizeof err) != 0)
        fail_msg("script_engine_open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    script_engine_close(&engine);
    fx_free(&fx);
    return 0;
}

/* Runs `chunk` (assert lines) on an empty dictionary d. */
static void check(const char *chunk)
{
    lua_State *L = engine.L;
    if (luaL_dostring(L, "exhook.shared.d:flush_all(); exhook.shared.d:flush_expired()") != LUA_OK)
        fail_msg("flush: %s", lua_tostring(L, -1));
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("Lua check failed: %s", lua_tostring(L, -1));
}

/* Runs `chunk`, which must raise an error containing `text`. */
static void check_error(const char *chunk, const char *text)
{
    lua_State *L = engine.L;
    if (luaL_dostring(L, chunk) == LUA_OK)
        fail_msg("no error from: %s", chunk);
    const char *msg = lua_tostring(L, -1);
    if (!strstr(msg, text))
        fail_msg("error '%s' does not contain '%s'", msg, text);
    lua_pop(L, 1);
}

static void test_declared_dictionaries_are_objects_and_others_nil(void **state)
{
    (void)state;
    check("assert(tostring(exhook.shared.d) == 'exhook.shared.d')\n"
          "assert(exhook.shared.big ~= nil and exhook.shared.remote ~= nil)\n"
          "assert(exhook.shared.nope == nil)\n"
          "assert(getmetatable(exhook.shared.d) == 'exhook.shared')\n");
}

static void test_module_body_and_init_used_the_dictionary(void **state)
{
    (void)state;
    lua_State *L = engine.L;
    if (luaL_dostring(L, "local big = exhook.shared.big\n"
                         "assert(big:get('body') == 'set in the module body')\n"
                         "assert(big:get('inits') == 1)\n") != LUA_OK)
        fail_msg("Lua check failed: %s", lua_tostring(L, -1));
}

static void test_set_get_keeps_types(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "local ok, err, forcible = d:set('s', 'a\\0b')\n"
          "assert(ok == true and err == nil and forcible == false)\n"
          "assert(d:get('s') == 'a\\0b')\n"
          "d:set('i', 42); assert(math.type(d:get('i')) == 'integer' and d:get('i') == 42)\n"
          "d:set('f', 1.5); assert(math.type(d:get('f')) == 'float' and d:get('f') == 1.5)\n"
          "d:set('t', true); assert(d:get('t') == true)\n"
          "d:set('b', false); assert(d:get('b') == false)\n"
          "d:set('e', ''); assert(d:get('e') == '')\n"
          "assert(d:get('missing') == nil)\n"
          "d:set('s', 'longer value ' .. string.rep('x', 300)); assert(#d:get('s') == 313)\n"
          "d:set('s', nil); assert(d:get('s') == nil)\n");
}

static void test_add_replace_delete(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "assert(d:add('k', 1) == true)\n"
          "local ok, err, forcible = d:add('k', 2)\n"
          "assert(ok == false and err == 'exists' and forcible == false)\n"
          "assert(d:get('k') == 1)\n"
          "ok, err = d:safe_add('k', 3); assert(ok == false and err == 'exists')\n"
          "ok, err = d:replace('nope', 1); assert(ok == false and err == 'not found')\n"
          "assert(d:replace('k', 'v') == true and d:get('k') == 'v')\n"
          "assert(d:safe_set('k', 'w') == true and d:get('k') == 'w')\n"
          "assert(d:delete('k') == true and d:get('k') == nil)\n"
          "assert(d:delete('k') == true)\n"
          "assert(d:safe_add('k', 5) == true and d:get('k') == 5)\n");
}

static void test_incr(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "local v, err, forcible = d:incr('n', 1)\n"
          "assert(v == nil and err == 'not found' and forcible == false)\n"
          "v, err, forcible = d:incr('n', 1, 0)\n"
          "assert(v == 1 and err == nil and forcible == false and math.type(v) == 'integer')\n"
          "assert(d:incr('n', 5) == 6 and d:incr('n', -10) == -4)\n"
          "assert(d:incr('n', 0.5) == -3.5 and math.type(d:get('n')) == 'float')\n"
          "assert(d:incr('m', 2, 10) == 12)\n"
          "assert(d:incr('x', 1, 0.25) == 1.25)\n"
          "d:set('s', 'text')\n"
          "v, err = d:incr('s', 1); assert(v == nil and err == 'not a number')\n"
          "v, err = d:incr('s', 1, 0); assert(v == nil and err == 'not a number')\n"
          "d:set('b', true); v, err = d:incr('b', 1); assert(err == 'not a number')\n"
          "assert(d:incr('w', 1, math.maxinteger) == math.mininteger)\n");
}

static void test_ttl_and_expire(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "d:set('p', 1)\n"
          "assert(d:ttl('p') == 0)\n"
          "d:set('t', 1, 100)\n"
          "local t = d:ttl('t'); assert(t > 99 and t <= 100)\n"
          "local v, err = d:ttl('missing'); assert(v == nil and err == 'not found')\n"
          "v, err = d:expire('missing', 5); assert(v == nil and err == 'not found')\n"
          "assert(d:expire('p', 50) == true)\n"
          "t = d:ttl('p'); assert(t > 49 and t <= 50)\n"
          "assert(d:expire('p', 0) == true and d:ttl('p') == 0)\n"
          "assert(d:incr('c', 1, 0, 30) == 1); t = d:ttl('c'); assert(t > 29 and t <= 30)\n"
          "d:incr('c', 1, 0, 1000); t = d:ttl('c'); assert(t <= 30)\n");
}

static void test_short_ttl_expires(void **state)
{
    (void)state;
    /* 50 ms to live; waited for up to 2 s (both: the two may be set in
     * different milliseconds). */
    check("local d = exhook.shared.d\n"
          "d:set('a', 'x', 0.05); d:incr('n', 1, 0, 0.05); d:set('keep', 1, 60)\n"
          "assert(d:get('a') == 'x')\n"
          "local deadline = os.time() + 2\n"
          "repeat until (d:get('a') == nil and d:get('n') == nil) or os.time() > deadline\n"
          "assert(d:get('a') == nil and d:get('n') == nil and d:get('keep') == 1)\n"
          "local v, err = d:ttl('a'); assert(err == 'not found')\n"
          "assert(d:incr('n', 1) == nil)\n"
          "assert(d:add('a', 'again') == true)\n");
}

static void test_keys_flush_all_flush_expired(void **state)
{
    (void)state;
    check("local d = exhook.shared.big\n"
          "d:flush_all(); d:flush_expired()\n"
          "for i = 1, 1100 do assert(d:set('k' .. i, i)) end\n"
          "assert(#d:keys() == 1024 and #d:keys(0) == 1100 and #d:keys(3) == 3)\n"
          "local k = d:keys(2); assert(k[1] == 'k1100' and k[2] == 'k1099')\n"
          "d:get('k1'); assert(d:keys(1)[1] == 'k1')\n"
          "assert(d:flush_all() == true)\n"
          "assert(#d:keys(0) == 0 and d:get('k5') == nil)\n"
          "local before = d:free_space()\n"
          "assert(d:flush_expired(100) == 100)\n"
          "assert(d:free_space() > before)\n"
          "assert(d:flush_expired() == 999)\n"
          "assert(d:flush_expired() == 0)\n");
}

static void test_capacity_and_free_space(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "assert(d:capacity() == 65536)\n"
          "local free = d:free_space(); assert(free > 50000 and free < 65536)\n"
          "d:set('k', 'v'); assert(d:free_space() == free - 64)\n"
          "d:set('k', string.rep('v', 100)); assert(d:free_space() == free - 192)\n"
          "d:delete('k'); assert(d:free_space() == free)\n");
}

static void test_full_dictionary_evicts_least_recently_used(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "local i, forcible = 0, false\n"
          "while not forcible do i = i + 1; local ok, err; ok, err, forcible = d:set('k' .. i, "
          "'v'); assert(ok) end\n"
          /* k1 was the least recently used: it went */
          "assert(d:get('k1') == nil and d:get('k' .. i) == 'v' and d:get('k2') == 'v')\n"
          /* k2 was just used: the next eviction takes k3 */
          "local ok, err, f = d:set('new', 'v'); assert(ok and f)\n"
          "assert(d:get('k2') == 'v' and d:get('k3') == nil)\n"
          /* safe_* never evict */
          "ok, err, f = d:safe_set('other', 'v'); assert(ok == false and err == 'no memory' "
          "and f == false)\n"
          "ok, err = d:safe_add('other', 'v'); assert(ok == false and err == 'no memory')\n"
          "assert(d:get('k4') == 'v')\n"
          /* replacing with a value of the same size needs no room */
          "assert(d:safe_set('k4', 'w') == true)\n"
          /* a larger value without room: the old one stays */
          "ok, err = d:safe_set('k4', string.rep('w', 200)); assert(ok == false and err == "
          "'no memory')\n"
          "assert(d:get('k4') == 'w')\n"
          /* incr creating a key may evict too */
          "local n, e2, f2 = d:incr('counter', 1, 0); assert(n == 1 and f2 == true)\n");
}

static void test_expired_keys_go_before_valid_ones(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "local i = 0\n"
          "repeat i = i + 1 until d:safe_set('k' .. i, 'v', i % 2 == 0 and 0.02 or 0) ~= true\n"
          "local deadline = os.time() + 2\n"
          /* the last key set with a ttl: when it is gone, all are (a slow
           * fill may have seen the first ones expire already) */
          "local last = (i - 1) % 2 == 0 and i - 1 or i - 2\n"
          "repeat until d:get('k' .. last) == nil or os.time() > deadline\n"
          "local ok, err, forcible = d:safe_set('after', 'v'); assert(ok == true and forcible "
          "== false)\n"
          "assert(d:get('k1') == 'v' and d:get('k3') == 'v')\n");
}

static void test_value_too_large_is_an_error_without_eviction(void **state)
{
    (void)state;
    check("local d = exhook.shared.d\n"
          "d:set('keep', 'v')\n"
          "local ok, err, forcible = d:set('huge', string.rep('x', 70000))\n"
          "assert(ok == false and forcible == false)\n"
          "assert(err:find(\"shared dictionary 'd': key and value of 70004 bytes can never "
          "fit\", 1, true), err)\n"
          "assert(d:get('keep') == 'v')\n");
}

static void test_argument_errors(void **state)
{
    (void)state;
    check_error("exhook.shared.d.get('k')", "exhook.shared: call get with ':' (dict:get(...)), "
                                            "not '.'");
    check_error("exhook.shared.d:get(1)", "exhook.shared.d:get: key must be a string, got number");
    check_error("exhook.shared.d:get()", "exhook.shared.d:get: key must be a string, got no value");
    check_error("exhook.shared.d:set('', 1)", "exhook.shared.d:set: key must not be empty");
    check_error("exhook.shared.d:set(string.rep('k', 65536), 1)",
                "exhook.shared.d:set: key too long (65536 bytes, at most 65535)");
    check_error("exhook.shared.d:set('k', {})",
                "exhook.shared.d:set: value must be a string, a number or a boolean, got table");
    check_error("exhook.shared.d:add('k', nil)",
                "exhook.shared.d:add: value must be a string, a number or a boolean, got nil");
    check_error("exhook.shared.d:set('k', 1, -1)",
                "exhook.shared.d:set: ttl must be 0 (never expires) or more seconds");
    check_error("exhook.shared.d:set('k', 1, 0/0)",
                "exhook.shared.d:set: ttl must be 0 (never expires) or more seconds");
    check_error("exhook.shared.d:set('k', 1, '5')",
                "exhook.shared.d:set: ttl must be a number of seconds");
    check_error("exhook.shared.d:expire('k')", "exhook.shared.d:expire: ttl must be a number");
    check_error("exhook.shared.d:incr('k', '1')",
                "exhook.shared.d:incr: delta must be a number, got string");
    check_error("exhook.shared.d:incr('k', 1, 'x')",
                "exhook.shared.d:incr: init must be a number, got string");
    check_error("exhook.shared.d:incr('k', 1, nil, 5)",
                "exhook.shared.d:incr: init_ttl needs init");
    check_error("exhook.shared.d:keys(-1)", "exhook.shared.d:keys: max must be an integer");
    check_error("exhook.shared.d:flush_expired(1.5)",
                "exhook.shared.d:flush_expired: max must be an integer");
}

/* Outside a handler (here: no call runs) a Redis-backed dictionary cannot
 * wait: the error says where to call it instead. */
static void test_redis_backed_dictionary_waits_only_in_handlers(void **state)
{
    (void)state;
    check_error("exhook.shared.remote:get('k')",
                "exhook.shared.remote:get: cannot wait here: a module's body and init() run at "
                "load time");
}

static void test_big_values_round_trip(void **state)
{
    (void)state;
    check("local d = exhook.shared.big\n"
          "local v = string.rep('0123456789', 50000)\n"
          "assert(d:set('v', v) == true and d:get('v') == v)\n"
          "assert(d:delete('v'))\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declared_dictionaries_are_objects_and_others_nil),
        cmocka_unit_test(test_module_body_and_init_used_the_dictionary),
        cmocka_unit_test(test_set_get_keeps_types),
        cmocka_unit_test(test_add_replace_delete),
        cmocka_unit_test(test_incr),
        cmocka_unit_test(test_ttl_and_expire),
        cmocka_unit_test(test_short_ttl_expires),
        cmocka_unit_test(test_keys_flush_all_flush_expired),
        cmocka_unit_test(test_capacity_and_free_space),
        cmocka_unit_test(test_full_dictionary_evicts_least_recently_used),
        cmocka_unit_test(test_expired_keys_go_before_valid_ones),
        cmocka_unit_test(test_value_too_large_is_an_error_without_eviction),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_redis_backed_dictionary_waits_only_in_handlers),
        cmocka_unit_test(test_big_values_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
