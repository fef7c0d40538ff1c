#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "exhook.pb-c.h"
#include "webhook_body.h"
#include "webhook_cases.h"

#define ERR_LEN 512

static const char *const encoding_names[] = {"plain", "base64", "base62"};

/* A config from `webhook_keys`, the lines of a [webhook] section. */
static void load(struct config *cfg, const char *webhook_keys)
{
    char err[ERR_LEN] = "";
    char *text = malloc(strlen(webhook_keys) + 64);

    assert_non_null(text);
    sprintf(text, "[webhook]\nurl = http://127.0.0.1:8080/hook\n%s", webhook_keys);
    cfg_defaults(cfg);
    if (cfg_load_string(cfg, text, "t.ini", err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    free(text);
}

/* Renders `req` and checks the bodies are exactly `want` (n of them). */
static void assert_bodies(const struct config *cfg, enum hook_id hook, int version,
                          const uint8_t *req, size_t len, const char *const *want, size_t n)
{
    struct webhook_event ev;
    char err[ERR_LEN] = "";

    if (webhook_render(&cfg->webhook, hook, version, req, len, WEBHOOK_CASE_TS_MS, &ev, err,
                       sizeof err) != 0)
        fail_msg("%s v%d: %s", hook_defs[hook].name, version, err);
    if (ev.n_bodies != n)
        fail_msg("%s v%d: %zu bodies, expected %zu", hook_defs[hook].name, version, ev.n_bodies, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ev.bodies[i], want[i]);
        assert_int_equal(ev.lens[i], strlen(want[i]));
    }
    webhook_event_free(&ev);
}

/* ---- every event, from every generation ------------------------------- */

static void render_case(const struct webhook_case *c, int version, int meta)
{
    struct config cfg;
    char keys[2048];
    size_t len;

    snprintf(keys, sizeof keys, "body.encoding_of_payload_field = %s\n" WEBHOOK_CASE_RULES,
             encoding_names[c->encoding]);
    load(&cfg, keys);
    uint8_t *req = webhook_case_request(c->hook, version, meta, &len);
    assert_non_null(req);
    size_t n = version >= c->from_version ? c->n_bodies : 0;
    assert_bodies(&cfg, c->hook, version, req, len, c->bodies, n);

    /* The client whose order the events keep: the receiver's for
     * delivered and acked, the sender's or the client's otherwise. */
    struct webhook_event ev;
    char err[ERR_LEN];
    assert_int_equal(
        webhook_render(&cfg.webhook, c->hook, version, req, len, 0, &ev, err, sizeof err), 0);
    bool receiver = c->hook == HOOK_MESSAGE_DELIVERED || c->hook == HOOK_MESSAGE_ACKED;
    if (n > 0)
        assert_string_equal(ev.clientid, receiver ? "c2" : "c1");
    else
        assert_null(ev.clientid);
    webhook_event_free(&ev);
    free(req);
    cfg_free(&cfg);
}

static void test_every_event_from_every_generation(void **state)
{
    (void)state;
    for (size_t i = 0; i < webhook_case_count; i++) {
        for (int version = 1; version <= 3; version++)
            render_case(&webhook_cases[i], version, 1);
    }
}

/* EMQX 4.4 before 4.4.3 sends no meta: the node comes from the client or
 * the message, and the bodies are the same. */
static void test_node_without_meta_comes_from_the_request(void **state)
{
    (void)state;
    for (size_t i = 0; i < webhook_case_count; i++)
        render_case(&webhook_cases[i], 1, 0);
}

/* ---- values ----------------------------------------------------------- */

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    protobuf_c_message_pack(msg, buf);
    return buf;
}

static void test_missing_username_is_undefined(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, WEBHOOK_CASE_RULES);
    Emqx__Exhook__V3__ConnInfo ci = EMQX__EXHOOK__V3__CONN_INFO__INIT;
    ci.node = "n1";
    ci.clientid = "c9";
    ci.peerhost = "::1";
    ci.proto_ver = "4";
    Emqx__Exhook__V3__ClientConnectRequest connect = EMQX__EXHOOK__V3__CLIENT_CONNECT_REQUEST__INIT;
    connect.conninfo = &ci;
    uint8_t *req = pack(&connect.base, &len);
    const char *want_connect =
        "{\"action\":\"client_connect\",\"clientid\":\"c9\",\"ipaddress\":\"::1\","
        "\"keepalive\":0,\"node\":\"n1\",\"proto_ver\":4,\"username\":\"undefined\"}";
    assert_bodies(&cfg, HOOK_CLIENT_CONNECT, 2, req, len, &want_connect, 1);
    free(req);

    /* A message without the username header: from a client without one. */
    Emqx__Exhook__V3__Message m = EMQX__EXHOOK__V3__MESSAGE__INIT;
    m.node = "n1";
    m.from = "c9";
    m.topic = "a";
    Emqx__Exhook__V3__MessagePublishRequest publish =
        EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    publish.message = &m;
    req = pack(&publish.base, &len);
    const char *want_publish =
        "{\"action\":\"message_publish\",\"from_client_id\":\"c9\",\"from_username\":\"undefined\","
        "\"node\":\"n1\",\"payload\":\"\",\"qos\":0,\"retain\":false,\"topic\":\"a\",\"ts\":0}";
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 3, req, len, &want_publish, 1);
    free(req);
    cfg_free(&cfg);
}

