/* A script can never take a worker down: endless loops (also inside pcall or
 * a coroutine), memory bombs and os.exit are answered with the right status,
 * and the next call on the same state works. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "exhook.pb-c.h"
#include "fixtures.h"

#define LIMITS "call_timeout = 100ms\nmemory_limit = 8MB\n"

/* Every module here misbehaves for username "evil" and answers true for
 * anyone else, so each test can check that the state still works. */
#define HANDLER(body)                                                                       \
    "function on_client_authenticate(ci)\n"                                                 \
    "  if ci.username == 'evil' then\n" body "\n  end\n"                                    \
    "  return true\n"                                                                       \
    "end\n"

/* The memory tests' limits: a time limit far beyond what filling 8 MB
 * takes, also under the sanitizers on a busy machine, so that the memory
 * limit is always what stops them. */
#define MEMORY_LIMITS "call_timeout = 1m\nmemory_limit = 8MB\n"

/* Module "m" with `text`, under LIMITS. */
static struct efx *open_env(const char *text)
{
    return efx_open("m", LIMITS, "m.lua", text, NULL);
}

/* Module "m" with `text`, under MEMORY_LIMITS. */
static struct efx *open_memory_env(const char *text)
{
    return efx_open("m", MEMORY_LIMITS, "m.lua", text, NULL);
}

static void authenticate(struct efx *t, const char *username, int64_t deadline_ns)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)username;
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    efx_call(t, HOOK_CLIENT_AUTHENTICATE, &r.base, deadline_ns);
}

/* The state still answers: a well-behaved call gets STOP_AND_RETURN true. */
static void assert_state_works(struct efx *t)
{
    authenticate(t, "fine", INT64_MAX);
    if (t->out.status != GRPC_STATUS_OK)
        fail_msg("next call failed with %d: %s", t->out.status, t->out.fail.message);
    Emqx__Exhook__V3__ValuedResponse *v =
        emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data);
    assert_non_null(v);
    assert_int_equal(v->type, EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN);
    assert_true(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    assert_int_equal(lua_gettop(t->e.L), 0);
}

/* "module 'm' on_client_authenticate: stopped at <dir>/m.lua:<line> after " */
static void assert_stopped_at(struct efx *t, int line)
{
    assert_int_equal(t->out.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "module 'm' on_client_authenticate: stopped at %s/m.lua:%d after ",
             t->fx.dir, line);
    if (strncmp(t->out.fail.message, prefix, strlen(prefix)) != 0)
        fail_msg("got '%s', expected it to start with '%s'", t->out.fail.message, prefix);
    assert_non_null(strstr(t->out.fail.message, " ms"));
}

static void test_endless_loop_is_stopped_with_deadline_exceeded(void **state)
{
    (void)state;
    struct efx *t = open_env(HANDLER("    while true do end"));
    int64_t start = script_now_ns();
    authenticate(t, "evil", INT64_MAX);
    int64_t took_ms = (script_now_ns() - start) / 1000000;
    assert_stopped_at(t, 3);
    assert_true(took_ms >= 100);
    assert_state_works(t);
    efx_close(t);
}

