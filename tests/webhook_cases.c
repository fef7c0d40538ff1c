#include "webhook_cases.h"

#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"

#define NODE "emqx@127.0.0.1"

const struct webhook_case webhook_cases[] = {
    {HOOK_CLIENT_CONNECT, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_CONNECT}, 1, 1},
    {HOOK_CLIENT_CONNACK, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_CONNACK}, 1, 1},
    {HOOK_CLIENT_CONNECTED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_CONNECTED}, 1, 1},
    {HOOK_CLIENT_DISCONNECTED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_DISCONNECTED}, 1, 1},
    {HOOK_CLIENT_SUBSCRIBE,
     CFG_PAYLOAD_PLAIN,
     {WEBHOOK_BODY_SUBSCRIBE_1, WEBHOOK_BODY_SUBSCRIBE_2},
     2,
     1},
    {HOOK_CLIENT_UNSUBSCRIBE, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_UNSUBSCRIBE}, 1, 2},
    {HOOK_SESSION_SUBSCRIBED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_SESSION_SUBSCRIBED}, 1, 1},
    {HOOK_SESSION_UNSUBSCRIBED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_SESSION_UNSUBSCRIBED}, 1, 1},
    {HOOK_SESSION_TERMINATED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_SESSION_TERMINATED}, 1, 1},
    {HOOK_MESSAGE_PUBLISH, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_PUBLISH_PLAIN}, 1, 1},
    {HOOK_MESSAGE_DELIVERED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_DELIVERED_PLAIN}, 1, 1},
    {HOOK_MESSAGE_ACKED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_ACKED_PLAIN}, 1, 1},
    {HOOK_MESSAGE_DROPPED, CFG_PAYLOAD_PLAIN, {WEBHOOK_BODY_DROPPED_PLAIN}, 1, 1},
    {HOOK_MESSAGE_PUBLISH, CFG_PAYLOAD_BASE64, {WEBHOOK_BODY_PUBLISH_BASE64}, 1, 1},
    {HOOK_MESSAGE_DELIVERED, CFG_PAYLOAD_BASE64, {WEBHOOK_BODY_DELIVERED_BASE64}, 1, 1},
    {HOOK_MESSAGE_ACKED, CFG_PAYLOAD_BASE64, {WEBHOOK_BODY_ACKED_BASE64}, 1, 1},
    {HOOK_MESSAGE_DROPPED, CFG_PAYLOAD_BASE64, {WEBHOOK_BODY_DROPPED_BASE64}, 1, 1},
    {HOOK_MESSAGE_PUBLISH, CFG_PAYLOAD_BASE62, {WEBHOOK_BODY_PUBLISH_BASE62}, 1, 1},
    {HOOK_MESSAGE_DELIVERED, CFG_PAYLOAD_BASE62, {WEBHOOK_BODY_DELIVERED_BASE62}, 1, 1},
    {HOOK_MESSAGE_ACKED, CFG_PAYLOAD_BASE62, {WEBHOOK_BODY_ACKED_BASE62}, 1, 1},
    {HOOK_MESSAGE_DROPPED, CFG_PAYLOAD_BASE62, {WEBHOOK_BODY_DROPPED_BASE62}, 1, 1},
};

const size_t webhook_case_count = sizeof webhook_cases / sizeof webhook_cases[0];

/* The parts every request is made of, filled as generation `version`
 * sends them. */
struct parts {
    Emqx__Exhook__V3__RequestMeta meta;
    Emqx__Exhook__V3__ConnInfo conninfo;
    Emqx__Exhook__V3__ClientInfo clientinfo;
    Emqx__Exhook__V3__ClientInfo receiver; /* of a delivered or acked message */
    Emqx__Exhook__V3__Message message;
    Emqx__Exhook__V3__Message__HeadersEntry headers[3];
    Emqx__Exhook__V3__Message__HeadersEntry *header_ptrs[3];
    Emqx__Exhook__V3__SubOpts subopts[2];
    Emqx__Exhook__V3__TopicFilter filters[2];
    Emqx__Exhook__V3__TopicFilter *filter_ptrs[2];
    Emqx__Exhook__V3__Property user_prop;
    Emqx__Exhook__V3__Property *user_props[1];
    size_t n_user_props; /* v3 only */
    int version;
    Emqx__Exhook__V3__RequestMeta *meta_ptr;
};

