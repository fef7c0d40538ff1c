/* exhookd over real gRPC: the server runs in-process on 127.0.0.1 with the
 * shipped example scripts, and a gRPC C core client calls every rpc of every
 * interface generation, as EMQX would. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "exhook_v1.pb-c.h"
#include "health.pb-c.h"
#include "fixtures.h"
#include "rpc_client.h"
#include "server.h"

#define T_CONTINUE EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE
#define T_IGNORE EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE
#define T_STOP EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN

struct world {
    struct config cfg;
    struct server *srv;
    struct rpc_client *client;
};

static int start_world(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    char ini[1024], err[512];
    snprintf(ini, sizeof ini,
             "[server]\nworkers = 2\n[lua]\npath = %s/scripts\ninit_module = example\n"
             "[log]\nlevel = error\n",
             EXHOOKD_SOURCE_DIR);
    cfg_defaults(&w->cfg);
    if (cfg_load_string(&w->cfg, ini, "test.ini", err, sizeof err) != 0)
        fail_msg("%s", err);
    log_set_level(w->cfg.log_level);
    char target[64];
    w->srv = fx_start_server(&w->cfg, NULL, target, sizeof target);
    w->client = rpc_client_open(target);
    *state = w;
    return 0;
}

static int stop_world(void **state)
{
    struct world *w = *state;
    rpc_client_close(w->client);
    srv_destroy(w->srv);
    cfg_free(&w->cfg);
    free(w);
    return 0;
}

/* ---- realistic request parts, as EMQX fills them ---------------------- */

static Emqx__Exhook__V3__RequestMeta meta = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__request_meta__descriptor), "emqx@127.0.0.1",
    "5.8.0", "EMQX", "emqxcl"};
static Emqx__Exhook__V3__BrokerInfo broker = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__broker_info__descriptor), "5.8.0", "EMQX",
    86400000, "2026-11-23T10:00:00Z"};
/* EMQX 4.x sends its uptime as text. */
static Emqx__Exhook__V1__BrokerInfo broker_v1 = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v1__broker_info__descriptor), "4.4.19", "EMQX",
    "3 hours, 5 minutes, 2 seconds", "2026-11-23 10:00:00"};
static Emqx__Exhook__V3__ConnInfo conninfo = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__conn_info__descriptor),
    "emqx@127.0.0.1", "c1", "normaluser", "10.0.0.7", 1883, "MQTT", "5", 60, 51234};

static Emqx__Exhook__V3__ClientInfo client_info(const char *username, int superuser)
{
    Emqx__Exhook__V3__ClientInfo ci = {
        PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__client_info__descriptor),
        "emqx@127.0.0.1", "c1", (char *)username, "secret", "10.0.0.7", 1883, "mqtt", "",
        superuser, 0, "", "", 51234};
    return ci;
}

static Emqx__Exhook__V3__Message make_message(const char *topic)
{
    Emqx__Exhook__V3__Message m = EMQX__EXHOOK__V3__MESSAGE__INIT;
    m.node = "emqx@127.0.0.1";
    m.id = "0005F8F4C1C3A8B0F445000011FF0001";
    m.qos = 1;
    m.from = "c1";
    m.topic = (char *)topic;
    m.payload.data = (uint8_t *)"21.5";
    m.payload.len = 4;
    m.timestamp = 1700000000123ULL;
    return m;
}

static void set_field(ProtobufCMessage *m, const char *name, const void *value)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f)
        memcpy((char *)m + f->offset, &value, sizeof value);
}

/* A request of the type of `hook` in interface generation `version`, with
 * every part a broker sends filled. (Other than BrokerInfo, v1's messages
 * are the same on the wire as v3's.) */
static ProtobufCMessage *make_request(int version, enum hook_id hook,
                                      Emqx__Exhook__V3__ClientInfo *ci,
                                      Emqx__Exhook__V3__Message *msg)
{
    const ProtobufCMessageDescriptor *d = hooks_request(hook, version);
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    d->message_init(m);
    set_field(m, "meta", &meta);
    if (version == 1)
        set_field(m, "broker", &broker_v1);
    else
        set_field(m, "broker", &broker);
    set_field(m, "conninfo", &conninfo);
    set_field(m, "clientinfo", ci);
    set_field(m, "message", msg);
    set_field(m, "reason", "normal");
    set_field(m, "result_code", "success");
    set_field(m, "topic", "t/1");
    return m;
}

