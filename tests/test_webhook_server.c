/* The WebHook inside the server, over real gRPC: OnProviderLoaded lists
 * the union of the scripts' and the rules' hooks, a hook only the webhook
 * wants is answered without any script, and a receiver that takes 1 s per
 * POST does not slow the broker's calls. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "httpd_fixture.h"
#include "log.h"
#include "rpc_client.h"
#include "script.h"
#include "server.h"
#include "webhook.h"
#include "webhook_cases.h"
#include "webhook_rx.h"

#define PATH_V3(rpc) "/emqx.exhook.v3.HookProvider/" rpc

struct world {
    struct fixture fx;
    struct httpd rx;
    struct server *srv;
    struct rpc_client *client;
    char target[64];
};

static struct world *world_start(const char *script, const char *webhook_keys)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    fx_write(&w->fx, "m.lua", script);
    httpd_start(&w->rx, w->fx.dir, "rx", false);
    char extra[4096];
    snprintf(extra, sizeof extra,
             "[server]\nworkers = 2\n[log]\nlevel = error\n"
             "[webhook]\nurl = http://127.0.0.1:%d/hook\n%s",
             w->rx.port, webhook_keys);
    fx_configure(&w->fx, "m", extra);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    w->client = rpc_client_open(w->target);
    return w;
}

/* The scripts handle message.publish on a/# only; the rules forward
 * client.connected, and message.publish on b/+. */
static int setup(void **state)
{
    *state = world_start("local M = {}\n"
                         "M.topics = { [\"message.publish\"] = { \"a/#\" } }\n"
                         "function M.on_message_publish(message) return nil end\n"
                         "return M\n",
                         "pool_size = 8\n"
                         "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n"
                         "rule.message.publish.1 = {\"action\": \"on_message_publish\", "
                         "\"topic\": \"b/+\"}\n");
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    rpc_client_close(w->client);
    srv_destroy(w->srv);
    httpd_stop(&w->rx);
    fx_free(&w->fx);
    free(w);
    return 0;
}

static Emqx__Exhook__V3__RequestMeta meta = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__request_meta__descriptor), "emqx@127.0.0.1", "5.8.0",
    "EMQX", "emqxcl"};

/* message.publish from `from` on `topic`: its status and how long the
 * call took, in ms. */
static double publish(struct world *w, const char *from, const char *topic, const char *payload,
                      Emqx__Exhook__V3__ValuedResponse__ResponsedType *type)
{
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.node = "emqx@127.0.0.1";
    msg.id = "0005F8F0A1B2C3D4";
    msg.qos = 1;
    msg.from = (char *)from;
    msg.topic = (char *)topic;
    msg.payload = (ProtobufCBinaryData){strlen(payload), (uint8_t *)payload};
    msg.timestamp = 1764756000000;
    Emqx__Exhook__V3__MessagePublishRequest req = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    req.message = &msg;
    req.meta = &meta;
    struct rpc_result r;
    int64_t t0 = script_now_ns();
    assert_int_equal(rpc_call(w->client, PATH_V3("OnMessagePublish"), &req.base, &r), 0);
    double ms = (double)(script_now_ns() - t0) / 1e6;
    assert_int_equal(r.status, GRPC_STATUS_OK);
    Emqx__Exhook__V3__ValuedResponse *v =
        emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
    assert_non_null(v);
    *type = v->type;
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    rpc_result_free(&r);
    return ms;
}

