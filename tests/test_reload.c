/* Editing scripts while the server runs: each test starts its own server
 * (2 workers, 127.0.0.1:0) on a module and a config file in a throw-away
 * folder, edits them and reloads through OnProviderLoaded or srv_reload (the
 * SIGHUP path), then checks over real gRPC what every worker answers.
 *
 * gRPC hands all calls of one connection to one worker, and rpc_client
 * channels to the same target share a connection. So "every worker" is
 * checked on fresh connections, one after the other, until the scripts'
 * probe (on_message_publish stamps the message with the module's VERSION
 * and exhook.worker_id) has reported both workers. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "health.pb-c.h"
#include "fingerprint.h"
#include "fixtures.h"
#include "log.h"
#include "rpc_client.h"
#include "server.h"

#define WORKERS 2
#define MAX_WORKERS 8
#define PATH_LOADED "/emqx.exhook.v3.HookProvider/OnProviderLoaded"
#define PATH_LOADED_V2 "/emqx.exhook.v2.HookProvider/OnProviderLoaded"
#define PATH_AUTHENTICATE "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"
#define PATH_PUBLISH "/emqx.exhook.v3.HookProvider/OnMessagePublish"

/* Upper bounds for loops that wait for the server to make progress. */
#define MAX_CONNECTIONS 16
#define WAIT_LIMIT_NS (10LL * 1000000000)

/* Stamps the message with the module's VERSION and the worker serving it. */
#define PROBE                                                                  \
    "function on_message_publish(m)\n"                                         \
    "  m.headers.version = tostring(VERSION)\n"                                \
    "  m.headers.worker = tostring(exhook.worker_id)\n"                        \
    "  return m\n"                                                             \
    "end\n"

/* The hooks OnProviderLoaded lists for a module written by write_module. */
#define MODULE_HOOKS "client.authenticate, message.publish"

/* ---- the server under test ------------------------------------------------ */

struct rig {
    struct fixture fx;
    char config_path[512];
    char target[64];      /* 127.0.0.1:<port> */
    /* ipv4:127.0.0.1:<port>: another target string, so a channel to it
     * does not share the connection of channels to `target`. */
    char other[80];
    struct server *srv;
    struct rpc_client *client; /* the main thread's connection of the moment */
    int workers;               /* WORKERS unless a test says otherwise */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Replaces <dir>/<file> in one step, as editors do: a worker that reads it
 * concurrently sees the old text or the new, never half of it. */
static void put_file(struct rig *r, const char *file, const char *text)
{
    char tmp[600], path[600];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", r->fx.dir, file);
    snprintf(path, sizeof path, "%s/%s", r->fx.dir, file);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* Module "mod": a VERSION, on_client_authenticate running `auth`, the probe,
 * then `more` (other functions, or code that breaks the module). */
static void write_module(struct rig *r, int version, const char *auth, const char *more)
{
    char text[4096];
    snprintf(text, sizeof text,
             "VERSION = %d\n"
             "function on_client_authenticate()\n"
             "  %s\n"
             "end\n" PROBE "%s",
             version, auth, more ? more : "");
    put_file(r, "mod.lua", text);
}

/* The config file: r->workers workers, module "mod" from the fixture folder;
 * `lua` is appended to [lua], `sections` after it. */
static void write_config(struct rig *r, const char *lua, const char *sections)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[server]\nworkers = %d\n[lua]\npath = %s\ninit_module = mod\n%s%s", r->workers,
             r->fx.dir, lua ? lua : "", sections ? sections : "");
    put_file(r, "exhook.ini", ini);
}

static int rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* Above every level: the reload failures these tests provoke are logged
     * as errors, and they are expected. */
    log_set_level((enum log_level)(LOG_ERROR + 1));
    fx_init(&r->fx);
    r->workers = WORKERS;
    snprintf(r->config_path, sizeof r->config_path, "%s/exhook.ini", r->fx.dir);
    *state = r;
    return 0;
}

/* Starts the server on the module and config already written. The config
 * file is what reloads re-read; only the listen address is overridden. */
static void rig_start(struct rig *r)
{
    struct config cfg;
    char err[512];
    cfg_defaults(&cfg);
    if (cfg_load(&cfg, r->config_path, err, sizeof err) != 0) {
        cfg_free(&cfg);
        fail_msg("config: %s", err);
    }
    r->srv = fx_start_server(&cfg, r->config_path, r->target, sizeof r->target);
    assert_int_equal(srv_worker_count(r->srv), r->workers);
    snprintf(r->other, sizeof r->other, "ipv4:127.0.0.1:%d", srv_port(r->srv));
}

/* Stops the server (every worker's state runs deinit()); the folder stays. */
static void rig_stop_server(struct rig *r)
{
    srv_destroy(r->srv);
    r->srv = NULL;
}

/* Also after a failed test: the connection, the server, the folder. */
static int rig_teardown(void **state)
{
    struct rig *r = *state;
    if (r->client)
        rpc_client_close(r->client);
    if (r->srv)
        rig_stop_server(r);
    fx_free(&r->fx);
    free(r);
    return 0;
}

/* A new connection for the main thread (closing the previous one). */
static struct rpc_client *rig_connect(struct rig *r, const char *target)
{
    if (r->client)
        rpc_client_close(r->client);
    r->client = rpc_client_open(target);
    return r->client;
}

static void rig_disconnect(struct rig *r)
{
    rpc_client_close(r->client);
    r->client = NULL;
}

/* ---- calls ------------------------------------------------------------------ */

/* What an authenticate call answered. */
enum verdict { V_TRUE, V_TRUE_CONTINUE, V_FALSE, V_IGNORE, V_OTHER, V_FAILED };

static const char *verdict_name(enum verdict v)
{
    static const char *const names[] = {"true (stop)", "true (continue)", "false (stop)",
                                        "ignore", "an unexpected reply", "a failed call"};
    return names[v];
}

/* One authenticate call; no cmocka asserts, so threads may use it. */
static enum verdict try_authenticate(struct rpc_client *c)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = "c1";
    ci.username = "u1";
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &ci;
    struct rpc_result res;
    enum verdict v = V_FAILED;
    if (rpc_call(c, PATH_AUTHENTICATE, &req.base, &res) == 0 && res.status == GRPC_STATUS_OK &&
        res.got_message) {
        Emqx__Exhook__V3__ValuedResponse *vr =
            emqx__exhook__v3__valued_response__unpack(NULL, res.reply_len, res.reply);
        v = V_OTHER;
        if (vr && vr->type == EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE &&
            vr->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE__NOT_SET)
            v = V_IGNORE;
        else if (vr && vr->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT) {
            if (vr->type == EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN)
                v = vr->bool_result ? V_TRUE : V_FALSE;
            else if (vr->type == EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE &&
                     vr->bool_result)
                v = V_TRUE_CONTINUE;
        }
        if (vr)
            emqx__exhook__v3__valued_response__free_unpacked(vr, NULL);
    }
    rpc_result_free(&res);
    return v;
}

