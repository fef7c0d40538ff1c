/* exhook.redis through the real server and a real redis-server: a handler
 * that authenticates with one GET per call, many calls at once; Redis
 * restarted; Redis hung past call_timeout; a reply too big for
 * memory_limit. */

#include <grpc/grpc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "log.h"
#include "loop.h"
#include "redis.h"
#include "rpc_client.h"
#include "script.h"
#include "redis_server.h"
#include "server.h"

#define AUTH_PATH "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"

struct world {
    struct fixture fx;
    struct redis_server redis;
    struct server *srv;
    char target[64];
};

/* A server running `module` (a printf format taking the Redis port) as
 * module m, with a redis-server that requires a password. */
static struct world *start_with(const char *ini, const char *module)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    redis_server_start(&w->redis, "pa:ss");
    char text[4096];
    snprintf(text, sizeof text, module, w->redis.port);
    fx_write(&w->fx, "m.lua", text);
    fx_configure(&w->fx, "m", ini);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    return w;
}

/* The password of user U is the value of key user:U; a failed lookup is
 * raised, for the test to see its message. */
static struct world *start(const char *ini)
{
    return start_with(ini,
                      "local red = exhook.redis.connect('redis://:pa%%3Ass@127.0.0.1:%d/1')\n"
                      "function on_client_authenticate(ci)\n"
                      "  if ci.username == 'admin' then\n"
                      "    local ok, err, kind = red:call('SET', 'user:' .. ci.clientid, ci.password)\n"
                      "    if not ok then error(err .. ' (' .. kind .. ')', 0) end\n"
                      "    return ok == 'OK'\n"
                      "  end\n"
                      "  if ci.username == 'fill' then\n"
                      "    return red:call('EVAL', \"for i = 1, 100000 do redis.call('RPUSH', 'big', \"\n"
                      "                    .. \"i .. string.rep('x', 60)) end return 1\", 0) == 1\n"
                      "  end\n"
                      "  if ci.username == 'big' then\n"
                      "    local all, err = red:call('LRANGE', 'big', 0, -1)\n"
                      "    if not all then error(err, 0) end\n"
                      "    return #all > 0\n"
                      "  end\n"
                      "  local password, err, kind = red:call('GET', 'user:' .. ci.username)\n"
                      "  if err then error(err .. ' (' .. kind .. ')', 0) end\n"
                      "  return password ~= nil and password == ci.password\n"
                      "end\n");
}

static void stop(struct world *w)
{
    srv_destroy(w->srv);
    redis_server_stop(&w->redis);
    fx_free(&w->fx);
    free(w);
}

/* One authenticate call: its status, grpc-message in `details`, verdict in
 * `*allowed` (-1 without one). */
static grpc_status_code authenticate(struct rpc_client *c, const char *username,
                                     const char *password, char *details, size_t len,
                                     int *allowed)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)username;
    ci.password = (char *)password;
    ci.clientid = (char *)username;
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &ci;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, AUTH_PATH, buf, n, &r), 0);
    grpc_status_code st = r.status;
    snprintf(details, len, "%s", r.details);
    *allowed = -1;
    if (st == GRPC_STATUS_OK && r.reply) {
        Emqx__Exhook__V3__ValuedResponse *v =
            emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(v);
        if (v->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT)
            *allowed = v->bool_result;
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    }
    rpc_result_free(&r);
    return st;
}

/* An authenticate call that must answer OK; its verdict. */
static int verdict(struct rpc_client *c, const char *username, const char *password)
{
    char details[512];
    int allowed;
    grpc_status_code st = authenticate(c, username, password, details, sizeof details, &allowed);
    if (st != GRPC_STATUS_OK)
        fail_msg("%s: status %d: %s", username, st, details);
    return allowed;
}

/* The admin pseudo-user stores clientid's password (see start); retried
 * while Redis is not back. */
