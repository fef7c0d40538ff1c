/* The bodies of the 4.x WebHook (emqx_web_hook): each broker request is
 * decoded with the interface's own types and becomes the JSON object the
 * plugin posted for the event, once per [webhook] rule that matches it.
 *
 * Field names and values are the plugin's. Its JSON encoder wrote an
 * Erlang map, whose keys come out in sorted order, compactly: so do we.
 * What a broker generation does not send is left out (see the README's
 * table); nothing is made up. */

#include "webhook_body.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errbuf.h"
#include "exhook.pb-c.h"
#include "topic.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* One body before the rules pick it: its JSON, and what a rule's topic is
 * matched against (the message's topic or the subscription's filter). */
struct item {
    json_t *json;
    const char *key;
    char *text; /* the dumped JSON, made when a first rule takes it */
    size_t len;
};

/* What one request gives: its items, whose event it is, and how a rule's
 * topic is matched. */
struct rendering {
    struct item *items;
    size_t n_items;
    const char *clientid;
    bool by_filter; /* match the rule's filter against a subscription's filter */
};

/* ---- values ----------------------------------------------------------- */

/* A JSON string of `len` bytes. The broker does not promise UTF-8 (a
 * payload is any bytes), and JSON must be: a byte that is not UTF-8 is
 * sent as U+FFFD. Payloads that are not text are what base64 is for, as
 * with 4.x, whose encoder refused them outright. */
static json_t *text_n(const char *s, size_t len)
{
    /* An empty bytes field has no buffer at all. */
    if (len == 0)
        s = "";
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;

    for (size_t i = 0; i < len;) {
        size_t n = codec_utf8_sequence(p + i, len - i);
        bad += n == 0;
        i += n == 0 ? 1 : n;
    }
    if (bad == 0)
        return json_stringn_nocheck(s, len);
    /* U+FFFD is 3 bytes in place of 1. */
    char *fixed = malloc(len + 2 * bad);
    if (fixed == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = codec_utf8_sequence(p + i, len - i);
        if (n == 0) {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        }
    }
    json_t *j = json_stringn_nocheck(fixed, o);
    free(fixed);
    return j;
}

static json_t *text(const char *s)
{
    return text_n(s, strlen(s));
}

/* The plugin's "undefined" for a client without a username; the broker
 * sends "" for one. */
static json_t *username(const char *s)
{
    return text(s[0] != '\0' ? s : "undefined");
}

/* A disconnection's or session's end reason. The broker prints a reason
 * that is not a plain word as an Erlang term, and a common one is
 * {shutdown,<word>}: the plugin sent the word alone, so does this. */
static json_t *reason(const char *s)
{
    static const char prefix[] = "{shutdown,";
    size_t len = strlen(s), plen = sizeof prefix - 1;

    if (len <= plen + 1 || strncmp(s, prefix, plen) != 0 || s[len - 1] != '}' ||
        !(s[plen] >= 'a' && s[plen] <= 'z'))
        return text(s);
    /* An atom that needs no quotes: a lower-case letter, then letters,
     * digits, '_' and '@'. */
    for (size_t i = plen; i < len - 1; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '@'))
            return text(s);
    }
    return text_n(s + plen, len - plen - 1);
}

/* proto_ver was a number in 4.x (3, 4, 5); the broker sends it as text.
 * Text that is not a number (another protocol's version) stays text. */
static json_t *proto_ver(const char *s)
{
    char *end;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0)
        return text(s);
    return json_integer(v);
}

static json_t *payload(const ProtobufCBinaryData *p, enum cfg_payload_encoding encoding)
{
    if (encoding == CFG_PAYLOAD_PLAIN)
        return text_n((const char *)p->data, p->len);
    size_t len = encoding == CFG_PAYLOAD_BASE64 ? codec_base64_len(p->len, false)
                                                : codec_base62_len(p->data, p->len);
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return NULL;
    if (encoding == CFG_PAYLOAD_BASE64)
        codec_base64_encode(p->data, p->len, buf, false);
    else
        codec_base62_encode(p->data, p->len, buf);
    json_t *j = json_stringn_nocheck(buf, len);
    free(buf);
    return j;
}

/* The username a message's sender had: the broker passes it in the
 * message's headers (EMQX 4.4 and 5.x). */
