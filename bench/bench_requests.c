/* bench_requests: what exhook-bench sends and what it must get back. The
 * scenarios (which calls, for which users and topics), the request bodies
 * filled like an EMQX broker fills them, and the check of every reply against
 * the decisions of scripts/example.lua, so that a fast wrong answer is never
 * counted as a good one. */

#define _GNU_SOURCE
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_requests.h"
#include "exhook.pb-c.h"

#define PAYLOAD_LEN 200

typedef Emqx__Exhook__V3__ValuedResponse valued;
#define VT(x) EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__##x
#define AUTHZ(x) EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__##x

/* ---- scenarios ---------------------------------------------------------- */

static const char *const expect_text[] = {
    [BREQ_EMPTY] = "EmptySuccess (0 bytes)",
    [BREQ_IGNORE] = "IGNORE with no value",
    [BREQ_ALLOW] = "STOP_AND_RETURN bool_result=true",
    [BREQ_DENY] = "STOP_AND_RETURN bool_result=false",
    [BREQ_ADMIT] = "CONTINUE bool_result=true",
    [BREQ_REWRITE] = ("CONTINUE message{topic=demo/out qos=1 payload unchanged "
                      "x-exhookd=rewritten}"),
    [BREQ_DROP] = "STOP_AND_RETURN message{topic=demo/drop allow_publish=false}",
};

static const struct breq_step authenticate_steps[] = {
    {HOOK_CLIENT_AUTHENTICATE, "gooduser", 0, NULL, BREQ_ALLOW, "gooduser"},
    {HOOK_CLIENT_AUTHENTICATE, "baduser", 0, NULL, BREQ_DENY, "baduser"},
    {HOOK_CLIENT_AUTHENTICATE, "normaluser", 0, NULL, BREQ_ADMIT, "normaluser"},
};
static const struct breq_step authorize_steps[] = {
    {HOOK_CLIENT_AUTHORIZE, "normaluser", AUTHZ(PUBLISH), "$SYS/brokers", BREQ_DENY,
     "publish $SYS/brokers"},
    {HOOK_CLIENT_AUTHORIZE, "normaluser", AUTHZ(PUBLISH), "demo/in", BREQ_IGNORE,
     "publish demo/in"},
    {HOOK_CLIENT_AUTHORIZE, "normaluser", AUTHZ(SUBSCRIBE), "$SYS/brokers", BREQ_IGNORE,
     "subscribe $SYS/brokers"},
};
static const struct breq_step publish_steps[] = {
    {HOOK_MESSAGE_PUBLISH, "normaluser", 0, "demo/in", BREQ_REWRITE, "demo/in"},
    {HOOK_MESSAGE_PUBLISH, "normaluser", 0, "demo/drop", BREQ_DROP, "demo/drop"},
    {HOOK_MESSAGE_PUBLISH, "normaluser", 0, "demo/other", BREQ_IGNORE, "demo/other"},
};
static const struct breq_step connected_steps[] = {
    {HOOK_CLIENT_CONNECTED, "normaluser", 0, NULL, BREQ_EMPTY, "normaluser"},
};
/* One client's life, in the order a broker calls the hooks. */
static const struct breq_step mix_steps[] = {
    {HOOK_CLIENT_CONNECT, "normaluser", 0, NULL, BREQ_EMPTY, "connect"},
    {HOOK_CLIENT_AUTHENTICATE, "normaluser", 0, NULL, BREQ_ADMIT, "normaluser"},
    {HOOK_SESSION_CREATED, "normaluser", 0, NULL, BREQ_EMPTY, "session.created"},
    {HOOK_CLIENT_CONNECTED, "normaluser", 0, NULL, BREQ_EMPTY, "connected"},
    {HOOK_CLIENT_CONNACK, "normaluser", 0, NULL, BREQ_EMPTY, "connack"},
    {HOOK_CLIENT_AUTHORIZE, "normaluser", AUTHZ(SUBSCRIBE), "demo/in", BREQ_IGNORE,
     "subscribe demo/in"},
    {HOOK_CLIENT_SUBSCRIBE, "normaluser", 0, "demo/in", BREQ_EMPTY, "subscribe"},
    {HOOK_SESSION_SUBSCRIBED, "normaluser", 0, "demo/in", BREQ_EMPTY, "session.subscribed"},
    {HOOK_CLIENT_AUTHORIZE, "normaluser", AUTHZ(PUBLISH), "demo/in", BREQ_IGNORE,
     "publish demo/in"},
    {HOOK_MESSAGE_PUBLISH, "normaluser", 0, "demo/in", BREQ_REWRITE, "demo/in"},
    {HOOK_MESSAGE_DELIVERED, "normaluser", 0, "demo/out", BREQ_EMPTY, "delivered"},
    {HOOK_MESSAGE_ACKED, "normaluser", 0, "demo/out", BREQ_EMPTY, "acked"},
    {HOOK_CLIENT_DISCONNECTED, "normaluser", 0, NULL, BREQ_EMPTY, "disconnected"},
    {HOOK_SESSION_TERMINATED, "normaluser", 0, NULL, BREQ_EMPTY, "session.terminated"},
};