static void clientinfo_init(Emqx__Exhook__V3__ClientInfo *ci, const char *clientid,
                            const char *username, int version)
{
    emqx__exhook__v3__client_info__init(ci);
    ci->node = NODE;
    ci->clientid = (char *)clientid;
    ci->username = (char *)username;
    ci->peerhost = "127.0.0.1";
    ci->sockport = 1883;
    ci->protocol = "mqtt";
    if (version >= 2)
        ci->peerport = 50000;
}

static void parts_init(struct parts *p, int version, int meta)
{
    static const char *const header_kv[3][2] = {
        {"username", "u1"}, {"protocol", "mqtt"}, {"peerhost", "127.0.0.1"}};
    static const char *const filter_names[2] = {"t/#", "a/b"};

    memset(p, 0, sizeof *p);
    p->version = version;
    emqx__exhook__v3__request_meta__init(&p->meta);
    p->meta.node = NODE;
    p->meta.version = version == 1 ? "4.4.19" : version == 2 ? "5.8.9" : "5.9.0";
    p->meta.sysdescr = "EMQX";
    p->meta.cluster_name = "emqxcl";
    p->meta_ptr = meta ? &p->meta : NULL;

    emqx__exhook__v3__conn_info__init(&p->conninfo);
    p->conninfo.node = NODE;
    p->conninfo.clientid = "c1";
    p->conninfo.username = "u1";
    p->conninfo.peerhost = "127.0.0.1";
    p->conninfo.sockport = 1883;
    p->conninfo.proto_name = "MQTT";
    p->conninfo.proto_ver = "5";
    p->conninfo.keepalive = 60;
    if (version >= 2)
        p->conninfo.peerport = 50000;
    clientinfo_init(&p->clientinfo, "c1", "u1", version);
    clientinfo_init(&p->receiver, "c2", "u2", version);

    emqx__exhook__v3__message__init(&p->message);
    p->message.node = NODE;
    p->message.id = "0006220B4F7B4E7AF44300000B3B0001";
    p->message.qos = 1;
    p->message.from = "c1";
    p->message.topic = "t/1";
    p->message.payload.data = (uint8_t *)WEBHOOK_CASE_PAYLOAD;
    p->message.payload.len = strlen(WEBHOOK_CASE_PAYLOAD);
    p->message.timestamp = 1764800000000ULL;
    for (int i = 0; i < 3; i++) {
        emqx__exhook__v3__message__headers_entry__init(&p->headers[i]);
        p->headers[i].key = (char *)header_kv[i][0];
        p->headers[i].value = (char *)header_kv[i][1];
        p->header_ptrs[i] = &p->headers[i];
    }
    p->message.n_headers = 3;
    p->message.headers = p->header_ptrs;

    /* 4.4 and 5.0-5.3 put a filter's QoS in the filter; 5.4+ in subopts. */
    for (int i = 0; i < 2; i++) {
        emqx__exhook__v3__sub_opts__init(&p->subopts[i]);
        p->subopts[i].qos = i == 0 ? 1 : 0;
        emqx__exhook__v3__topic_filter__init(&p->filters[i]);
        p->filters[i].name = (char *)filter_names[i];
        if (version == 1)
            p->filters[i].qos = p->subopts[i].qos;
        else
            p->filters[i].subopts = &p->subopts[i];
        p->filter_ptrs[i] = &p->filters[i];
    }

    emqx__exhook__v3__property__init(&p->user_prop);
    p->user_prop.name = "app";
    p->user_prop.value = "demo";
    p->user_props[0] = &p->user_prop;
    p->n_user_props = version >= 3 ? 1 : 0;
}

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len + 1); /* + 1: an empty request is still a buffer */
    if (buf != NULL)
        protobuf_c_message_pack(msg, buf);
    return buf;
}

static uint8_t *pack_connect(struct parts *p, enum hook_id hook, size_t *len)
{
    if (hook == HOOK_CLIENT_CONNECT) {
        Emqx__Exhook__V3__ClientConnectRequest q = EMQX__EXHOOK__V3__CLIENT_CONNECT_REQUEST__INIT;
        q.conninfo = &p->conninfo;
        q.meta = p->meta_ptr;
        q.n_user_props = p->n_user_props;
        q.user_props = p->user_props;
        return pack(&q.base, len);
    }
    Emqx__Exhook__V3__ClientConnackRequest q = EMQX__EXHOOK__V3__CLIENT_CONNACK_REQUEST__INIT;
    q.conninfo = &p->conninfo;
    q.result_code = "success";
    q.meta = p->meta_ptr;
    q.n_user_props = p->n_user_props;
    q.user_props = p->user_props;
    return pack(&q.base, len);
}

