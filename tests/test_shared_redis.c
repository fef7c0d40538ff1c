#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "redis.h"
#include "redis_server.h"
#include "shared_redis.h"

/* One redis-server with a password (messages must never show it); the
 * last test kills and restarts it. */
static struct redis_server srv;
#define PASSWORD "s3cret"

/* A worker slot: its loop and pools, the pool of the server's URL. */
struct slot {
    struct loop *loop;
    struct redis_pools *pools;
    struct redis_pool *pool;
};

static void slot_init(struct slot *s)
{
    char err[256], url[256];
    s->loop = loop_create(err, sizeof err);
    assert_non_null(s->loop);
    s->pools = redis_pools_create(s->loop);
    assert_non_null(s->pools);
    snprintf(url, sizeof url, "redis://:" PASSWORD "@127.0.0.1:%d/3", srv.port);
    s->pool = redis_pool_get(s->pools, url, err, sizeof err);
    if (!s->pool)
        fail_msg("%s", err);
}

static void slot_fini(struct slot *s)
{
    redis_pools_destroy(s->pools);
    loop_destroy(s->loop);
}

static int slot_open(void **state)
{
    struct slot *s = calloc(1, sizeof *s);
    slot_init(s);
    *state = s;
    return 0;
}

static int slot_close(void **state)
{
    slot_fini(*state);
    free(*state);
    return 0;
}

/* One operation's outcome. */
struct outcome {
    int done;
    struct shared_result r;
};

static void on_done(void *ctx, struct shared_result *r)
{
    struct outcome *o = ctx;
    o->done++;
    o->r = *r;
}

static void run_until(struct slot *s, const int *flag)
{
    int64_t end = loop_now_ns() + 30 * 1000000000LL;
    while (!*flag && loop_now_ns() < end)
        loop_run_once(s->loop, 100);
    if (!*flag)
        fail_msg("no answer within 30 s");
}

static void start_op(struct slot *s, const char *dict, const struct shared_op *op,
                     struct outcome *o)
{
    memset(o, 0, sizeof *o);
    struct shared_redis_req *q = shared_redis_start(s->loop, s->pool, dict, op,
                                                    loop_now_ns() + 10 * 1000000000LL, on_done, o);
    assert_non_null(q);
    assert_int_equal(o->done, 0); /* never from within the start */
}

/* Runs `op` on dictionary `dict` and returns its result (the caller frees
 * it with shared_result_free). */
static struct shared_result run(struct slot *s, const char *dict, struct shared_op op)
{
    struct outcome o;
    start_op(s, dict, &op, &o);
    run_until(s, &o.done);
    assert_int_equal(o.done, 1);
    return o.r;
}

static struct shared_value str(const char *s)
{
    return (struct shared_value){SHARED_STRING, .str = s, .len = strlen(s)};
}
static struct shared_value integer(long long n)
{
    return (struct shared_value){SHARED_INTEGER, .integer = n};
}
static struct shared_value number(double d)
{
    return (struct shared_value){SHARED_FLOAT, .number = d};
}
static struct shared_value boolean(bool b)
{
    return (struct shared_value){SHARED_BOOLEAN, .boolean = b};
}

#define OP(c, k, ...)                                                                              \
    ((struct shared_op){.code = (c), .key = (k), .key_len = strlen(k), __VA_ARGS__})

/* Runs an operation whose result only has a status; checks it. */
static void expect_status(struct slot *s, const char *dict, struct shared_op op,
                          enum shared_status want)
{
    struct shared_result r = run(s, dict, op);
    if (r.status != want)
        fail_msg("%s: status %d, want %d (%s)", shared_op_name(op.code), r.status, want, r.message);
    assert_false(r.forcible);
    shared_result_free(&r);
}