/* A protocol version that is not a number (another protocol's) stays text. */
static void test_proto_ver_that_is_not_a_number_stays_text(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, WEBHOOK_CASE_RULES);
    Emqx__Exhook__V3__ConnInfo ci = EMQX__EXHOOK__V3__CONN_INFO__INIT;
    ci.node = "n1";
    ci.clientid = "c9";
    ci.username = "u9";
    ci.peerhost = "10.0.0.1";
    ci.proto_ver = "1.2";
    ci.keepalive = 30;
    Emqx__Exhook__V3__ClientConnackRequest q = EMQX__EXHOOK__V3__CLIENT_CONNACK_REQUEST__INIT;
    q.conninfo = &ci;
    q.result_code = "not_authorized";
    uint8_t *req = pack(&q.base, &len);
    const char *want =
        "{\"action\":\"client_connack\",\"clientid\":\"c9\","
        "\"conn_ack\":\"not_authorized\",\"ipaddress\":\"10.0.0.1\","
        "\"keepalive\":30,\"node\":\"n1\",\"proto_ver\":\"1.2\",\"username\":\"u9\"}";
    assert_bodies(&cfg, HOOK_CLIENT_CONNACK, 2, req, len, &want, 1);
    free(req);
    cfg_free(&cfg);
}

/* {shutdown,<word>} is sent as the word, as the plugin did; any other
 * reason as the broker wrote it. */
static void test_shutdown_reasons_are_unwrapped(void **state)
{
    static const struct {
        const char *in, *out;
    } reasons[] = {
        {"{shutdown,takenover}", "takenover"},
        {"{shutdown,tcp_closed}", "tcp_closed"},
        {"normal", "normal"},
        {"{shutdown,{error,closed}}", "{shutdown,{error,closed}}"},
        {"{shutdown,'Quoted'}", "{shutdown,'Quoted'}"},
        {"{shutdown,}", "{shutdown,}"},
        {"{shutdown,Caps}", "{shutdown,Caps}"},
    };
    struct config cfg;
    (void)state;

    load(&cfg, WEBHOOK_CASE_RULES);
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
        ci.node = "n1";
        ci.clientid = "c1";
        ci.username = "u1";
        Emqx__Exhook__V3__SessionTerminatedRequest q =
            EMQX__EXHOOK__V3__SESSION_TERMINATED_REQUEST__INIT;
        q.clientinfo = &ci;
        q.reason = (char *)reasons[i].in;
        size_t len;
        uint8_t *req = pack(&q.base, &len);
        char want[256];
        snprintf(want, sizeof want,
                 "{\"action\":\"session_terminated\",\"clientid\":\"c1\",\"node\":\"n1\","
                 "\"reason\":\"%s\",\"username\":\"u1\"}",
                 reasons[i].out);
        const char *w = want;
        assert_bodies(&cfg, HOOK_SESSION_TERMINATED, 2, req, len, &w, 1);
        free(req);
    }
    cfg_free(&cfg);
}

/* A publish of `payload` (`n` bytes) on topic `topic`, serialized. */
static uint8_t *publish_request(const char *topic, const void *payload, size_t n, size_t *len)
{
    Emqx__Exhook__V3__Message m = EMQX__EXHOOK__V3__MESSAGE__INIT;
    m.node = "n1";
    m.from = "c1";
    m.topic = (char *)topic;
    m.payload.data = (uint8_t *)payload;
    m.payload.len = n;
    m.timestamp = 5;
    Emqx__Exhook__V3__MessagePublishRequest q = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    q.message = &m;
    return pack(&q.base, len);
}