static void expect_verdict(struct rpc_client *c, enum verdict want)
{
    enum verdict got = try_authenticate(c);
    if (got != want)
        fail_msg("authenticate answered %s, expected %s", verdict_name(got), verdict_name(want));
}

static const char *header(const Emqx__Exhook__V3__Message *m, const char *key)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, key) == 0)
            return m->headers[i]->value;
    }
    return NULL;
}

/* Calls the probe; returns the worker that answered and stores the
 * module's VERSION in *version and, if `probes` is not NULL, the number of
 * probes its state counted in *probes. */
static int probe_counted(struct rpc_client *c, int *version, int *probes)
{
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.id = "1";
    msg.from = "c1";
    msg.topic = "probe/1";
    Emqx__Exhook__V3__MessagePublishRequest req = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    req.message = &msg;
    struct rpc_result res;
    assert_int_equal(rpc_call(c, PATH_PUBLISH, &req.base, &res), 0);
    if (res.status != GRPC_STATUS_OK)
        fail_msg("probe answered %d: %s", res.status, res.details);
    Emqx__Exhook__V3__ValuedResponse *vr =
        emqx__exhook__v3__valued_response__unpack(NULL, res.reply_len, res.reply);
    assert_non_null(vr);
    assert_int_equal(vr->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE);
    const char *v = header(vr->message, "version"), *w = header(vr->message, "worker");
    assert_non_null(v);
    assert_non_null(w);
    *version = atoi(v);
    int worker = atoi(w);
    if (probes) {
        const char *n = header(vr->message, "probes");
        assert_non_null(n);
        *probes = atoi(n);
    }
    emqx__exhook__v3__valued_response__free_unpacked(vr, NULL);
    rpc_result_free(&res);
    return worker;
}

static int probe(struct rpc_client *c, int *version)
{
    return probe_counted(c, version, NULL);
}

/* Renders a LoadedResponse like the server's log: "a, b [t1, t2]". */
static void hooks_text(const Emqx__Exhook__V3__LoadedResponse *lr, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < lr->n_hooks && n < len; i++) {
        const Emqx__Exhook__V3__HookSpec *h = lr->hooks[i];
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", h->name);
        for (size_t t = 0; t < h->n_topics && n < len; t++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s%s", t ? ", " : " [", h->topics[t],
                                  t + 1 == h->n_topics ? "]" : "");
    }
}

/* OnProviderLoaded (which reloads) on `c`. 0 if it answered OK, with the
 * hooks listed in `hooks`; -1 with what went wrong there otherwise. No
 * cmocka asserts: usable while other threads run. */
static int try_provider_loaded(struct rpc_client *c, const char *path, char *hooks, size_t len)
{
    Emqx__Exhook__V3__BrokerInfo broker = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    broker.version = "5.8.0";
    broker.sysdescr = "EMQX";
    Emqx__Exhook__V3__ProviderLoadedRequest req = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    req.broker = &broker;
    struct rpc_result res;
    int rc = -1;
    Emqx__Exhook__V3__LoadedResponse *lr = NULL;
    if (rpc_call(c, path, &req.base, &res) != 0)
        snprintf(hooks, len, "OnProviderLoaded did not complete");
    else if (res.status != GRPC_STATUS_OK)
        snprintf(hooks, len, "OnProviderLoaded answered %d: %s", res.status, res.details);
    else if (!(lr = emqx__exhook__v3__loaded_response__unpack(NULL, res.reply_len, res.reply)))
        snprintf(hooks, len, "OnProviderLoaded answered no LoadedResponse");
    else {
        hooks_text(lr, hooks, len);
        emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);
        rc = 0;
    }
    rpc_result_free(&res);
    return rc;
}

/* OnProviderLoaded at `path` on a connection of its own; asserts that it
 * answers OK listing `want_hooks`. */
static void provider_loaded_at(struct rig *r, const char *path, const char *want_hooks)
{
    char hooks[1024];
    int rc = try_provider_loaded(rig_connect(r, r->target), path, hooks, sizeof hooks);
    rig_disconnect(r);
    if (rc != 0)
        fail_msg("%s", hooks);
    assert_string_equal(hooks, want_hooks);
}

static void provider_loaded(struct rig *r, const char *want_hooks)
{
    provider_loaded_at(r, PATH_LOADED, want_hooks);
}

/* On fresh connections, at least 20 authenticate calls: whichever worker
 * slot takes them (any thread may run any slot), the probe reports
 * `version` and every authenticate call answers `want`. */
static void expect_on_every_worker(struct rig *r, enum verdict want, int version)
{
    bool seen[MAX_WORKERS + 1] = {false};
    int calls = 0, workers = 0;
    for (int k = 0; k < MAX_CONNECTIONS && calls < 20; k++) {
        struct rpc_client *c = rig_connect(r, r->target);
        int v;
        int w = probe(c, &v);
        assert_true(w >= 1 && w <= r->workers);
        if (v != version)
            fail_msg("worker %d runs VERSION %d, expected %d", w, v, version);
        for (int i = 0; i < 5; i++, calls++) {
            enum verdict got = try_authenticate(c);
            if (got != want)
                fail_msg("worker %d answered authenticate with %s, expected %s", w,
                         verdict_name(got), verdict_name(want));
        }
        assert_true(probe(c, &v) >= 1);
        assert_int_equal(v, version);
        rig_disconnect(r);
        if (!seen[w]) {
            seen[w] = true;
            workers++;
        }
    }
    assert_true(workers >= 1);
}

/* Authenticate calls on fresh connections, for modules without the probe. */
static void expect_verdict_on_fresh_connections(struct rig *r, enum verdict want)
{
    for (int k = 0; k < 4; k++) {
        struct rpc_client *c = rig_connect(r, r->target);
        for (int i = 0; i < 5; i++)
            expect_verdict(c, want);
        rig_disconnect(r);
    }
}