static void path_of(char *buf, size_t len, int generation, enum hook_id hook)
{
    hooks_path(buf, len, hook, hook_generations[generation].version);
}

#define VERSION(g) (hook_generations[g].version)

static void call_ok(struct world *w, const char *path, const ProtobufCMessage *req,
                    struct rpc_result *r)
{
    assert_int_equal(rpc_call(w->client, path, req, r), 0);
    if (r->status != GRPC_STATUS_OK)
        fail_msg("%s answered %d: %s", path, r->status, r->details);
    assert_true(r->got_message);
}

static Emqx__Exhook__V3__ValuedResponse *call_valued(struct world *w, int gen, enum hook_id hook,
                                                     const ProtobufCMessage *req)
{
    char path[128];
    path_of(path, sizeof path, gen, hook);
    struct rpc_result r;
    call_ok(w, path, req, &r);
    Emqx__Exhook__V3__ValuedResponse *v =
        emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
    assert_non_null(v);
    rpc_result_free(&r);
    return v;
}

static void test_every_notification_rpc_answers_empty_success(void **state)
{
    struct world *w = *state;
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        for (int h = 0; h < HOOK_COUNT; h++) {
            if (hook_defs[h].kind != HOOK_KIND_NOTIFY)
                continue;
            Emqx__Exhook__V3__ClientInfo ci = client_info("normaluser", 0);
            Emqx__Exhook__V3__Message msg = make_message("demo/in");
            ProtobufCMessage *req = make_request(VERSION(g), (enum hook_id)h, &ci, &msg);
            char path[128];
            path_of(path, sizeof path, g, (enum hook_id)h);
            struct rpc_result r;
            call_ok(w, path, req, &r);
            assert_int_equal(r.reply_len, 0);
            rpc_result_free(&r);
            free(req);
        }
    }
}

static void test_provider_loaded_lists_the_example_hooks(void **state)
{
    struct world *w = *state;
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        ProtobufCMessage *req = make_request(VERSION(g), HOOK_PROVIDER_LOADED, NULL, NULL);
        char path[128];
        path_of(path, sizeof path, g, HOOK_PROVIDER_LOADED);
        struct rpc_result r;
        call_ok(w, path, req, &r);
        Emqx__Exhook__V3__LoadedResponse *lr =
            emqx__exhook__v3__loaded_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(lr);
        /* EMQX 4.x refuses the whole provider for a name it does not know. */
        const char *names[] = {"client.connected", "client.disconnected", "client.authenticate",
                               VERSION(g) == 1 ? "client.check_acl" : "client.authorize",
                               "message.publish"};
        assert_int_equal(lr->n_hooks, 5);
        for (size_t i = 0; i < 5; i++)
            assert_string_equal(lr->hooks[i]->name, names[i]);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(lr->hooks[i]->n_topics, 0);
        assert_int_equal(lr->hooks[4]->n_topics, 1);
        assert_string_equal(lr->hooks[4]->topics[0], "demo/#");
        emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);
        rpc_result_free(&r);
        free(req);
    }
}

/* An ordinary client must get in on a default broker of every generation:
 * EMQX 4.x keeps its own result on IGNORE, EMQX 5 refuses on IGNORE, so from
 * v2 on the example answers CONTINUE true. */
static void test_authenticate_refuses_baduser_admits_gooduser_and_ordinary_clients(void **state)
{
    struct world *w = *state;
    static const struct {
        const char *username;
        int v1_type, v1_has_value, type, has_value, value;
    } cases[] = {
        {"baduser", T_STOP, 1, T_STOP, 1, 0},
        {"gooduser", T_STOP, 1, T_STOP, 1, 1},
        {"normaluser", T_IGNORE, 0, T_CONTINUE, 1, 1},
        {"", T_IGNORE, 0, T_CONTINUE, 1, 1},
    };
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        bool v1 = VERSION(g) == 1;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            Emqx__Exhook__V3__ClientInfo ci = client_info(cases[i].username, 0);
            ProtobufCMessage *req = make_request(VERSION(g), HOOK_CLIENT_AUTHENTICATE, &ci, NULL);
            Emqx__Exhook__V3__ValuedResponse *v = call_valued(w, g, HOOK_CLIENT_AUTHENTICATE, req);
            assert_int_equal(v->type, v1 ? cases[i].v1_type : cases[i].type);
            if (v1 ? cases[i].v1_has_value : cases[i].has_value) {
                assert_int_equal(v->value_case,
                                 EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT);
                assert_int_equal(v->bool_result, cases[i].value);
            } else {
                assert_int_equal(v->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE__NOT_SET);
            }
            emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
            free(req);
        }
    }
}