static void expect_failure(struct slot *s, const char *dict, struct shared_op op, const char *text)
{
    struct shared_result r = run(s, dict, op);
    assert_int_equal(r.status, SHARED_FAILED);
    if (!strstr(r.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", r.message, text);
    assert_null(strstr(r.message, PASSWORD));
    shared_result_free(&r);
}

/* A raw command's reply. */
struct raw_res {
    int done;
    struct redis_value *v;
};

static void on_raw(void *ctx, struct redis_value *v, const struct redis_error *e)
{
    struct raw_res *res = ctx;
    res->done = 1;
    res->v = e ? NULL : v;
}

/* A raw command on the slot's pool, for what the test sets up or checks
 * behind the dictionary's back; returns the reply (free it). */
static struct redis_value *raw(struct slot *s, const char **argv)
{
    struct raw_res res = {0};
    int argc = 0;
    while (argv[argc])
        argc++;
    struct redis_error err;
    assert_non_null(redis_command(s->pool, argc, argv, NULL, INT64_MAX, on_raw, &res, &err));
    run_until(s, &res.done);
    assert_non_null(res.v);
    return res.v;
}

#define RAW(s, ...) free(raw(s, (const char *[]){__VA_ARGS__, NULL}))

static struct shared_value get(struct slot *s, const char *dict, const char *key,
                               struct shared_result *r)
{
    *r = run(s, dict, OP(SHARED_GET, key));
    assert_int_equal(r->status, SHARED_OK);
    return r->value;
}

static void test_values_keep_their_type(void **state)
{
    struct slot *s = *state;
    struct shared_result r;
    static const char bin[] = "a\0b\r\n";
    struct shared_value binstr = {SHARED_STRING, .str = bin, .len = sizeof bin - 1};
    expect_status(s, "t", OP(SHARED_SET, "s", .value = binstr), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "digits", .value = str("42")), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "empty", .value = str("")), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "i", .value = integer(LLONG_MIN)), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "f", .value = number(0.1)), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "whole", .value = number(2.0)), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "yes", .value = boolean(true)), SHARED_OK);
    expect_status(s, "t", OP(SHARED_SET, "no", .value = boolean(false)), SHARED_OK);

    struct shared_value v = get(s, "t", "s", &r);
    assert_int_equal(v.type, SHARED_STRING);
    assert_int_equal(v.len, sizeof bin - 1);
    assert_memory_equal(v.str, bin, v.len);
    shared_result_free(&r);
    v = get(s, "t", "digits", &r);
    assert_int_equal(v.type, SHARED_STRING);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.str, "42", 2);
    shared_result_free(&r);
    v = get(s, "t", "empty", &r);
    assert_int_equal(v.type, SHARED_STRING);
    assert_int_equal(v.len, 0);
    shared_result_free(&r);
    v = get(s, "t", "i", &r);
    assert_int_equal(v.type, SHARED_INTEGER);
    assert_true(v.integer == LLONG_MIN);
    v = get(s, "t", "f", &r);
    assert_int_equal(v.type, SHARED_FLOAT);
    assert_true(v.number == 0.1);
    v = get(s, "t", "whole", &r);
    assert_int_equal(v.type, SHARED_FLOAT);
    assert_true(v.number == 2.0);
    v = get(s, "t", "yes", &r);
    assert_int_equal(v.type, SHARED_BOOLEAN);
    assert_true(v.boolean);
    v = get(s, "t", "no", &r);
    assert_int_equal(v.type, SHARED_BOOLEAN);
    assert_false(v.boolean);
    v = get(s, "t", "missing", &r);
    assert_int_equal(v.type, SHARED_NIL);
    /* Another dictionary is another namespace. */
    v = get(s, "other", "i", &r);
    assert_int_equal(v.type, SHARED_NIL);
    RAW(s, "FLUSHDB");
}