#define SCENARIO(name, seq, steps)                                                                 \
    {                                                                                              \
        name, seq, sizeof steps / sizeof steps[0], steps                                           \
    }
static const struct breq_scenario scenarios[] = {
    SCENARIO("authenticate", false, authenticate_steps),
    SCENARIO("authorize", false, authorize_steps),
    SCENARIO("publish", false, publish_steps),
    SCENARIO("connected", false, connected_steps),
    SCENARIO("mix", true, mix_steps),
};
#define MAX_STEPS (sizeof mix_steps / sizeof mix_steps[0])

const struct breq_scenario *const breq_default = &scenarios[0];

const struct breq_scenario *breq_find(const char *name)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(name, scenarios[i].name) == 0)
            return &scenarios[i];
    return NULL;
}

static const struct breq_scenario *g_sc;        /* the scenario breq_build packed */
static int g_version;                           /* and the generation it packed for */
static grpc_slice g_body[MAX_STEPS][BREQ_NIDS]; /* every distinct request, packed once */
static uint8_t g_payload[PAYLOAD_LEN];

/* ---- request bodies ----------------------------------------------------- */

struct ident {
    char clientid[24];
    char msgid[40];
    uint32_t peerport;
};

static grpc_slice pack_slice(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    return s;
}

#define PACK(type, TYPE, ...)                                                                      \
    do {                                                                                           \
        Emqx__Exhook__V3__##type r = EMQX__EXHOOK__V3__##TYPE##__INIT;                             \
        __VA_ARGS__;                                                                               \
        return pack_slice(&r.base);                                                                \
    } while (0)

/* The request of `st` as a broker of generation `version` would send it for
 * the client `id`. */