static void test_authorize_denies_system_topic_publish_to_non_superusers(void **state)
{
    struct world *w = *state;
    static const struct {
        int superuser, subscribe;
        const char *topic;
        int type;
    } cases[] = {
        {0, 0, "$SYS/brokers", T_STOP},
        {1, 0, "$SYS/brokers", T_IGNORE},
        {0, 1, "$SYS/brokers", T_IGNORE},
        {0, 0, "demo/in", T_IGNORE},
    };
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            Emqx__Exhook__V3__ClientInfo ci = client_info("normaluser", cases[i].superuser);
            Emqx__Exhook__V3__ClientAuthorizeRequest *req =
                (void *)make_request(VERSION(g), HOOK_CLIENT_AUTHORIZE, &ci, NULL);
            req->topic = (char *)cases[i].topic;
            req->type = cases[i].subscribe
                            ? EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__SUBSCRIBE
                            : EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__PUBLISH;
            req->result = 1;
            Emqx__Exhook__V3__ValuedResponse *v =
                call_valued(w, g, HOOK_CLIENT_AUTHORIZE, &req->base);
            assert_int_equal(v->type, cases[i].type);
            if (cases[i].type == T_STOP)
                assert_false(v->bool_result);
            emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
            free(req);
        }
    }
}

static const char *header(const Emqx__Exhook__V3__Message *m, const char *key)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, key) == 0)
            return m->headers[i]->value;
    }
    return NULL;
}

static void test_publish_rewrites_demo_in_drops_demo_drop_ignores_others(void **state)
{
    struct world *w = *state;
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        Emqx__Exhook__V3__Message msg = make_message("demo/in");
        ProtobufCMessage *req = make_request(VERSION(g), HOOK_MESSAGE_PUBLISH, NULL, &msg);
        Emqx__Exhook__V3__ValuedResponse *v = call_valued(w, g, HOOK_MESSAGE_PUBLISH, req);
        assert_int_equal(v->type, T_CONTINUE);
        assert_int_equal(v->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE);
        assert_string_equal(v->message->topic, "demo/out");
        assert_int_equal(v->message->qos, 1);
        assert_int_equal(v->message->payload.len, 4);
        assert_memory_equal(v->message->payload.data, "21.5", 4);
        assert_string_equal(v->message->id, "0005F8F4C1C3A8B0F445000011FF0001");
        assert_string_equal(header(v->message, "x-exhookd"), "rewritten");
        assert_null(header(v->message, "allow_publish"));
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
        free(req);

        msg = make_message("demo/drop");
        req = make_request(VERSION(g), HOOK_MESSAGE_PUBLISH, NULL, &msg);
        v = call_valued(w, g, HOOK_MESSAGE_PUBLISH, req);
        assert_int_equal(v->type, T_STOP);
        assert_string_equal(v->message->topic, "demo/drop");
        assert_memory_equal(v->message->payload.data, "21.5", 4);
        assert_string_equal(header(v->message, "allow_publish"), "false");
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
        free(req);

        static const char *const untouched[] = {"demo/other", "sensors/1"};
        for (size_t i = 0; i < 2; i++) {
            msg = make_message(untouched[i]);
            req = make_request(VERSION(g), HOOK_MESSAGE_PUBLISH, NULL, &msg);
            v = call_valued(w, g, HOOK_MESSAGE_PUBLISH, req);
            assert_int_equal(v->type, T_IGNORE);
            emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
            free(req);
        }
    }
}

static void test_unknown_method_answers_unimplemented(void **state)
{
    struct world *w = *state;
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(w->client, "/emqx.exhook.v9.HookProvider/OnClientConnect", "",
                                  0, &r),
                     0);
    assert_int_equal(r.status, GRPC_STATUS_UNIMPLEMENTED);
    assert_string_equal(r.details, "Method not found: /emqx.exhook.v9.HookProvider/OnClientConnect");
    assert_false(r.got_message);
    rpc_result_free(&r);
}

