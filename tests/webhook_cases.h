#ifndef EXHOOKD_TESTS_WEBHOOK_CASES_H
#define EXHOOKD_TESTS_WEBHOOK_CASES_H

/* Broker requests of every event the WebHook forwards, as EMQX 4.4 (v1),
 * 5.8 (v2) and 5.9+ (v3) send them, and the exact bodies the 4.x plugin
 * posted for them: for the unit tests of webhook_render and for the end to
 * end ones through a real HTTP receiver.
 *
 * The bodies are the same whichever generation sends the request: that is
 * the point. connected_at and disconnected_at are the time the call
 * arrived: WEBHOOK_CASE_TS_MS in the unit tests, the clock end to end. */

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hooks.h"

#define WEBHOOK_CASE_TS_MS 1764800000123LL

/* Every event with its rule, as etc/exhook.ini lines (no topics). */
#define WEBHOOK_CASE_RULES                                                                         \
    "rule.client.connect.1 = {\"action\": \"on_client_connect\"}\n"                                \
    "rule.client.connack.1 = {\"action\": \"on_client_connack\"}\n"                                \
    "rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n"                            \
    "rule.client.disconnected.1 = {\"action\": \"on_client_disconnected\"}\n"                      \
    "rule.client.subscribe.1 = {\"action\": \"on_client_subscribe\"}\n"                            \
    "rule.client.unsubscribe.1 = {\"action\": \"on_client_unsubscribe\"}\n"                        \
    "rule.session.subscribed.1 = {\"action\": \"on_session_subscribed\"}\n"                        \
    "rule.session.unsubscribed.1 = {\"action\": \"on_session_unsubscribed\"}\n"                    \
    "rule.session.terminated.1 = {\"action\": \"on_session_terminated\"}\n"                        \
    "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n"                              \
    "rule.message.delivered.1 = {\"action\": \"on_message_delivered\"}\n"                          \
    "rule.message.acked.1 = {\"action\": \"on_message_acked\"}\n"                                  \
    "rule.message.dropped.1 = {\"action\": \"on_message_dropped\"}\n"

/* Generated from the same data by an independent JSON encoder (sorted
 * keys, compact), not by exhookd. */
#define WEBHOOK_BODY_CONNECT                                                                       \
    "{\"action\":\"client_connect\",\"clientid\":\"c1\",\"ipaddress\":\"127.0.0.1\","              \
    "\"keepalive\":60,\"node\":\"emqx@127.0.0.1\",\"proto_ver\":5,\"username\":\"u1\"}"
#define WEBHOOK_BODY_CONNACK                                                                       \
    "{\"action\":\"client_connack\",\"clientid\":\"c1\",\"conn_ack\":\"success\",\"ipaddress\":"   \
    "\"127.0.0.1\",\"keepalive\":60,\"node\":\"emqx@127.0.0.1\",\"proto_ver\":5,\"username\":"     \
    "\"u1\"}"
