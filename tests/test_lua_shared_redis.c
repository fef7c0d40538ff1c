/* exhook.shared with a Redis-backed dictionary, from handlers on a real
 * redis-server: each method's return values as the local store gives them,
 * Redis down and back, a hung Redis cut by the call's deadline, and the
 * places where code cannot wait. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "loop.h"
#include "redis_server.h"
#include "shared_dicts.h"

#define PASSWORD "pw0rd"

static struct redis_server srv;
static char ini[256];

/* Each test of the module is a function of T, run by an authenticate call
 * whose username names it; an assert that fails fails the call with its
 * message. */
static const char *module =
    "local r = exhook.shared.r\n"
    "local T = {}\n"
    "function T.methods()\n"
    "  assert(r:flush_all() == true)\n"
    "  local ok, err, forcible = r:set('s', 'a\\0b')\n"
    "  assert(ok == true and err == nil and forcible == false)\n"
    "  assert(r:get('s') == 'a\\0b')\n"
    "  r:set('i', 42); assert(math.type(r:get('i')) == 'integer' and r:get('i') == 42)\n"
    "  r:set('f', 1.5); assert(math.type(r:get('f')) == 'float' and r:get('f') == 1.5)\n"
    "  r:set('t', true); assert(r:get('t') == true)\n"
    "  r:set('b', false); assert(r:get('b') == false)\n"
    "  assert(r:get('missing') == nil)\n"
    "  r:set('s', nil); assert(r:get('s') == nil)\n"
    "  assert(r:add('k', 1) == true)\n"
    "  ok, err, forcible = r:add('k', 2)\n"
    "  assert(ok == false and err == 'exists' and forcible == false)\n"
    "  ok, err = r:safe_add('k', 2); assert(ok == false and err == 'exists')\n"
    "  ok, err = r:replace('nope', 1); assert(ok == false and err == 'not found')\n"
    "  assert(r:replace('k', 'v') == true and r:get('k') == 'v')\n"
    "  assert(r:safe_set('k', 3) == true and r:get('k') == 3)\n"
    "  assert(r:delete('k') == true and r:get('k') == nil)\n"
    "  local v\n"
    "  v, err, forcible = r:incr('n', 1)\n"
    "  assert(v == nil and err == 'not found' and forcible == false)\n"
    "  v, err, forcible = r:incr('n', 1, 0)\n"
    "  assert(v == 1 and err == nil and forcible == false and math.type(v) == 'integer')\n"
    "  assert(r:incr('n', 41) == 42)\n"
    "  v = r:incr('n', 0.5); assert(v == 42.5 and math.type(v) == 'float')\n"
    "  r:set('str', 'x')\n"
    "  v, err = r:incr('str', 1); assert(v == nil and err == 'not a number')\n"
    "  assert(r:ttl('i') == 0)\n"
    "  v, err = r:ttl('nope'); assert(v == nil and err == 'not found')\n"
    "  assert(r:expire('i', 10) == true)\n"
    "  v = r:ttl('i'); assert(v > 9 and v <= 10)\n"
    "  v, err = r:expire('nope', 1); assert(v == nil and err == 'not found')\n"
    "  assert(r:incr('c', 1, 0, 5) == 1)\n"
    "  v = r:ttl('c'); assert(v > 4 and v <= 5)\n"
    "  local keys = r:keys()\n"
    "  assert(table.concat(keys, ',') == 'b,c,f,i,n,str,t', table.concat(keys, ','))\n"
    "  assert(#r:keys(2) == 2)\n"
    "  assert(r:flush_expired() == 0)\n"
    "  v, err, forcible = r:capacity()\n"
    "  assert(v == nil and err:find('has no maxmemory', 1, true) and forcible == false, err)\n"
    "  v, err = r:free_space(); assert(v == nil and err:find('has no maxmemory', 1, true))\n"
    "  assert(r:flush_all() == true and #r:keys() == 0)\n"
    "end\n"
    "local function failure(method, v, err, forcible)\n"
    "  assert(v == nil or v == false, 'got a value')\n"
    "  assert(forcible == false)\n"
    "  assert(err:find('^exhook%.shared%.r:' .. method .. ': redis 127%.0%.0%.1:%d+: '), err)\n"
    "  assert(not err:find('" PASSWORD "', 1, true), err)\n"
    "end\n"
    "function T.down()\n"
    "  failure('get', r:get('k'))\n"
    "  assert(r:set('k', 1) == false)\n"
    "  failure('set', r:set('k', 1))\n"
    "  failure('incr', r:incr('k', 1, 0))\n"
    "  failure('keys', r:keys())\n"
    "end\n"
    "function T.up()\n"
    "  local v, err = r:incr('up', 1, 0)\n"
    "  assert(v, err)\n"
    "end\n"
    "local M = {}\n"
    "function M.on_client_authenticate(clientinfo)\n"
    "  T[clientinfo.username]()\n"
    "  return true\n"
    "end\n"
    "return M\n";