static const char *message_username(const Emqx__Exhook__V3__Message *m)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, "username") == 0)
            return m->headers[i]->value;
    }
    return "";
}

/* Sets `key` of `obj` to `value`, which it takes. False when out of memory
 * (value NULL) or when jansson cannot take it. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new_nocheck(obj, key, value) == 0;
}

/* ---- the bodies ------------------------------------------------------- */

static const Emqx__Exhook__V3__ConnInfo no_conninfo = EMQX__EXHOOK__V3__CONN_INFO__INIT;
static const Emqx__Exhook__V3__ClientInfo no_clientinfo = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
static const Emqx__Exhook__V3__Message no_message = EMQX__EXHOOK__V3__MESSAGE__INIT;

#define OR_EMPTY(p, empty) ((p) != NULL ? (p) : &(empty))

/* "action" (the event with '_' for '.') and "node": the broker's node from
 * the request's meta, or from the client or message where an older broker
 * sends no meta (EMQX 4.3 before 4.3.14, 4.4 before 4.4.3). Same value. */
static json_t *body_new(enum hook_id hook, const Emqx__Exhook__V3__RequestMeta *meta,
                        const char *node)
{
    char action[64];
    size_t i = 0;

    for (const char *p = hook_defs[hook].name; *p != '\0' && i < sizeof action - 1; p++)
        action[i++] = *p == '.' ? '_' : *p;
    action[i] = '\0';
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    if (meta != NULL && meta->node[0] != '\0')
        node = meta->node;
    if (!put(obj, "action", text(action)) || !put(obj, "node", text(node))) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static bool put_conninfo(json_t *obj, const Emqx__Exhook__V3__ConnInfo *ci)
{
    return put(obj, "clientid", text(ci->clientid)) &&
           put(obj, "username", username(ci->username)) &&
           put(obj, "ipaddress", text(ci->peerhost)) &&
           put(obj, "keepalive", json_integer(ci->keepalive)) &&
           put(obj, "proto_ver", proto_ver(ci->proto_ver));
}

static bool put_clientinfo(json_t *obj, const Emqx__Exhook__V3__ClientInfo *ci)
{
    return put(obj, "clientid", text(ci->clientid)) && put(obj, "username", username(ci->username));
}

/* The fields of a message event. 4.x also sent "retain"; no broker
 * generation passes the flag to ExHook, so it is always false. */
static bool put_message(json_t *obj, const Emqx__Exhook__V3__Message *m,
                        enum cfg_payload_encoding encoding)
{
    return put(obj, "from_client_id", text(m->from)) &&
           put(obj, "from_username", username(message_username(m))) &&
           put(obj, "topic", text(m->topic)) && put(obj, "qos", json_integer(m->qos)) &&
           put(obj, "retain", json_false()) &&
           put(obj, "payload", payload(&m->payload, encoding)) &&
           put(obj, "ts", json_integer((json_int_t)m->timestamp));
}

/* A subscription's QoS: in subopts from EMQX 5.4, in the filter before. */
static uint32_t filter_qos(const Emqx__Exhook__V3__TopicFilter *tf)
{
    return tf->subopts != NULL ? tf->subopts->qos : tf->qos;
}

/* {"qos": n}: what 4.x documented of a subscription's options. */
static json_t *opts_qos(uint32_t qos)
{
    json_t *opts = json_object();

    if (opts != NULL && !put(opts, "qos", json_integer(qos))) {
        json_decref(opts);
        return NULL;
    }
    return opts;
}

/* ---- one request, decoded --------------------------------------------- */

static int add_item(struct rendering *r, json_t *json, const char *key)
{
    if (json == NULL)
        return -1;
    struct item *grown = realloc(r->items, (r->n_items + 1) * sizeof *r->items);
    if (grown == NULL) {
        json_decref(json);
        return -1;
    }
    r->items = grown;
    r->items[r->n_items++] = (struct item){.json = json, .key = key};
    return 0;
}

/* A body that failed half-way is dropped here, so callers build and add in
 * one go. */
static json_t *done(json_t *obj, bool ok)
{
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int render_conn(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req)
{
    const Emqx__Exhook__V3__ConnInfo *ci;
    const Emqx__Exhook__V3__RequestMeta *meta;
    const char *result_code = NULL;

    if (hook == HOOK_CLIENT_CONNECT) {
        const Emqx__Exhook__V3__ClientConnectRequest *q = (const void *)req;
        ci = OR_EMPTY(q->conninfo, no_conninfo);
        meta = q->meta;
    } else {
        const Emqx__Exhook__V3__ClientConnackRequest *q = (const void *)req;
        ci = OR_EMPTY(q->conninfo, no_conninfo);
        meta = q->meta;
        result_code = q->result_code;
    }
    r->clientid = ci->clientid;
    json_t *obj = body_new(hook, meta, ci->node);
    if (obj == NULL)
        return -1;
    bool ok = put_conninfo(obj, ci);
    if (ok && result_code != NULL)
        ok = put(obj, "conn_ack", text(result_code));
    return add_item(r, done(obj, ok), NULL);
}

/* client.connected, client.disconnected, session.terminated: the client
 * and, for the latter two, a reason. */
static int render_client(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req,
                         int64_t ts_ms)
{
    const Emqx__Exhook__V3__ClientInfo *ci;
    const Emqx__Exhook__V3__RequestMeta *meta;
    const char *why = NULL;

    if (hook == HOOK_CLIENT_CONNECTED) {
        const Emqx__Exhook__V3__ClientConnectedRequest *q = (const void *)req;
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
    } else if (hook == HOOK_CLIENT_DISCONNECTED) {
        const Emqx__Exhook__V3__ClientDisconnectedRequest *q = (const void *)req;
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
        why = q->reason;
    } else {
        const Emqx__Exhook__V3__SessionTerminatedRequest *q = (const void *)req;
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
        why = q->reason;
    }
    r->clientid = ci->clientid;
    json_t *obj = body_new(hook, meta, ci->node);
    if (obj == NULL)
        return -1;
    bool ok = put_clientinfo(obj, ci);
    if (ok && why != NULL)
        ok = put(obj, "reason", reason(why));
    /* The broker sends neither time: the call's arrival stands for it. */
    if (ok && hook == HOOK_CLIENT_CONNECTED)
        ok = put(obj, "ipaddress", text(ci->peerhost)) &&
             put(obj, "connected_at", json_integer(ts_ms));
    if (ok && hook == HOOK_CLIENT_DISCONNECTED)
        ok = put(obj, "disconnected_at", json_integer(ts_ms));
    return add_item(r, done(obj, ok), NULL);
}

/* client.subscribe and client.unsubscribe: a body per topic filter. */
static int render_filters(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req)
{
    /* Both requests have the same fields in the same places. */
    const Emqx__Exhook__V3__ClientSubscribeRequest *q = (const void *)req;
    const Emqx__Exhook__V3__ClientInfo *ci = OR_EMPTY(q->clientinfo, no_clientinfo);

    r->clientid = ci->clientid;
    r->by_filter = true;
    for (size_t i = 0; i < q->n_topic_filters; i++) {
        const Emqx__Exhook__V3__TopicFilter *tf = q->topic_filters[i];
        json_t *obj = body_new(hook, q->meta, ci->node);
        if (obj == NULL)
            return -1;
        /* 4.x passed on the options of the parsed packet: an unsubscribe
         * has none. */
        bool ok = put_clientinfo(obj, ci) && put(obj, "topic", text(tf->name)) &&
                  put(obj, "opts",
                      hook == HOOK_CLIENT_SUBSCRIBE ? opts_qos(filter_qos(tf)) : json_object());
        if (add_item(r, done(obj, ok), tf->name) != 0)
            return -1;
    }
    return 0;
}

static int render_session_topic(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req)
{
    const Emqx__Exhook__V3__ClientInfo *ci;
    const Emqx__Exhook__V3__RequestMeta *meta;
    const char *topic;
    uint32_t qos = 0;

    if (hook == HOOK_SESSION_SUBSCRIBED) {
        const Emqx__Exhook__V3__SessionSubscribedRequest *q = (const void *)req;
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
        topic = q->topic;
        qos = q->subopts != NULL ? q->subopts->qos : 0;
    } else {
        const Emqx__Exhook__V3__SessionUnsubscribedRequest *q = (const void *)req;
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
        topic = q->topic;
    }
    r->clientid = ci->clientid;
    r->by_filter = true;
    json_t *obj = body_new(hook, meta, ci->node);
    if (obj == NULL)
        return -1;
    bool ok = put_clientinfo(obj, ci) && put(obj, "topic", text(topic));
    if (ok && hook == HOOK_SESSION_SUBSCRIBED)
        ok = put(obj, "opts", opts_qos(qos));
    return add_item(r, done(obj, ok), topic);
}

/* The message events. The events of a message belong to its sender, but
 * delivered and acked to the client that receives it. */
static int render_message(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req,
                          enum cfg_payload_encoding encoding)
{
    const Emqx__Exhook__V3__Message *m;
    const Emqx__Exhook__V3__ClientInfo *ci = NULL;
    const Emqx__Exhook__V3__RequestMeta *meta;
    const char *why = NULL;

    if (hook == HOOK_MESSAGE_PUBLISH) {
        const Emqx__Exhook__V3__MessagePublishRequest *q = (const void *)req;
        m = OR_EMPTY(q->message, no_message);
        meta = q->meta;
    } else if (hook == HOOK_MESSAGE_DROPPED) {
        const Emqx__Exhook__V3__MessageDroppedRequest *q = (const void *)req;
        m = OR_EMPTY(q->message, no_message);
        meta = q->meta;
        why = q->reason;
    } else {
        /* delivered and acked have the same fields in the same places */
        const Emqx__Exhook__V3__MessageDeliveredRequest *q = (const void *)req;
        m = OR_EMPTY(q->message, no_message);
        ci = OR_EMPTY(q->clientinfo, no_clientinfo);
        meta = q->meta;
    }
    r->clientid = ci != NULL ? ci->clientid : m->from;
    /* The plugin never forwarded the broker's own topics. */
    if (strncmp(m->topic, "$SYS/", 5) == 0)
        return 0;
    json_t *obj = body_new(hook, meta, m->node);
    if (obj == NULL)
        return -1;
    bool ok = put_message(obj, m, encoding);
    if (ok && ci != NULL)
        ok = put_clientinfo(obj, ci);
    /* 4.x sent a dropped message's reason as it was. */
    if (ok && why != NULL)
        ok = put(obj, "reason", text(why));
    return add_item(r, done(obj, ok), m->topic);
}

static int render_items(struct rendering *r, enum hook_id hook, const ProtobufCMessage *req,
                        int64_t ts_ms, enum cfg_payload_encoding encoding)
{
    switch (hook) {
    case HOOK_CLIENT_CONNECT:
    case HOOK_CLIENT_CONNACK:
        return render_conn(r, hook, req);
    case HOOK_CLIENT_CONNECTED:
    case HOOK_CLIENT_DISCONNECTED:
    case HOOK_SESSION_TERMINATED:
        return render_client(r, hook, req, ts_ms);
    case HOOK_CLIENT_SUBSCRIBE:
    case HOOK_CLIENT_UNSUBSCRIBE:
        return render_filters(r, hook, req);
    case HOOK_SESSION_SUBSCRIBED:
    case HOOK_SESSION_UNSUBSCRIBED:
        return render_session_topic(r, hook, req);
    case HOOK_MESSAGE_PUBLISH:
    case HOOK_MESSAGE_DELIVERED:
    case HOOK_MESSAGE_ACKED:
    case HOOK_MESSAGE_DROPPED:
        return render_message(r, hook, req, encoding);
    default:
        /* No rule can name another hook: config refuses it. */
        return 0;
    }
}

/* ---- rules ------------------------------------------------------------ */

static bool rule_takes(const struct cfg_webhook_rule *rule, const struct rendering *r,
                       const struct item *it)
{
    if (rule->topic == NULL)
        return true;
    /* A subscription's filter is taken when the rule's covers it. */
    return r->by_filter ? topic_covers(rule->topic, it->key) : topic_match(rule->topic, it->key);
}

static int add_body(struct webhook_event *out, size_t *cap, struct item *it)
{
    if (it->text == NULL) {
        it->text = json_dumps(it->json, DUMP_FLAGS);
        if (it->text == NULL)
            return -1;
        it->len = strlen(it->text);
    }
    if (out->n_bodies == *cap) {
        size_t grown_cap = *cap == 0 ? 1 : *cap * 2;
        char **bodies = realloc(out->bodies, grown_cap * sizeof *bodies);
        if (bodies == NULL)
            return -1;
        out->bodies = bodies;
        size_t *lens = realloc(out->lens, grown_cap * sizeof *lens);
        if (lens == NULL)
            return -1;
        out->lens = lens;
        *cap = grown_cap;
    }
    char *copy = malloc(it->len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, it->text, it->len + 1);
    out->bodies[out->n_bodies] = copy;
    out->lens[out->n_bodies++] = it->len;
    return 0;
}

/* Rule by rule, as 4.x ran one hook per rule: a message that two rules
 * match is posted twice. */
static int pick(const struct cfg_webhook *wc, enum hook_id hook, struct rendering *r,
                struct webhook_event *out)
{
    size_t cap = 0;

    for (size_t i = 0; i < wc->n_rules; i++) {
        const struct cfg_webhook_rule *rule = &wc->rules[i];
        if (rule->hook != hook)
            continue;
        for (size_t j = 0; j < r->n_items; j++) {
            if (rule_takes(rule, r, &r->items[j]) && add_body(out, &cap, &r->items[j]) != 0)
                return -1;
        }
    }
    return 0;
}

static void rendering_free(struct rendering *r)
{
    for (size_t i = 0; i < r->n_items; i++) {
        json_decref(r->items[i].json);
        free(r->items[i].text);
    }
    free(r->items);
}

int webhook_render(const struct cfg_webhook *wc, enum hook_id hook, int version, const uint8_t *req,
                   size_t len, int64_t ts_ms, struct webhook_event *out, char *err, size_t errlen)
{
    const ProtobufCMessageDescriptor *desc = hooks_request(hook, version);
    struct rendering r = {0};
    int ret = -1;

    memset(out, 0, sizeof *out);
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, req);
    if (msg == NULL) {
        errbuf_set(err, errlen, "%s: the request does not decode as %s", hook_defs[hook].rpc,
                   desc->name);
        return -1;
    }
    if (render_items(&r, hook, msg, ts_ms, wc->encoding) != 0 || pick(wc, hook, &r, out) != 0)
        goto fail;
    if (out->n_bodies > 0) {
        out->clientid = strdup(r.clientid != NULL ? r.clientid : "");
        if (out->clientid == NULL)
            goto fail;
    }
    ret = 0;
    goto out;
fail:
    errbuf_set(err, errlen, "%s: out of memory", hook_defs[hook].rpc);
    webhook_event_free(out);
out:
    rendering_free(&r);
    protobuf_c_message_free_unpacked(msg, NULL);
    return ret;
}

void webhook_event_free(struct webhook_event *ev)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < ev->n_bodies; i++)
        free(ev->bodies[i]);
    free(ev->bodies);
    free(ev->lens);
    free(ev->clientid);
    memset(ev, 0, sizeof *ev);
}