/* Lines of <dir>/<file> (0 if it does not exist) copied into `buf`. */
static int read_lines(struct rig *r, const char *file, char *buf, size_t len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", r->fx.dir, file);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    return lines;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

/* ---- a good edit ------------------------------------------------------------ */

static void test_good_edit_takes_effect_on_every_worker_after_provider_loaded(void **state)
{
    struct rig *r = *state;
    write_module(r, 1, "return false", NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    expect_on_every_worker(r, V_FALSE, 1);

    /* Saved, not yet loaded: nothing changes. */
    write_module(r, 2, "return true", NULL);
    expect_on_every_worker(r, V_FALSE, 1);

    provider_loaded(r, MODULE_HOOKS);
    expect_on_every_worker(r, V_TRUE, 2);
}

static void test_provider_loaded_reply_lists_the_hooks_of_the_new_scripts(void **state)
{
    struct rig *r = *state;
    put_file(r, "mod.lua", "function on_client_authenticate() return false end\n");
    write_config(r, NULL, NULL);
    rig_start(r);
    provider_loaded(r, "client.authenticate");

    put_file(r, "mod.lua",
             "topics = { [\"message.publish\"] = { \"new/#\" } }\n"
             "function on_message_publish(m) return nil end\n");
    provider_loaded(r, "message.publish [new/#]");
    expect_verdict_on_fresh_connections(r, V_IGNORE); /* no handler any more */

    /* The v2 interface reloads the same way. */
    put_file(r, "mod.lua",
             "topics = { [\"message.publish\"] = { \"a/+\", \"b/#\" } }\n"
             "function on_message_publish(m) return nil end\n"
             "function on_client_connected() end\n");
    provider_loaded_at(r, PATH_LOADED_V2, "client.connected, message.publish [a/+, b/#]");
}

/* ---- bad edits ---------------------------------------------------------------- */

/* A module that would let everyone in and add a hook, were it loaded. */
#define BAD_HEAD                                                               \
    "VERSION = 9\n"                                                            \
    "function on_client_connected() end\n" PROBE                               \
    "function on_client_authenticate() return true end\n"

/* Starts on a module that refuses everyone, replaces it with `bad`,
 * reloads: the old scripts stay, on every worker. */
static void check_bad_edit_keeps_the_old_scripts(struct rig *r, const char *bad,
                                                 const char *lua)
{
    write_module(r, 1, "return false", NULL);
    write_config(r, lua, NULL);
    rig_start(r);
    expect_on_every_worker(r, V_FALSE, 1);

    put_file(r, "mod.lua", bad);
    provider_loaded(r, MODULE_HOOKS);
    expect_on_every_worker(r, V_FALSE, 1);
    /* Twice: a failed reload leaves nothing half done behind. */
    provider_loaded(r, MODULE_HOOKS);
    expect_on_every_worker(r, V_FALSE, 1);
}

static void test_syntax_error_edit_keeps_the_old_scripts(void **state)
{
    check_bad_edit_keeps_the_old_scripts(*state, BAD_HEAD "function broken(\n", NULL);
}

static void test_runtime_error_in_module_body_keeps_the_old_scripts(void **state)
{
    check_bad_edit_keeps_the_old_scripts(*state, BAD_HEAD "local t = nil\nlocal x = t.field\n",
                                         NULL);
}

static void test_error_in_init_keeps_the_old_scripts(void **state)
{
    check_bad_edit_keeps_the_old_scripts(
        *state, BAD_HEAD "function init() error('cannot start') end\n", NULL);
}

static void test_endless_loop_in_init_keeps_the_old_scripts(void **state)
{
    check_bad_edit_keeps_the_old_scripts(
        *state, BAD_HEAD "function init() while true do end end\n", "call_timeout = 200ms\n");
}

static void test_bad_config_edit_keeps_the_old_scripts_and_a_fixed_one_applies(void **state)
{
    struct rig *r = *state;
    /* The probe has no topics of its own: [topics] limits it. */
    write_module(r, 1, "return false", NULL);
    write_config(r, NULL, "[topics]\nmessage.publish = probe/#, old/#\n");
    rig_start(r);
    provider_loaded(r, "client.authenticate, message.publish [probe/#, old/#]");
    /* Every worker on the reloaded scripts before the next edit (see the
     * late switching tests for why). */
    expect_on_every_worker(r, V_FALSE, 1);

    /* A new module with a config that does not load: neither is used. */
    write_module(r, 2, "return true", NULL);
    write_config(r, "no_such_key = 1\n", "[topics]\nmessage.publish = probe/#, new/#\n");
    provider_loaded(r, "client.authenticate, message.publish [probe/#, old/#]");
    expect_on_every_worker(r, V_FALSE, 1);

    /* Fixed: the new module and the new [topics] are in use. */
    write_config(r, NULL, "[topics]\nmessage.publish = probe/#, new/#, new2/+\n");
    provider_loaded(r, "client.authenticate, message.publish [probe/#, new/#, new2/+]");
    expect_on_every_worker(r, V_TRUE, 2);
}

/* ---- SIGHUP ------------------------------------------------------------------- */

static void test_srv_reload_publishes_good_scripts_and_refuses_broken_ones(void **state)
{
    struct rig *r = *state;
    write_module(r, 1, "return false", NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    expect_on_every_worker(r, V_FALSE, 1);

    write_module(r, 2, "return true", NULL);
    assert_int_equal(srv_reload(r->srv), 0);
    expect_on_every_worker(r, V_TRUE, 2);

    put_file(r, "mod.lua", BAD_HEAD "function broken(\n");
    assert_int_equal(srv_reload(r->srv), -1);
    expect_on_every_worker(r, V_TRUE, 2);

    /* A config that does not load is refused the same way. */
    write_module(r, 3, "return false", NULL);
    write_config(r, "call_timeout = soon\n", NULL);
    assert_int_equal(srv_reload(r->srv), -1);
    expect_on_every_worker(r, V_TRUE, 2);

    write_config(r, NULL, NULL);
    assert_int_equal(srv_reload(r->srv), 0);
    expect_on_every_worker(r, V_FALSE, 3);
}

/* ---- deinit ------------------------------------------------------------------- */

/* A module whose deinit() appends "<VERSION> <worker>" to deinit.log. */
static void write_module_with_deinit(struct rig *r, int version, const char *auth)
{
    char more[1024];
    snprintf(more, sizeof more,
             "function deinit()\n"
             "  local f = assert(io.open('%s/deinit.log', 'a'))\n"
             "  f:write(VERSION, ' ', exhook.worker_id, '\\n')\n"
             "  f:close()\n"
             "end\n",
             r->fx.dir);
    write_module(r, version, auth, more);
}

static void test_provider_loaded_runs_deinit_once_on_each_replaced_state(void **state)
{
    struct rig *r = *state;
    char lines[1024];
    write_module_with_deinit(r, 1, "return false");
    write_config(r, NULL, NULL);
    rig_start(r);
    expect_on_every_worker(r, V_FALSE, 1);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 0);

    /* Every worker slot replaces its state as soon as the reload is done,
     * without waiting for a call of its own. */
    write_module_with_deinit(r, 2, "return true");
    provider_loaded(r, MODULE_HOOKS);
    for (int i = 0; i < 500 && read_lines(r, "deinit.log", lines, sizeof lines) < 2; i++)
        usleep(10000);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 2);
    expect_on_every_worker(r, V_TRUE, 2);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 2);
    assert_true(has_line(lines, "1 1"));
    assert_true(has_line(lines, "1 2"));

    /* Stopping closes the two states of version 2. */
    rig_stop_server(r);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 4);
    assert_true(has_line(lines, "2 1"));
    assert_true(has_line(lines, "2 2"));
}