/* What operators see in Redis: the layout shared_redis.h documents. */
static void test_layout_in_redis(void **state)
{
    struct slot *s = *state;
    expect_status(s, "sessions", OP(SHARED_SET, "n", .value = integer(-7)), SHARED_OK);
    expect_status(s, "sessions", OP(SHARED_SET, "s", .value = str("hi")), SHARED_OK);
    expect_status(s, "sessions", OP(SHARED_SET, "f", .value = number(1.5)), SHARED_OK);
    expect_status(s, "sessions", OP(SHARED_SET, "b", .value = boolean(true)), SHARED_OK);
    const char *want[][2] = {{"exhookd:sessions:n", "-7"},
                             {"exhookd:sessions:s", "shi"},
                             {"exhookd:sessions:f", "f1.5"},
                             {"exhookd:sessions:b", "b1"}};
    for (size_t i = 0; i < 4; i++) {
        struct redis_value *v = raw(s, (const char *[]){"GET", want[i][0], NULL});
        assert_int_equal(v->type, REDIS_V_STRING);
        assert_string_equal(v->str, want[i][1]);
        free(v);
    }
    RAW(s, "FLUSHDB");
}

static void test_add_replace_delete(void **state)
{
    struct slot *s = *state;
    struct shared_result r;
    expect_status(s, "t", OP(SHARED_REPLACE, "k", .value = integer(1)), SHARED_NOT_FOUND);
    expect_status(s, "t", OP(SHARED_ADD, "k", .value = integer(1)), SHARED_OK);
    expect_status(s, "t", OP(SHARED_ADD, "k", .value = integer(2)), SHARED_EXISTS);
    expect_status(s, "t", OP(SHARED_SAFE_ADD, "k", .value = integer(2)), SHARED_EXISTS);
    assert_int_equal(get(s, "t", "k", &r).integer, 1);
    expect_status(s, "t", OP(SHARED_REPLACE, "k", .value = str("x")), SHARED_OK);
    assert_int_equal(get(s, "t", "k", &r).type, SHARED_STRING);
    shared_result_free(&r);
    expect_status(s, "t", OP(SHARED_SAFE_SET, "k", .value = integer(3)), SHARED_OK);
    assert_int_equal(get(s, "t", "k", &r).integer, 3);
    expect_status(s, "t", OP(SHARED_DELETE, "k"), SHARED_OK);
    expect_status(s, "t", OP(SHARED_DELETE, "k"), SHARED_OK);
    assert_int_equal(get(s, "t", "k", &r).type, SHARED_NIL);
    expect_status(s, "t", OP(SHARED_SAFE_ADD, "k", .value = boolean(false)), SHARED_OK);
    assert_int_equal(get(s, "t", "k", &r).type, SHARED_BOOLEAN);
    /* A write without a value is refused before Redis sees it. */
    expect_failure(s, "t", OP(SHARED_SET, "k"), "exhook.shared.t:set: no value");
    RAW(s, "FLUSHDB");
}

static struct shared_result incr(struct slot *s, const char *key, struct shared_value delta,
                                 const struct shared_value *init, double init_ttl)
{
    struct shared_op op = OP(SHARED_INCR, key, .value = delta, .ttl = init_ttl);
    if (init) {
        op.has_init = true;
        op.init = *init;
    }
    return run(s, "t", op);
}

static void expect_incr_integer(struct slot *s, const char *key, long long delta,
                                const struct shared_value *init, long long want)
{
    struct shared_result r = incr(s, key, integer(delta), init, 0);
    assert_int_equal(r.status, SHARED_OK);
    assert_int_equal(r.value.type, SHARED_INTEGER);
    assert_true(r.value.integer == want);
}