static grpc_slice build_body(const struct breq_step *st, int version, const struct ident *id,
                             uint64_t ts_ms)
{
    bool v1 = version == 1;
    Emqx__Exhook__V3__RequestMeta meta = EMQX__EXHOOK__V3__REQUEST_META__INIT;
    meta.node = "emqx@127.0.0.1";
    meta.version = "5.8.0";
    meta.sysdescr = "EMQX";
    meta.cluster_name = "emqxcl";

    /* EMQX 4.x has no peerport in ClientInfo/ConnInfo (field 13/9 came with
     * 5.4), so a v1 body leaves it out like a real 4.x broker. */
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.node = "emqx@127.0.0.1";
    ci.clientid = (char *)id->clientid;
    ci.username = (char *)st->user;
    ci.password = "bench-secret";
    ci.peerhost = "10.0.3.17";
    ci.sockport = 1883;
    ci.peerport = v1 ? 0 : id->peerport;
    ci.protocol = "mqtt";
    ci.mountpoint = "";
    ci.is_superuser = false;
    ci.anonymous = false;
    ci.cn = "";
    ci.dn = "";

    Emqx__Exhook__V3__ConnInfo conn = EMQX__EXHOOK__V3__CONN_INFO__INIT;
    conn.node = ci.node;
    conn.clientid = ci.clientid;
    conn.username = ci.username;
    conn.peerhost = ci.peerhost;
    conn.sockport = 1883;
    conn.proto_name = "MQTT";
    conn.proto_ver = "4"; /* MQTT 3.1.1: no properties to send */
    conn.keepalive = 60;
    conn.peerport = ci.peerport;

    Emqx__Exhook__V3__Message__HeadersEntry hdr[3] = {
        EMQX__EXHOOK__V3__MESSAGE__HEADERS_ENTRY__INIT,
        EMQX__EXHOOK__V3__MESSAGE__HEADERS_ENTRY__INIT,
        EMQX__EXHOOK__V3__MESSAGE__HEADERS_ENTRY__INIT};
    hdr[0].key = "username", hdr[0].value = ci.username;
    hdr[1].key = "peerhost", hdr[1].value = ci.peerhost;
    hdr[2].key = "protocol", hdr[2].value = ci.protocol;
    Emqx__Exhook__V3__Message__HeadersEntry *hp[3] = {&hdr[0], &hdr[1], &hdr[2]};
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.node = ci.node;
    msg.id = (char *)id->msgid;
    msg.qos = 1;
    msg.from = ci.clientid;
    msg.topic = (char *)(st->topic ? st->topic : "");
    msg.payload.data = g_payload;
    msg.payload.len = sizeof g_payload;
    msg.timestamp = ts_ms;
    msg.n_headers = 3;
    msg.headers = hp;

    /* 4.x sends a filter's QoS in TopicFilter.qos, 5.4+ in subopts. */
    Emqx__Exhook__V3__SubOpts so = EMQX__EXHOOK__V3__SUB_OPTS__INIT;
    so.qos = 1;
    Emqx__Exhook__V3__TopicFilter tf = EMQX__EXHOOK__V3__TOPIC_FILTER__INIT;
    tf.name = msg.topic;
    if (v1)
        tf.qos = 1;
    else
        tf.subopts = &so;
    Emqx__Exhook__V3__TopicFilter *tfp = &tf;

    switch (st->hook) {
    case HOOK_CLIENT_CONNECT:
        PACK(ClientConnectRequest, CLIENT_CONNECT_REQUEST, r.conninfo = &conn, r.meta = &meta);
    case HOOK_CLIENT_CONNACK:
        PACK(ClientConnackRequest, CLIENT_CONNACK_REQUEST, r.conninfo = &conn,
             r.result_code = "success", r.meta = &meta);
    case HOOK_CLIENT_CONNECTED:
        PACK(ClientConnectedRequest, CLIENT_CONNECTED_REQUEST, r.clientinfo = &ci, r.meta = &meta);
    case HOOK_CLIENT_DISCONNECTED:
        PACK(ClientDisconnectedRequest, CLIENT_DISCONNECTED_REQUEST, r.clientinfo = &ci,
             r.reason = "normal", r.meta = &meta);
    case HOOK_CLIENT_AUTHENTICATE:
        PACK(ClientAuthenticateRequest, CLIENT_AUTHENTICATE_REQUEST, r.clientinfo = &ci,
             r.result = false, r.meta = &meta);
    case HOOK_CLIENT_AUTHORIZE:
        PACK(ClientAuthorizeRequest, CLIENT_AUTHORIZE_REQUEST, r.clientinfo = &ci,
             r.type = st->action, r.topic = msg.topic, r.result = true, r.meta = &meta);
    case HOOK_CLIENT_SUBSCRIBE:
        PACK(ClientSubscribeRequest, CLIENT_SUBSCRIBE_REQUEST, r.clientinfo = &ci,
             r.n_topic_filters = 1, r.topic_filters = &tfp, r.meta = &meta);
    case HOOK_SESSION_CREATED:
        PACK(SessionCreatedRequest, SESSION_CREATED_REQUEST, r.clientinfo = &ci, r.meta = &meta);
    case HOOK_SESSION_SUBSCRIBED:
        PACK(SessionSubscribedRequest, SESSION_SUBSCRIBED_REQUEST, r.clientinfo = &ci,
             r.topic = msg.topic, r.subopts = &so, r.meta = &meta);
    case HOOK_SESSION_TERMINATED:
        PACK(SessionTerminatedRequest, SESSION_TERMINATED_REQUEST, r.clientinfo = &ci,
             r.reason = "normal", r.meta = &meta);
    case HOOK_MESSAGE_PUBLISH:
        PACK(MessagePublishRequest, MESSAGE_PUBLISH_REQUEST, r.message = &msg, r.meta = &meta);
    case HOOK_MESSAGE_DELIVERED:
        PACK(MessageDeliveredRequest, MESSAGE_DELIVERED_REQUEST, r.clientinfo = &ci,
             r.message = &msg, r.meta = &meta);
    case HOOK_MESSAGE_ACKED:
        PACK(MessageAckedRequest, MESSAGE_ACKED_REQUEST, r.clientinfo = &ci, r.message = &msg,
             r.meta = &meta);
    /* The rpcs no scenario calls, for breq_request. BrokerInfo.uptime stays
     * 0, so the body decodes as v1's text uptime too. */
    case HOOK_PROVIDER_LOADED: {
        Emqx__Exhook__V3__BrokerInfo bi = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
        bi.version = meta.version;
        bi.sysdescr = meta.sysdescr;
        bi.datetime = "2026-01-01 00:00:00";
        PACK(ProviderLoadedRequest, PROVIDER_LOADED_REQUEST, r.broker = &bi, r.meta = &meta);
    }
    case HOOK_PROVIDER_UNLOADED:
        PACK(ProviderUnloadedRequest, PROVIDER_UNLOADED_REQUEST, r.meta = &meta);
    case HOOK_CLIENT_UNSUBSCRIBE:
        PACK(ClientUnsubscribeRequest, CLIENT_UNSUBSCRIBE_REQUEST, r.clientinfo = &ci,
             r.n_topic_filters = 1, r.topic_filters = &tfp, r.meta = &meta);
    case HOOK_SESSION_UNSUBSCRIBED:
        PACK(SessionUnsubscribedRequest, SESSION_UNSUBSCRIBED_REQUEST, r.clientinfo = &ci,
             r.topic = msg.topic, r.meta = &meta);
    case HOOK_SESSION_RESUMED:
        PACK(SessionResumedRequest, SESSION_RESUMED_REQUEST, r.clientinfo = &ci, r.meta = &meta);
    case HOOK_SESSION_DISCARDED:
        PACK(SessionDiscardedRequest, SESSION_DISCARDED_REQUEST, r.clientinfo = &ci,
             r.meta = &meta);
    case HOOK_SESSION_TAKENOVER:
        PACK(SessionTakenoverRequest, SESSION_TAKENOVER_REQUEST, r.clientinfo = &ci,
             r.meta = &meta);
    case HOOK_MESSAGE_DROPPED:
        PACK(MessageDroppedRequest, MESSAGE_DROPPED_REQUEST, r.message = &msg,
             r.reason = "no_subscribers", r.meta = &meta);
    default:
        fprintf(stderr, "exhook-bench: no hook number %d\n", (int)st->hook);
        abort();
    }
}