static void test_malformed_request_answers_invalid_argument_without_message(void **state)
{
    struct world *w = *state;
    struct rpc_result r;
    assert_int_equal(rpc_call_raw(w->client, "/emqx.exhook.v3.HookProvider/OnMessagePublish",
                                  "\x0a\x7f\x01", 3, &r),
                     0);
    assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.details, "OnMessagePublish: malformed MessagePublishRequest (3 bytes)");
    assert_false(r.got_message);
    rpc_result_free(&r);

    /* and the server goes on serving */
    Emqx__Exhook__V3__ClientInfo ci = client_info("gooduser", 0);
    ProtobufCMessage *req = make_request(3, HOOK_CLIENT_AUTHENTICATE, &ci, NULL);
    Emqx__Exhook__V3__ValuedResponse *v = call_valued(w, 2, HOOK_CLIENT_AUTHENTICATE, req);
    assert_int_equal(v->type, T_STOP);
    assert_true(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    free(req);
}

/* grpc.health.v1.Health/Check for `service`: the status, and the serving
 * status when it answered OK. */
static grpc_status_code health(struct world *w, const char *service, int *serving)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    struct rpc_result r;
    assert_int_equal(rpc_call(w->client, "/grpc.health.v1.Health/Check", &req.base, &r), 0);
    grpc_status_code st = r.status;
    if (st == GRPC_STATUS_OK) {
        Grpc__Health__V1__HealthCheckResponse *h =
            grpc__health__v1__health_check_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(h);
        *serving = h->status;
        grpc__health__v1__health_check_response__free_unpacked(h, NULL);
    }
    rpc_result_free(&r);
    return st;
}

static void test_health_check_serves_the_server_and_each_generation(void **state)
{
    struct world *w = *state;
    static const char *const services[] = {"", "emqx.exhook.v1.HookProvider",
                                           "emqx.exhook.v2.HookProvider",
                                           "emqx.exhook.v3.HookProvider"};
    for (size_t i = 0; i < 4; i++) {
        int serving = -1;
        assert_int_equal(health(w, services[i], &serving), GRPC_STATUS_OK);
        assert_int_equal(serving, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    }
    int serving = -1;
    assert_int_equal(health(w, "emqx.exhook.v9.HookProvider", &serving), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(serving, -1);
}

static void test_calls_without_a_request_message_are_answered(void **state)
{
    struct world *w = *state;
    struct rpc_result r;
    /* a health check without a message asks about the whole server */
    assert_int_equal(rpc_call_raw(w->client, "/grpc.health.v1.Health/Check", NULL, 0, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    Grpc__Health__V1__HealthCheckResponse *h =
        grpc__health__v1__health_check_response__unpack(NULL, r.reply_len, r.reply);
    assert_non_null(h);
    assert_int_equal(h->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    grpc__health__v1__health_check_response__free_unpacked(h, NULL);
    rpc_result_free(&r);
    /* a hook call without one is refused */
    assert_int_equal(rpc_call_raw(w->client, "/emqx.exhook.v3.HookProvider/OnClientAuthenticate",
                                  NULL, 0, &r),
                     0);
    assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(r.details, "the call carried no request message");
    rpc_result_free(&r);
}

static void test_second_server_on_the_same_port_is_refused(void **state)
{
    struct world *w = *state;
    char listen[64], ini[512], err[512];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", srv_port(w->srv));
    snprintf(ini, sizeof ini, "[server]\nlisten = %s\n[lua]\npath = %s/scripts\ninit_module = example\n",
             listen, EXHOOKD_SOURCE_DIR);
    struct config cfg;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_string(&cfg, ini, "test.ini", err, sizeof err), 0);
    struct server *s = srv_create(&cfg, NULL, err, sizeof err);
    assert_null(s);
    char expected[256];
    snprintf(expected, sizeof expected,
             "cannot listen on %s: the address is in use or not an address of this host",
             listen);
    assert_string_equal(err, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_notification_rpc_answers_empty_success),
        cmocka_unit_test(test_provider_loaded_lists_the_example_hooks),
        cmocka_unit_test(test_authenticate_refuses_baduser_admits_gooduser_and_ordinary_clients),
        cmocka_unit_test(test_authorize_denies_system_topic_publish_to_non_superusers),
        cmocka_unit_test(test_publish_rewrites_demo_in_drops_demo_drop_ignores_others),
        cmocka_unit_test(test_unknown_method_answers_unimplemented),
        cmocka_unit_test(test_malformed_request_answers_invalid_argument_without_message),
        cmocka_unit_test(test_health_check_serves_the_server_and_each_generation),
        cmocka_unit_test(test_calls_without_a_request_message_are_answered),
        cmocka_unit_test(test_second_server_on_the_same_port_is_refused),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}
