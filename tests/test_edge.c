/* The gRPC edge: what a misbehaving or vanishing client, or a stop with
 * calls in flight, does to the server. Never a crash, never a leak (the
 * suite also runs under ASan), and the server keeps serving. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <grpc/compression.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "health.pb-c.h"
#include "fixtures.h"
#include "rpc_client.h"
#include "script.h"
#include "server.h"

#define AUTH_PATH "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"
/* Its labels in the metrics. */
#define V3_AUTH                                                                                    \
    "grpc_service=\"emqx.exhook.v3.HookProvider\",grpc_method=\"OnClientAuthenticate\""

struct world {
    struct fixture fx;
    struct server *srv;
    char target[64];
};

/* "slow" spins for `ms` (the handler writes started.txt first), "bad"
 * raises an error, "loop" never returns, "bomb" eats memory, "log..." logs
 * its name at warn; anyone else is let in at once. deinit() appends a line to deinit.txt. `extra` is added
 * to the ini. */
static struct world *start_with(int slow_ms, const char *extra)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    char module[2048];
    snprintf(module, sizeof module,
             "local dir = '%s'\n"
             "local function mark(name)\n"
             "  local f = io.open(dir .. '/' .. name, 'a'); f:write('x\\n'); f:close()\n"
             "end\n"
             "function on_client_authenticate(ci)\n"
             "  if ci.username == 'slow' then\n"
             "    mark('started.txt')\n"
             "    local t = os.clock() + %d / 1000\n"
             "    while os.clock() < t do end\n"
             "  elseif ci.username == 'bad' then error('bad')\n"
             "  elseif ci.username == 'loop' then while true do end\n"
             "  elseif ci.username == 'bomb' then local t = {}\n"
             "    while true do t[#t + 1] = string.rep('x', 1 << 20) .. #t end\n"
             "  elseif ci.username:sub(1, 3) == 'log' then exhook.log('warn', ci.username)\n"
             "  end\n"
             "  return true\n"
             "end\n"
             "function deinit() mark('deinit.txt') end\n",
             w->fx.dir, slow_ms);
    fx_write(&w->fx, "m.lua", module);
    char ini[512];
    snprintf(ini, sizeof ini, "%s[log]\nlevel = error\n", extra);
    fx_configure(&w->fx, "m", ini);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    return w;
}

static struct world *start(int slow_ms)
{
    return start_with(slow_ms, "[server]\nworkers = 2\n");
}

static void stop(struct world *w)
{
    if (w->srv)
        srv_destroy(w->srv);
    fx_free(&w->fx);
    free(w);
}

static size_t lines_in(struct world *w, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", w->fx.dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = 0;
    for (int ch; (ch = fgetc(f)) != EOF;)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void auth_request(const char *username, uint8_t *buf, size_t *len)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)username;
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    *len = protobuf_c_message_pack(&r.base, buf);
}

/* One authenticate call; returns its status, and checks the verdict (true)
 * when it succeeded. */
static grpc_status_code authenticate(struct rpc_client *c, const char *username)
{
    uint8_t buf[128];
    size_t len;
    auth_request(username, buf, &len);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, AUTH_PATH, buf, len, &r), 0);
    grpc_status_code st = r.status;
    if (st == GRPC_STATUS_OK) {
        Emqx__Exhook__V3__ValuedResponse *v =
            emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(v);
        assert_true(v->bool_result);
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    } else {
        assert_false(r.got_message); /* an error never carries a message */
    }
    rpc_result_free(&r);
    return st;
}

static void assert_serving(struct world *w)
{
    struct rpc_client *c = rpc_client_open(w->target);
    assert_int_equal(authenticate(c, "fine"), GRPC_STATUS_OK);
    rpc_client_close(c);
}

static void test_oversized_request_is_refused_and_server_goes_on(void **state)
{
    (void)state;
    struct world *w = start(0);
    struct rpc_client *c = rpc_client_open(w->target);
    size_t big = 5 * 1024 * 1024; /* over gRPC's 4 MB default */
    uint8_t *junk = calloc(1, big);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, AUTH_PATH, junk, big, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_false(r.got_message);
    rpc_result_free(&r);
    free(junk);
    assert_int_equal(authenticate(c, "fine"), GRPC_STATUS_OK);
    rpc_client_close(c);
    stop(w);
}