/* A JSON-looking payload with a binary tail: the rewrite must keep every
 * byte, NULs and high bytes included. */
static void fill_payload(void)
{
    static const char head[] = "{\"sensor\":\"bench\",\"unit\":\"C\",\"value\":21.5,\"pad\":\"";
    memset(g_payload, 'x', sizeof g_payload);
    memcpy(g_payload, head, sizeof head - 1);
    memcpy(g_payload + PAYLOAD_LEN - 18, "\"}", 2);
    for (int i = 0; i < 16; i++)
        g_payload[PAYLOAD_LEN - 16 + i] = (uint8_t)(i * 17); /* 0x00 .. 0xff */
}

static uint64_t now_ms(void)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    return (uint64_t)wall.tv_sec * 1000 + (uint64_t)wall.tv_nsec / 1000000;
}

/* Simulated client number `k`. */
static void make_ident(struct ident *id, int k, uint64_t ts_ms)
{
    snprintf(id->clientid, sizeof id->clientid, "bench-%d", k);
    /* EMQX message ids are 128-bit GUIDs in hex. */
    snprintf(id->msgid, sizeof id->msgid, "%016" PRIX64 "%016" PRIX64, ts_ms * 1000 + (uint64_t)k,
             UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(k + 1));
    id->peerport = 40000 + (uint32_t)k;
}

void breq_build(const struct breq_scenario *sc, int version)
{
    fill_payload();
    uint64_t ts_ms = now_ms();
    for (int k = 0; k < BREQ_NIDS; k++) {
        struct ident id;
        make_ident(&id, k, ts_ms);
        for (size_t i = 0; i < sc->n; i++)
            g_body[i][k] = build_body(&sc->steps[i], version, &id, ts_ms);
    }
    g_sc = sc;
    g_version = version;
}

grpc_slice breq_request(enum hook_id hook, int version)
{
    const struct breq_step st = {hook, "normaluser", AUTHZ(PUBLISH), "demo/in", BREQ_EMPTY, ""};
    struct ident id;
    uint64_t ts_ms = now_ms();
    fill_payload();
    make_ident(&id, 0, ts_ms);
    return build_body(&st, version, &id, ts_ms);
}

grpc_slice *breq_body(size_t step, unsigned ident)
{
    return &g_body[step][ident];
}

void breq_free(void)
{
    for (size_t i = 0; g_sc && i < g_sc->n; i++)
        for (int k = 0; k < BREQ_NIDS; k++)
            grpc_slice_unref(g_body[i][k]);
    g_sc = NULL;
}

/* ---- checking replies --------------------------------------------------- */