static void test_srv_reload_runs_deinit_only_on_each_replaced_state(void **state)
{
    struct rig *r = *state;
    char lines[1024];
    write_module_with_deinit(r, 1, "return false");
    write_config(r, NULL, NULL);
    rig_start(r);

    /* srv_reload builds one new state per worker and no other: no init()
     * or deinit() of the new version runs on a state nobody serves with. */
    write_module_with_deinit(r, 2, "return true");
    assert_int_equal(srv_reload(r->srv), 0);

    /* Each worker slot closes its old state once the reload is done. */
    for (int i = 0; i < 500 && read_lines(r, "deinit.log", lines, sizeof lines) < 2; i++)
        usleep(10000);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 2);
    expect_on_every_worker(r, V_TRUE, 2);
    assert_int_equal(read_lines(r, "deinit.log", lines, sizeof lines), 2);
    assert_true(has_line(lines, "1 1"));
    assert_true(has_line(lines, "1 2"));
}

/* ---- reload under load -------------------------------------------------------- */

#define LOAD_THREADS 4
#define LOAD_CALLS 500
#define LOAD_RELOADS 20

struct load {
    atomic_bool done;          /* the reloads are over (or failed) */
    atomic_int calls;          /* calls answered, all threads */
    pthread_barrier_t start;
};

struct load_thread {
    struct load *load;
    pthread_t thread;
    const char *target;
    int calls;
    int counts[V_FAILED + 1];
    enum verdict last;         /* of the call made after the reloads */
};

/* At least LOAD_CALLS calls, and on until the reloads are over; stops at
 * a call that fails (the server is gone). */
static void *load_main(void *arg)
{
    struct load_thread *t = arg;
    struct rpc_client *c = rpc_client_open(t->target);
    pthread_barrier_wait(&t->load->start);
    while (t->calls < LOAD_CALLS || !atomic_load(&t->load->done)) {
        enum verdict v = try_authenticate(c);
        t->counts[v]++;
        t->calls++;
        atomic_fetch_add(&t->load->calls, 1);
        if (v == V_FAILED)
            break;
    }
    /* Once more, with the last scripts in place everywhere. */
    t->last = try_authenticate(c);
    t->counts[t->last]++;
    t->calls++;
    rpc_client_close(c);
    return NULL;
}

/* Waits until the threads have answered `more` calls beyond `from`. */
static int wait_for_calls(struct load *l, int from, int more)
{
    int64_t limit = now_ns() + WAIT_LIMIT_NS;
    while (atomic_load(&l->calls) < from + more) {
        if (now_ns() > limit)
            return -1;
        sched_yield();
    }
    return 0;
}

static void test_reload_under_load_loses_no_call(void **state)
{
    static const char *const versions[] = {"return true", "return true, 'continue'"};
    struct rig *r = *state;
    write_module(r, 0, versions[0], NULL);
    write_config(r, NULL, NULL);
    rig_start(r);

    struct load l;
    atomic_init(&l.done, false);
    atomic_init(&l.calls, 0);
    pthread_barrier_init(&l.start, NULL, LOAD_THREADS + 1);
    struct load_thread threads[LOAD_THREADS];
    memset(threads, 0, sizeof threads);
    for (int i = 0; i < LOAD_THREADS; i++) {
        threads[i].load = &l;
        /* Two connections, so that both workers are busy. */
        threads[i].target = i % 2 ? r->other : r->target;
        assert_int_equal(pthread_create(&threads[i].thread, NULL, load_main, &threads[i]), 0);
    }
    struct rpc_client *admin = rig_connect(r, r->target);
    pthread_barrier_wait(&l.start);

    /* No cmocka assert while the threads run: note the first problem. Each
     * reload is followed by more calls than there are clients, so some call
     * was sent after it: every version gets answered. */
    char problem[1200] = "";
    int reloads = 0;
    if (wait_for_calls(&l, 0, LOAD_THREADS + 1) != 0)
        snprintf(problem, sizeof problem, "the clients made no progress for 10 s");
    for (int i = 1; i <= LOAD_RELOADS && !problem[0]; i++) {
        char hooks[1024];
        write_module(r, i % 2, versions[i % 2], NULL);
        if (try_provider_loaded(admin, PATH_LOADED, hooks, sizeof hooks) != 0 ||
            strcmp(hooks, MODULE_HOOKS) != 0)
            snprintf(problem, sizeof problem, "reload %d: %s", i, hooks);
        else if (wait_for_calls(&l, atomic_load(&l.calls), LOAD_THREADS + 1) != 0)
            snprintf(problem, sizeof problem, "no calls after reload %d for 10 s", i);
        else
            reloads++;
    }
    atomic_store(&l.done, true);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(threads[i].thread, NULL);
    pthread_barrier_destroy(&l.start);
    rig_disconnect(r);
    if (problem[0])
        fail_msg("%s", problem);
    assert_int_equal(reloads, LOAD_RELOADS);

    int total = 0, stop = 0, cont = 0;
    for (int i = 0; i < LOAD_THREADS; i++) {
        struct load_thread *t = &threads[i];
        for (int v = 0; v <= V_FAILED; v++) {
            if (v != V_TRUE && v != V_TRUE_CONTINUE && t->counts[v])
                fail_msg("client %d: %d of %d calls answered %s", i, t->counts[v], t->calls,
                         verdict_name((enum verdict)v));
        }
        assert_true(t->calls > LOAD_CALLS);
        /* The last version (even: "return true") answered the final call. */
        assert_int_equal(t->last, V_TRUE);
        stop += t->counts[V_TRUE];
        cont += t->counts[V_TRUE_CONTINUE];
        total += t->calls;
    }
    assert_int_equal(stop + cont, total);
    assert_true(total > LOAD_THREADS * LOAD_CALLS);
    /* Version 0 at first and after each even reload, 1 after each odd. */
    assert_true(stop >= LOAD_RELOADS / 2 + 1);
    assert_true(cont >= LOAD_RELOADS / 2);
}

/* ---- calls in flight ---------------------------------------------------------- */

struct in_flight {
    const char *target;
    pthread_t thread;
    enum verdict verdict;
};

