/* The two jobs of shared dictionaries, exact under concurrent calls on
 * every worker: a user's 3rd concurrent connection is refused, and a client
 * gets exactly 10 publishes through per second. Both run
 * scripts/shared_limits.lua on a server of 4 workers, called from 8
 * threads, each on a connection of its own, released together.
 *
 * The backend is a parameter: `test_shared_jobs <backend>` picks a row of
 * `backends` below, an ini snippet that declares the dictionary `limits`
 * ("%d" in it becomes the port of a redis-server started for the test). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "redis_server.h"
#include "rpc_client.h"
#include "server.h"

static const struct backend {
    const char *name;
    const char *ini;
} backends[] = {
    {"local", "[shared]\nlimits = 1MB\n"},
    {"redis", "[shared]\nlimits = redis://127.0.0.1:%d/0\n"},
};

#define THREADS 8
#define WORKERS 4
#define PATH_AUTHENTICATE "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"
#define PATH_DISCONNECTED "/emqx.exhook.v3.HookProvider/OnClientDisconnected"
#define PATH_PUBLISH "/emqx.exhook.v3.HookProvider/OnMessagePublish"

static const struct backend *backend;
/* The dictionaries are the process's, declared by the first server: one
 * redis-server serves every test of a Redis row. */
static struct redis_server redis;
static bool has_redis;

/* clock.lua is loaded first: every os.time() is remembered in the state's
 * (shared) os table, so that stamp.lua, after the limiter, tells which
 * second the limiter counted the message in (and which worker served it). */
#define CLOCK_LUA                                                                                  \
    "local real = os.time\n"                                                                       \
    "os.time = function(...) os.last_time = real(...); return os.last_time end\n"
#define STAMP_LUA                                                                                  \
    "function on_message_publish(m)\n"                                                             \
    "  m.headers.window = tostring(os.last_time)\n"                                                \
    "  m.headers.worker = tostring(exhook.worker_id)\n"                                            \
    "  return m\n"                                                                                 \
    "end\n"

struct world {
    struct fixture fx;
    struct server *srv;
    char target[64];
    struct rpc_client *clients[THREADS];
};

static char *read_source(const char *rel)
{
    char path[512], err[512];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", EXHOOKD_SOURCE_DIR, rel);
    char *text = cfg_read_file(path, 1 << 20, &len, err, sizeof err);
    if (!text)
        fail_msg("%s", err);
    return text;
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    char *limits = read_source("scripts/shared_limits.lua");
    fx_write(&w->fx, "shared_limits.lua", limits);
    free(limits);
    fx_write(&w->fx, "clock.lua", CLOCK_LUA);
    fx_write(&w->fx, "stamp.lua", STAMP_LUA);
    char ini[512], shared[256];
    snprintf(shared, sizeof shared, backend->ini, has_redis ? redis.port : 0);
    snprintf(ini, sizeof ini, "[server]\nworkers = %d\n%s", WORKERS, shared);
    fx_configure(&w->fx, "clock, shared_limits, stamp", ini);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    /* A subchannel pool per channel: a connection per client. */
    grpc_arg arg = {
        .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1};
    grpc_channel_args args = {1, &arg};
    for (int i = 0; i < THREADS; i++)
        w->clients[i] = rpc_client_open_args(w->target, &args);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < THREADS; i++)
        rpc_client_close(w->clients[i]);
    srv_destroy(w->srv);
    fx_free(&w->fx);
    free(w);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (strstr(backend->ini, "%d")) {
        redis_server_start(&redis, NULL);
        has_redis = true;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (has_redis)
        redis_server_stop(&redis);
    return 0;
}

/* ---- calls (no cmocka asserts: threads make them) ---------------------- */