#define PUBLISH_BODY(topic, payload)                                                               \
    "{\"action\":\"message_publish\",\"from_client_id\":\"c1\",\"from_username\":\"undefined\","   \
    "\"node\":\"n1\",\"payload\":\"" payload "\",\"qos\":0,\"retain\":false,\"topic\":\"" topic    \
    "\",\"ts\":5}"

/* Bytes that are not UTF-8 become U+FFFD in plain; NUL and control
 * characters are escaped by the JSON encoder; base64 carries them all. */
static void test_payload_that_is_not_utf8(void **state)
{
    static const char payload[] = "a\xff"
                                  "b\0c\n\xe2\x82";
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n");
    uint8_t *req = publish_request("t", payload, sizeof payload - 1, &len);
    const char *plain = PUBLISH_BODY("t", "a\xef\xbf\xbd"
                                          "b\\u0000c\\n\xef\xbf\xbd\xef\xbf\xbd");
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 2, req, len, &plain, 1);
    cfg_free(&cfg);

    load(&cfg, "body.encoding_of_payload_field = base64\n"
               "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n");
    const char *b64 = PUBLISH_BODY("t", "Yf9iAGMK4oI=");
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 2, req, len, &b64, 1);
    free(req);
    cfg_free(&cfg);
}

/* emqx_base62:encode's output, worked out by hand from its definition:
 * 6-bit groups, the last one of 2 or 4 bits, 61..63 as "9A".."9C". */
static void test_base62_is_emqx_base62(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } vectors[] = {
        {"", 0, ""},
        {"a", 1, "YB"},
        {"ab", 2, "YWC"},
        {"abc", 3, "YWJj"},
        {"\xff\xff\xff", 3, "9C9C9C9C"},
        {"\xfb\xef\xbe", 3, "9B9B9B9B"},
        {"\xf4\x00", 2, "9AAA"},
        {"hello world", 11, "aGVsbG8gd29AybGE"},
        {"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10, "AAECAwQFBgcICB"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const unsigned char *in = (const unsigned char *)vectors[i].in;
        char out[64] = "";
        size_t len = codec_base62_len(in, vectors[i].n);
        assert_int_equal(len, strlen(vectors[i].out));
        codec_base62_encode(in, vectors[i].n, out);
        out[len] = '\0';
        assert_string_equal(out, vectors[i].out);
    }
}

/* ---- rules ------------------------------------------------------------ */

/* Each rule is a hook of its own, as in 4.x: a message two rules match is
 * posted twice, one no rule matches not at all. */
static void test_message_rules_match_by_topic(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, "rule.message.publish.1 = {\"action\": \"on_message_publish\", \"topic\": \"a/#\"}\n"
               "rule.message.publish.2 = {\"action\": \"on_message_publish\", \"topic\": \"a/+\"}\n"
               "rule.message.publish.3 = {\"action\": \"on_message_publish\", \"topic\": \"b\"}\n");
    uint8_t *req = publish_request("a/x", "p", 1, &len);
    const char *twice[] = {PUBLISH_BODY("a/x", "p"), PUBLISH_BODY("a/x", "p")};
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 2, req, len, twice, 2);
    free(req);

    req = publish_request("a/x/y", "p", 1, &len);
    const char *once = PUBLISH_BODY("a/x/y", "p");
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 2, req, len, &once, 1);
    free(req);

    req = publish_request("c", "p", 1, &len);
    assert_bodies(&cfg, HOOK_MESSAGE_PUBLISH, 2, req, len, NULL, 0);
    free(req);
    cfg_free(&cfg);
}

/* The plugin forwarded nothing of the broker's own topics. */
static void test_sys_topics_are_not_forwarded(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n");
    uint8_t *req = publish_request("$SYS/brokers", "p", 1, &len);
    struct webhook_event ev;
    char err[ERR_LEN];
    assert_int_equal(
        webhook_render(&cfg.webhook, HOOK_MESSAGE_PUBLISH, 2, req, len, 0, &ev, err, sizeof err),
        0);
    assert_int_equal(ev.n_bodies, 0);
    assert_null(ev.clientid);
    webhook_event_free(&ev);
    free(req);
    cfg_free(&cfg);
}