static void test_incr(void **state)
{
    struct slot *s = *state;
    struct shared_value zero = integer(0), half = number(0.5);
    struct shared_result r = incr(s, "n", integer(1), NULL, 0);
    assert_int_equal(r.status, SHARED_NOT_FOUND);
    expect_incr_integer(s, "n", 1, &zero, 1);
    expect_incr_integer(s, "n", 41, &zero, 42);
    expect_incr_integer(s, "n", -50, NULL, -8);
    /* 64-bit exact, beyond a double's 53 bits. */
    struct shared_value big = integer(LLONG_MAX - 10);
    expect_incr_integer(s, "big", 9, &big, LLONG_MAX - 1);
    expect_incr_integer(s, "big", 1, NULL, LLONG_MAX);
    r = incr(s, "big", integer(1), NULL, 0);
    assert_int_equal(r.status, SHARED_FAILED);
    assert_non_null(strstr(r.message, "exhook.shared.t:incr: redis 127.0.0.1:"));
    assert_non_null(strstr(r.message, "overflow"));
    /* An overflow on creation leaves no key behind. */
    r = incr(s, "fresh", integer(1), &big, 0);
    assert_int_equal(r.status, SHARED_OK);
    r = incr(s, "fresh", integer(LLONG_MAX), &zero, 0);
    assert_int_equal(r.status, SHARED_FAILED);
    /* Floats: a float delta or value makes a float. */
    r = incr(s, "n", half, NULL, 0);
    assert_int_equal(r.value.type, SHARED_FLOAT);
    assert_true(r.value.number == -7.5);
    r = incr(s, "n", integer(2), NULL, 0);
    assert_int_equal(r.value.type, SHARED_FLOAT);
    assert_true(r.value.number == -5.5);
    r = incr(s, "g", integer(2), &half, 0);
    assert_int_equal(r.value.type, SHARED_FLOAT);
    assert_true(r.value.number == 2.5);
    r = incr(s, "tenth", number(0.1), &half, 0);
    r = incr(s, "tenth", number(0.2), NULL, 0);
    assert_true(r.value.number == 0.5 + 0.1 + 0.2);
    /* Not numbers. */
    expect_status(s, "t", OP(SHARED_SET, "s", .value = str("12")), SHARED_OK);
    r = incr(s, "s", integer(1), &zero, 0);
    assert_int_equal(r.status, SHARED_NOT_A_NUMBER);
    expect_status(s, "t", OP(SHARED_SET, "b", .value = boolean(true)), SHARED_OK);
    r = incr(s, "b", number(1), NULL, 0);
    assert_int_equal(r.status, SHARED_NOT_A_NUMBER);
    RAW(s, "FLUSHDB");
}

static double ttl_of(struct slot *s, const char *key)
{
    struct shared_result r = run(s, "t", OP(SHARED_TTL, key));
    assert_int_equal(r.status, SHARED_OK);
    return r.ttl;
}

static void sleep_ms(struct slot *s, int ms)
{
    int64_t end = loop_now_ns() + ms * 1000000LL;
    while (loop_now_ns() < end)
        loop_run_once(s->loop, 10);
}

static void test_ttl_and_expire(void **state)
{
    struct slot *s = *state;
    struct shared_result r;
    expect_status(s, "t", OP(SHARED_TTL, "k"), SHARED_NOT_FOUND);
    expect_status(s, "t", OP(SHARED_EXPIRE, "k", .ttl = 5), SHARED_NOT_FOUND);
    expect_status(s, "t", OP(SHARED_SET, "k", .value = integer(1), .ttl = 100), SHARED_OK);
    double t = ttl_of(s, "k");
    assert_true(t > 90 && t <= 100);
    assert_true(t != (double)(long long)t || t == 100); /* milliseconds, not whole seconds */
    expect_status(s, "t", OP(SHARED_EXPIRE, "k", .ttl = 0), SHARED_OK);
    assert_true(ttl_of(s, "k") == 0);
    expect_status(s, "t", OP(SHARED_EXPIRE, "k", .ttl = 0.3), SHARED_OK);
    t = ttl_of(s, "k");
    assert_true(t > 0 && t <= 0.3);
    /* set without a ttl makes it never expire, as ngx.shared does. */
    expect_status(s, "t", OP(SHARED_SET, "k", .value = integer(2)), SHARED_OK);
    assert_true(ttl_of(s, "k") == 0);
    /* A tiny ttl still expires. */
    expect_status(s, "t", OP(SHARED_SET, "tiny", .value = integer(1), .ttl = 0.0001), SHARED_OK);
    /* incr's init_ttl applies only when it creates the key. */
    struct shared_value zero = integer(0);
    r = incr(s, "c", integer(1), &zero, 0.3);
    r = incr(s, "c", integer(1), &zero, 100);
    assert_int_equal(r.value.integer, 2);
    t = ttl_of(s, "c");
    assert_true(t > 0 && t <= 0.3);
    /* A float incr keeps the ttl too. */
    r = incr(s, "c", number(0.5), NULL, 0);
    t = ttl_of(s, "c");
    assert_true(t > 0 && t <= 0.3);
    sleep_ms(s, 600);
    assert_int_equal(get(s, "t", "c", &r).type, SHARED_NIL);
    assert_int_equal(get(s, "t", "tiny", &r).type, SHARED_NIL);
    r = incr(s, "c", integer(1), NULL, 0);
    assert_int_equal(r.status, SHARED_NOT_FOUND);
    /* Redis expires by itself: flush_expired has nothing to free. */
    r = run(s, "t", (struct shared_op){.code = SHARED_FLUSH_EXPIRED});
    assert_int_equal(r.status, SHARED_OK);
    assert_int_equal(r.count, 0);
    RAW(s, "FLUSHDB");
}

