#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "redis.h"
#include "redis_server.h"

/* One redis-server without a password for most tests, one with, and one
 * that a test kills (stopped with the others if the test fails). */
static struct redis_server plain, locked, restarted;

/* Each test: a loop and the pools of one worker slot. */
struct slot {
    struct loop *loop;
    struct redis_pools *pools;
};

static int slot_open(void **state)
{
    struct slot *s = calloc(1, sizeof *s);
    char err[256];
    s->loop = loop_create(err, sizeof err);
    assert_non_null(s->loop);
    s->pools = redis_pools_create(s->loop);
    assert_non_null(s->pools);
    *state = s;
    return 0;
}

static int slot_close(void **state)
{
    struct slot *s = *state;
    redis_pools_destroy(s->pools);
    loop_destroy(s->loop);
    free(s);
    return 0;
}

static struct redis_pool *pool_of(struct slot *s, const char *fmt, ...)
{
    char url[512], err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(url, sizeof url, fmt, ap);
    va_end(ap);
    struct redis_pool *p = redis_pool_get(s->pools, url, err, sizeof err);
    if (!p)
        fail_msg("%s: %s", url, err);
    return p;
}

/* What became of one command. */
struct res {
    int done;      /* times its callback ran */
    int at_once;   /* redis_command returned NULL */
    struct redis_value *v;
    struct redis_error err;
    int failed;
};

static void on_done(void *ctx, struct redis_value *v, const struct redis_error *e)
{
    struct res *r = ctx;
    r->done++;
    r->v = v;
    if (e) {
        r->failed = 1;
        r->err = *e;
    }
}