static const char *status_name(grpc_status_code st)
{
    // clang-format off
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    // clang-format on
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

static const char *header(const Emqx__Exhook__V3__Message *m, const char *key)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (strcmp(m->headers[i]->key, key) == 0)
            return m->headers[i]->value;
    return NULL;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void describe(const valued *r, char *buf, size_t len)
{
    const ProtobufCEnumValue *t = protobuf_c_enum_descriptor_get_value(
        &emqx__exhook__v3__valued_response__responsed_type__descriptor, r->type);
    int n = snprintf(buf, len, "%s", t ? t->name : "type?");
    if (r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT) {
        snprintf(buf + n, len - n, " bool_result=%s", r->bool_result ? "true" : "false");
    } else if (r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE && r->message) {
        const Emqx__Exhook__V3__Message *m = r->message;
        n += snprintf(
            buf + n, len - n, " message{topic=%s qos=%u payload=%zuB%s headers:", m->topic, m->qos,
            m->payload.len,
            m->payload.len == PAYLOAD_LEN && !memcmp(m->payload.data, g_payload, PAYLOAD_LEN)
                ? "(same)"
                : "(changed)");
        for (size_t i = 0; i < m->n_headers && n < (int)len; i++)
            n += snprintf(buf + n, len - n, " %s=%s", m->headers[i]->key, m->headers[i]->value);
        if (n < (int)len)
            snprintf(buf + n, len - n, "}");
    } else {
        snprintf(buf + n, len - n, " with no value");
    }
}

/* The reply `st` must get from the generation breq_build packed for: the
 * example lets an ordinary client in with IGNORE on EMQX 4.x, where the
 * broker's own result stands, but must say CONTINUE true on EMQX 5, where
 * IGNORE refuses the client. */
static enum breq_expect expected(const struct breq_step *st)
{
    return st->expect == BREQ_ADMIT && g_version == 1 ? BREQ_IGNORE : st->expect;
}

/* True when `data` is exactly the reply `want` describes; else says why. */
static bool check_body(enum breq_expect want, const uint8_t *data, size_t len, char *why,
                       size_t wlen)
{
    if (want == BREQ_EMPTY) {
        if (len == 0)
            return true;
        snprintf(why, wlen, "expected %s, got %zu bytes", expect_text[BREQ_EMPTY], len);
        return false;
    }
    valued *r = emqx__exhook__v3__valued_response__unpack(NULL, len, data);
    if (!r) {
        snprintf(why, wlen, "expected %s, got %zu bytes that are no ValuedResponse",
                 expect_text[want], len);
        return false;
    }
    const Emqx__Exhook__V3__Message *m =
        r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE ? r->message : NULL;
    bool b = r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT;
    bool ok = false;
    switch (want) {
    case BREQ_ADMIT:
        ok = r->type == VT(CONTINUE) && b && r->bool_result;
        break;
    case BREQ_IGNORE:
        ok = r->type == VT(IGNORE) &&
             r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE__NOT_SET;
        break;
    case BREQ_ALLOW:
    case BREQ_DENY:
        ok = r->type == VT(STOP_AND_RETURN) && b && r->bool_result == (want == BREQ_ALLOW);
        break;
    case BREQ_REWRITE:
        ok = r->type == VT(CONTINUE) && m && streq(m->topic, "demo/out") && m->qos == 1 &&
             m->payload.len == PAYLOAD_LEN && !memcmp(m->payload.data, g_payload, PAYLOAD_LEN) &&
             streq(header(m, "x-exhookd"), "rewritten");
        break;
    case BREQ_DROP:
        ok = r->type == VT(STOP_AND_RETURN) && m && streq(m->topic, "demo/drop") &&
             streq(header(m, "allow_publish"), "false");
        break;
    case BREQ_EMPTY:
        break;
    }
    if (!ok) {
        char got[512];
        describe(r, got, sizeof got);
        snprintf(why, wlen, "expected %s, got %s", expect_text[want], got);
    }
    emqx__exhook__v3__valued_response__free_unpacked(r, NULL);
    return ok;
}

bool breq_check_reply(const struct breq_step *st, bool batch_ok, grpc_status_code status,
                      grpc_slice details, grpc_byte_buffer *recv, char *why, size_t wlen)
{
    if (!batch_ok) {
        snprintf(why, wlen, "the call failed in transport");
        return false;
    }
    if (status != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(details);
        snprintf(why, wlen, "expected status OK, got %s (%d): %s", status_name(status), (int)status,
                 d);
        gpr_free(d);
        return false;
    }
    if (!recv) {
        snprintf(why, wlen, "expected %s, got status OK without a message",
                 expect_text[expected(st)]);
        return false;
    }
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    bool ok =
        check_body(expected(st), GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), why, wlen);
    grpc_slice_unref(all);
    return ok;
}