/* keys and flush_all over a namespace, with more keys than one SCAN
 * batch, and another dictionary left alone. */
static void test_keys_and_flush_all(void **state)
{
    struct slot *s = *state;
    enum { N = 2500 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        expect_status(s, "a", OP(SHARED_SET, key, .value = integer(i)), SHARED_OK);
    }
    expect_status(s, "b", OP(SHARED_SET, "k00001", .value = integer(1)), SHARED_OK);
    expect_status(s, "a*", OP(SHARED_SET, "x", .value = integer(1)), SHARED_OK);
    struct shared_result r = run(s, "a", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.status, SHARED_OK);
    assert_int_equal(r.n_keys, N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        assert_int_equal(r.key_lens[i], strlen(key));
        assert_memory_equal(r.keys[i], key, r.key_lens[i]);
    }
    shared_result_free(&r);
    r = run(s, "a", (struct shared_op){.code = SHARED_KEYS, .max = 10});
    assert_int_equal(r.n_keys, 10);
    shared_result_free(&r);
    /* A glob character in the name matches only itself. */
    r = run(s, "a*", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.n_keys, 1);
    assert_memory_equal(r.keys[0], "x", 1);
    shared_result_free(&r);

    expect_status(s, "a", (struct shared_op){.code = SHARED_FLUSH_ALL}, SHARED_OK);
    r = run(s, "a", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.n_keys, 0);
    shared_result_free(&r);
    r = run(s, "b", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.n_keys, 1);
    shared_result_free(&r);
    r = run(s, "a*", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.n_keys, 1);
    shared_result_free(&r);
    expect_status(s, "a", (struct shared_op){.code = SHARED_FLUSH_ALL}, SHARED_OK);
    RAW(s, "FLUSHDB");
}

static void test_capacity_is_redis_maxmemory(void **state)
{
    struct slot *s = *state;
    expect_failure(s, "t", (struct shared_op){.code = SHARED_CAPACITY}, "has no maxmemory");
    expect_failure(s, "t", (struct shared_op){.code = SHARED_FREE_SPACE}, "has no maxmemory");
    RAW(s, "CONFIG", "SET", "maxmemory", "100000000");
    struct shared_result r = run(s, "t", (struct shared_op){.code = SHARED_CAPACITY});
    assert_int_equal(r.status, SHARED_OK);
    assert_int_equal(r.count, 100000000);
    r = run(s, "t", (struct shared_op){.code = SHARED_FREE_SPACE});
    assert_int_equal(r.status, SHARED_OK);
    assert_true(r.count > 0 && r.count < 100000000);
    /* Redis refusing a write for memory is "no memory". */
    RAW(s, "CONFIG", "SET", "maxmemory-policy", "noeviction");
    RAW(s, "CONFIG", "SET", "maxmemory", "1");
    expect_status(s, "t", OP(SHARED_SET, "k", .value = integer(1)), SHARED_NO_MEMORY);
    expect_status(s, "t", OP(SHARED_SAFE_ADD, "k", .value = integer(1)), SHARED_NO_MEMORY);
    struct shared_value zero = integer(0);
    r = incr(s, "k", integer(1), &zero, 0);
    assert_int_equal(r.status, SHARED_NO_MEMORY);
    r = run(s, "t", (struct shared_op){.code = SHARED_FREE_SPACE});
    assert_int_equal(r.count, 0);
    RAW(s, "CONFIG", "SET", "maxmemory", "0");
    expect_status(s, "t", OP(SHARED_SET, "k", .value = integer(1)), SHARED_OK);
    RAW(s, "FLUSHDB");
}