static Emqx__Exhook__V3__ClientInfo client(const char *username)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.node = "emqx@127.0.0.1";
    ci.clientid = "c1";
    ci.username = (char *)username;
    ci.protocol = "mqtt";
    return ci;
}

/* Runs test function `name` of the module, within `timeout_ms`. */
static void run_test_fn(struct efx *t, const char *name, int64_t timeout_ms)
{
    Emqx__Exhook__V3__ClientInfo ci = client(name);
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &ci;
    efx_call(t, HOOK_CLIENT_AUTHENTICATE, &req.base, loop_now_ns() + timeout_ms * 1000000);
}

static void expect_pass(struct efx *t, const char *name)
{
    run_test_fn(t, name, 10000);
    if (t->out.status != GRPC_STATUS_OK)
        fail_msg("%s: %s", name, t->out.fail.message);
    assert_int_equal(t->out.verdict, DISPATCH_ALLOW);
}

static struct efx *open_engine(void)
{
    return efx_open("m", ini, "m.lua", module, NULL);
}

static void test_methods_answer_as_the_local_store(void **state)
{
    (void)state;
    struct efx *t = open_engine();
    expect_pass(t, "methods");
    efx_close(t);
}

static void test_redis_down_then_back(void **state)
{
    (void)state;
    struct efx *t = open_engine();
    expect_pass(t, "up");
    redis_server_kill(&srv);
    expect_pass(t, "down");
    redis_server_restart(&srv);
    /* The pool reconnects by itself, after a growing delay. */
    int64_t end = loop_now_ns() + 20 * 1000000000LL;
    do {
        usleep(50 * 1000);
        run_test_fn(t, "up", 10000);
    } while (t->out.status != GRPC_STATUS_OK && loop_now_ns() < end);
    if (t->out.status != GRPC_STATUS_OK)
        fail_msg("still failing: %s", t->out.fail.message);
    efx_close(t);
}

/* A hung Redis: the call's deadline ends the wait, naming what it waited
 * for; the worker serves on once Redis does. */
static void test_a_hung_redis_is_cut_by_the_call_deadline(void **state)
{
    (void)state;
    struct efx *t = open_engine();
    expect_pass(t, "up");
    kill(srv.pid, SIGSTOP);
    run_test_fn(t, "up", 300);
    kill(srv.pid, SIGCONT);
    assert_int_equal(t->out.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    char want[128];
    snprintf(want, sizeof want, "waiting for exhook.shared.r:incr on redis 127.0.0.1:%d after ",
             srv.port);
    if (!strstr(t->out.fail.message, want))
        fail_msg("\"%s\" lacks \"%s\"", t->out.fail.message, want);
    for (int i = 0; i < 3; i++)
        expect_pass(t, "up");
    efx_close(t);
}

/* A module's body and init() run at load time: the error says where to
 * call the method instead, and the module does not load. */
static void test_no_wait_at_load_time(void **state)
{
    (void)state;
    const char *bodies[] = {
        "exhook.shared.r:get('k')\nreturn {}\n",
        "local M = {}\nfunction M.init() exhook.shared.r:incr('k', 1, 0) end\nreturn M\n",
    };
    const char *want[] = {"exhook.shared.r:get: cannot wait here",
                          "exhook.shared.r:incr: cannot wait here"};
    for (int i = 0; i < 2; i++) {
        struct fixture fx;
        struct script_engine e;
        char err[1024];
        fx_init(&fx);
        fx_write(&fx, "m.lua", bodies[i]);
        fx_configure(&fx, "m", ini);
        assert_int_not_equal(script_engine_open(&e, &fx.cfg, 1, err, sizeof err), 0);
        if (!strstr(err, want[i]))
            fail_msg("\"%s\" lacks \"%s\"", err, want[i]);
        fx_free(&fx);
    }
}

static int start_server(void **state)
{
    (void)state;
    redis_server_start(&srv, PASSWORD);
    snprintf(ini, sizeof ini, "[shared]\nr = redis://:" PASSWORD "@127.0.0.1:%d/2\n", srv.port);
    /* The dictionaries are the process's, declared once. */
    struct fixture fx;
    char err[512];
    fx_init(&fx);
    fx_configure(&fx, "m", ini);
    if (shared_dicts_open(&fx.cfg, err, sizeof err) != 0)
        fail_msg("shared_dicts_open: %s", err);
    fx_free(&fx);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    redis_server_stop(&srv);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_answer_as_the_local_store),
        cmocka_unit_test(test_redis_down_then_back),
        cmocka_unit_test(test_a_hung_redis_is_cut_by_the_call_deadline),
        cmocka_unit_test(test_no_wait_at_load_time),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