/* ---- what to ask the broker for --------------------------------------- */

static bool filters_have(const struct cfg_filters *f, const char *filter)
{
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->items[i], filter) == 0)
            return true;
    }
    return false;
}

static int filters_add(struct cfg_filters *f, const char *filter)
{
    if (filters_have(f, filter))
        return 0;
    char **items = realloc(f->items, (f->count + 1) * sizeof *items);
    if (items == NULL)
        return -1;
    f->items = items;
    f->items[f->count] = strdup(filter);
    if (f->items[f->count] == NULL)
        return -1;
    f->count++;
    return 0;
}

bool webhook_wants(const struct cfg_webhook *wc, enum hook_id hook, bool *every_topic,
                   struct cfg_filters *topics)
{
    bool wanted = false, every = false;

    if (wc->url == NULL)
        return false;
    for (size_t i = 0; i < wc->n_rules; i++) {
        if (wc->rules[i].hook != hook)
            continue;
        wanted = true;
        every = every || wc->rules[i].topic == NULL;
    }
    /* Only the message hooks are filtered by the broker; the others, and a
     * message hook that some rule takes whole, see every topic. */
    if (!wanted || every || !hooks_is_message(hook)) {
        if (every_topic != NULL)
            *every_topic = true;
        return wanted;
    }
    *every_topic = false;
    for (size_t i = 0; i < wc->n_rules; i++) {
        /* Out of memory: every topic, so that nothing a rule wants is missed. */
        if (wc->rules[i].hook == hook && filters_add(topics, wc->rules[i].topic) != 0) {
            *every_topic = true;
            break;
        }
    }
    return true;
}
