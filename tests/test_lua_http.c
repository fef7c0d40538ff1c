/* exhook.http from handlers, through the real server, against the tests'
 * own HTTP server: responses, faults as nil and an error, the call's
 * deadline while waiting on a hung server (the worker serving others
 * meanwhile), TLS, and bad arguments. */

#include <grpc/grpc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"
#include "httpd_fixture.h"
#include "log.h"
#include "loop.h"
#include "rpc_client.h"
#include "server.h"

static struct fixture fx;
static struct httpd plain, tls;
static struct server *srv;
static char target[64];
static int closed_port;

/* The handler does what the username says and reports with error("R ..."),
 * so each test reads the exact outcome in the call's grpc-message; "auth"
 * and "deny" are the operator's example: allowed if the service says 200. */
static const char *module_fmt =
    "local base, tls, ca, refused = '%s', '%s', '%s', '%s'\n"
    "local function show(r, err)\n"
    "  if not r then error('R nil ' .. err, 0) end\n"
    "  error(string.format('R %%d %%s %%s', r.status, r.headers['content-type'] or '-',\n"
    "                      r.body), 0)\n"
    "end\n"
    "local cases = {\n"
    "  get = function() show(exhook.http.get(base .. '/status/200')) end,\n"
    "  echo = function()\n"
    "    local r = exhook.http.get(base .. '/echo', {headers = {['X-User'] = 'alice'}})\n"
    "    error('R ' .. r.status .. ' ' .. r.body:match('\"x%%-user\": \"([^\"]*)\"'), 0)\n"
    "  end,\n"
    "  put = function()\n"
    "    local r = exhook.http.request{method = 'PUT', url = base .. '/echo', body = 'a=1',\n"
    "                                  headers = {['Content-Type'] = 'text/plain'}}\n"
    "    error('R ' .. r.body:match('\"method\": \"(%%u+)\"') .. ' ' ..\n"
    "          r.body:match('\"body\": \"([^\"]*)\"') .. ' ' .. r.headers['content-type'], 0)\n"
    "  end,\n"
    "  json = function()\n"
    "    local cjson = require 'cjson'\n"
    "    local r = exhook.http.post(base .. '/echo', cjson.encode{user = 'bob'},\n"
    "                               {headers = {['Content-Type'] = 'application/json'}})\n"
    "    local echo = cjson.decode(r.body)\n"
    "    error('R ' .. echo.method .. ' ' .. echo.headers['content-type'] .. ' ' ..\n"
    "          cjson.decode(echo.body).user, 0)\n"
    "  end,\n"
    "  post = function() show(exhook.http.post(base .. '/status/201', 'x')) end,\n"
    "  status = function() show(exhook.http.get(base .. '/status/503')) end,\n"
    "  refused = function() show(exhook.http.get(refused)) end,\n"
    "  reset = function() show(exhook.http.get(base .. '/reset')) end,\n"
    "  garbage = function() show(exhook.http.get(base .. '/garbage')) end,\n"
    "  short = function() show(exhook.http.get(base .. '/hang', {timeout = 0.2})) end,\n"
    "  big = function() show(exhook.http.get(base .. '/big/100', {max_body = 99})) end,\n"
    "  huge = function()\n"
    "    show(exhook.http.get(base .. '/big/10000000', {max_body = 20000000}))\n"
    "  end,\n"
    "  tls = function() show(exhook.http.get(tls .. '/status/200', {ca_file = ca})) end,\n"
    "  tls_unknown = function() show(exhook.http.get(tls .. '/status/200')) end,\n"
    "  tls_unverified = function()\n"
    "    show(exhook.http.get(tls .. '/status/200', {verify = false}))\n"
    "  end,\n"
    "  hang = function() exhook.http.get(base .. '/hang?token=secret') end,\n"
    "  slow = function() return exhook.http.get(base .. '/delay/300').status == 200 end,\n"
    "  bad_method = function() exhook.http.request{method = 'GE T', url = base} end,\n"
    "  bad_header = function() exhook.http.get(base, {headers = {['X-N'] = 5}}) end,\n"
    "  bad_url = function() exhook.http.get('ftp://127.0.0.1/x') end,\n"
    "  bad_option = function() exhook.http.get(base, {timout = 1}) end,\n"
    "  no_url = function() exhook.http.request{} end,\n"
    "  in_sort = function()\n"
    "    table.sort({2, 1}, function(a, b) exhook.http.get(base); return a < b end)\n"
    "  end,\n"
    "}\n"
    "function on_client_authenticate(ci)\n"
    "  local case = cases[ci.username]\n"
    "  if case then return case() end\n"
    "  local r, err = exhook.http.get(base .. (ci.username == 'auth' and '/status/200'\n"
    "                                                                or '/status/403'))\n"
    "  return r ~= nil and r.status == 200\n"
    "end\n";