static void test_endless_loop_inside_pcall_cannot_swallow_the_stop(void **state)
{
    (void)state;
    struct efx *t = open_env(
        HANDLER("    while true do\n"
                "      pcall(function() while true do end end)\n"
                "      xpcall(function() while true do end end, function(e) return e end)\n"
                "    end"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_state_works(t);
    /* and once more: the stop is re-armed for every call */
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_state_works(t);
    efx_close(t);
}

static void test_endless_loop_in_a_coroutine_made_at_load_time_is_stopped(void **state)
{
    (void)state;
    struct efx *t = open_env("local spin = coroutine.wrap(function() while true do end end)\n"
                             HANDLER("    spin()"));
    authenticate(t, "evil", INT64_MAX);
    assert_stopped_at(t, 1);
    assert_state_works(t);
    efx_close(t);
}

static void test_caller_of_a_coroutine_that_ran_over_is_stopped_too(void **state)
{
    (void)state;
    /* The coroutine is stopped; its caller catches that through resume and
     * would go on, and set `escaped`, if only the coroutine were stopped. */
    struct efx *t = open_env(HANDLER("    local co = coroutine.create(function() while true do end end)\n"
                                     "    coroutine.resume(co)\n"
                                     "    _G.escaped = true\n"
                                     "    while true do end"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    lua_getglobal(t->e.L, "escaped");
    assert_true(lua_isnil(t->e.L, -1));
    lua_pop(t->e.L, 1);
    assert_state_works(t);
    efx_close(t);
}

static void test_zero_limits_mean_no_limit(void **state)
{
    (void)state;
    /* call_timeout = 0: no time limit at all, the broker's deadline
     * included; memory_limit = 0: no cap (32 MB here, over LIMITS' 8 MB). */
    struct efx *t = efx_open("m", "call_timeout = 0\nmemory_limit = 0\n", "m.lua",
                             HANDLER("    local stop = os.clock() + 0.2\n"
                                     "    while os.clock() < stop do end\n"
                                     "    _G.big = string.rep('x', 32 << 20)"),
                             NULL);
    authenticate(t, "evil", script_now_ns() + 50 * 1000000LL);
    if (t->out.status != GRPC_STATUS_OK)
        fail_msg("got %d: %s", t->out.status, t->out.fail.message);
    assert_true(t->e.mem_used > 32u << 20);
    efx_close(t);
}

static void test_sandbox_false_gives_plain_lua(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", "sandbox = false\n", "m.lua",
                             "function on_client_authenticate(ci)\n"
                             "  local f = load(string.dump(function() return 7 end))\n"
                             "  return type(os.exit) == 'function' and type(io.popen) == 'function'\n"
                             "     and type(debug.sethook) == 'function' and f() == 7\n"
                             "end\n",
                             NULL);
    assert_state_works(t);
    efx_close(t);
    /* and with the sandbox (the default) the same handler fails */
    t = efx_open("m", NULL, "m.lua",
                 "function on_client_authenticate(ci)\n"
                 "  return load(string.dump(function() return 7 end)) ~= nil\n"
                 "end\n",
                 NULL);
    authenticate(t, "x", INT64_MAX);
    Emqx__Exhook__V3__ValuedResponse *v =
        emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data);
    assert_false(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_broker_deadline_earlier_than_call_timeout_stops_the_handler(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", "call_timeout = 1m\n", "m.lua",
                             HANDLER("    while true do end"), NULL);
    int64_t start = script_now_ns();
    authenticate(t, "evil", start + 50 * 1000000LL);
    int64_t took_ms = (script_now_ns() - start) / 1000000;
    assert_stopped_at(t, 3);
    assert_true(took_ms >= 50);
    assert_true(took_ms < 30000); /* the broker's 50 ms, not the minute */
    assert_state_works(t);
    efx_close(t);
}

/* A cjson.decode whose result does not fit in memory_limit is an error that
 * leaves nothing behind: lua-cjson's own buffer is freed (the sanitizer
 * build finds the leak otherwise), and the state goes on. */
static void test_cjson_decode_over_the_memory_limit_fails_and_leaks_nothing(void **state)
{
    (void)state;
    struct efx *t = open_memory_env("local cjson = require 'cjson'\n"
                             "local big = '[' .. string.rep('[1,2,3],', 200000) .. '0]'\n"
                             HANDLER("    local ok, err = pcall(cjson.decode, big)\n"
                                     "    assert(not ok)\n"
                                     "    assert(err == 'cjson.decode: not enough memory "
                                     "(memory_limit)', err)\n"
                                     "    local safe = require 'cjson.safe'\n"
                                     "    local v, e = pcall(safe.decode, big)\n"
                                     "    assert(not v and e:find('not enough memory'), e)\n"
                                     "    return false"));
    for (int i = 0; i < 5; i++) {
        authenticate(t, "evil", INT64_MAX);
        if (t->out.status != GRPC_STATUS_OK)
            fail_msg("call %d failed: %s", i, t->out.fail.message);
    }
    assert_true(t->e.mem_used <= t->e.mem_limit);
    assert_state_works(t);
    efx_close(t);
}

static void test_memory_bomb_gets_resource_exhausted_and_state_recovers(void **state)
{
    (void)state;
    struct efx *t = open_memory_env(HANDLER("    local t = {}\n"
                                     "    while true do t[#t + 1] = string.rep('x', 1 << 20) .. #t end"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(t->out.fail.message,
                        "module 'm' on_client_authenticate: out of memory (memory_limit)");
    assert_true(t->e.mem_used <= t->e.mem_limit);
    assert_state_works(t);
    lua_gc(t->e.L, LUA_GCCOLLECT);
    assert_true(t->e.mem_used < 1024 * 1024);
    efx_close(t);
}

static void test_one_huge_allocation_in_c_is_refused(void **state)
{
    (void)state;
    /* string.rep runs as one C call: the count hook never sees it, the
     * allocator does. */
    struct efx *t = open_memory_env(HANDLER("    local s = string.rep('x', 1 << 30)"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_state_works(t);
    efx_close(t);
}

static void test_memory_error_caught_by_the_script_is_the_scripts_business(void **state)
{
    (void)state;
    struct efx *t = open_memory_env("function on_client_authenticate(ci)\n"
                             "  local ok = pcall(string.rep, 'x', 1 << 30)\n"
                             "  return not ok\n"
                             "end\n");
    assert_state_works(t); /* pcall returned false: the handler answered true */
    efx_close(t);
}

static void test_os_exit_is_not_available_and_the_call_fails_cleanly(void **state)
{
    (void)state;
    struct efx *t = open_env(HANDLER("    os.exit(3)"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    char expected[512];
    snprintf(expected, sizeof expected,
             "module 'm' on_client_authenticate: %s/m.lua:3: attempt to call a nil value (field "
             "'exit')",
             t->fx.dir);
    assert_string_equal(t->out.fail.message, expected);
    assert_state_works(t);
    efx_close(t);
}

static void test_runtime_error_answers_unknown_and_next_call_works(void **state)
{
    (void)state;
    struct efx *t = open_env(HANDLER("    local x = nil; return x.field"));
    authenticate(t, "evil", INT64_MAX);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    assert_non_null(strstr(t->out.fail.message, "m.lua:3: attempt to index a nil value"));
    assert_state_works(t);
    efx_close(t);
}

/* Module bodies and init() run under both limits too. */
static void assert_open_fails(const char *module_text, const char *extra, const char *fmt)
{
    struct fixture fx;
    fx_init(&fx);
    fx_write(&fx, "m.lua", module_text);
    fx_configure(&fx, "m", extra);
    struct script_engine e;
    char err[512], expected[512];
    assert_int_equal(script_engine_open(&e, &fx.cfg, 1, err, sizeof err), -1);
    snprintf(expected, sizeof expected, fmt, fx.dir);
    assert_string_equal(err, expected);
    assert_null(e.L);
    fx_free(&fx);
}

static void test_endless_loop_in_module_body_or_init_fails_the_load(void **state)
{
    (void)state;
    assert_open_fails("local n = 0\nwhile true do n = n + 1 end\n", LIMITS,
                      "%s/m.lua:2: timed out after 100 ms (call_timeout)");
    assert_open_fails("function init()\n  while true do end\nend\n", LIMITS,
                      "init() failed: %s/m.lua:2: timed out after 100 ms (call_timeout)");
}

static void test_memory_bomb_in_module_body_fails_the_load(void **state)
{
    (void)state;
    assert_open_fails("big = string.rep('x', 1 << 30)\n", MEMORY_LIMITS,
                      "%s/m.lua: out of memory (memory_limit)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endless_loop_is_stopped_with_deadline_exceeded),
        cmocka_unit_test(test_endless_loop_inside_pcall_cannot_swallow_the_stop),
        cmocka_unit_test(test_endless_loop_in_a_coroutine_made_at_load_time_is_stopped),
        cmocka_unit_test(test_caller_of_a_coroutine_that_ran_over_is_stopped_too),
        cmocka_unit_test(test_broker_deadline_earlier_than_call_timeout_stops_the_handler),
        cmocka_unit_test(test_zero_limits_mean_no_limit),
        cmocka_unit_test(test_sandbox_false_gives_plain_lua),
        cmocka_unit_test(test_memory_bomb_gets_resource_exhausted_and_state_recovers),
        cmocka_unit_test(test_cjson_decode_over_the_memory_limit_fails_and_leaks_nothing),
        cmocka_unit_test(test_one_huge_allocation_in_c_is_refused),
        cmocka_unit_test(test_memory_error_caught_by_the_script_is_the_scripts_business),
        cmocka_unit_test(test_os_exit_is_not_available_and_the_call_fails_cleanly),
        cmocka_unit_test(test_runtime_error_answers_unknown_and_next_call_works),
        cmocka_unit_test(test_endless_loop_in_module_body_or_init_fails_the_load),
        cmocka_unit_test(test_memory_bomb_in_module_body_fails_the_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
