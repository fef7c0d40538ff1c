#include "hooks.h"

#include <stdio.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "exhook_v1.pb-c.h"

#define REQ(type) &emqx__exhook__v3__##type##__descriptor

/* One row per rpc: method, hook name, Lua handler, request type, how the
 * reply is built, and the request fields the handler gets before `meta`. */
// clang-format off
#define ARGS(...) {__VA_ARGS__}
#define HOOK(id, rpc_, name_, handler_, type, kind_, args_, ...)                    \
    [id] = {.rpc = rpc_, .name = name_, .handler = handler_, .request = REQ(type),  \
            .kind = kind_, .args = args_, __VA_ARGS__}
// clang-format on

const struct hook_def hook_defs[HOOK_COUNT] = {
    HOOK(HOOK_PROVIDER_LOADED, "OnProviderLoaded", NULL, "on_provider_loaded",
         provider_loaded_request, HOOK_KIND_LOADED, ARGS("broker"),
         /* v1's BrokerInfo.uptime is a string */
         .request_v1 = &emqx__exhook__v1__provider_loaded_request__descriptor),
    HOOK(HOOK_PROVIDER_UNLOADED, "OnProviderUnloaded", NULL, "on_provider_unloaded",
         provider_unloaded_request, HOOK_KIND_NOTIFY, ARGS()),
    HOOK(HOOK_CLIENT_CONNECT, "OnClientConnect", "client.connect", "on_client_connect",
         client_connect_request, HOOK_KIND_NOTIFY, ARGS("conninfo", "props")),
    HOOK(HOOK_CLIENT_CONNACK, "OnClientConnack", "client.connack", "on_client_connack",
         client_connack_request, HOOK_KIND_NOTIFY, ARGS("conninfo", "result_code", "props")),
    HOOK(HOOK_CLIENT_CONNECTED, "OnClientConnected", "client.connected", "on_client_connected",
         client_connected_request, HOOK_KIND_NOTIFY, ARGS("clientinfo")),
    HOOK(HOOK_CLIENT_DISCONNECTED, "OnClientDisconnected", "client.disconnected",
         "on_client_disconnected", client_disconnected_request, HOOK_KIND_NOTIFY,
         ARGS("clientinfo", "reason")),
    HOOK(HOOK_CLIENT_AUTHENTICATE, "OnClientAuthenticate", "client.authenticate",
         "on_client_authenticate", client_authenticate_request, HOOK_KIND_VERDICT,
         ARGS("clientinfo", "result")),
    HOOK(HOOK_CLIENT_AUTHORIZE, "OnClientAuthorize", "client.authorize", "on_client_authorize",
         client_authorize_request, HOOK_KIND_VERDICT, ARGS("clientinfo", "type", "topic", "result"),
         .alias = "on_client_check_acl", .rpc_v1 = "OnClientCheckAcl",
         .name_v1 = "client.check_acl"),
    HOOK(HOOK_CLIENT_SUBSCRIBE, "OnClientSubscribe", "client.subscribe", "on_client_subscribe",
         client_subscribe_request, HOOK_KIND_NOTIFY, ARGS("clientinfo", "props", "topic_filters")),
    HOOK(HOOK_CLIENT_UNSUBSCRIBE, "OnClientUnsubscribe", "client.unsubscribe",
         "on_client_unsubscribe", client_unsubscribe_request, HOOK_KIND_NOTIFY,
         ARGS("clientinfo", "props", "topic_filters")),
    HOOK(HOOK_SESSION_CREATED, "OnSessionCreated", "session.created", "on_session_created",
         session_created_request, HOOK_KIND_NOTIFY, ARGS("clientinfo")),
    HOOK(HOOK_SESSION_SUBSCRIBED, "OnSessionSubscribed", "session.subscribed",
         "on_session_subscribed", session_subscribed_request, HOOK_KIND_NOTIFY,
         ARGS("clientinfo", "topic", "subopts")),
    HOOK(HOOK_SESSION_UNSUBSCRIBED, "OnSessionUnsubscribed", "session.unsubscribed",
         "on_session_unsubscribed", session_unsubscribed_request, HOOK_KIND_NOTIFY,
         ARGS("clientinfo", "topic")),
    HOOK(HOOK_SESSION_RESUMED, "OnSessionResumed", "session.resumed", "on_session_resumed",
         session_resumed_request, HOOK_KIND_NOTIFY, ARGS("clientinfo")),
    HOOK(HOOK_SESSION_DISCARDED, "OnSessionDiscarded", "session.discarded", "on_session_discarded",
         session_discarded_request, HOOK_KIND_NOTIFY, ARGS("clientinfo")),
    HOOK(HOOK_SESSION_TAKENOVER, "OnSessionTakenover", "session.takenover", "on_session_takenover",
         session_takenover_request, HOOK_KIND_NOTIFY, ARGS("clientinfo"),
         .alias = "on_session_takeovered", .rpc_v1 = "OnSessionTakeovered",
         .name_v1 = "session.takeovered"),
    HOOK(HOOK_SESSION_TERMINATED, "OnSessionTerminated", "session.terminated",
         "on_session_terminated", session_terminated_request, HOOK_KIND_NOTIFY,
         ARGS("clientinfo", "reason")),
    HOOK(HOOK_MESSAGE_PUBLISH, "OnMessagePublish", "message.publish", "on_message_publish",
         message_publish_request, HOOK_KIND_PUBLISH, ARGS("message")),
    HOOK(HOOK_MESSAGE_DELIVERED, "OnMessageDelivered", "message.delivered", "on_message_delivered",
         message_delivered_request, HOOK_KIND_NOTIFY, ARGS("clientinfo", "message")),
    HOOK(HOOK_MESSAGE_DROPPED, "OnMessageDropped", "message.dropped", "on_message_dropped",
         message_dropped_request, HOOK_KIND_NOTIFY, ARGS("message", "reason")),
    HOOK(HOOK_MESSAGE_ACKED, "OnMessageAcked", "message.acked", "on_message_acked",
         message_acked_request, HOOK_KIND_NOTIFY, ARGS("clientinfo", "message")),
};

const struct hook_generation hook_generations[HOOK_GENERATION_COUNT] = {
    {"emqx.exhook.v1", 1},
    {"emqx.exhook.v2", 2},
    {"emqx.exhook.v3", 3},
};

int hooks_find_by_name(const char *name)
{
    for (int i = 0; i < HOOK_COUNT; i++) {
        if (hook_defs[i].name && strcmp(hook_defs[i].name, name) == 0)
            return i;
    }
    return -1;
}

bool hooks_is_message(enum hook_id id)
{
    return id == HOOK_MESSAGE_PUBLISH || id == HOOK_MESSAGE_DELIVERED ||
           id == HOOK_MESSAGE_DROPPED || id == HOOK_MESSAGE_ACKED;
}

const char *hooks_rpc(enum hook_id id, int version)
{
    return version == 1 && hook_defs[id].rpc_v1 ? hook_defs[id].rpc_v1 : hook_defs[id].rpc;
}

const char *hooks_name(enum hook_id id, int version)
{
    return version == 1 && hook_defs[id].name_v1 ? hook_defs[id].name_v1 : hook_defs[id].name;
}

const ProtobufCMessageDescriptor *hooks_request(enum hook_id id, int version)
{
    return version == 1 && hook_defs[id].request_v1 ? hook_defs[id].request_v1
                                                    : hook_defs[id].request;
}

void hooks_path(char *buf, size_t len, enum hook_id id, int version)
{
    snprintf(buf, len, "/emqx.exhook.v%d.HookProvider/%s", version, hooks_rpc(id, version));
}