static void res_clear(struct res *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int64_t ms_from_now(int64_t ms) { return loop_now_ns() + ms * 1000000; }

/* Runs the loop until `*flag` is set; fails the test after `seconds`. */
static void run_until(struct slot *s, const int *flag, int seconds)
{
    int64_t end = ms_from_now(seconds * 1000);
    while (!*flag && loop_now_ns() < end)
        loop_run_once(s->loop, 100);
    if (!*flag)
        fail_msg("nothing happened within %d s", seconds);
}

/* Runs the loop for about `ms`, whatever happens. */
static void run_for(struct slot *s, int ms)
{
    int64_t end = ms_from_now(ms);
    while (loop_now_ns() < end)
        loop_run_once(s->loop, 20);
}

static int argc_of(const char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

/* Sends a command (argv NULL-terminated) and waits for its outcome. */
static struct redis_cmd *start(struct redis_pool *p, struct res *r, int64_t deadline_ns,
                              const char **argv)
{
    memset(r, 0, sizeof *r);
    struct redis_cmd *c =
        redis_command(p, argc_of(argv), argv, NULL, deadline_ns, on_done, r, &r->err);
    if (!c)
        r->at_once = r->failed = 1;
    return c;
}

static void call(struct slot *s, struct redis_pool *p, struct res *r, int64_t deadline_ns,
                 const char **argv)
{
    if (start(p, r, deadline_ns, argv))
        run_until(s, &r->done, 30);
}

#define CALL(s, p, r, ...) call(s, p, r, ms_from_now(10000), (const char *[]){__VA_ARGS__, NULL})

static void assert_string_value(const struct redis_value *v, enum redis_vtype type, const char *str)
{
    assert_non_null(v);
    assert_int_equal(v->type, type);
    assert_int_equal(v->len, strlen(str));
    assert_string_equal(v->str, str);
}

static void assert_ok_reply(struct res *r, enum redis_vtype type, const char *str)
{
    if (r->failed)
        fail_msg("failed: %s", r->err.msg);
    assert_int_equal(r->done, 1);
    assert_string_value(r->v, type, str);
    res_clear(r);
}

static void assert_failure(struct res *r, enum redis_fail kind, const char *msg)
{
    assert_true(r->failed);
    assert_null(r->v);
    assert_string_equal(r->err.msg, msg);
    assert_int_equal(r->err.kind, kind);
    res_clear(r);
}

/* ---- URLs ---- */

static void assert_bad_url(const char *url, const char *why)
{
    char err[256] = "", name[64];
    assert_int_equal(redis_url_check(url, name, sizeof name, err, sizeof err), -1);
    assert_string_equal(err, why);
}

static void test_bad_urls_are_refused_with_the_reason(void **state)
{
    (void)state;
    assert_bad_url("http://h", "a Redis URL starts with redis:// (TLS is not supported)");
    assert_bad_url("rediss://h", "a Redis URL starts with redis:// (TLS is not supported)");
    assert_bad_url("redis://", "no host");
    assert_bad_url("redis://:6379", "no host");
    assert_bad_url("redis://h:0", "bad port '0' (1 to 65535)");
    assert_bad_url("redis://h:65536", "bad port '65536' (1 to 65535)");
    assert_bad_url("redis://h:x", "bad port 'x' (1 to 65535)");
    assert_bad_url("redis://[::1", "an IPv6 address needs its closing ']'");
    assert_bad_url("redis://[::1]x", "junk after ']'");
    assert_bad_url("redis://h/x", "bad database 'x' (a number)");
    assert_bad_url("redis://h/-1", "bad database '-1' (a number)");
    assert_bad_url("redis://u@h", "a user needs a password (redis://user:password@host)");
    assert_bad_url("redis://:@h", "empty password");
    assert_bad_url("redis://:p%zz@h",
                   "bad user or password (percent-encode ':', '@', '/' and '%')");
    assert_bad_url("redis://:p%00@h",
                   "bad user or password (percent-encode ':', '@', '/' and '%')");
    assert_bad_url("redis://h?pool=0", "bad pool '0' (1 to 64 connections)");
    assert_bad_url("redis://h?pool=65", "bad pool '65' (1 to 64 connections)");
    assert_bad_url("redis://h?connect_timeout=", "bad connect_timeout '' (1 to 600000 ms)");
    assert_bad_url("redis://h?timeout=5", "unknown option 'timeout' (pool, connect_timeout)");
}

static void test_good_urls_name_their_pool(void **state)
{
    struct slot *s = *state;
    assert_string_equal(redis_pool_name(pool_of(s, "redis://10.0.0.1")), "10.0.0.1:6379");
    assert_string_equal(redis_pool_name(pool_of(s, "redis://:p%%40ss@[::1]:7000/2?pool=3&connect_timeout=500")),
                        "[::1]:7000");
    assert_string_equal(redis_pool_name(pool_of(s, "redis://alice:s3cret@cache.local:6380/")),
                        "cache.local:6380");
    char name[64], err[128];
    assert_int_equal(redis_url_check("redis://u:p@[::1]:1/2", name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "[::1]:1");
    /* The same URL is the same pool. */
    assert_ptr_equal(pool_of(s, "redis://10.0.0.1"), pool_of(s, "redis://10.0.0.1"));
    assert_ptr_not_equal(pool_of(s, "redis://10.0.0.1"), pool_of(s, "redis://10.0.0.1/0"));
    /* At most 64 URLs per slot (4 above, 60 more). */
    for (int i = 0; i < 60; i++)
        pool_of(s, "redis://10.0.0.2/%d", i);
    assert_null(redis_pool_get(s->pools, "redis://10.0.0.2/99", err, sizeof err));
    assert_string_equal(err, "too many Redis URLs: at most 64 per worker");
}

/* ---- replies ---- */

static void test_replies_of_each_type(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d", plain.port);
    struct res r;

    CALL(s, p, &r, "SET", "replies:k", "hello");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    CALL(s, p, &r, "GET", "replies:k");
    assert_ok_reply(&r, REDIS_V_STRING, "hello");
    CALL(s, p, &r, "PING");
    assert_ok_reply(&r, REDIS_V_STATUS, "PONG");

    CALL(s, p, &r, "GET", "replies:missing");
    assert_false(r.failed);
    assert_int_equal(r.v->type, REDIS_V_NIL);
    res_clear(&r);

    CALL(s, p, &r, "INCRBY", "replies:n", "-42");
    assert_false(r.failed);
    assert_int_equal(r.v->type, REDIS_V_INTEGER);
    assert_int_equal(r.v->integer, -42);
    res_clear(&r);

    CALL(s, p, &r, "GET", "replies:k", "extra");
    assert_ok_reply(&r, REDIS_V_ERROR, "ERR wrong number of arguments for 'get' command");
    CALL(s, p, &r, "INCR", "replies:k");
    assert_ok_reply(&r, REDIS_V_ERROR, "ERR value is not an integer or out of range");

    /* Binary-safe both ways. (An array: the linker may share the bytes
     * of a string literal after a '\0' with other literals.) */
    static const char bin[7] = {'a', '\0', 'b', '\r', '\n', 'c', 'd'};
    const char *argv[] = {"SET", "replies:bin", bin};
    size_t lens[] = {3, 11, sizeof bin};
    memset(&r, 0, sizeof r);
    assert_non_null(redis_command(p, 3, argv, lens, ms_from_now(10000), on_done, &r, &r.err));
    run_until(s, &r.done, 30);
    res_clear(&r);
    CALL(s, p, &r, "GET", "replies:bin");
    assert_int_equal(r.v->type, REDIS_V_STRING);
    assert_int_equal(r.v->len, sizeof bin);
    assert_memory_equal(r.v->str, bin, sizeof bin);
    assert_int_equal(r.v->str[sizeof bin], '\0');
    res_clear(&r);
}

static void test_arrays_nested_and_empty(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d", plain.port);
    struct res r;

    CALL(s, p, &r, "LRANGE", "arrays:none", "0", "-1");
    assert_int_equal(r.v->type, REDIS_V_ARRAY);
    assert_int_equal(r.v->n, 0);
    res_clear(&r);

    /* Lua's false is Redis' nil; a table of {err=...} an error reply. */
    CALL(s, p, &r, "EVAL",
         "return {1, {'a', {'deep', 7}}, false, 'x', redis.status_reply('FINE'), "
         "redis.error_reply('BAD inner')}",
         "0");
    assert_false(r.failed);
    const struct redis_value *v = r.v;
    assert_int_equal(v->type, REDIS_V_ARRAY);
    assert_int_equal(v->n, 6);
    assert_int_equal(v->elems[0].type, REDIS_V_INTEGER);
    assert_int_equal(v->elems[0].integer, 1);
    const struct redis_value *inner = &v->elems[1];
    assert_int_equal(inner->type, REDIS_V_ARRAY);
    assert_int_equal(inner->n, 2);
    assert_string_value(&inner->elems[0], REDIS_V_STRING, "a");
    assert_int_equal(inner->elems[1].type, REDIS_V_ARRAY);
    assert_int_equal(inner->elems[1].n, 2);
    assert_string_value(&inner->elems[1].elems[0], REDIS_V_STRING, "deep");
    assert_int_equal(inner->elems[1].elems[1].integer, 7);
    assert_int_equal(v->elems[2].type, REDIS_V_NIL);
    assert_string_value(&v->elems[3], REDIS_V_STRING, "x");
    assert_string_value(&v->elems[4], REDIS_V_STATUS, "FINE");
    assert_string_value(&v->elems[5], REDIS_V_ERROR, "BAD inner");
    res_clear(&r);
}

static void test_select_applies_the_urls_database(void **state)
{
    struct slot *s = *state;
    struct redis_pool *db3 = pool_of(s, "redis://127.0.0.1:%d/3?pool=3", plain.port);
    struct redis_pool *db0 = pool_of(s, "redis://127.0.0.1:%d", plain.port);
    struct res r;

    CALL(s, db3, &r, "SET", "select:k", "in three");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    /* Every connection of the pool is on database 3. */
    for (int i = 0; i < 6; i++) {
        CALL(s, db3, &r, "GET", "select:k");
        assert_ok_reply(&r, REDIS_V_STRING, "in three");
    }
    CALL(s, db0, &r, "GET", "select:k");
    assert_int_equal(r.v->type, REDIS_V_NIL);
    res_clear(&r);
    CALL(s, db0, &r, "EVAL", "redis.call('SELECT', 3) return redis.call('GET', KEYS[1])", "1",
         "select:k");
    assert_ok_reply(&r, REDIS_V_STRING, "in three");
}

static void test_commands_that_change_a_shared_connection_are_refused(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d", plain.port);
    struct res r;
    char want[256];
    const char *names[] = {"MULTI", "select", "Subscribe", "AUTH", "QUIT", "HELLO"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        CALL(s, p, &r, names[i], "1");
        assert_true(r.at_once);
        snprintf(want, sizeof want,
                 "redis 127.0.0.1:%d: %s is not allowed: callers share the pool's connections "
                 "(EVAL runs several commands at once)",
                 plain.port, names[i]);
        assert_failure(&r, REDIS_FAIL_OTHER, want);
    }
}

/* ---- AUTH ---- */

static void test_auth_with_the_password_of_the_url(void **state)
{
    struct slot *s = *state;
    struct res r;
    char want[256];

    struct redis_pool *p = pool_of(s, "redis://:%s@127.0.0.1:%d/1", "pa%3Ass", locked.port);
    CALL(s, p, &r, "SET", "auth:k", "v");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    CALL(s, p, &r, "ACL", "WHOAMI");
    assert_ok_reply(&r, REDIS_V_STRING, "default");

    /* No password: the server says so in an error reply. */
    struct redis_pool *none = pool_of(s, "redis://127.0.0.1:%d", locked.port);
    CALL(s, none, &r, "GET", "auth:k");
    assert_ok_reply(&r, REDIS_V_ERROR, "NOAUTH Authentication required.");

    /* An ACL user. */
    CALL(s, p, &r, "ACL", "SETUSER", "alice", "on", ">wonder land", "~auth:*", "+get", "+select");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    struct redis_pool *alice =
        pool_of(s, "redis://alice:wonder%%20land@127.0.0.1:%d/1", locked.port);
    CALL(s, alice, &r, "GET", "auth:k");
    assert_ok_reply(&r, REDIS_V_STRING, "v");
    CALL(s, alice, &r, "SET", "auth:k", "w");
    assert_int_equal(r.v->type, REDIS_V_ERROR);
    assert_non_null(strstr(r.v->str, "NOPERM"));
    res_clear(&r);

    /* A wrong password: the commands sent behind AUTH fail with its
     * error, and later ones at once while no connection is up. */
    struct redis_pool *wrong = pool_of(s, "redis://:nope@127.0.0.1:%d?pool=1", locked.port);
    CALL(s, wrong, &r, "GET", "auth:k");
    assert_false(r.at_once);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: AUTH failed: WRONGPASS invalid username-password pair or user "
             "is disabled.",
             locked.port);
    assert_failure(&r, REDIS_FAIL_OTHER, want);
    CALL(s, wrong, &r, "GET", "auth:k");
    assert_true(r.at_once);
    assert_failure(&r, REDIS_FAIL_OTHER, want);
}

/* ---- connection failures ---- */

static void test_refused_when_nothing_listens(void **state)
{
    struct slot *s = *state;
    int port = redis_free_port();
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d", port);
    struct res r;
    char want[128];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: connection refused", port);
    /* The first command may wait for the pool's first connect. */
    for (int i = 0; i < 3; i++) {
        CALL(s, p, &r, "GET", "k");
        assert_true(r.at_once || i == 0);
        assert_failure(&r, REDIS_FAIL_REFUSED, want);
        run_for(s, 100);
    }
}

static void test_connect_timeout(void **state)
{
    struct slot *s = *state;
    /* A listener whose backlog is full: the handshake never completes. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    run_for(s, 100);

    struct redis_pool *p =
        pool_of(s, "redis://127.0.0.1:%d?pool=1&connect_timeout=300", ntohs(a.sin_port));
    struct res r;
    int64_t t0 = loop_now_ns();
    CALL(s, p, &r, "GET", "k");
    int64_t took_ms = (loop_now_ns() - t0) / 1000000;
    char want[128];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: connect timed out after 300 ms",
             ntohs(a.sin_port));
    assert_false(r.at_once);
    assert_failure(&r, REDIS_FAIL_TIMEOUT, want);
    assert_true(took_ms >= 290);
    assert_true(took_ms < 10000);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

/* ---- deadlines and cancelling ---- */

static void test_a_command_past_its_deadline_times_out(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d?pool=1", plain.port);
    struct res r;
    char want[128];

    int64_t t0 = loop_now_ns();
    call(s, p, &r, t0 + 300 * 1000000LL, (const char *[]){"BLPOP", "deadline:never", "0", NULL});
    int64_t took_ms = (loop_now_ns() - t0) / 1000000;
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: BLPOP timed out after 300 ms", plain.port);
    assert_failure(&r, REDIS_FAIL_TIMEOUT, want);
    assert_true(took_ms >= 290);
    assert_true(took_ms < 10000);

    /* The connection stuck in BLPOP was replaced: the pool serves on. */
    CALL(s, p, &r, "SET", "deadline:k", "after");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    /* Nobody waits on the list any more to take what is pushed. */
    CALL(s, p, &r, "LPUSH", "deadline:never", "x");
    res_clear(&r);
    CALL(s, p, &r, "LLEN", "deadline:never");
    assert_int_equal(r.v->integer, 1);
    res_clear(&r);
    CALL(s, p, &r, "DEL", "deadline:never");
    res_clear(&r);

    /* A deadline already past fails at once. */
    call(s, p, &r, loop_now_ns() - 1, (const char *[]){"GET", "deadline:k", NULL});
    assert_true(r.at_once);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: GET: no time left", plain.port);
    assert_failure(&r, REDIS_FAIL_TIMEOUT, want);
    /* A name is shown printable and short, whatever a script sends. */
    call(s, p, &r, loop_now_ns() - 1,
         (const char *[]){"GET\r\nFLUSHALL 0123456789012345678901234567890123456789", NULL});
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: GET??FLUSHALL 01234567890123456: no time left",
             plain.port);
    assert_failure(&r, REDIS_FAIL_TIMEOUT, want);
}

/* A command that timed out gets its reply later, behind which another one
 * waits on the same connection: the late reply is dropped, the other one
 * served, and the connection stays. */
static void test_a_late_reply_is_dropped(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d?pool=1", plain.port);
    struct res slow, behind, r;

    CALL(s, p, &r, "SET", "late:k", "behind");
    assert_ok_reply(&r, REDIS_V_STATUS, "OK");
    CALL(s, p, &r, "CLIENT", "ID");
    long long id = r.v->integer;
    res_clear(&r);

    assert_non_null(start(p, &slow, ms_from_now(200), (const char *[]){"BLPOP", "late:q", "1", NULL}));
    assert_non_null(start(p, &behind, ms_from_now(20000), (const char *[]){"GET", "late:k", NULL}));
    run_until(s, &slow.done, 30);
    assert_int_equal(slow.err.kind, REDIS_FAIL_TIMEOUT);
    assert_int_equal(behind.done, 0);
    res_clear(&slow);

    /* While the only connection waits for the late reply, new commands
     * wait with it. */
    assert_non_null(start(p, &r, ms_from_now(20000), (const char *[]){"CLIENT", "ID", NULL}));

    run_until(s, &behind.done, 30);
    assert_ok_reply(&behind, REDIS_V_STRING, "behind");
    run_until(s, &r.done, 30);
    assert_false(r.failed);
    assert_int_equal(r.v->integer, id); /* the same connection */
    res_clear(&r);
    assert_int_equal(slow.done, 0);
}

static void test_cancel_in_flight(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d?pool=1", plain.port);
    struct res blocked, quick, r;

    CALL(s, p, &r, "PING");
    res_clear(&r);
    struct redis_cmd *c1 = start(p, &blocked, INT64_MAX, (const char *[]){"BLPOP", "cancel:q", "0", NULL});
    struct redis_cmd *c2 = start(p, &quick, ms_from_now(10000), (const char *[]){"PING", NULL});
    assert_non_null(c1);
    assert_non_null(c2);
    redis_cancel(c2);
    redis_cancel(c1);
    run_for(s, 300);
    assert_int_equal(blocked.done, 0);
    assert_int_equal(quick.done, 0);

    /* The connection blocked in BLPOP was replaced. */
    CALL(s, p, &r, "LPUSH", "cancel:q", "x");
    assert_false(r.failed);
    res_clear(&r);
    CALL(s, p, &r, "LLEN", "cancel:q");
    assert_int_equal(r.v->integer, 1);
    res_clear(&r);
    CALL(s, p, &r, "DEL", "cancel:q");
    res_clear(&r);
}

/* A server closes connections idle for its `timeout`: no failure, the
 * connection is reopened and the next command served. (Whether that
 * command comes before the reopen, and waits for it, is up to the timing:
 * the loss and the reopen may both come while the killer's reply comes.) */
static void test_an_idle_connection_closed_by_the_server(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d?pool=1", plain.port);
    struct redis_pool *killer = pool_of(s, "redis://127.0.0.1:%d/1", plain.port);
    struct res r;
    CALL(s, p, &r, "CLIENT", "ID");
    char id[32];
    snprintf(id, sizeof id, "%lld", r.v->integer);
    res_clear(&r);
    CALL(s, killer, &r, "PING");
    res_clear(&r);
    run_for(s, 1200);

    CALL(s, killer, &r, "CLIENT", "KILL", "ID", id);
    assert_int_equal(r.v->integer, 1);
    res_clear(&r);
    loop_run_once(s->loop, 0);
    CALL(s, p, &r, "PING");
    assert_ok_reply(&r, REDIS_V_STATUS, "PONG");
    CALL(s, p, &r, "CLIENT", "ID");
    assert_true(r.v->integer > atoll(id)); /* a new connection */
    res_clear(&r);
}

/* ---- restarts ---- */

struct load {
    struct slot *s;
    struct redis_pool *p;
    int outstanding, issued, ok, failed, at_once;
    int lost, refused, other;
    char other_msg[256];
    char prefix[64];
};

struct load_cmd {
    struct load *l;
};

static void on_load_done(void *ctx, struct redis_value *v, const struct redis_error *e)
{
    struct load_cmd *lc = ctx;
    struct load *l = lc->l;
    free(lc);
    l->outstanding--;
    if (v) {
        if (v->type == REDIS_V_INTEGER)
            l->ok++;
        free(v);
        return;
    }
    l->failed++;
    if (strncmp(e->msg, l->prefix, strlen(l->prefix)) != 0)
        snprintf(l->other_msg, sizeof l->other_msg, "%s", e->msg);
    else if (strncmp(e->msg + strlen(l->prefix), "connection lost: ", 17) == 0)
        l->lost++;
    else if (e->kind == REDIS_FAIL_REFUSED)
        l->refused++;
    else
        snprintf(l->other_msg, sizeof l->other_msg, "%s", e->msg);
}

/* Keeps 64 commands in flight. */
static void load_top_up(struct load *l)
{
    const char *argv[] = {"INCR", "load:n"};
    while (l->outstanding < 64) {
        struct load_cmd *lc = malloc(sizeof *lc);
        lc->l = l;
        struct redis_error err;
        l->issued++;
        if (!redis_command(l->p, 2, argv, NULL, ms_from_now(10000), on_load_done, lc, &err)) {
            free(lc);
            l->at_once++;
            assert_true(err.kind == REDIS_FAIL_REFUSED || strstr(err.msg, "connection lost: "));
            return;
        }
        l->outstanding++;
    }
}

static void load_run_until_ok(struct load *l, int ok, int seconds)
{
    int64_t end = ms_from_now(seconds * 1000);
    while (l->ok < ok && loop_now_ns() < end) {
        load_top_up(l);
        loop_run_once(l->s->loop, 20);
    }
    if (l->ok < ok)
        fail_msg("%d commands served of %d within %d s", l->ok, ok, seconds);
}

static void test_redis_restarted_under_load(void **state)
{
    struct slot *s = *state;
    struct redis_server *srv = &restarted;
    redis_server_start(srv, NULL);
    /* Static: commands still in flight if the test fails end at teardown. */
    static struct load l;
    l = (struct load){.s = s, .p = pool_of(s, "redis://127.0.0.1:%d?pool=4", srv->port)};
    snprintf(l.prefix, sizeof l.prefix, "redis 127.0.0.1:%d: ", srv->port);

    load_run_until_ok(&l, 2000, 60);
    assert_int_equal(l.failed, 0);

    /* Killed with commands in flight: they fail, nothing hangs. */
    load_top_up(&l);
    assert_int_equal(l.outstanding, 64);
    redis_server_kill(srv);
    int64_t end = ms_from_now(10000);
    while (l.outstanding > 0 && loop_now_ns() < end)
        loop_run_once(s->loop, 20);
    assert_int_equal(l.outstanding, 0);
    assert_true(l.lost > 0);

    /* While it is down, commands fail at once (once every connection has
     * seen it go: one whose commands were all answered before the kill
     * learns it from the loop). */
    run_for(s, 300);
    for (int i = 0; i < 5; i++) {
        int before = l.at_once;
        load_top_up(&l);
        assert_int_equal(l.at_once, before + 1);
        assert_int_equal(l.outstanding, 0);
        run_for(s, 50);
    }

    /* Back: the pool reconnects and serves again. */
    redis_server_restart(srv);
    int ok = l.ok;
    load_run_until_ok(&l, ok + 2000, 60);
    end = ms_from_now(10000);
    while (l.outstanding > 0 && loop_now_ns() < end)
        loop_run_once(s->loop, 20);
    assert_int_equal(l.outstanding, 0);
    assert_string_equal(l.other_msg, "");
    assert_int_equal(l.issued, l.ok + l.failed + l.at_once);
    print_message("restart under load: %d served, %d lost in flight, %d refused, %d at once\n",
                  l.ok, l.lost, l.refused, l.at_once);
}

/* ---- closing ---- */

static void test_closing_cancels_what_is_in_progress(void **state)
{
    struct slot *s = *state;
    struct redis_pool *p = pool_of(s, "redis://127.0.0.1:%d?pool=2", plain.port);
    struct res blocked, get, timed, r;
    CALL(s, p, &r, "PING");
    res_clear(&r);
    assert_non_null(start(p, &blocked, INT64_MAX, (const char *[]){"BLPOP", "closing:q", "0", NULL}));
    assert_non_null(start(p, &get, INT64_MAX, (const char *[]){"GET", "closing:k", NULL}));
    assert_non_null(start(p, &timed, ms_from_now(60000), (const char *[]){"GET", "closing:k", NULL}));
    /* Nothing runs; ASan checks that nothing is left. */
    redis_pools_destroy(s->pools);
    s->pools = redis_pools_create(s->loop);
    run_for(s, 100);
    assert_int_equal(blocked.done, 0);
    assert_int_equal(get.done, 0);
    assert_int_equal(timed.done, 0);
}

static int start_servers(void **state)
{
    (void)state;
    /* hiredis writes with write(): a reset connection must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    redis_server_start(&plain, NULL);
    redis_server_start(&locked, "pa:ss");
    return 0;
}

static int stop_servers(void **state)
{
    (void)state;
    redis_server_stop(&plain);
    redis_server_stop(&locked);
    if (restarted.dir[0])
        redis_server_stop(&restarted);
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, slot_open, slot_close)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_urls_are_refused_with_the_reason),
        T(test_good_urls_name_their_pool),
        T(test_replies_of_each_type),
        T(test_arrays_nested_and_empty),
        T(test_select_applies_the_urls_database),
        T(test_commands_that_change_a_shared_connection_are_refused),
        T(test_auth_with_the_password_of_the_url),
        T(test_refused_when_nothing_listens),
        T(test_connect_timeout),
        T(test_a_command_past_its_deadline_times_out),
        T(test_a_late_reply_is_dropped),
        T(test_cancel_in_flight),
        T(test_an_idle_connection_closed_by_the_server),
        T(test_redis_restarted_under_load),
        T(test_closing_cancels_what_is_in_progress),
    };
    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