static void add_user(struct rpc_client *c, const char *user, const char *password)
{
    Emqx__Exhook__V3__ClientInfo admin = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    admin.username = "admin";
    admin.clientid = (char *)user;
    admin.password = (char *)password;
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &admin;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    int64_t end = time(NULL) + 20;
    for (;;) {
        struct rpc_result r;
        assert_int_equal(rpc_call_raw(c, AUTH_PATH, buf, n, &r), 0);
        grpc_status_code st = r.status;
        rpc_result_free(&r);
        if (st == GRPC_STATUS_OK)
            return; /* the script raises when SET fails */
        if (time(NULL) > end)
            fail_msg("Redis not back within 20 s");
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
}

struct client_thread {
    const char *target;
    int calls, right;
};

/* Users u0..u9 with passwords p0..p9; every other call with a wrong one. */
static void *many_calls(void *arg)
{
    struct client_thread *t = arg;
    struct rpc_client *c = rpc_client_open(t->target);
    for (int i = 0; i < t->calls; i++) {
        char user[8], password[8];
        snprintf(user, sizeof user, "u%d", i % 10);
        snprintf(password, sizeof password, "p%d", i % 2 ? i % 10 : (i + 1) % 10);
        char details[512];
        int allowed;
        if (authenticate(c, user, password, details, sizeof details, &allowed) ==
                GRPC_STATUS_OK &&
            allowed == (i % 2))
            t->right++;
    }
    rpc_client_close(c);
    return NULL;
}

static void test_authenticate_with_one_get_per_call(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 2\n");
    struct rpc_client *c = rpc_client_open(w->target);
    add_user(c, "alice", "wonder land");
    assert_int_equal(verdict(c, "alice", "wonder land"), 1);
    assert_int_equal(verdict(c, "alice", "wonder"), 0);
    assert_int_equal(verdict(c, "bob", ""), 0);

    for (int i = 0; i < 10; i++) {
        char user[8], password[8];
        snprintf(user, sizeof user, "u%d", i);
        snprintf(password, sizeof password, "p%d", i);
        add_user(c, user, password);
    }
    enum { THREADS = 8, CALLS = 200 };
    struct client_thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct client_thread){w->target, CALLS, 0};
        pthread_create(&th[i], NULL, many_calls, &t[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].right, CALLS);
    }
    rpc_client_close(c);
    stop(w);
}

static void test_survives_a_redis_restart(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 2\n");
    struct rpc_client *c = rpc_client_open(w->target);
    add_user(c, "alice", "secret");
    assert_int_equal(verdict(c, "alice", "secret"), 1);

    /* Down: calls answer at once with the reason; nothing hangs. */
    redis_server_kill(&w->redis);
    char details[512], prefix[128];
    int allowed;
    snprintf(prefix, sizeof prefix, "redis 127.0.0.1:%d: ", w->redis.port);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(authenticate(c, "alice", "secret", details, sizeof details, &allowed),
                         GRPC_STATUS_UNKNOWN);
        const char *msg = strstr(details, prefix);
        if (!msg || !(strstr(msg, "connection refused (refused)") ||
                      strstr(msg, "connection lost: ") || strstr(msg, "cannot connect: ")))
            fail_msg("unexpected: %s", details);
    }

    /* Back (empty: it persists nothing): each worker's pool reconnects
     * within its reconnect delay (at most a second). */
    redis_server_restart(&w->redis);
    add_user(c, "alice", "secret");
    int64_t end = time(NULL) + 20;
    int in_a_row = 0;
    while (in_a_row < 20 && time(NULL) < end) {
        if (authenticate(c, "alice", "secret", details, sizeof details, &allowed) ==
                GRPC_STATUS_OK &&
            allowed == 1) {
            in_a_row++;
        } else {
            in_a_row = 0;
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
    }
    assert_int_equal(in_a_row, 20);
    rpc_client_close(c);
    stop(w);
}

