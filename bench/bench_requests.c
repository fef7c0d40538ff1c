/* bench_requests: what exhook-bench sends and what it must get back. The
 * scenarios (which calls, for which users and topics), the request bodies
 * filled like an EMQX broker fills them, with the values given on the
 * command line where there are some, and the check of every reply: against
 * the decisions of scripts/example.lua, so that a fast wrong answer is never
 * counted as a good one, or, for other scripts, sorted into verdicts and
 * held against the expectations given on the command line. */

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

#define PEERHOST "10.0.3.17"
#define PROTOCOL "mqtt"

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
/* A broker loading the provider: what a reload costs the broker. Its
 * LoadedResponse is only checked to decode (use --check none). */
static const struct breq_step loaded_steps[] = {
    {HOOK_PROVIDER_LOADED, "normaluser", 0, NULL, BREQ_EMPTY, "loaded"},
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
    SCENARIO("loaded", false, loaded_steps),
    SCENARIO("mix", true, mix_steps),
};

const struct breq_scenario *const breq_default = &scenarios[0];

const struct breq_scenario *breq_find(const char *name)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(name, scenarios[i].name) == 0)
            return &scenarios[i];
    return NULL;
}

static const struct breq_scenario *g_sc;     /* the scenario breq_build packed */
static int g_version;                        /* and the generation it packed for */
static const struct breq_content *g_content; /* and the values it packed */
static unsigned g_nids;                      /* client identities */
static grpc_slice *g_body; /* every distinct request, packed once: [step * g_nids + ident] */
static uint8_t *g_payload;
static size_t g_payload_len;

/* ---- request bodies ----------------------------------------------------- */

struct ident {
    const char *clientid, *password;
    char msgid[40];
    uint32_t peerport;
};

static const char *pick(const struct breq_list *l, unsigned ident, const char *dflt)
{
    return l->n ? l->v[ident % l->n] : dflt;
}

/* The username and the topic the request of `st` for `ident` carries. */
static const char *step_user(const struct breq_step *st, unsigned ident)
{
    return pick(&g_content->user, ident, st->user);
}

static const char *step_topic(const struct breq_step *st, unsigned ident)
{
    return pick(&g_content->topic, ident, st->topic ? st->topic : "");
}

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
static grpc_slice build_body(const struct breq_step *st, unsigned k, int version,
                             const struct ident *id, uint64_t ts_ms)
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
    ci.username = (char *)step_user(st, k);
    ci.password = (char *)id->password;
    ci.peerhost = PEERHOST;
    ci.sockport = 1883;
    ci.peerport = v1 ? 0 : id->peerport;
    ci.protocol = PROTOCOL;
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
    msg.topic = (char *)step_topic(st, k);
    msg.payload.data = g_payload;
    msg.payload.len = g_payload_len;
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

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "exhook-bench: out of memory\n");
        exit(1);
    }
    return p;
}

void breq_build(const struct breq_scenario *sc, int version, const struct breq_content *c)
{
    /* A JSON-looking payload with a binary tail: the rewrite must keep every
     * byte, NULs and high bytes included. One too short for that is all
     * binary. */
    static const char head[] = "{\"sensor\":\"bench\",\"unit\":\"C\",\"value\":21.5,\"pad\":\"";
    size_t len = c->payload_len;
    g_payload = xmalloc(len);
    g_payload_len = len;
    if (len >= sizeof head - 1 + 18) {
        memset(g_payload, 'x', len);
        memcpy(g_payload, head, sizeof head - 1);
        memcpy(g_payload + len - 18, "\"}", 2);
        for (int i = 0; i < 16; i++)
            g_payload[len - 16 + i] = (uint8_t)(i * 17); /* 0x00 .. 0xff */
    } else {
        for (size_t i = 0; i < len; i++)
            g_payload[i] = (uint8_t)(i * 17);
    }

    /* As many identities as the longest list, so that it is used round-robin
     * exactly; the shorter lists wrap within it. */
    const struct breq_list *lists[] = {&c->user, &c->password, &c->clientid, &c->topic};
    g_nids = 0;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (lists[i]->n > g_nids)
            g_nids = (unsigned)lists[i]->n;
    if (g_nids == 0)
        g_nids = BREQ_NIDS;
    g_content = c;
    g_body = xmalloc(sc->n * g_nids * sizeof *g_body);

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t ts_ms = (uint64_t)wall.tv_sec * 1000 + (uint64_t)wall.tv_nsec / 1000000;
    for (unsigned k = 0; k < g_nids; k++) {
        struct ident id;
        char cid[24];
        snprintf(cid, sizeof cid, "bench-%u", k);
        id.clientid = pick(&c->clientid, k, cid);
        id.password = pick(&c->password, k, "bench-secret");
        /* EMQX message ids are 128-bit GUIDs in hex. */
        snprintf(id.msgid, sizeof id.msgid, "%016" PRIX64 "%016" PRIX64, ts_ms * 1000 + (uint64_t)k,
                 UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(k + 1));
        id.peerport = 40000 + k % 20000;
        for (size_t i = 0; i < sc->n; i++)
            g_body[i * g_nids + k] = build_body(&sc->steps[i], k, version, &id, ts_ms);
    }
    g_sc = sc;
    g_version = version;
}