/* A subscription event's rule topic takes the filters it covers. */
static void test_subscription_rules_match_filters_they_cover(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg,
         "rule.client.subscribe.1 = {\"action\": \"on_client_subscribe\", \"topic\": \"t/#\"}\n"
         "rule.session.subscribed.1 = {\"action\": \"on_session_subscribed\", "
         "\"topic\": \"x/#\"}\n");
    uint8_t *req = webhook_case_request(HOOK_CLIENT_SUBSCRIBE, 3, 1, &len);
    const char *first = WEBHOOK_BODY_SUBSCRIBE_1;
    assert_bodies(&cfg, HOOK_CLIENT_SUBSCRIBE, 3, req, len, &first, 1);
    free(req);
    req = webhook_case_request(HOOK_SESSION_SUBSCRIBED, 3, 1, &len);
    assert_bodies(&cfg, HOOK_SESSION_SUBSCRIBED, 3, req, len, NULL, 0);
    free(req);
    cfg_free(&cfg);

    /* '#' covers both filters: rule by rule, filter by filter. */
    load(&cfg,
         "rule.client.subscribe.a = {\"action\": \"on_client_subscribe\", \"topic\": \"#\"}\n"
         "rule.client.subscribe.b = {\"action\": \"on_client_subscribe\", \"topic\": \"a/b\"}\n");
    req = webhook_case_request(HOOK_CLIENT_SUBSCRIBE, 2, 1, &len);
    const char *all[] = {WEBHOOK_BODY_SUBSCRIBE_1, WEBHOOK_BODY_SUBSCRIBE_2,
                         WEBHOOK_BODY_SUBSCRIBE_2};
    assert_bodies(&cfg, HOOK_CLIENT_SUBSCRIBE, 2, req, len, all, 3);
    free(req);
    cfg_free(&cfg);
}

static void test_event_without_rule_gives_no_body(void **state)
{
    struct config cfg;
    size_t len;
    (void)state;

    load(&cfg, "rule.client.connect.1 = {\"action\": \"on_client_connect\"}\n");
    uint8_t *req = webhook_case_request(HOOK_CLIENT_CONNACK, 2, 1, &len);
    assert_bodies(&cfg, HOOK_CLIENT_CONNACK, 2, req, len, NULL, 0);
    free(req);
    cfg_free(&cfg);
}

static void test_request_that_does_not_decode_is_an_error(void **state)
{
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    struct config cfg;
    struct webhook_event ev;
    char err[ERR_LEN] = "";
    (void)state;

    load(&cfg, WEBHOOK_CASE_RULES);
    assert_int_equal(webhook_render(&cfg.webhook, HOOK_CLIENT_CONNECT, 3, junk, sizeof junk, 0, &ev,
                                    err, sizeof err),
                     -1);
    assert_string_equal(err, "OnClientConnect: the request does not decode as "
                             "emqx.exhook.v3.ClientConnectRequest");
    assert_int_equal(ev.n_bodies, 0);
    webhook_event_free(&ev);
    cfg_free(&cfg);
}

/* Every prefix of every request, and each with one byte flipped: a
 * request that does not decode is an error, one that does gives bodies,
 * and nothing crashes or leaks (ASan). */
static void test_damaged_requests_are_errors_or_bodies(void **state)
{
    struct config cfg;
    char err[ERR_LEN];
    (void)state;

    load(&cfg, WEBHOOK_CASE_RULES);
    for (size_t i = 0; i < webhook_case_count; i++) {
        size_t len;
        uint8_t *req = webhook_case_request(webhook_cases[i].hook, 3, 1, &len);
        assert_non_null(req);
        for (size_t cut = 0; cut <= len; cut++) {
            for (int flip = 0; flip < 2; flip++) {
                struct webhook_event ev;
                if (flip && cut < len)
                    req[cut] ^= 0x5a;
                int rc = webhook_render(&cfg.webhook, webhook_cases[i].hook, 3, req,
                                        flip ? len : cut, 0, &ev, err, sizeof err);
                if (flip && cut < len)
                    req[cut] ^= 0x5a;
                assert_true(rc == 0 || rc == -1);
                if (rc == 0) {
                    for (size_t b = 0; b < ev.n_bodies; b++)
                        assert_int_equal(strlen(ev.bodies[b]), ev.lens[b]);
                } else {
                    assert_int_equal(ev.n_bodies, 0);
                }
                webhook_event_free(&ev);
            }
        }
        free(req);
    }
    cfg_free(&cfg);
}

/* ---- what the broker is asked for ------------------------------------- */

static void test_wants_nothing_while_off(void **state)
{
    struct config cfg;
    char err[ERR_LEN];
    bool every = false;
    (void)state;

    cfg_defaults(&cfg);
    assert_int_equal(
        cfg_load_string(&cfg, "[webhook]\n" WEBHOOK_CASE_RULES, "t.ini", err, sizeof err), 0);
    for (int h = 0; h < HOOK_COUNT; h++)
        assert_false(webhook_wants(&cfg.webhook, (enum hook_id)h, &every, &cfg.topics[h]));
    cfg_free(&cfg);
}