static void test_loaded_lists_scripts_and_rules(void **state)
{
    struct world *w = *state;
    Emqx__Exhook__V3__BrokerInfo broker = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    broker.version = "5.8.0";
    Emqx__Exhook__V3__ProviderLoadedRequest req = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    req.broker = &broker;
    struct rpc_result r;
    assert_int_equal(rpc_call(w->client, PATH_V3("OnProviderLoaded"), &req.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    Emqx__Exhook__V3__LoadedResponse *lr =
        emqx__exhook__v3__loaded_response__unpack(NULL, r.reply_len, r.reply);
    assert_non_null(lr);
    assert_int_equal(lr->n_hooks, 2);
    assert_string_equal(lr->hooks[0]->name, "client.connected");
    assert_int_equal(lr->hooks[0]->n_topics, 0);
    assert_string_equal(lr->hooks[1]->name, "message.publish");
    assert_int_equal(lr->hooks[1]->n_topics, 2);
    assert_string_equal(lr->hooks[1]->topics[0], "b/+");
    assert_string_equal(lr->hooks[1]->topics[1], "a/#");
    emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);
    rpc_result_free(&r);
}

/* client.connected: no script handles it, the webhook forwards it. */
static void test_webhook_only_hook_runs_no_script(void **state)
{
    struct world *w = *state;
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.node = "emqx@127.0.0.1";
    ci.clientid = "only-webhook";
    ci.username = "u";
    Emqx__Exhook__V3__ClientConnectedRequest req = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    req.clientinfo = &ci;
    req.meta = &meta;
    struct rpc_result r;
    assert_int_equal(rpc_call(w->client, PATH_V3("OnClientConnected"), &req.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_int_equal(r.reply_len, 0); /* EmptySuccess */
    rpc_result_free(&r);
    char *text = rx_wait_recorded(w->rx.port, 1, 10);
    assert_string_equal(text, "only-webhook -\n");
    free(text);
    /* Not a stale registration: the webhook handles it. */
    size_t len;
    char *metrics = srv_metrics_text(w->srv, &len);
    assert_null(strstr(metrics, "exhookd_unhandled_calls_total{"));
    free(metrics);
}

/* A receiver that takes 1 s per POST: the calls are answered at once,
 * and every event arrives later. */
static void test_slow_receiver_does_not_slow_the_calls(void **state)
{
    struct world *w = *state;
    rx_mode(w->rx.port, 200, 1000);
    double worst = 0;
    for (int i = 0; i < 16; i++) {
        char from[16], payload[16];
        snprintf(from, sizeof from, "c%d", i % 8);
        snprintf(payload, sizeof payload, "%d", i);
        Emqx__Exhook__V3__ValuedResponse__ResponsedType type;
        /* b/1: only the webhook; a/1: only the script. */
        double ms = publish(w, from, i % 2 ? "a/1" : "b/1", payload, &type);
        assert_int_equal(type, EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE);
        worst = ms > worst ? ms : worst;
    }
    /* Generous (a call takes well under a millisecond here; a sanitizer
     * build on a busy machine can take far longer), and still below the
     * 1 s a call would take if it waited for a POST. */
    assert_true(worst < 900);
    /* The even ones, on b/1: 8 POSTs of 1 s, 8 at once. */
    char *text = rx_wait_recorded(w->rx.port, 8, 30);
    assert_int_equal(rx_count_lines(text), 8);
    for (int i = 0; i < 16; i += 2) {
        char line[32];
        snprintf(line, sizeof line, "c%d %d\n", i % 8, i);
        assert_non_null(strstr(text, line));
    }
    free(text);
}

/* A script rewrites the message: the broker gets the new one, the
 * receiver the one the broker sent. */
static void test_publish_is_forwarded_as_the_broker_sent_it(void **state)
{
    (void)state;
    struct world *w =
        world_start("local M = {}\n"
                    "function M.on_message_publish(message)\n"
                    "  message.payload = 'rewritten'\n"
                    "  return message\n"
                    "end\n"
                    "return M\n",
                    "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n");
    Emqx__Exhook__V3__ValuedResponse__ResponsedType type;
    publish(w, "c9", "any/topic", "original", &type);
    assert_int_equal(type, EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE);
    char *text = rx_wait_recorded(w->rx.port, 1, 10);
    assert_string_equal(text, "c9 original\n");
    free(text);
    teardown((void **)&w);
}

/* connected_at / disconnected_at: the time the call arrived, between
 * `before` and `after`; replaced in `body` by the cases' WEBHOOK_CASE_TS_MS
 * so that the body compares whole. */
static void fix_arrival_time(char *body, int64_t before, int64_t after)
{
    static const char *const fields[] = {"\"connected_at\":", "\"disconnected_at\":"};
    for (int i = 0; i < 2; i++) {
        char *at = strstr(body, fields[i]);
        if (!at)
            continue;
        at += strlen(fields[i]);
        char *end;
        long long ts = strtoll(at, &end, 10);
        assert_true(ts >= before && ts <= after);
        char rest[2048];
        snprintf(rest, sizeof rest, "%s", end);
        sprintf(at, "%lld%s", (long long)WEBHOOK_CASE_TS_MS, rest);
    }
}

/* Every event, from brokers of every generation (and a 4.4 broker before
 * 4.4.3, without meta), as posted to the receiver, in each payload
 * encoding: exactly the 4.x plugin's bodies. */
static void test_every_body_end_to_end(void **state)
{
    (void)state;
    static const char *const encodings[] = {"plain", "base64", "base62"};
    static const int variants[][2] = {{1, 0}, {1, 1}, {2, 1}, {3, 1}};
    for (int enc = 0; enc < 3; enc++) {
        char keys[2048];
        snprintf(keys, sizeof keys, "body.encoding_of_payload_field = %s\n%s", encodings[enc],
                 WEBHOOK_CASE_RULES);
        struct world *w = world_start("return {}\n", keys);
        size_t seen = 0;
        for (size_t k = 0; k < webhook_case_count; k++) {
            const struct webhook_case *c = &webhook_cases[k];
            if ((int)c->encoding != enc)
                continue;
            for (int v = 0; v < 4; v++) {
                size_t len;
                uint8_t *req = webhook_case_request(c->hook, variants[v][0], variants[v][1], &len);
                char path[128];
                hooks_path(path, sizeof path, c->hook, variants[v][0]);
                struct rpc_result r;
                int64_t before = webhook_now_ms();
                assert_int_equal(rpc_call_raw(w->client, path, req, len, &r), 0);
                int64_t after = webhook_now_ms();
                assert_int_equal(r.status, GRPC_STATUS_OK);
                if (c->hook == HOOK_MESSAGE_PUBLISH) {
                    /* No script: the broker goes on with its message. */
                    Emqx__Exhook__V3__ValuedResponse *vr =
                        emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
                    assert_non_null(vr);
                    assert_int_equal(vr->type,
                                     EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE);
                    emqx__exhook__v3__valued_response__free_unpacked(vr, NULL);
                }
                rpc_result_free(&r);
                free(req);
                /* None from a generation that does not send what it needs:
                 * one posted anyway would show as the next event's body. */
                size_t n = variants[v][0] >= c->from_version ? c->n_bodies : 0;
                free(rx_wait_recorded(w->rx.port, seen + n, 10));
                for (size_t b = 0; b < n; b++, seen++) {
                    char at[64];
                    snprintf(at, sizeof at, "/recorded/raw/%zu", seen);
                    char *body = rx_request(w->rx.port, "GET", at, NULL);
                    char fixed[4096];
                    snprintf(fixed, sizeof fixed, "%s", body);
                    fix_arrival_time(fixed, before, after);
                    if (strcmp(fixed, c->bodies[b]) != 0)
                        fail_msg("%s from a v%d broker%s, %s: got\n%s\nwant\n%s",
                                 hook_defs[c->hook].name, variants[v][0],
                                 variants[v][1] ? "" : " without meta", encodings[enc], body,
                                 c->bodies[b]);
                    free(body);
                }
            }
        }
        assert_true(seen > 0);
        usleep(200000);
        char *all = rx_request(w->rx.port, "GET", "/recorded", NULL);
        assert_int_equal(rx_count_lines(all), seen);
        free(all);
        teardown((void **)&w);
    }
}

/* The hooks OnProviderLoaded (v3) lists, "name [topics], ...". */
static void loaded_hooks(struct world *w, char *buf, size_t len)
{
    Emqx__Exhook__V3__BrokerInfo broker = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    Emqx__Exhook__V3__ProviderLoadedRequest req = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    req.broker = &broker;
    struct rpc_result r;
    assert_int_equal(rpc_call(w->client, PATH_V3("OnProviderLoaded"), &req.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    Emqx__Exhook__V3__LoadedResponse *lr =
        emqx__exhook__v3__loaded_response__unpack(NULL, r.reply_len, r.reply);
    assert_non_null(lr);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < lr->n_hooks; i++) {
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", lr->hooks[i]->name);
        for (size_t t = 0; t < lr->hooks[i]->n_topics; t++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s%s", t ? ", " : " [",
                                  lr->hooks[i]->topics[t],
                                  t + 1 == lr->hooks[i]->n_topics ? "]" : "");
    }
    emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);
    rpc_result_free(&r);
}

static void connected(struct world *w, const char *clientid)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.node = "emqx@127.0.0.1";
    ci.clientid = (char *)clientid;
    Emqx__Exhook__V3__ClientConnectedRequest req = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    req.clientinfo = &ci;
    req.meta = &meta;
    struct rpc_result r;
    assert_int_equal(rpc_call(w->client, PATH_V3("OnClientConnected"), &req.base, &r), 0);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
}

static void write_config(struct world *w, const char *path, const char *webhook_keys)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[server]\nworkers = 2\n[log]\nlevel = error\n[lua]\npath = %s\ninit_module = m\n"
             "[webhook]\nurl = http://127.0.0.1:%d/hook\npool_size = 1\n%s",
             w->fx.dir, w->rx.port, webhook_keys);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A reload reads [webhook] again: new rules change what OnProviderLoaded
 * lists and new headers what is posted; a bad rule stops the reload and
 * the running rules stay; the queue goes on across both. */
static void test_reload_rereads_the_rules_and_keeps_the_queue(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    fx_write(&w->fx, "m.lua", "return {}\n");
    httpd_start(&w->rx, w->fx.dir, "rx", false);
    char path[400], err[512], hooks[512];
    snprintf(path, sizeof path, "%s/exhook.ini", w->fx.dir);
    write_config(w, path,
                 "headers.X-Gen = one\n"
                 "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n");
    if (cfg_load(&w->fx.cfg, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, path, w->target, sizeof w->target);
    w->client = rpc_client_open(w->target);
    loaded_hooks(w, hooks, sizeof hooks);
    assert_string_equal(hooks, "client.connected");

    /* Five events queued behind a receiver taking 300 ms each... */
    rx_mode(w->rx.port, 200, 300);
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "q%d", i);
        connected(w, id);
    }
    /* ...while the rules change. */
    write_config(w, path,
                 "headers.X-Gen = two\n"
                 "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n"
                 "rule.message.publish.1 = {\"action\": \"on_message_publish\", "
                 "\"topic\": \"x/#\"}\n");
    loaded_hooks(w, hooks, sizeof hooks); /* the broker's load reloads */
    assert_string_equal(hooks, "client.connected, message.publish [x/#]");
    write_config(w, path, "rule.client.nonsense.1 = {\"action\": \"on_client_nonsense\"}\n");
    assert_int_equal(srv_reload(w->srv), -1);
    loaded_hooks(w, hooks, sizeof hooks);
    assert_string_equal(hooks, "client.connected, message.publish [x/#]");
    rx_mode(w->rx.port, 200, 0);
    connected(w, "after");
    char *text = rx_wait_recorded(w->rx.port, 6, 20);
    assert_string_equal(text, "q0 -\nq1 -\nq2 -\nq3 -\nq4 -\nafter -\n");
    free(text);
    char *gen = rx_request(w->rx.port, "GET", "/recorded/header/5/x-gen", NULL);
    assert_string_equal(gen, "two");
    free(gen);
    teardown((void **)&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loaded_lists_scripts_and_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_only_hook_runs_no_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_receiver_does_not_slow_the_calls, setup,
                                        teardown),
        cmocka_unit_test(test_publish_is_forwarded_as_the_broker_sent_it),
        cmocka_unit_test(test_every_body_end_to_end),
        cmocka_unit_test(test_reload_rereads_the_rules_and_keeps_the_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