/* 1 allowed, 0 refused, -1 anything else. */
static int authenticate(struct rpc_client *c, const char *username, const char *clientid)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = (char *)clientid;
    ci.username = (char *)username;
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &ci;
    struct rpc_result res;
    int verdict = -1;
    if (rpc_call(c, PATH_AUTHENTICATE, &req.base, &res) == 0 && res.status == GRPC_STATUS_OK) {
        Emqx__Exhook__V3__ValuedResponse *vr =
            emqx__exhook__v3__valued_response__unpack(NULL, res.reply_len, res.reply);
        if (vr && vr->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT)
            verdict = vr->bool_result ? 1 : 0;
        if (vr)
            emqx__exhook__v3__valued_response__free_unpacked(vr, NULL);
    }
    rpc_result_free(&res);
    return verdict;
}

static int disconnected(struct rpc_client *c, const char *username, const char *clientid)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = (char *)clientid;
    ci.username = (char *)username;
    Emqx__Exhook__V3__ClientDisconnectedRequest req =
        EMQX__EXHOOK__V3__CLIENT_DISCONNECTED_REQUEST__INIT;
    req.clientinfo = &ci;
    req.reason = "normal";
    struct rpc_result res;
    int ok = rpc_call(c, PATH_DISCONNECTED, &req.base, &res) == 0 && res.status == GRPC_STATUS_OK;
    rpc_result_free(&res);
    return ok ? 0 : -1;
}

/* A publish's fate: dropped, or let through in second `window` by `worker`. */
struct fate {
    int ok; /* the call answered as expected */
    int dropped;
    long window;
    int worker;
};

static struct fate publish(struct rpc_client *c, const char *clientid)
{
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.id = "1";
    msg.from = (char *)clientid;
    msg.topic = "t/1";
    Emqx__Exhook__V3__MessagePublishRequest req = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    req.message = &msg;
    struct rpc_result res;
    struct fate f = {0};
    if (rpc_call(c, PATH_PUBLISH, &req.base, &res) == 0 && res.status == GRPC_STATUS_OK) {
        Emqx__Exhook__V3__ValuedResponse *vr =
            emqx__exhook__v3__valued_response__unpack(NULL, res.reply_len, res.reply);
        if (vr && vr->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE) {
            const Emqx__Exhook__V3__Message *m = vr->message;
            for (size_t i = 0; i < m->n_headers; i++) {
                if (strcmp(m->headers[i]->key, "allow_publish") == 0 &&
                    strcmp(m->headers[i]->value, "false") == 0)
                    f.dropped = 1;
                if (strcmp(m->headers[i]->key, "window") == 0)
                    f.window = atol(m->headers[i]->value);
                if (strcmp(m->headers[i]->key, "worker") == 0)
                    f.worker = atoi(m->headers[i]->value);
            }
            f.ok = f.dropped || (f.window > 0 && f.worker > 0);
        }
        if (vr)
            emqx__exhook__v3__valued_response__free_unpacked(vr, NULL);
    }
    rpc_result_free(&res);
    return f;
}

/* ---- THREADS callers released together ---------------------------------- */

struct burst {
    struct world *w;
    pthread_barrier_t start;
    const char *username;
    int calls_each;
    int verdicts[THREADS];          /* authenticate */
    struct fate fates[THREADS][64]; /* publish */
};

struct caller {
    struct burst *b;
    int i;
};

static void *auth_caller(void *arg)
{
    struct caller *c = arg;
    char clientid[32];
    snprintf(clientid, sizeof clientid, "client%d", c->i);
    pthread_barrier_wait(&c->b->start);
    c->b->verdicts[c->i] = authenticate(c->b->w->clients[c->i], c->b->username, clientid);
    return NULL;
}