static void test_wants_the_events_of_its_rules(void **state)
{
    struct config cfg;
    bool every = false;
    (void)state;

    load(&cfg,
         "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n"
         "rule.client.subscribe.1 = {\"action\": \"on_client_subscribe\", \"topic\": \"a/#\"}\n"
         "rule.message.acked.1 = {\"action\": \"on_message_acked\"}\n");
    assert_true(webhook_wants(&cfg.webhook, HOOK_CLIENT_CONNECTED, &every, NULL));
    assert_true(every);
    /* Filters of a subscription event are exhookd's to apply, not the broker's. */
    every = false;
    assert_true(webhook_wants(&cfg.webhook, HOOK_CLIENT_SUBSCRIBE, &every, NULL));
    assert_true(every);
    every = false;
    assert_true(
        webhook_wants(&cfg.webhook, HOOK_MESSAGE_ACKED, &every, &cfg.topics[HOOK_MESSAGE_ACKED]));
    assert_true(every);
    assert_int_equal(cfg.topics[HOOK_MESSAGE_ACKED].count, 0);
    assert_false(webhook_wants(&cfg.webhook, HOOK_CLIENT_CONNECT, &every, NULL));
    assert_false(webhook_wants(&cfg.webhook, HOOK_MESSAGE_PUBLISH, &every,
                               &cfg.topics[HOOK_MESSAGE_PUBLISH]));
    cfg_free(&cfg);
}

/* The union of [topics] and the rules' filters, each once; one rule
 * without a topic takes every topic. */
static void test_wants_the_union_of_filters(void **state)
{
    struct config cfg;
    char err[ERR_LEN] = "";
    bool every = true;
    (void)state;

    cfg_defaults(&cfg);
    if (cfg_load_string(
            &cfg,
            "[topics]\nmessage.publish = a/#, b\n"
            "[webhook]\nurl = https://hooks.example.com/emqx\n"
            "rule.message.publish.1 = {\"action\": \"on_message_publish\", \"topic\": \"b\"}\n"
            "rule.message.publish.2 = {\"action\": \"on_message_publish\", \"topic\": \"c/+\"}\n"
            "rule.message.delivered.1 = {\"action\": \"on_message_delivered\", \"topic\": \"d\"}\n"
            "rule.message.delivered.2 = {\"action\": \"on_message_delivered\"}\n",
            "t.ini", err, sizeof err) != 0)
        fail_msg("%s", err);
    struct cfg_filters *f = &cfg.topics[HOOK_MESSAGE_PUBLISH];
    assert_true(webhook_wants(&cfg.webhook, HOOK_MESSAGE_PUBLISH, &every, f));
    assert_false(every);
    assert_int_equal(f->count, 3);
    assert_string_equal(f->items[0], "a/#");
    assert_string_equal(f->items[1], "b");
    assert_string_equal(f->items[2], "c/+");
    assert_true(webhook_wants(&cfg.webhook, HOOK_MESSAGE_DELIVERED, &every,
                              &cfg.topics[HOOK_MESSAGE_DELIVERED]));
    assert_true(every);
    assert_int_equal(cfg.topics[HOOK_MESSAGE_DELIVERED].count, 0);
    cfg_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_event_from_every_generation),
        cmocka_unit_test(test_node_without_meta_comes_from_the_request),
        cmocka_unit_test(test_missing_username_is_undefined),
        cmocka_unit_test(test_proto_ver_that_is_not_a_number_stays_text),
        cmocka_unit_test(test_shutdown_reasons_are_unwrapped),
        cmocka_unit_test(test_payload_that_is_not_utf8),
        cmocka_unit_test(test_base62_is_emqx_base62),
        cmocka_unit_test(test_message_rules_match_by_topic),
        cmocka_unit_test(test_sys_topics_are_not_forwarded),
        cmocka_unit_test(test_subscription_rules_match_filters_they_cover),
        cmocka_unit_test(test_event_without_rule_gives_no_body),
        cmocka_unit_test(test_request_that_does_not_decode_is_an_error),
        cmocka_unit_test(test_damaged_requests_are_errors_or_bodies),
        cmocka_unit_test(test_wants_nothing_while_off),
        cmocka_unit_test(test_wants_the_events_of_its_rules),
        cmocka_unit_test(test_wants_the_union_of_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