static void test_max_message_size_limits_requests(void **state)
{
    (void)state;
    struct world *w = start_with(0, "[server]\nworkers = 1\nmax_message_size = 64KB\n");
    struct rpc_client *c = rpc_client_open(w->target);
    /* a valid request of 32 KB is served... */
    char *name = malloc(32 * 1024);
    memset(name, 'u', 32 * 1024 - 1);
    name[32 * 1024 - 1] = '\0';
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = name;
    Emqx__Exhook__V3__ClientAuthenticateRequest big =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    big.clientinfo = &ci;
    struct rpc_result r;
    assert_int_equal(rpc_call(c, AUTH_PATH, &big.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    free(name);
    /* ... one of 100 KB is refused, under gRPC's own 4 MB */
    uint8_t *junk = calloc(1, 100 * 1024);
    assert_int_equal(rpc_call_raw(c, AUTH_PATH, junk, 100 * 1024, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    rpc_result_free(&r);
    free(junk);
    assert_int_equal(authenticate(c, "fine"), GRPC_STATUS_OK);
    rpc_client_close(c);
    stop(w);
}

/* Flow control without the BDP probe: a request far over HTTP/2's 64 KB
 * initial window, just under max_message_size, still gets through. */
static void test_request_of_max_message_size_is_served(void **state)
{
    (void)state;
    struct world *w = start_with(0, "[server]\nworkers = 1\nmax_message_size = 4MB\n");
    struct rpc_client *c = rpc_client_open(w->target);
    size_t len = 4 * 1024 * 1024 - 64; /* the whole request stays under 4 MB */
    char *name = malloc(len);
    memset(name, 'u', len - 1);
    name[len - 1] = '\0';
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = name;
    Emqx__Exhook__V3__ClientAuthenticateRequest big =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    big.clientinfo = &ci;
    struct rpc_result r;
    for (int i = 0; i < 3; i++) { /* again on the same connection: windows refilled */
        assert_int_equal(rpc_call(c, AUTH_PATH, &big.base, &r), 0);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_true(r.got_message);
        rpc_result_free(&r);
    }
    free(name);
    rpc_client_close(c);
    stop(w);
}

static void test_counters_count_calls_errors_timeouts_and_memory_failures(void **state)
{
    (void)state;
    struct world *w =
        start_with(0, "[server]\nworkers = 1\n[lua]\ncall_timeout = 200ms\nmemory_limit = 8MB\n");
    struct rpc_client *c = rpc_client_open(w->target);
    static const struct {
        const char *user;
        grpc_status_code status;
    } calls[] = {
        {"a", GRPC_STATUS_OK},      {"b", GRPC_STATUS_OK},
        {"c", GRPC_STATUS_OK},      {"bad", GRPC_STATUS_UNKNOWN},
        {"bad", GRPC_STATUS_UNKNOWN}, {"loop", GRPC_STATUS_DEADLINE_EXCEEDED},
        {"bomb", GRPC_STATUS_RESOURCE_EXHAUSTED},
    };
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        assert_int_equal(authenticate(c, calls[i].user), calls[i].status);
    char *text = capture_end(&cap);
    rpc_client_close(c);
    /* a worker's line: time, level, the worker's name */
    assert_true(is_log_timestamp(text));
    assert_non_null(strstr(text, "Z error [w1] module 'm' on_client_authenticate: "));
    free(text);

    log_set_level(LOG_INFO); /* the counters are logged at info */
    capture_begin(&cap, w->fx.dir);
    srv_log_stats(w->srv);
    text = capture_end(&cap);
    static const char *const lines[] = {
        "stats: grpc_server_started_total{" V3_AUTH "} 7\n",
        "stats: grpc_server_handled_total{" V3_AUTH ",grpc_code=\"OK\"} 3\n",
        "stats: grpc_server_handled_total{" V3_AUTH ",grpc_code=\"UNKNOWN\"} 2\n",
        "stats: grpc_server_handled_total{" V3_AUTH ",grpc_code=\"DEADLINE_EXCEEDED\"} 1\n",
        "stats: grpc_server_handled_total{" V3_AUTH ",grpc_code=\"RESOURCE_EXHAUSTED\"} 1\n",
        "stats: exhookd_lua_failures_total{module=\"m\",hook=\"client.authenticate\","
        "reason=\"error\"} 2\n",
        "stats: exhookd_lua_failures_total{module=\"m\",hook=\"client.authenticate\","
        "reason=\"timeout\"} 1\n",
        "stats: exhookd_lua_failures_total{module=\"m\",hook=\"client.authenticate\","
        "reason=\"memory\"} 1\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_non_null(strstr(text, lines[i]));
    assert_null(strstr(text, "exhookd_unhandled_calls_total"));
    free(text);
    /* and the final counters when the server stops */
    capture_begin(&cap, w->fx.dir);
    srv_destroy(w->srv);
    w->srv = NULL;
    text = capture_end(&cap);
    log_set_level(LOG_ERROR);
    assert_non_null(strstr(text, "stats: grpc_server_started_total{" V3_AUTH "} 7\n"));
    free(text);
    stop(w);
}

/* A broker that kept the hook list of earlier scripts (exhookd restarted)
 * calls hooks the module does not define: each call is answered as before,
 * counted, and reported in one warning per hook, whichever worker took it. */
static void test_unhandled_hook_calls_are_answered_counted_and_reported_once(void **state)
{
    (void)state;
    struct world *w = start(0);
    struct rpc_client *c = rpc_client_open(w->target);
    Emqx__Exhook__V3__ClientConnectedRequest conn =
        EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    Emqx__Exhook__V3__ClientAuthorizeRequest authz =
        EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__INIT;
    log_set_level(LOG_WARN);
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    for (int i = 0; i < 5; i++) {
        struct rpc_result r;
        assert_int_equal(
            rpc_call(c, "/emqx.exhook.v2.HookProvider/OnClientConnected", &conn.base, &r), 0);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_true(r.got_message);
        assert_int_equal(r.reply_len, 0); /* EmptySuccess, as for any hook without a handler */
        rpc_result_free(&r);
    }
    struct rpc_result r;
    assert_int_equal(
        rpc_call(c, "/emqx.exhook.v2.HookProvider/OnClientAuthorize", &authz.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    Emqx__Exhook__V3__ValuedResponse *v =
        emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
    assert_int_equal(v->type, EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    rpc_result_free(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(authenticate(c, "a"), GRPC_STATUS_OK);
    char *text = capture_end(&cap);
    rpc_client_close(c);
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "no loaded script handles it")); p++)
        lines++;
    assert_int_equal(lines, 2);
    assert_non_null(strstr(text, "the broker called client.connected 1 time since start, "));
    assert_non_null(strstr(text, "the broker called client.authorize 1 time since start, "));
    assert_null(strstr(text, "client.authenticate"));
    free(text);

    log_set_level(LOG_INFO);
    capture_begin(&cap, w->fx.dir);
    srv_log_stats(w->srv);
    text = capture_end(&cap);
    log_set_level(LOG_ERROR);
    assert_non_null(
        strstr(text, "stats: exhookd_unhandled_calls_total{hook=\"client.connected\"} 5\n"));
    assert_non_null(
        strstr(text, "stats: exhookd_unhandled_calls_total{hook=\"client.authorize\"} 1\n"));
    assert_null(strstr(text, "exhookd_unhandled_calls_total{hook=\"client.authenticate\"}"));
    assert_non_null(strstr(text, "stats: grpc_server_started_total{" V3_AUTH "} 3\n"));
    free(text);
    stop(w);
}

static void test_zero_workers_means_one_per_cpu(void **state)
{
    (void)state;
    struct world *w = start_with(0, "[server]\nworkers = 0\n");
    assert_int_equal(srv_worker_count(w->srv), (int)sysconf(_SC_NPROCESSORS_ONLN));
    stop(w);
}

static void test_gzip_compressed_request_is_served(void **state)
{
    (void)state;
    struct world *w = start(0);
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                    .value.integer = GRPC_COMPRESS_GZIP};
    grpc_channel_args args = {1, &arg};
    struct rpc_client *c = rpc_client_open_args(w->target, &args);
    for (int i = 0; i < 10; i++)
        assert_int_equal(authenticate(c, "fine"), GRPC_STATUS_OK);
    rpc_client_close(c);
    stop(w);
}

static void test_client_deadline_shorter_than_the_handler_stops_it(void **state)
{
    (void)state;
    struct world *w = start(2000);
    struct rpc_client *c = rpc_client_open(w->target);
    rpc_client_set_timeout(c, 100);
    int64_t t0 = script_now_ns();
    assert_int_equal(authenticate(c, "slow"), GRPC_STATUS_DEADLINE_EXCEEDED);
    rpc_client_set_timeout(c, 30000);
    /* The handler was stopped at the broker's deadline, not after 2 s: the
     * next call on either worker is answered at once. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(authenticate(c, "fine"), GRPC_STATUS_OK);
    assert_true(script_now_ns() - t0 < 1500 * 1000000LL);
    rpc_client_close(c);
    stop(w);
}

static void test_garbage_and_closed_connections_do_not_hurt(void **state)
{
    (void)state;
    struct world *w = start(0);
#define SEND(text) {text, sizeof text - 1}
    static const struct {
        const char *data;
        size_t len;
    } sends[] = {
        SEND("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        /* a valid preface, then a frame header announcing 16 MB, then junk */
        SEND("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x04\x00\x00\x00\x00\x00 garbage"),
        SEND("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), /* and then vanish */
        SEND(""),
    };
#undef SEND
    for (size_t i = 0; i < sizeof sends / sizeof sends[0]; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(srv_port(w->srv))};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(write(fd, sends[i].data, sends[i].len), (ssize_t)sends[i].len);
        close(fd);
    }
    assert_serving(w);
    stop(w);
}

static size_t count_char(const char *text, char ch)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == ch;
    return n;
}

/* A client chooses the :path of a call and, through the broker, the text a
 * script logs (the example logs the clientid): neither can start a line of
 * its own in the log. */
static void test_client_text_cannot_forge_a_log_line(void **state)
{
    (void)state;
    struct world *w = start(0);
    log_set_level(LOG_WARN);
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    struct rpc_client *c = rpc_client_open(w->target);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, "/x\nfake line\r\x1b[2J", "", 0, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_UNIMPLEMENTED);
    rpc_result_free(&r);
    assert_int_equal(authenticate(c, "log\nfake line"), GRPC_STATUS_OK);
    rpc_client_close(c);
    char *text = capture_end(&cap);
    /* two events, two lines */
    assert_int_equal(count_char(text, '\n'), 2);
    assert_non_null(strstr(text, "] call to unknown method /x\\nfake line\\r\\x1b[2J\n"));
    assert_non_null(strstr(text, "] [m] log\\nfake line\n"));
    free(text);
    stop(w);
}

struct slow_call {
    const char *target;
    grpc_status_code status;
};

static void *slow_caller(void *arg)
{
    struct slow_call *sc = arg;
    struct rpc_client *c = rpc_client_open(sc->target);
    sc->status = authenticate(c, "slow");
    rpc_client_close(c);
    return NULL;
}

static void wait_for_start(struct world *w)
{
    for (int i = 0; i < 500 && lines_in(w, "started.txt") == 0; i++)
        usleep(10000);
    assert_int_equal(lines_in(w, "started.txt"), 1);
}

/* Starts a slow call, stops the server once the handler runs, and returns
 * what the caller got. */
static grpc_status_code stop_during_slow_call(struct world *w)
{
    struct slow_call sc = {w->target, GRPC_STATUS_UNKNOWN};
    pthread_t t;
    pthread_create(&t, NULL, slow_caller, &sc);
    wait_for_start(w);
    srv_destroy(w->srv);
    w->srv = NULL;
    pthread_join(t, NULL);
    return sc.status;
}

static void test_stop_lets_calls_in_flight_finish_then_runs_deinit(void **state)
{
    (void)state;
    struct world *w = start_with(300, "[server]\nworkers = 2\nshutdown_timeout = 5s\n");
    assert_int_equal(stop_during_slow_call(w), GRPC_STATUS_OK);
    assert_int_equal(lines_in(w, "deinit.txt"), 2); /* one per worker state */
    stop(w);
}

static void test_stop_cancels_calls_that_outlast_the_grace_period(void **state)
{
    (void)state;
    /* [server] shutdown_timeout: 50 ms for a call of 800 */
    struct world *w = start_with(800, "[server]\nworkers = 2\nshutdown_timeout = 50ms\n");
    grpc_status_code st = stop_during_slow_call(w);
    assert_int_not_equal(st, GRPC_STATUS_OK);
    assert_int_not_equal(st, GRPC_STATUS_UNKNOWN);
    assert_int_equal(lines_in(w, "deinit.txt"), 2);
    stop(w);
}

struct health_call {
    const char *target;
    grpc_status_code status;
    int serving;
};

static void *health_caller(void *arg)
{
    struct health_call *hc = arg;
    struct rpc_client *c = rpc_client_open(hc->target);
    uint8_t buf[8];
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    size_t len = protobuf_c_message_pack(&req.base, buf);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, "/grpc.health.v1.Health/Check", buf, len, &r), 0);
    hc->status = r.status;
    if (r.status == GRPC_STATUS_OK) {
        Grpc__Health__V1__HealthCheckResponse *h =
            grpc__health__v1__health_check_response__unpack(NULL, r.reply_len, r.reply);
        hc->serving = h->status;
        grpc__health__v1__health_check_response__free_unpacked(h, NULL);
    }
    rpc_result_free(&r);
    rpc_client_close(c);
    return NULL;
}