/* Keys someone else wrote: a clear failure, never a wrong value. */
static void test_foreign_keys(void **state)
{
    struct slot *s = *state;
    RAW(s, "LPUSH", "exhookd:t:list", "x");
    RAW(s, "SET", "exhookd:t:plain", "hello");
    expect_failure(s, "t", OP(SHARED_GET, "list"), "exhook.shared.t:get: redis 127.0.0.1:");
    expect_failure(s, "t", OP(SHARED_GET, "list"), "WRONGTYPE");
    struct shared_value zero = integer(0);
    struct shared_result r = incr(s, "list", integer(1), &zero, 0);
    assert_int_equal(r.status, SHARED_FAILED);
    assert_non_null(strstr(r.message, "WRONGTYPE"));
    expect_failure(s, "t", OP(SHARED_GET, "plain"), "holds a value exhookd did not write");
    r = incr(s, "plain", integer(1), NULL, 0);
    assert_int_equal(r.status, SHARED_NOT_A_NUMBER);
    /* set replaces any type, as SET does. */
    expect_status(s, "t", OP(SHARED_SET, "list", .value = integer(1)), SHARED_OK);
    RAW(s, "FLUSHDB");
}

/* Scripts are sent whole when Redis lost them (restart, SCRIPT FLUSH). */
static void test_scripts_survive_script_flush(void **state)
{
    struct slot *s = *state;
    struct shared_value zero = integer(0);
    assert_int_equal(incr(s, "n", integer(1), &zero, 0).value.integer, 1);
    RAW(s, "SCRIPT", "FLUSH");
    assert_int_equal(incr(s, "n", integer(1), &zero, 0).value.integer, 2);
    RAW(s, "SCRIPT", "FLUSH");
    expect_status(s, "t", OP(SHARED_EXPIRE, "n", .ttl = 10), SHARED_OK);
    assert_int_equal(incr(s, "n", integer(1), &zero, 0).value.integer, 3);
    RAW(s, "FLUSHDB");
}

static void test_cancel_and_deadline(void **state)
{
    struct slot *s = *state;
    struct outcome o;
    struct shared_op op = OP(SHARED_GET, "k");
    memset(&o, 0, sizeof o);
    struct shared_redis_req *q =
        shared_redis_start(s->loop, s->pool, "t", &op, INT64_MAX, on_done, &o);
    shared_redis_cancel(q);
    sleep_ms(s, 100);
    assert_int_equal(o.done, 0);
    /* A deadline already past fails from the loop. */
    q = shared_redis_start(s->loop, s->pool, "t", &op, loop_now_ns() - 1, on_done, &o);
    assert_int_equal(o.done, 0);
    run_until(s, &o.done);
    assert_int_equal(o.r.status, SHARED_FAILED);
    assert_non_null(strstr(o.r.message, "exhook.shared.t:get: redis 127.0.0.1:"));
    /* Cancelled before the loop reports it: nothing. */
    o.done = 0;
    q = shared_redis_start(s->loop, s->pool, "t", &op, loop_now_ns() - 1, on_done, &o);
    shared_redis_cancel(q);
    sleep_ms(s, 50);
    assert_int_equal(o.done, 0);
    /* flush_expired too ends from the loop. */
    op = (struct shared_op){.code = SHARED_FLUSH_EXPIRED};
    q = shared_redis_start(s->loop, s->pool, "t", &op, INT64_MAX, on_done, &o);
    assert_int_equal(o.done, 0);
    run_until(s, &o.done);
    assert_int_equal(o.r.status, SHARED_OK);
}