static uint8_t *pack_client(struct parts *p, enum hook_id hook, size_t *len)
{
    switch (hook) {
    case HOOK_CLIENT_CONNECTED: {
        Emqx__Exhook__V3__ClientConnectedRequest q =
            EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    case HOOK_CLIENT_DISCONNECTED: {
        Emqx__Exhook__V3__ClientDisconnectedRequest q =
            EMQX__EXHOOK__V3__CLIENT_DISCONNECTED_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.reason = "normal";
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    case HOOK_SESSION_SUBSCRIBED: {
        Emqx__Exhook__V3__SessionSubscribedRequest q =
            EMQX__EXHOOK__V3__SESSION_SUBSCRIBED_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.topic = "t/#";
        q.subopts = &p->subopts[0];
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    case HOOK_SESSION_UNSUBSCRIBED: {
        Emqx__Exhook__V3__SessionUnsubscribedRequest q =
            EMQX__EXHOOK__V3__SESSION_UNSUBSCRIBED_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.topic = "t/#";
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    default: {
        Emqx__Exhook__V3__SessionTerminatedRequest q =
            EMQX__EXHOOK__V3__SESSION_TERMINATED_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.reason = "takenover";
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    }
}

/* client.subscribe has both filters; client.unsubscribe the first. */
static uint8_t *pack_filters(struct parts *p, enum hook_id hook, size_t *len)
{
    if (hook == HOOK_CLIENT_SUBSCRIBE) {
        Emqx__Exhook__V3__ClientSubscribeRequest q =
            EMQX__EXHOOK__V3__CLIENT_SUBSCRIBE_REQUEST__INIT;
        q.clientinfo = &p->clientinfo;
        q.n_topic_filters = 2;
        q.topic_filters = p->filter_ptrs;
        q.meta = p->meta_ptr;
        q.n_user_props = p->n_user_props;
        q.user_props = p->user_props;
        return pack(&q.base, len);
    }
    Emqx__Exhook__V3__ClientUnsubscribeRequest q =
        EMQX__EXHOOK__V3__CLIENT_UNSUBSCRIBE_REQUEST__INIT;
    q.clientinfo = &p->clientinfo;
    /* 4.4 drops the filters, which have no QoS (see from_version) */
    q.n_topic_filters = p->version == 1 ? 0 : 1;
    q.topic_filters = p->filter_ptrs;
    q.meta = p->meta_ptr;
    q.n_user_props = p->n_user_props;
    q.user_props = p->user_props;
    return pack(&q.base, len);
}

static uint8_t *pack_message(struct parts *p, enum hook_id hook, size_t *len)
{
    switch (hook) {
    case HOOK_MESSAGE_PUBLISH: {
        Emqx__Exhook__V3__MessagePublishRequest q = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
        q.message = &p->message;
        q.meta = p->meta_ptr;
        q.n_user_props = p->n_user_props;
        q.user_props = p->user_props;
        return pack(&q.base, len);
    }
    case HOOK_MESSAGE_DROPPED: {
        Emqx__Exhook__V3__MessageDroppedRequest q = EMQX__EXHOOK__V3__MESSAGE_DROPPED_REQUEST__INIT;
        q.message = &p->message;
        q.reason = "no_subscribers";
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    case HOOK_MESSAGE_DELIVERED: {
        Emqx__Exhook__V3__MessageDeliveredRequest q =
            EMQX__EXHOOK__V3__MESSAGE_DELIVERED_REQUEST__INIT;
        q.clientinfo = &p->receiver;
        q.message = &p->message;
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    default: {
        Emqx__Exhook__V3__MessageAckedRequest q = EMQX__EXHOOK__V3__MESSAGE_ACKED_REQUEST__INIT;
        q.clientinfo = &p->receiver;
        q.message = &p->message;
        q.meta = p->meta_ptr;
        return pack(&q.base, len);
    }
    }
}

uint8_t *webhook_case_request(enum hook_id hook, int version, int meta, size_t *len)
{
    struct parts p;

    parts_init(&p, version, meta);
    switch (hook) {
    case HOOK_CLIENT_CONNECT:
    case HOOK_CLIENT_CONNACK:
        return pack_connect(&p, hook, len);
    case HOOK_CLIENT_SUBSCRIBE:
    case HOOK_CLIENT_UNSUBSCRIBE:
        return pack_filters(&p, hook, len);
    case HOOK_MESSAGE_PUBLISH:
    case HOOK_MESSAGE_DELIVERED:
    case HOOK_MESSAGE_ACKED:
    case HOOK_MESSAGE_DROPPED:
        return pack_message(&p, hook, len);
    default:
        return pack_client(&p, hook, len);
    }
}