#define WEBHOOK_BODY_CONNECTED                                                                     \
    "{\"action\":\"client_connected\",\"clientid\":\"c1\",\"connected_at\":1764800000123,"         \
    "\"ipaddress\":\"127.0.0.1\",\"node\":\"emqx@127.0.0.1\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_DISCONNECTED                                                                  \
    "{\"action\":\"client_disconnected\",\"clientid\":\"c1\",\"disconnected_at\":1764800000123,"   \
    "\"node\":\"emqx@127.0.0.1\",\"reason\":\"normal\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_SUBSCRIBE_1                                                                   \
    "{\"action\":\"client_subscribe\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\",\"opts\":{"  \
    "\"qos\":1},\"topic\":\"t/#\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_SUBSCRIBE_2                                                                   \
    "{\"action\":\"client_subscribe\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\",\"opts\":{"  \
    "\"qos\":0},\"topic\":\"a/b\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_UNSUBSCRIBE                                                                   \
    "{\"action\":\"client_unsubscribe\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\",\"opts\":" \
    "{},\"topic\":\"t/#\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_SESSION_SUBSCRIBED                                                            \
    "{\"action\":\"session_subscribed\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\",\"opts\":" \
    "{\"qos\":1},\"topic\":\"t/#\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_SESSION_UNSUBSCRIBED                                                          \
    "{\"action\":\"session_unsubscribed\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\","        \
    "\"topic\":\"t/#\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_SESSION_TERMINATED                                                            \
    "{\"action\":\"session_terminated\",\"clientid\":\"c1\",\"node\":\"emqx@127.0.0.1\","          \
    "\"reason\":\"takenover\",\"username\":\"u1\"}"
#define WEBHOOK_BODY_PUBLISH_PLAIN                                                                 \
    "{\"action\":\"message_publish\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"{\\\"temp\\\":21.5} ~~~ "                                    \
    "ü\",\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000}"
#define WEBHOOK_BODY_DELIVERED_PLAIN                                                               \
    "{\"action\":\"message_delivered\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"      \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"{\\\"temp\\\":21.5} ~~~ "         \
    "ü\",\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_ACKED_PLAIN                                                                   \
    "{\"action\":\"message_acked\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"          \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"{\\\"temp\\\":21.5} ~~~ "         \
    "ü\",\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_DROPPED_PLAIN                                                                 \
    "{\"action\":\"message_dropped\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"{\\\"temp\\\":21.5} ~~~ "                                    \
    "ü\",\"qos\":1,\"reason\":\"no_subscribers\",\"retain\":false,\"topic\":\"t/"                 \
    "1\",\"ts\":1764800000000}"
#define WEBHOOK_BODY_PUBLISH_BASE64                                                                \
    "{\"action\":\"message_publish\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB+fn4gw7w=\",\"qos\":1,\"retain\":false,"  \
    "\"topic\":\"t/1\",\"ts\":1764800000000}"
#define WEBHOOK_BODY_DELIVERED_BASE64                                                              \
    "{\"action\":\"message_delivered\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"      \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB+fn4gw7w=\","  \
    "\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_ACKED_BASE64                                                                  \
    "{\"action\":\"message_acked\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"          \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB+fn4gw7w=\","  \
    "\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_DROPPED_BASE64                                                                \
    "{\"action\":\"message_dropped\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB+fn4gw7w=\",\"qos\":1,\"reason\":\"no_"   \
    "subscribers\",\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000}"
#define WEBHOOK_BODY_PUBLISH_BASE62                                                                \
    "{\"action\":\"message_publish\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB9Bfn4gw7M\",\"qos\":1,\"retain\":false,"  \
    "\"topic\":\"t/1\",\"ts\":1764800000000}"
#define WEBHOOK_BODY_DELIVERED_BASE62                                                              \
    "{\"action\":\"message_delivered\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"      \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB9Bfn4gw7M\","  \
    "\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_ACKED_BASE62                                                                  \
    "{\"action\":\"message_acked\",\"clientid\":\"c2\",\"from_client_id\":\"c1\",\"from_"          \
    "username\":\"u1\",\"node\":\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB9Bfn4gw7M\","  \
    "\"qos\":1,\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000,\"username\":\"u2\"}"
#define WEBHOOK_BODY_DROPPED_BASE62                                                                \
    "{\"action\":\"message_dropped\",\"from_client_id\":\"c1\",\"from_username\":\"u1\",\"node\":" \
    "\"emqx@127.0.0.1\",\"payload\":\"eyJ0ZW1wIjoyMS41fSB9Bfn4gw7M\",\"qos\":1,\"reason\":\"no_"   \
    "subscribers\",\"retain\":false,\"topic\":\"t/1\",\"ts\":1764800000000}"

/* The requests' payload, which the message bodies carry encoded. */
#define WEBHOOK_CASE_PAYLOAD "{\"temp\":21.5} ~~~ ü"

struct webhook_case {
    enum hook_id hook;
    enum cfg_payload_encoding encoding; /* for the message events; plain for the others */
    const char *bodies[2];              /* client.subscribe has two topic filters */
    size_t n_bodies;
    /* The first generation whose request carries what the bodies need:
     * older ones give no body. EMQX 4.4 (and 5.0-5.3) send
     * client.unsubscribe without its topic filters: their ExHook passes on
     * only filters that have a QoS, and an unsubscribe's have none. */
    int from_version;
};

extern const struct webhook_case webhook_cases[];
extern const size_t webhook_case_count;

/* The serialized request of `hook` as a generation `version` broker sends
 * it, in a malloc'd buffer (*len bytes). Generation 1 with `meta` false is
 * a 4.4 broker before 4.4.3, which sent no meta. */
uint8_t *webhook_case_request(enum hook_id hook, int version, int meta, size_t *len);

#endif