static void *in_flight_main(void *arg)
{
    struct in_flight *f = arg;
    struct rpc_client *c = rpc_client_open(f->target);
    f->verdict = try_authenticate(c);
    rpc_client_close(c);
    return NULL;
}

/* Waits (at most 5 s) for <dir>/<file> to exist. */
static int wait_for_file(struct rig *r, const char *file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", r->fx.dir, file);
    for (int i = 0; access(path, F_OK) != 0; i++) {
        if (i == 500)
            return -1;
        pause_ms(10);
    }
    return 0;
}

/* Starts an authenticate call that takes ~300 ms on version 1 (true),
 * edits the module to version 2 (false) once the handler runs, reloads
 * with `reload` (0 on success, no cmocka assert) while the call runs, and
 * checks that the call finished on version 1 while calls from then on get
 * version 2. */
static void check_call_in_flight_keeps_its_scripts(struct rig *r, int (*reload)(struct rig *))
{
    char auth[512];
    snprintf(auth, sizeof auth,
             "assert(io.open('%s/started', 'w')):close()\n"
             "  local t = os.clock()\n"
             "  while os.clock() - t < 0.3 do end\n"
             "  return true",
             r->fx.dir);
    write_module(r, 1, auth, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);

    struct in_flight f = {.target = r->target, .verdict = V_FAILED};
    assert_int_equal(pthread_create(&f.thread, NULL, in_flight_main, &f), 0);
    int started = wait_for_file(r, "started");
    int reloaded = -1;
    if (started == 0) {
        write_module(r, 2, "return false", NULL);
        reloaded = reload(r);
    }
    pthread_join(f.thread, NULL);
    if (started != 0)
        fail_msg("the handler did not start within 5 s");
    assert_int_equal(reloaded, 0);
    if (f.verdict != V_TRUE)
        fail_msg("the call in flight answered %s, expected true (stop) from version 1",
                 verdict_name(f.verdict));
    expect_on_every_worker(r, V_FALSE, 2);
}

/* OnProviderLoaded on a connection other than the call's. */
static int reload_by_provider_loaded(struct rig *r)
{
    char hooks[1024];
    int rc = try_provider_loaded(rig_connect(r, r->other), PATH_LOADED, hooks, sizeof hooks);
    rig_disconnect(r);
    return rc == 0 && strcmp(hooks, MODULE_HOOKS) == 0 ? 0 : -1;
}

static int reload_by_srv_reload(struct rig *r) { return srv_reload(r->srv); }

static void test_call_in_flight_finishes_on_its_scripts_across_provider_loaded(void **state)
{
    check_call_in_flight_keeps_its_scripts(*state, reload_by_provider_loaded);
}

static void test_call_in_flight_finishes_on_its_scripts_across_srv_reload(void **state)
{
    /* srv_reload runs on this thread while the call runs on a worker. */
    check_call_in_flight_keeps_its_scripts(*state, reload_by_srv_reload);
}

/* ---- what a worker that switches late loads ----------------------------------- */

/* Reloads version 2 through one worker, then saves `later` without
 * reloading: the other worker, switching at its next call, must run
 * version 2 too, the scripts that were checked and published. */
static void check_late_switch_runs_the_published_scripts(struct rig *r, const char *later)
{
    write_module(r, 1, "return false", NULL);
    write_config(r, NULL, NULL);
    rig_start(r);

    write_module(r, 2, "return true", NULL);
    provider_loaded(r, MODULE_HOOKS);
    put_file(r, "mod.lua", later);
    expect_on_every_worker(r, V_TRUE, 2);
}

static void test_late_switching_worker_runs_the_published_scripts_not_a_broken_edit(void **state)
{
    check_late_switch_runs_the_published_scripts(*state, BAD_HEAD "function broken(\n");
}

static void test_late_switching_worker_runs_the_published_scripts_not_an_unloaded_edit(
    void **state)
{
    check_late_switch_runs_the_published_scripts(
        *state, "VERSION = 3\nfunction on_client_authenticate() return nil end\n" PROBE);
}

/* ---- the scripts' word in the health check -------------------------------------- */

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

/* The whole server and every HookProvider generation answer `want`, on a
 * fresh connection (so possibly another worker than the one that set it). */
static void expect_health(struct rig *r, int want)
{
    static const char *const services[] = {"", "emqx.exhook.v1.HookProvider",
                                           "emqx.exhook.v2.HookProvider",
                                           "emqx.exhook.v3.HookProvider"};
    struct rpc_client *c = rpc_client_open(r->other);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        int serving = -1;
        assert_int_equal(rpc_health_check(c, services[i], &serving), GRPC_STATUS_OK);
        if (serving != want)
            fail_msg("service '%s' is %d, expected %d", services[i], serving, want);
    }
    rpc_client_close(c);
}

/* on_client_connected says the backend is down for clientid "down". */
#define HEALTH_BY_CLIENTID                                                                         \
    "function on_client_connected(clientinfo)\n"                                                   \
    "  local down = clientinfo.clientid == 'down'\n"                                               \
    "  exhook.health.set(not down, down and 'redis down' or nil)\n"                                \
    "end\n"

static void connected(struct rig *r, const char *clientid)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = (char *)clientid;
    Emqx__Exhook__V3__ClientConnectedRequest req = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    req.clientinfo = &ci;
    struct rpc_result res;
    assert_int_equal(rpc_call(rig_connect(r, r->target),
                              "/emqx.exhook.v3.HookProvider/OnClientConnected", &req.base, &res),
                     0);
    if (res.status != GRPC_STATUS_OK)
        fail_msg("OnClientConnected answered %d: %s", res.status, res.details);
    rpc_result_free(&res);
}

static void test_health_check_answers_what_a_script_sets(void **state)
{
    struct rig *r = *state;
    write_module(r, 1, "return true", HEALTH_BY_CLIENTID);
    write_config(r, NULL, NULL);
    rig_start(r);
    expect_health(r, SERVING);
    connected(r, "down");
    expect_health(r, NOT_SERVING);
    connected(r, "up");
    expect_health(r, SERVING);
    connected(r, "down");
    expect_health(r, NOT_SERVING);
    /* The calls still run while a script says NOT_SERVING. */
    expect_on_every_worker(r, V_TRUE, 1);
}