static int start_all(void **state)
{
    (void)state;
    fx_init(&fx);
    httpd_start(&plain, fx.dir, "plain", false);
    httpd_start(&tls, fx.dir, "tls", true);
    closed_port = httpd_closed_port();
    char module[8192], base[64], tls_base[64], refused[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", plain.port);
    snprintf(tls_base, sizeof tls_base, "https://localhost:%d", tls.port);
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", closed_port);
    snprintf(module, sizeof module, module_fmt, base, tls_base, tls.ca_file, refused);
    fx_write(&fx, "m.lua", module);
    /* One worker: waiting calls must leave it free for the others. */
    fx_configure(&fx, "m",
                 "[server]\nworkers = 1\nshutdown_timeout = 300ms\n"
                 "[lua]\ncall_timeout = 2s\nmemory_limit = 8MB\n");
    log_set_level(LOG_ERROR);
    srv = fx_start_server(&fx.cfg, NULL, target, sizeof target);
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    if (srv)
        srv_destroy(srv);
    httpd_stop(&plain);
    httpd_stop(&tls);
    fx_free(&fx);
    return 0;
}

/* The call as `username` fails with a grpc-message that contains `want`. */
static void expect(const char *username, grpc_status_code status, const char *want)
{
    char details[1024] = "";
    int allowed;
    assert_int_equal(rpc_authenticate(target, username, details, sizeof details, &allowed), status);
    if (!strstr(details, want))
        fail_msg("%s: '%s' does not contain '%s'", username, details, want);
}

static void expect_verdict(const char *username, int want)
{
    char details[1024] = "";
    int allowed;
    assert_int_equal(rpc_authenticate(target, username, details, sizeof details, &allowed),
                     GRPC_STATUS_OK);
    assert_int_equal(allowed, want);
}

static void test_responses_reach_the_script(void **state)
{
    (void)state;
    expect("get", GRPC_STATUS_UNKNOWN, ": R 200 - status 200");
    expect("echo", GRPC_STATUS_UNKNOWN, ": R 200 alice");
    expect("put", GRPC_STATUS_UNKNOWN, ": R PUT a=1 application/json");
    expect("post", GRPC_STATUS_UNKNOWN, ": R 201 - status 201");
    expect("json", GRPC_STATUS_UNKNOWN, ": R POST application/json bob");
    expect("status", GRPC_STATUS_UNKNOWN, ": R 503 - status 503");
    expect_verdict("auth", 1);
    expect_verdict("deny", 0);
}

static void test_faults_reach_the_script_as_nil_and_an_error(void **state)
{
    (void)state;
    char want[200];
    snprintf(want, sizeof want,
             ": R nil cannot connect: Failed to connect to 127.0.0.1 port %d after ", closed_port);
    expect("refused", GRPC_STATUS_UNKNOWN, want);
    expect("refused", GRPC_STATUS_UNKNOWN, "(Connection refused)");
    expect("reset", GRPC_STATUS_UNKNOWN,
           ": R nil connection reset: Recv failure: Connection reset by peer");
    expect("garbage", GRPC_STATUS_UNKNOWN,
           ": R nil bad response: Received HTTP/0.9 when not allowed");
    expect("short", GRPC_STATUS_UNKNOWN, ": R nil timeout: Operation timed out after ");
    expect("big", GRPC_STATUS_UNKNOWN, ": R nil response too large: the body exceeds 99 bytes");
    /* 10 MB against memory_limit = 8MB. */
    expect("huge", GRPC_STATUS_UNKNOWN,
           ": R nil out of memory (memory_limit) reading the result");
    expect("get", GRPC_STATUS_UNKNOWN, ": R 200 - status 200");
}

static void test_tls_is_verified(void **state)
{
    (void)state;
    expect("tls", GRPC_STATUS_UNKNOWN, ": R 200 - status 200");
    expect("tls_unknown", GRPC_STATUS_UNKNOWN,
           ": R nil TLS failure: SSL certificate problem: unable to get local issuer certificate");
    expect("tls_unverified", GRPC_STATUS_UNKNOWN, ": R 200 - status 200");
}

static void test_bad_arguments_are_clear_errors(void **state)
{
    (void)state;
    expect("bad_method", GRPC_STATUS_UNKNOWN, "exhook.http.request: bad method 'GE T'");
    expect("bad_header", GRPC_STATUS_UNKNOWN,
           "exhook.http.get: header 'X-N' must be a string, got number");
    expect("bad_url", GRPC_STATUS_UNKNOWN,
           "exhook.http.get: bad url 'ftp://127.0.0.1/x': not http or https");
    expect("bad_option", GRPC_STATUS_UNKNOWN, "exhook.http.get: unknown option 'timout'");
    expect("no_url", GRPC_STATUS_UNKNOWN, "exhook.http.request: 'url' is missing");
    expect("in_sort", GRPC_STATUS_UNKNOWN,
           "exhook.http.get: cannot wait here: Lua cannot suspend inside a table.sort");
}

static void test_a_module_body_cannot_wait(void **state)
{
    (void)state;
    struct fixture body;
    fx_init(&body);
    fx_write(&body, "b.lua", "exhook.http.get('http://127.0.0.1:1/')\n");
    fx_configure(&body, "b", "");
    struct script_engine e;
    char err[512];
    assert_int_equal(script_engine_open(&e, &body.cfg, 1, err, sizeof err), -1);
    if (!strstr(err, "exhook.http.get: cannot wait here: a module's body and init() run at "
                     "load time"))
        fail_msg("unexpected: %s", err);
    fx_free(&body);
}

struct caller {
    const char *username;
    int status;
    char details[1024];
};

static void *call(void *arg)
{
    struct caller *c = arg;
    int allowed;
    c->status = rpc_authenticate(target, c->username, c->details, sizeof c->details, &allowed);
    return NULL;
}

/* call_timeout (2 s) ends a call waiting on a server that never answers,
 * with what it waited for; the one worker serves other calls meanwhile. */
static void test_a_hung_server_ends_in_the_deadline_while_others_are_served(void **state)
{
    (void)state;
    struct caller hung = {.username = "hang"};
    pthread_t t;
    int64_t t0 = loop_now_ns();
    pthread_create(&t, NULL, call, &hung);
    usleep(200000);
    for (int i = 0; i < 10; i++)
        expect("get", GRPC_STATUS_UNKNOWN, ": R 200 - status 200");
    pthread_join(t, NULL);
    assert_true(loop_now_ns() - t0 >= 1900000000LL);
    assert_int_equal(hung.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    char want[200];
    snprintf(want, sizeof want,
             "module 'm' on_client_authenticate: waiting for GET http://127.0.0.1:%d/hang after ",
             plain.port);
    if (strncmp(hung.details, want, strlen(want)))
        fail_msg("'%s' does not start with '%s'", hung.details, want);
    assert_null(strstr(hung.details, "secret")); /* the query is left out */
}

/* 50 calls, each waiting 300 ms for its answer, on one worker: together,
 * not one after another (15 s): under 10 s on the slowest machine. */
#define CALLERS 50
static void test_calls_wait_together(void **state)
{
    (void)state;
    static struct caller cs[CALLERS];
    pthread_t ts[CALLERS];
    int64_t t0 = loop_now_ns();
    for (int i = 0; i < CALLERS; i++) {
        cs[i] = (struct caller){.username = "slow"};
        pthread_create(&ts[i], NULL, call, &cs[i]);
    }
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(ts[i], NULL);
        assert_int_equal(cs[i].status, GRPC_STATUS_OK);
    }
    assert_true(loop_now_ns() - t0 < 10000000000LL);
}

/* Last: the server stops while calls wait on HTTP; they end, their
 * requests are cancelled and their connections closed (ASan: no leak). */
static void test_stopping_with_calls_waiting(void **state)
{
    (void)state;
    static struct caller cs[5];
    pthread_t ts[5];
    for (int i = 0; i < 5; i++) {
        cs[i] = (struct caller){.username = "hang"};
        pthread_create(&ts[i], NULL, call, &cs[i]);
    }
    usleep(500000);
    srv_destroy(srv);
    srv = NULL;
    for (int i = 0; i < 5; i++) {
        pthread_join(ts[i], NULL);
        assert_int_not_equal(cs[i].status, GRPC_STATUS_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_responses_reach_the_script),
        cmocka_unit_test(test_faults_reach_the_script_as_nil_and_an_error),
        cmocka_unit_test(test_tls_is_verified),
        cmocka_unit_test(test_bad_arguments_are_clear_errors),
        cmocka_unit_test(test_a_module_body_cannot_wait),
        cmocka_unit_test(test_a_hung_server_ends_in_the_deadline_while_others_are_served),
        cmocka_unit_test(test_calls_wait_together),
        cmocka_unit_test(test_stopping_with_calls_waiting),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