static void test_health_is_not_serving_once_shutdown_begins(void **state)
{
    (void)state;
    /* One worker, busy with a slow call: a health check arriving now waits
     * for it, and is answered after the stop has begun. */
    struct world *w = start_with(600, "[server]\nworkers = 1\n");
    struct slow_call sc = {w->target, GRPC_STATUS_UNKNOWN};
    struct health_call hc = {w->target, GRPC_STATUS_UNKNOWN, -1};
    pthread_t slow, check;
    pthread_create(&slow, NULL, slow_caller, &sc);
    wait_for_start(w);
    pthread_create(&check, NULL, health_caller, &hc);
    usleep(200000); /* the check reaches the server's queue */
    srv_destroy(w->srv);
    w->srv = NULL;
    pthread_join(slow, NULL);
    pthread_join(check, NULL);
    assert_int_equal(sc.status, GRPC_STATUS_OK);
    assert_int_equal(hc.status, GRPC_STATUS_OK);
    assert_int_equal(hc.serving,
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    stop(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_request_is_refused_and_server_goes_on),
        cmocka_unit_test(test_gzip_compressed_request_is_served),
        cmocka_unit_test(test_max_message_size_limits_requests),
        cmocka_unit_test(test_request_of_max_message_size_is_served),
        cmocka_unit_test(test_counters_count_calls_errors_timeouts_and_memory_failures),
        cmocka_unit_test(test_unhandled_hook_calls_are_answered_counted_and_reported_once),
        cmocka_unit_test(test_zero_workers_means_one_per_cpu),
        cmocka_unit_test(test_client_deadline_shorter_than_the_handler_stops_it),
        cmocka_unit_test(test_garbage_and_closed_connections_do_not_hurt),
        cmocka_unit_test(test_client_text_cannot_forge_a_log_line),
        cmocka_unit_test(test_stop_lets_calls_in_flight_finish_then_runs_deinit),
        cmocka_unit_test(test_stop_cancels_calls_that_outlast_the_grace_period),
        cmocka_unit_test(test_health_is_not_serving_once_shutdown_begins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