static void test_reload_resets_the_health_set_by_scripts_unless_init_sets_it(void **state)
{
    struct rig *r = *state;
    static const char init_down[] = "function init() exhook.health.set(false, 'no backend') end\n";
    write_module(r, 1, "return true", init_down);
    write_config(r, NULL, NULL);
    rig_start(r);
    expect_health(r, NOT_SERVING);

    /* A failed reload keeps the running scripts, and their word. */
    put_file(r, "mod.lua", BAD_HEAD "function broken(\n");
    assert_int_equal(srv_reload(r->srv), -1);
    expect_health(r, NOT_SERVING);

    write_module(r, 2, "return true", HEALTH_BY_CLIENTID);
    assert_int_equal(srv_reload(r->srv), 0);
    expect_health(r, SERVING);
    connected(r, "down");
    expect_health(r, NOT_SERVING);

    write_module(r, 3, "return true", init_down);
    assert_int_equal(srv_reload(r->srv), 0);
    expect_health(r, NOT_SERVING);
    write_module(r, 4, "return true", NULL);
    assert_int_equal(srv_reload(r->srv), 0);
    expect_health(r, SERVING);
}

/* ---- reloads that load only what changed ---------------------------------------- */

/* Module "mod" whose init() appends "<VERSION> <worker>" to init.log, then
 * runs `init_more`; its probe also reports how many probes its state has
 * counted (a global that lives as long as the state). */
static void write_counting_module(struct rig *r, int version, const char *init_more)
{
    char text[4096];
    snprintf(text, sizeof text,
             "VERSION = %d\n"
             "probes = 0\n"
             "function init()\n"
             "  local f = assert(io.open('%s/init.log', 'a'))\n"
             "  f:write(VERSION, ' ', exhook.worker_id, '\\n')\n"
             "  f:close()\n"
             "  %s\n"
             "end\n"
             "function on_client_authenticate() return true end\n"
             "function on_message_publish(m)\n"
             "  probes = probes + 1\n"
             "  m.headers.version = tostring(VERSION)\n"
             "  m.headers.worker = tostring(exhook.worker_id)\n"
             "  m.headers.probes = tostring(probes)\n"
             "  return m\n"
             "end\n",
             version, r->fx.dir, init_more ? init_more : "");
    put_file(r, "mod.lua", text);
}

/* Waits (at most 30 s) until <dir>/<file> has `want` lines, then a little
 * longer for any line too many; returns how many it has. */
static int wait_lines(struct rig *r, const char *file, int want)
{
    char buf[8192];
    for (int i = 0; i < 3000 && read_lines(r, file, buf, sizeof buf) < want; i++)
        pause_ms(10);
    pause_ms(100);
    return read_lines(r, file, buf, sizeof buf);
}

static int init_lines(struct rig *r)
{
    char buf[8192];
    return read_lines(r, "init.log", buf, sizeof buf);
}

/* Probes on fresh connections, 3 probes each, until every worker has
 * answered (for at most 10 s: a worker whose new state is still loading
 * takes no calls): each probe must report `version` and one more probe on
 * its state than `counted` had, which is updated. Returns how many workers
 * answered. */
static int probe_counting(struct rig *r, int version, int counted[])
{
    bool seen[MAX_WORKERS + 1] = {false};
    int workers = 0;
    for (int64_t limit = now_ns() + WAIT_LIMIT_NS; workers < r->workers && now_ns() < limit;) {
        struct rpc_client *c = rig_connect(r, r->target);
        for (int i = 0; i < 3; i++) {
            int v, n;
            int w = probe_counted(c, &v, &n);
            assert_true(w >= 1 && w <= r->workers);
            if (v != version || n != counted[w] + 1)
                fail_msg("worker %d: VERSION %d after %d probes, expected %d after %d", w, v, n,
                         version, counted[w] + 1);
            counted[w] = n;
            workers += !seen[w];
            seen[w] = true;
        }
        rig_disconnect(r);
    }
    return workers;
}