static void test_a_hung_redis_is_cut_by_call_timeout(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 1\n[lua]\ncall_timeout = 300ms\n");
    struct rpc_client *c = rpc_client_open(w->target);
    add_user(c, "alice", "secret");
    assert_int_equal(verdict(c, "alice", "secret"), 1);

    kill(w->redis.pid, SIGSTOP);
    char details[512], want[256];
    int allowed;
    assert_int_equal(authenticate(c, "alice", "secret", details, sizeof details, &allowed),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    snprintf(want, sizeof want,
             "module 'm' on_client_authenticate: waiting for redis GET on 127.0.0.1:%d after ",
             w->redis.port);
    assert_memory_equal(details, want, strlen(want));
    kill(w->redis.pid, SIGCONT);

    /* The connection that waited was dropped; the pool serves on. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(verdict(c, "alice", "secret"), 1);
    rpc_client_close(c);
    stop(w);
}

/* A reply too big for memory_limit: red:call returns nil and why,
 * nothing leaks, and the worker goes on. */
static void test_a_reply_past_memory_limit(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 1\n[lua]\nmemory_limit = 4MB\n");
    struct rpc_client *c = rpc_client_open(w->target);
    add_user(c, "alice", "secret");
    /* 100000 distinct elements of some 65 bytes: 6.5 MB of strings, more as Lua values. */
    assert_int_equal(verdict(c, "fill", ""), 1);
    char details[512];
    int allowed;
    assert_int_equal(authenticate(c, "big", "", details, sizeof details, &allowed),
                     GRPC_STATUS_UNKNOWN);
    assert_string_equal(details, "module 'm' on_client_authenticate: out of memory (memory_limit) "
                                 "reading the result");
    assert_int_equal(verdict(c, "alice", "secret"), 1);
    rpc_client_close(c);
    stop(w);
}

/* Runs a command on the test's redis-server, with the C client. */
static void on_seeded(void *ctx, struct redis_value *v, const struct redis_error *e)
{
    int *done = ctx;
    *done = v && v->type != REDIS_V_ERROR && !e ? 1 : -1;
    free(v);
}

static void seed(struct world *w, const char **argv)
{
    char err[256], url[128];
    struct loop *loop = loop_create(err, sizeof err);
    struct redis_pools *pools = redis_pools_create(loop);
    snprintf(url, sizeof url, "redis://:pa%%3Ass@127.0.0.1:%d/2", w->redis.port);
    struct redis_pool *pool = redis_pool_get(pools, url, err, sizeof err);
    int argc = 0, done = 0;
    while (argv[argc])
        argc++;
    struct redis_error e;
    assert_non_null(redis_command(pool, argc, argv, NULL, loop_now_ns() + 10000000000LL,
                                  on_seeded, &done, &e));
    while (!done)
        loop_run_once(loop, 100);
    assert_int_equal(done, 1);
    redis_pools_destroy(pools);
    loop_destroy(loop);
}

static grpc_status_code authorize(struct rpc_client *c, const char *clientid, const char *topic,
                                  int *allowed)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = (char *)clientid;
    ci.username = (char *)clientid;
    Emqx__Exhook__V3__ClientAuthorizeRequest req = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__INIT;
    req.clientinfo = &ci;
    req.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__PUBLISH;
    req.topic = (char *)topic;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(c, "/emqx.exhook.v3.HookProvider/OnClientAuthorize", buf, n, &r),
                     0);
    grpc_status_code st = r.status;
    *allowed = -1;
    if (st == GRPC_STATUS_OK && r.reply) {
        Emqx__Exhook__V3__ValuedResponse *v =
            emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(v);
        if (v->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT)
            *allowed = v->bool_result;
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    }
    rpc_result_free(&r);
    return st;
}