grpc_slice breq_request(enum hook_id hook, int version)
{
    static const struct breq_content defaults = {.payload_len = BREQ_PAYLOAD_LEN};
    const struct breq_step st = {hook, "normaluser", AUTHZ(PUBLISH), "demo/in", BREQ_EMPTY, ""};
    const struct breq_scenario one = {.name = "one", .n = 1, .steps = &st};
    breq_build(&one, version, &defaults);
    grpc_slice body = grpc_slice_ref(*breq_body(0, 0));
    breq_free();
    return body;
}

unsigned breq_nids(void)
{
    return g_nids;
}

grpc_slice *breq_body(size_t step, unsigned ident)
{
    return &g_body[step * g_nids + ident];
}

void breq_free(void)
{
    for (size_t i = 0; g_sc && i < g_sc->n * g_nids; i++)
        grpc_slice_unref(g_body[i]);
    free(g_body);
    free(g_payload);
    g_body = NULL;
    g_payload = NULL;
    g_sc = NULL;
}

/* ---- checking replies --------------------------------------------------- */

// clang-format off
const char *const breq_status_names[BREQ_NSTATUS] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED", [BREQ_TRANSPORT] = "transport"};
// clang-format on

static const char *status_name(grpc_status_code st)
{
    return (unsigned)st < BREQ_TRANSPORT ? breq_status_names[st] : "?";
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

static bool same_payload(const Emqx__Exhook__V3__Message *m)
{
    return m->payload.len == g_payload_len &&
           (g_payload_len == 0 || !memcmp(m->payload.data, g_payload, g_payload_len));
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
        n +=
            snprintf(buf + n, len - n, " message{topic=%s qos=%u payload=%zuB%s headers:", m->topic,
                     m->qos, m->payload.len, same_payload(m) ? "(same)" : "(changed)");
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
             same_payload(m) && streq(header(m, "x-exhookd"), "rewritten");
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

static grpc_slice read_all(grpc_byte_buffer *recv)
{
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return all;
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
    grpc_slice all = read_all(recv);
    bool ok =
        check_body(expected(st), GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), why, wlen);
    grpc_slice_unref(all);
    return ok;
}

/* ---- verdicts of any scripts -------------------------------------------- */

const char *const breq_verdict_names[BREQ_NVERDICTS] = {
    [BREQ_V_NONE] = "none",
    [BREQ_V_EMPTY] = "empty",
    [BREQ_V_IGNORE] = "ignore",
    [BREQ_V_CONTINUE_TRUE] = "continue_true",
    [BREQ_V_CONTINUE_FALSE] = "continue_false",
    [BREQ_V_STOP_TRUE] = "stop_true",
    [BREQ_V_STOP_FALSE] = "stop_false",
    [BREQ_V_MODIFIED] = "modified",
    [BREQ_V_DROPPED] = "dropped",
    [BREQ_V_UNCHANGED] = "unchanged",
    [BREQ_V_MALFORMED] = "malformed",
};

/* The message of `st` for `ident` as it was sent: the reply changes nothing. */
static bool same_message(const Emqx__Exhook__V3__Message *m, const struct breq_step *st,
                         unsigned ident)
{
    return streq(m->topic, step_topic(st, ident)) && m->qos == 1 && same_payload(m) &&
           m->n_headers == 3 && streq(header(m, "username"), step_user(st, ident)) &&
           streq(header(m, "peerhost"), PEERHOST) && streq(header(m, "protocol"), PROTOCOL);
}

static enum breq_verdict verdict_of(const struct breq_step *st, unsigned ident, const uint8_t *data,
                                    size_t len)
{
    enum hook_kind kind = hook_defs[st->hook].kind;
    if (kind == HOOK_KIND_LOADED) {
        /* Whatever hooks it lists: nothing to judge but its form. */
        Emqx__Exhook__V3__LoadedResponse *l =
            emqx__exhook__v3__loaded_response__unpack(NULL, len, data);
        if (!l)
            return BREQ_V_MALFORMED;
        emqx__exhook__v3__loaded_response__free_unpacked(l, NULL);
        return BREQ_V_EMPTY;
    }
    if (kind != HOOK_KIND_VERDICT && kind != HOOK_KIND_PUBLISH)
        return len == 0 ? BREQ_V_EMPTY : BREQ_V_MALFORMED;
    valued *r = emqx__exhook__v3__valued_response__unpack(NULL, len, data);
    if (!r)
        return BREQ_V_MALFORMED;
    enum breq_verdict v = BREQ_V_MALFORMED;
    bool stop = r->type == VT(STOP_AND_RETURN);
    if (kind == HOOK_KIND_VERDICT) {
        if (r->type == VT(IGNORE))
            v = BREQ_V_IGNORE;
        else if (r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT)
            v = stop ? (r->bool_result ? BREQ_V_STOP_TRUE : BREQ_V_STOP_FALSE)
                     : (r->bool_result ? BREQ_V_CONTINUE_TRUE : BREQ_V_CONTINUE_FALSE);
    } else if (r->type == VT(IGNORE)) {
        v = BREQ_V_UNCHANGED; /* the broker publishes the message as it is */
    } else if (r->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE && r->message) {
        const Emqx__Exhook__V3__Message *m = r->message;
        v = streq(header(m, "allow_publish"), "false") ? BREQ_V_DROPPED
            : same_message(m, st, ident)               ? BREQ_V_UNCHANGED
                                                       : BREQ_V_MODIFIED;
    }
    emqx__exhook__v3__valued_response__free_unpacked(r, NULL);
    return v;
}

void breq_classify(const struct breq_step *st, unsigned ident, bool batch_ok,
                   grpc_status_code status, grpc_byte_buffer *recv, struct breq_reply *out)
{
    out->verdict = BREQ_V_NONE;
    if (!batch_ok) {
        out->status = BREQ_TRANSPORT;
        return;
    }
    out->status = (unsigned)status < BREQ_TRANSPORT ? (int)status : GRPC_STATUS_UNKNOWN;
    if (status != GRPC_STATUS_OK)
        return;
    if (!recv) {
        out->verdict = BREQ_V_MALFORMED;
        return;
    }
    grpc_slice all = read_all(recv);
    out->verdict = verdict_of(st, ident, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
    grpc_slice_unref(all);
}

bool breq_judge(const struct breq_expectation *e, const struct breq_step *st, unsigned ident,
                const struct breq_reply *r, grpc_slice details, char *why, size_t wlen)
{
    if (r->status != e->status) {
        char *d = grpc_slice_to_c_string(details);
        if (r->status == BREQ_TRANSPORT)
            snprintf(why, wlen, "the call failed in transport");
        else
            snprintf(why, wlen, "expected status %s, got %s: %s", breq_status_names[e->status],
                     breq_status_names[r->status], d);
        gpr_free(d);
        return false;
    }
    if (r->verdict == BREQ_V_MALFORMED) {
        snprintf(why, wlen, "a reply no broker can use for %s (username %s)",
                 hook_defs[st->hook].rpc, step_user(st, ident));
        return false;
    }
    unsigned want = e->verdicts[st->hook];
    if (r->verdict == BREQ_V_NONE || !want || (want & 1u << r->verdict))
        return true;
    int n = snprintf(why, wlen, "username %s%s%s: expected", step_user(st, ident),
                     st->topic ? " topic " : "", st->topic ? step_topic(st, ident) : "");
    const char *sep = " ";
    for (int v = 0; v < BREQ_NVERDICTS && n < (int)wlen; v++)
        if (want & 1u << v) {
            n += snprintf(why + n, wlen - n, "%s%s", sep, breq_verdict_names[v]);
            sep = " or ";
        }
    if (n < (int)wlen)
        snprintf(why + n, wlen - n, ", got %s", breq_verdict_names[r->verdict]);
    return false;
}