static int count_text(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static void test_unchanged_scripts_keep_their_states_across_provider_loaded(void **state)
{
    struct rig *r = *state;
    write_counting_module(r, 1, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    assert_int_equal(wait_lines(r, "init.log", WORKERS), WORKERS);
    int counted[MAX_WORKERS + 1] = {0};
    assert_int_equal(probe_counting(r, 1, counted), WORKERS);

    /* Three brokers load the provider: nothing is loaded again. */
    struct capture cap;
    capture_begin(&cap, r->fx.dir);
    log_set_level(LOG_INFO);
    for (int i = 0; i < 3; i++)
        provider_loaded(r, MODULE_HOOKS);
    log_set_level((enum log_level)(LOG_ERROR + 1));
    char *log = capture_end(&cap);
    int kept = count_text(log, "reload: scripts unchanged since generation 0: kept (1 files, ");
    bool reloaded = strstr(log, "reloaded scripts") != NULL;
    free(log);
    assert_int_equal(kept, 3);
    assert_false(reloaded);

    /* The same states: no init() ran, and each counts on. */
    assert_int_equal(init_lines(r), WORKERS);
    assert_int_equal(probe_counting(r, 1, counted), WORKERS);
    assert_int_equal(init_lines(r), WORKERS);
}

/* OnProviderLoaded after `edit`: the scripts are loaded again (one init()
 * per worker more than `*inits`) if `reloads`, else kept. */
static void expect_after_edit(struct rig *r, const char *edit, bool reloads, const char *hooks,
                              int *inits)
{
    provider_loaded(r, hooks);
    if (reloads)
        *inits += WORKERS;
    int now = reloads ? wait_lines(r, "init.log", *inits) : init_lines(r);
    if (now != *inits)
        fail_msg("%s: %d init() calls, expected %d (%s)", edit, now, *inits,
                 reloads ? "a reload" : "scripts kept");
}

static void test_what_provider_loaded_compares(void **state)
{
    struct rig *r = *state;
    write_counting_module(r, 1, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    int inits = wait_lines(r, "init.log", WORKERS);
    assert_int_equal(inits, WORKERS);

    write_counting_module(r, 2, NULL);
    expect_after_edit(r, "a changed module", true, MODULE_HOOKS, &inits);
    put_file(r, "other.lua", "return {}\n");
    expect_after_edit(r, "a new script no module requires yet", true, MODULE_HOOKS, &inits);
    fx_write(&r->fx, "lib/util.lua", "return {}\n");
    expect_after_edit(r, "a new script in a subfolder", true, MODULE_HOOKS, &inits);
    fx_write(&r->fx, "lib/util.lua", "return {1}\n");
    expect_after_edit(r, "a changed script in a subfolder", true, MODULE_HOOKS, &inits);
    put_file(r, ".scratch.lua", "x = 1\n");
    expect_after_edit(r, "a hidden file", false, MODULE_HOOKS, &inits);
    put_file(r, "users.txt", "u1\n");
    expect_after_edit(r, "a file that is no script", false, MODULE_HOOKS, &inits);
    write_config(r, NULL, "[server]\nmax_waiting_calls = 500\n");
    expect_after_edit(r, "a [server] setting", false, MODULE_HOOKS, &inits);
    write_config(r, "call_timeout = 3s\n", NULL);
    expect_after_edit(r, "a [lua] setting", true, MODULE_HOOKS, &inits);
    write_config(r, "call_timeout = 3s\n", "[topics]\nmessage.publish = probe/#\n");
    expect_after_edit(r, "a [topics] setting", true,
                      "client.authenticate, message.publish [probe/#]", &inits);
    expect_after_edit(r, "nothing", false, "client.authenticate, message.publish [probe/#]",
                      &inits);
    /* A webhook rule registers a hook of its own. */
    write_config(r, "call_timeout = 3s\n",
                 "[topics]\nmessage.publish = probe/#\n[webhook]\nurl = http://127.0.0.1:9/\n"
                 "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n");
    expect_after_edit(r, "a [webhook] rule", true,
                      "client.connected, client.authenticate, message.publish [probe/#]", &inits);
    expect_on_every_worker(r, V_TRUE, 2);
}

static void test_srv_reload_loads_unchanged_scripts_again(void **state)
{
    struct rig *r = *state;
    write_counting_module(r, 1, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    int counted[MAX_WORKERS + 1] = {0};
    assert_int_equal(probe_counting(r, 1, counted), WORKERS);
    assert_int_equal(srv_reload(r->srv), 0);
    assert_int_equal(wait_lines(r, "init.log", 2 * WORKERS), 2 * WORKERS);
    /* New states: the counts start again. */
    memset(counted, 0, sizeof counted);
    assert_int_equal(probe_counting(r, 1, counted), WORKERS);
}

/* The brokers of a cluster load the provider at the same time, after an
 * edit: one load. */
struct loader {
    const char *target;
    pthread_t thread;
    char hooks[1024];
    int rc;
};

static void *loader_main(void *arg)
{
    struct loader *l = arg;
    struct rpc_client *c = rpc_client_open(l->target);
    l->rc = try_provider_loaded(c, PATH_LOADED, l->hooks, sizeof l->hooks);
    rpc_client_close(c);
    return NULL;
}

static void test_provider_loaded_from_three_brokers_loads_once(void **state)
{
    struct rig *r = *state;
    write_counting_module(r, 1, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);
    assert_int_equal(wait_lines(r, "init.log", WORKERS), WORKERS);
    write_counting_module(r, 2, NULL);
    struct loader loaders[3];
    for (int i = 0; i < 3; i++) {
        loaders[i] = (struct loader){.target = i == 1 ? r->other : r->target, .rc = -1};
        assert_int_equal(pthread_create(&loaders[i].thread, NULL, loader_main, &loaders[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(loaders[i].thread, NULL);
    for (int i = 0; i < 3; i++) {
        if (loaders[i].rc != 0)
            fail_msg("broker %d: %s", i, loaders[i].hooks);
        assert_string_equal(loaders[i].hooks, MODULE_HOOKS);
    }
    assert_int_equal(wait_lines(r, "init.log", 2 * WORKERS), 2 * WORKERS);
    int counted[MAX_WORKERS + 1] = {0};
    assert_int_equal(probe_counting(r, 2, counted), WORKERS);
}

/* 8 workers, whose init() on every worker but the first waits until the
 * test lets it go: OnProviderLoaded is answered with the first state, only
 * worker 1 takes calls meanwhile, and once the others are let go every
 * worker ends on the new scripts. A reload that waited for every state
 * would not answer at all before the test lets them go. */
static void expect_only_worker_1(struct rig *r, int version);

static void test_provider_loaded_answers_before_every_state_is_loaded(void **state)
{
    struct rig *r = *state;
    r->workers = MAX_WORKERS;
    char more[512];
    snprintf(more, sizeof more,
             "function deinit()\n"
             "  local f = assert(io.open('%s/deinit.log', 'a'))\n"
             "  f:write(VERSION, ' ', exhook.worker_id, '\\n')\n"
             "  f:close()\n"
             "end\n",
             r->fx.dir);
    write_module(r, 1, "return false", more);
    write_config(r, NULL, NULL);
    rig_start(r);

    char init[512];
    snprintf(init, sizeof init,
             "if exhook.worker_id ~= 1 then\n"
             "    local t = os.time()\n"
             "    while not io.open('%s/go') and os.time() - t < 4 do end\n"
             "  end",
             r->fx.dir);
    write_counting_module(r, 2, init);
    struct capture cap;
    capture_begin(&cap, r->fx.dir);
    log_set_level(LOG_INFO);
    struct rpc_client *c = rig_connect(r, r->target);
    rpc_client_set_timeout(c, 2000);
    char hooks[1024];
    int64_t start = now_ns();
    int rc = try_provider_loaded(c, PATH_LOADED, hooks, sizeof hooks);
    int64_t took_ms = (now_ns() - start) / 1000000;
    rig_disconnect(r);
    if (rc != 0)
        fail_msg("%s after %lld ms", hooks, (long long)took_ms);
    expect_only_worker_1(r, 2);
    fx_write(&r->fx, "go", "");
    int all = capture_wait(&cap, "reload: generation 1 loaded on 8 of 8 workers in ", 30);
    log_set_level((enum log_level)(LOG_ERROR + 1));
    free(capture_end(&cap));
    assert_string_equal(hooks, MODULE_HOOKS);
    assert_true(all);

    /* Every worker took its new state up and closed its old one. */
    assert_int_equal(wait_lines(r, "init.log", MAX_WORKERS), MAX_WORKERS);
    char lines[1024];
    assert_int_equal(wait_lines(r, "deinit.log", MAX_WORKERS), MAX_WORKERS);
    read_lines(r, "deinit.log", lines, sizeof lines);
    for (int w = 1; w <= MAX_WORKERS; w++) {
        char line[16];
        snprintf(line, sizeof line, "1 %d", w);
        if (!has_line(lines, line))
            fail_msg("worker %d did not close its first state: %s", w, lines);
    }
}

/* Worker 2's init() waits for a file named "go", then fails: worker 1's
 * state is always loaded first. */
static void write_module_failing_on_worker_2(struct rig *r, int version)
{
    char init[512];
    snprintf(init, sizeof init,
             "if exhook.worker_id ~= 1 then\n"
             "    local t = os.time()\n"
             "    while not io.open('%s/go') and os.time() - t < 10 do end\n"
             "    error('worker ' .. exhook.worker_id .. ' cannot start')\n"
             "  end",
             r->fx.dir);
    write_counting_module(r, version, init);
}

/* Probes on fresh connections: only worker 1 answers, with `version`. */
static void expect_only_worker_1(struct rig *r, int version)
{
    for (int k = 0; k < 8; k++) {
        int v;
        assert_int_equal(probe(rig_connect(r, r->target), &v), 1);
        assert_int_equal(v, version);
        rig_disconnect(r);
    }
}

static void test_state_failing_after_the_first_takes_its_worker_out_until_the_next_reload(
    void **state)
{
    struct rig *r = *state;
    char go[600];
    snprintf(go, sizeof go, "%s/go", r->fx.dir);
    write_counting_module(r, 1, NULL);
    write_config(r, NULL, NULL);
    rig_start(r);

    struct capture cap;
    capture_begin(&cap, r->fx.dir);
    log_set_level(LOG_INFO);
    write_module_failing_on_worker_2(r, 2);
    provider_loaded(r, MODULE_HOOKS);
    fx_write(&r->fx, "go", "");
    int failed = capture_wait(&cap, "reload: worker w2 could not load generation 1 and takes no "
                                    "calls until the next reload: ", 20);
    /* Unchanged, but not loaded everywhere: loaded again. */
    unlink(go);
    provider_loaded(r, MODULE_HOOKS);
    fx_write(&r->fx, "go", "");
    int failed_again = capture_wait(&cap, "could not load generation 2", 20);
    log_set_level((enum log_level)(LOG_ERROR + 1));
    char *log = capture_end(&cap);
    bool reloaded = strstr(log, "reloaded scripts (generation 2)") != NULL;
    free(log);
    assert_true(failed);
    assert_true(failed_again);
    assert_true(reloaded);
    expect_only_worker_1(r, 2);

    write_counting_module(r, 3, NULL);
    provider_loaded(r, MODULE_HOOKS);
    int counted[MAX_WORKERS + 1] = {0};
    assert_int_equal(probe_counting(r, 3, counted), WORKERS);
}

/* ---- the fingerprint -------------------------------------------------------------- */

static void fingerprint_of(struct fixture *fx, struct fingerprint *fp)
{
    char err[512];
    if (fingerprint_compute(&fx->cfg, fp, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static void test_fingerprint_covers_every_script_by_contents_and_the_settings(void **state)
{
    struct rig *r = *state;
    struct fixture *fx = &r->fx;
    struct fingerprint a, b;
    fx_configure(fx, "mod", NULL);
    fx_write(fx, "mod.lua", "x = 1\n");
    fingerprint_of(fx, &a);
    assert_int_equal(a.files, 1);
    assert_int_equal(a.bytes, 6);

    /* The same bytes written again: the same. */
    fx_write(fx, "mod.lua", "x = 1\n");
    fingerprint_of(fx, &b);
    assert_true(fingerprint_equal(&a, &b));

    /* Other bytes of the same size with the same modification time. */
    char path[600];
    snprintf(path, sizeof path, "%s/mod.lua", fx->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    fx_write(fx, "mod.lua", "x = 2\n");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    fingerprint_of(fx, &b);
    assert_false(fingerprint_equal(&a, &b));
    a = b;

    /* Not scripts: hidden names, other files, links back up. */
    fx_write(fx, ".mod.lua.swp", "x");
    fx_write(fx, ".git/x.lua", "x");
    fx_write(fx, "users.csv", "u1\n");
    char link[600];
    snprintf(link, sizeof link, "%s/lib", fx->dir);
    assert_int_equal(mkdir(link, 0700), 0);
    snprintf(link, sizeof link, "%s/lib/up", fx->dir);
    assert_int_equal(symlink("..", link), 0);
    fingerprint_of(fx, &b);
    assert_true(fingerprint_equal(&a, &b));
    assert_int_equal(b.files, 1);

    /* A script in a subfolder, and its name. */
    fx_write(fx, "lib/util.lua", "return {}\n");
    fingerprint_of(fx, &b);
    assert_false(fingerprint_equal(&a, &b));
    assert_int_equal(b.files, 2);
    a = b;
    /* The same contents under another name. */
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/lib/util.lua", fx->dir);
    snprintf(to, sizeof to, "%s/lib/util2.lua", fx->dir);
    assert_int_equal(rename(from, to), 0);
    fingerprint_of(fx, &b);
    assert_false(fingerprint_equal(&a, &b));
    assert_int_equal(b.files, 2);

    /* The settings. */
    fingerprint_of(fx, &a);
    fx_configure(fx, "mod", "[topics]\nmessage.publish = a/#\n");
    fingerprint_of(fx, &b);
    assert_false(fingerprint_equal(&a, &b));
    fx_configure(fx, "mod", "[lua]\nmemory_limit = 32MB\n");
    fingerprint_of(fx, &a);
    assert_false(fingerprint_equal(&a, &b));
    fx_configure(fx, "mod, other", NULL);
    fingerprint_of(fx, &b);
    assert_false(fingerprint_equal(&a, &b));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, rig_setup, rig_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_good_edit_takes_effect_on_every_worker_after_provider_loaded),
        TEST(test_provider_loaded_reply_lists_the_hooks_of_the_new_scripts),
        TEST(test_syntax_error_edit_keeps_the_old_scripts),
        TEST(test_runtime_error_in_module_body_keeps_the_old_scripts),
        TEST(test_error_in_init_keeps_the_old_scripts),
        TEST(test_endless_loop_in_init_keeps_the_old_scripts),
        TEST(test_bad_config_edit_keeps_the_old_scripts_and_a_fixed_one_applies),
        TEST(test_srv_reload_publishes_good_scripts_and_refuses_broken_ones),
        TEST(test_provider_loaded_runs_deinit_once_on_each_replaced_state),
        TEST(test_srv_reload_runs_deinit_only_on_each_replaced_state),
        TEST(test_reload_under_load_loses_no_call),
        TEST(test_call_in_flight_finishes_on_its_scripts_across_provider_loaded),
        TEST(test_call_in_flight_finishes_on_its_scripts_across_srv_reload),
        TEST(test_late_switching_worker_runs_the_published_scripts_not_a_broken_edit),
        TEST(test_late_switching_worker_runs_the_published_scripts_not_an_unloaded_edit),
        TEST(test_health_check_answers_what_a_script_sets),
        TEST(test_reload_resets_the_health_set_by_scripts_unless_init_sets_it),
        TEST(test_unchanged_scripts_keep_their_states_across_provider_loaded),
        TEST(test_what_provider_loaded_compares),
        TEST(test_srv_reload_loads_unchanged_scripts_again),
        TEST(test_provider_loaded_from_three_brokers_loads_once),
        TEST(test_provider_loaded_answers_before_every_state_is_loaded),
        TEST(test_state_failing_after_the_first_takes_its_worker_out_until_the_next_reload),
        TEST(test_fingerprint_covers_every_script_by_contents_and_the_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