/* The operators' example (NOTES-redis.md), with this test's Redis. */
static const char readme_example[] =
    "local M = {}\n"
    "local users = exhook.redis.connect('redis://:pa%%3Ass@127.0.0.1:%d/2')\n"
    "function M.on_client_authenticate(clientinfo, result, meta)\n"
    "  local u, err = users:call('HMGET', 'user:' .. clientinfo.username, 'salt', 'hash')\n"
    "  if not u then\n"
    "    exhook.log('warn', err)\n"
    "    return false\n"
    "  end\n"
    "  if not u[1] then\n"
    "    return false\n"
    "  end\n"
    "  return exhook.crypto.check_password(clientinfo.password, u[2],\n"
    "                                      {name = 'sha256', salt = u[1]})\n"
    "end\n"
    "function M.on_client_authorize(clientinfo, action, topic, result, meta)\n"
    "  if action ~= 'publish' then return nil end\n"
    "  local allowed, err = users:call('SISMEMBER', 'acl:pub:' .. clientinfo.clientid, topic)\n"
    "  if allowed == nil then\n"
    "    exhook.log('warn', err)\n"
    "    return false\n"
    "  end\n"
    "  return allowed == 1\n"
    "end\n"
    "return M\n";

static void test_the_operators_example(void **state)
{
    (void)state;
    struct world *w = start_with("[server]\nworkers = 2\n", readme_example);
    /* sha256("8f3a" .. "secret") */
    seed(w, (const char *[]){"HSET", "user:alice", "salt", "8f3a", "hash",
                             "ef44f9568490a9347b55c8f36fef52ec88c507ad1ebc1830a3580f87245b63b1",
                             NULL});
    seed(w, (const char *[]){"SADD", "acl:pub:alice", "t/1", NULL});
    struct rpc_client *c = rpc_client_open(w->target);
    assert_int_equal(verdict(c, "alice", "secret"), 1);
    assert_int_equal(verdict(c, "alice", "Secret"), 0);
    assert_int_equal(verdict(c, "bob", "secret"), 0);
    int allowed;
    assert_int_equal(authorize(c, "alice", "t/1", &allowed), GRPC_STATUS_OK);
    assert_int_equal(allowed, 1);
    assert_int_equal(authorize(c, "alice", "t/2", &allowed), GRPC_STATUS_OK);
    assert_int_equal(allowed, 0);
    rpc_client_close(c);
    stop(w);
}

/* What a module's body gets wrong is a load error that says so. */
static void assert_load_error(const char *module, const char *want)
{
    struct fixture fx;
    fx_init(&fx);
    fx_write(&fx, "m.lua", module);
    fx_configure(&fx, "m", NULL);
    struct script_engine e;
    char err[512];
    assert_int_equal(script_engine_open(&e, &fx.cfg, 1, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("'%s' does not say '%s'", err, want);
    assert_null(strstr(err, "s3cret"));
    fx_free(&fx);
}

static void test_load_time_mistakes(void **state)
{
    (void)state;
    assert_load_error("exhook.redis.connect('redis://:s3cret@h:0')",
                      "exhook.redis.connect: bad port '0' (1 to 65535)");
    assert_load_error("exhook.redis.connect('mysql://u:s3cret@h')",
                      "exhook.redis.connect: a Redis URL starts with redis:// (TLS is not supported)");
    assert_load_error("exhook.redis.connect('redis://h', {timeout = 0})",
                      "exhook.redis.connect: timeout must be seconds, more than 0 and at most 86400");
    assert_load_error("exhook.redis.connect('redis://h'):call('GET', 'k')",
                      "red:call: cannot wait here: a module's body and init() run at load time");
    assert_load_error("exhook.redis.connect('redis://h'):call('GET', {})",
                      "bad argument #2 to 'call' (string or number expected, got table)");
    assert_load_error("exhook.redis.connect('redis://h'):call()",
                      "red:call: no command (e.g. red:call(\"GET\", key))");
    assert_load_error("local r = exhook.redis.connect('redis://:s3cret@h/3')\n"
                      "error(tostring(r) .. ' ' .. tostring(getmetatable(r)))",
                      "exhook.redis(h:6379) exhook.redis");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticate_with_one_get_per_call),
        cmocka_unit_test(test_survives_a_redis_restart),
        cmocka_unit_test(test_a_hung_redis_is_cut_by_call_timeout),
        cmocka_unit_test(test_a_reply_past_memory_limit),
        cmocka_unit_test(test_the_operators_example),
        cmocka_unit_test(test_load_time_mistakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