/* Two slots (two pools, as two workers or two exhookd instances would
 * have) keep many incr in flight on one key at once. */
enum { CLIENTS = 2, PER_CLIENT = 1000, IN_FLIGHT = 50 };

struct client {
    struct slot slot;
    int started, done, failed;
    long long last;
};

static void client_start(struct client *c, const char *key);

struct client_op {
    struct client *c;
    const char *key;
};

static void on_incr(void *ctx, struct shared_result *r)
{
    struct client_op *co = ctx;
    struct client *c = co->c;
    c->done++;
    if (r->status != SHARED_OK)
        c->failed++;
    else if (r->value.integer > c->last)
        c->last = r->value.integer;
    shared_result_free(r);
    if (c->started < PER_CLIENT)
        client_start(c, co->key);
    free(co);
}

static void client_start(struct client *c, const char *key)
{
    struct shared_value zero = integer(0);
    struct shared_op op = OP(SHARED_INCR, key, .value = integer(1), .has_init = true, .init = zero);
    struct client_op *co = malloc(sizeof *co);
    co->c = c;
    co->key = key;
    c->started++;
    assert_non_null(
        shared_redis_start(c->slot.loop, c->slot.pool, "t", &op, INT64_MAX, on_incr, co));
}

static void run_clients(struct client *cs, int *all_done, int want)
{
    int64_t end = loop_now_ns() + 60 * 1000000000LL;
    while (loop_now_ns() < end) {
        int done = 0;
        for (int i = 0; i < CLIENTS; i++) {
            loop_run_once(cs[i].slot.loop, 1);
            done += cs[i].done;
        }
        *all_done = done;
        if (done == want)
            return;
    }
    fail_msg("%d of %d done within 60 s", *all_done, want);
}

static void test_incr_is_atomic_across_clients(void **state)
{
    struct slot *s = *state;
    struct client cs[CLIENTS];
    memset(cs, 0, sizeof cs);
    for (int i = 0; i < CLIENTS; i++) {
        slot_init(&cs[i].slot);
        for (int j = 0; j < IN_FLIGHT; j++)
            client_start(&cs[i], "hot");
    }
    int done = 0;
    run_clients(cs, &done, CLIENTS * PER_CLIENT);
    long long top = 0;
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(cs[i].failed, 0);
        if (cs[i].last > top)
            top = cs[i].last;
        slot_fini(&cs[i].slot);
    }
    /* Every incr counted once, and one of them saw the total. */
    assert_int_equal(top, CLIENTS * PER_CLIENT);
    struct shared_result r;
    assert_int_equal(get(s, "t", "hot", &r).integer, CLIENTS * PER_CLIENT);
    RAW(s, "FLUSHDB");
}

/* add racing from two slots on the same fresh keys: one wins each. */
static void test_add_race_has_one_winner(void **state)
{
    (void)state;
    enum { ROUNDS = 200 };
    struct slot a, b;
    slot_init(&a);
    slot_init(&b);
    struct outcome oa[ROUNDS], ob[ROUNDS];
    char keys[ROUNDS][16];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(keys[i], sizeof keys[i], "race%d", i);
        struct shared_op op = OP(SHARED_ADD, keys[i], .value = integer(i));
        start_op(&a, "t", &op, &oa[i]);
        start_op(&b, "t", &op, &ob[i]);
    }
    int64_t end = loop_now_ns() + 30 * 1000000000LL;
    int done = 0;
    while (done < 2 * ROUNDS && loop_now_ns() < end) {
        loop_run_once(a.loop, 1);
        loop_run_once(b.loop, 1);
        done = 0;
        for (int i = 0; i < ROUNDS; i++)
            done += oa[i].done + ob[i].done;
    }
    assert_int_equal(done, 2 * ROUNDS);
    for (int i = 0; i < ROUNDS; i++) {
        int wins = (oa[i].r.status == SHARED_OK) + (ob[i].r.status == SHARED_OK);
        int lost = (oa[i].r.status == SHARED_EXISTS) + (ob[i].r.status == SHARED_EXISTS);
        assert_int_equal(wins, 1);
        assert_int_equal(lost, 1);
    }
    RAW(&a, "FLUSHDB");
    slot_fini(&a);
    slot_fini(&b);
}