static void *publish_caller(void *arg)
{
    struct caller *c = arg;
    pthread_barrier_wait(&c->b->start);
    /* 40 calls 50 ms apart: about 2 s, so 2 or 3 seconds of traffic. */
    for (int k = 0; k < c->b->calls_each; k++) {
        c->b->fates[c->i][k] = publish(c->b->w->clients[c->i], "sensor1");
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    return NULL;
}

static void run_burst(struct burst *b, void *(*fn)(void *))
{
    pthread_t t[THREADS];
    struct caller callers[THREADS];
    pthread_barrier_init(&b->start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        callers[i] = (struct caller){b, i};
        pthread_create(&t[i], NULL, fn, &callers[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&b->start);
}

/* ---- the jobs ----------------------------------------------------------- */

static int allowed_of(const struct burst *b)
{
    int n = 0;
    for (int i = 0; i < THREADS; i++) {
        if (b->verdicts[i] < 0)
            fail_msg("authenticate call %d failed", i);
        n += b->verdicts[i];
    }
    return n;
}

static void test_third_concurrent_connection_of_a_user_is_refused(void **state)
{
    struct world *w = *state;
    static struct burst b;
    char username[32];
    for (int round = 0; round < 50; round++) {
        snprintf(username, sizeof username, "user%d", round);
        b = (struct burst){.w = w, .username = username};
        run_burst(&b, auth_caller);
        if (allowed_of(&b) != 2)
            fail_msg("round %d: %d of %d concurrent connections of one user let in, not 2", round,
                     allowed_of(&b), THREADS);
    }
    /* One of user0's two disconnects: exactly one more gets in. */
    assert_int_equal(disconnected(w->clients[0], "user0", "client0"), 0);
    b = (struct burst){.w = w, .username = "user0"};
    run_burst(&b, auth_caller);
    assert_int_equal(allowed_of(&b), 1);
    /* Both of user0's connections gone: two get in again. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(disconnected(w->clients[i], "user0", "x"), 0);
    b = (struct burst){.w = w, .username = "user0"};
    run_burst(&b, auth_caller);
    assert_int_equal(allowed_of(&b), 2);
}

static void test_ten_publishes_per_second_per_client(void **state)
{
    struct world *w = *state;
    static struct burst b;
    b = (struct burst){.w = w, .calls_each = 40};
    run_burst(&b, publish_caller);
    /* Per second the limiter counted in: at most 10 through, and exactly
     * 10 in every second where some were dropped. */
    long first = 0, last = 0;
    int through[64] = {0}, dropped = 0, total_through = 0, workers[WORKERS + 1] = {0};
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < b.calls_each; k++) {
            const struct fate *f = &b.fates[i][k];
            if (!f->ok)
                fail_msg("publish call %d/%d got no expected answer", i, k);
            if (f->dropped) {
                dropped++;
                continue;
            }
            if (!first || f->window < first)
                first = f->window;
            if (f->window > last)
                last = f->window;
            if (f->worker >= 1 && f->worker <= WORKERS)
                workers[f->worker] = 1;
            total_through++;
        }
    }
    assert_true(last - first < 64);
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < b.calls_each; k++) {
            if (!b.fates[i][k].dropped)
                through[b.fates[i][k].window - first]++;
        }
    }
    print_message("%d through in %ld s, %d dropped\n", total_through, last - first + 1, dropped);
    assert_int_equal(total_through + dropped, THREADS * b.calls_each);
    int full = 0;
    for (long s = 0; s <= last - first; s++) {
        if (through[s] > 10)
            fail_msg("%d publishes through in one second", through[s]);
        full += through[s] == 10;
    }
    /* 8 callers at 20 calls/s each offer 160 a second: seconds let exactly
     * 10 through. Not every one is asserted: on a busy machine the callers
     * may stall through most of a second, which then offers fewer. */
    assert_true(dropped > 0);
    assert_true(full >= 1);
    int seen = 0;
    for (int i = 1; i <= WORKERS; i++)
        seen += workers[i];
    assert_true(seen >= 2);
}

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (argc == 2 && strcmp(argv[1], backends[i].name) == 0)
            backend = &backends[i];
    }
    if (!backend) {
        fprintf(stderr, "usage: test_shared_jobs BACKEND (");
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", backends[i].name);
        fprintf(stderr, ")\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_third_concurrent_connection_of_a_user_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_publishes_per_second_per_client, setup, teardown),
    };
    return cmocka_run_group_tests_name(backend->name, tests, group_setup, group_teardown);
}