/* A hung Redis: past its deadline the operation fails as a timeout, naming
 * the command; the pool serves on once Redis does. */
static void test_hung_redis_times_out(void **state)
{
    struct slot *s = *state;
    struct shared_value zero = integer(0);
    assert_int_equal(incr(s, "n", integer(1), &zero, 0).status, SHARED_OK);
    kill(srv.pid, SIGSTOP);
    struct shared_op op = OP(SHARED_INCR, "n", .value = integer(1), .has_init = true, .init = zero);
    struct outcome o = {0};
    assert_non_null(shared_redis_start(s->loop, s->pool, "t", &op, loop_now_ns() + 300 * 1000000LL,
                                       on_done, &o));
    run_until(s, &o.done);
    kill(srv.pid, SIGCONT);
    assert_int_equal(o.r.status, SHARED_FAILED);
    char want[96];
    snprintf(want, sizeof want,
             "exhook.shared.t:incr: redis 127.0.0.1:%d: EVALSHA timed out after ", srv.port);
    if (!strstr(o.r.message, want))
        fail_msg("\"%s\" lacks \"%s\"", o.r.message, want);
    /* The timed-out incr may still have run once Redis woke up: 2 or 3. */
    struct shared_result r = incr(s, "n", integer(1), NULL, 0);
    assert_int_equal(r.status, SHARED_OK);
    assert_true(r.value.integer == 2 || r.value.integer == 3);
    RAW(s, "FLUSHDB");
}

/* Redis down: a failure naming the dictionary and the server, never the
 * password; back up: the same pool works again. */
static void test_redis_down_then_back(void **state)
{
    struct slot *s = *state;
    expect_status(s, "t", OP(SHARED_SET, "k", .value = integer(1)), SHARED_OK);
    redis_server_kill(&srv);
    char where[64];
    snprintf(where, sizeof where, "exhook.shared.t:get: redis 127.0.0.1:%d: ", srv.port);
    struct shared_result r = run(s, "t", OP(SHARED_GET, "k"));
    assert_int_equal(r.status, SHARED_FAILED);
    if (!strstr(r.message, where))
        fail_msg("\"%s\" lacks \"%s\"", r.message, where);
    assert_null(strstr(r.message, PASSWORD));
    /* While down, every operation fails the same way. */
    struct shared_value zero = integer(0);
    r = incr(s, "n", integer(1), &zero, 0);
    assert_int_equal(r.status, SHARED_FAILED);
    assert_non_null(strstr(r.message, "exhook.shared.t:incr: redis 127.0.0.1:"));
    r = run(s, "t", (struct shared_op){.code = SHARED_KEYS});
    assert_int_equal(r.status, SHARED_FAILED);

    redis_server_restart(&srv);
    int64_t end = loop_now_ns() + 20 * 1000000000LL;
    do {
        shared_result_free(&r);
        sleep_ms(s, 50);
        r = incr(s, "n", integer(1), &zero, 0);
    } while (r.status != SHARED_OK && loop_now_ns() < end);
    assert_int_equal(r.status, SHARED_OK);
    assert_int_equal(r.value.integer, 1); /* nothing persisted */
}

static int start_server(void **state)
{
    (void)state;
    redis_server_start(&srv, PASSWORD);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    redis_server_stop(&srv);
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, slot_open, slot_close)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_values_keep_their_type),
        T(test_layout_in_redis),
        T(test_add_replace_delete),
        T(test_incr),
        T(test_ttl_and_expire),
        T(test_keys_and_flush_all),
        T(test_capacity_is_redis_maxmemory),
        T(test_foreign_keys),
        T(test_scripts_survive_script_flush),
        T(test_cancel_and_deadline),
        T(test_incr_is_atomic_across_clients),
        T(test_add_race_has_one_winner),
        T(test_hung_redis_times_out),
        T(test_redis_down_then_back),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
