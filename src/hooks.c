#include "hooks.h"

#include <string.h>

#include "exhook.pb-c.h"

#define REQ(type) &emqx__exhook__v3__##type##__descriptor

const struct hook_def hook_defs[HOOK_COUNT] = {
    [HOOK_PROVIDER_LOADED] = {"OnProviderLoaded", NULL, "on_provider_loaded", NULL,
                              REQ(provider_loaded_request), HOOK_KIND_LOADED, {"broker"}},
    [HOOK_PROVIDER_UNLOADED] = {"OnProviderUnloaded", NULL, "on_provider_unloaded", NULL,
                                REQ(provider_unloaded_request), HOOK_KIND_NOTIFY, {NULL}},
    [HOOK_CLIENT_CONNECT] = {"OnClientConnect", "client.connect", "on_client_connect", NULL,
                             REQ(client_connect_request), HOOK_KIND_NOTIFY,
                             {"conninfo", "props"}},
    [HOOK_CLIENT_CONNACK] = {"OnClientConnack", "client.connack", "on_client_connack", NULL,
                             REQ(client_connack_request), HOOK_KIND_NOTIFY,
                             {"conninfo", "result_code", "props"}},
    [HOOK_CLIENT_CONNECTED] = {"OnClientConnected", "client.connected", "on_client_connected",
                               NULL, REQ(client_connected_request), HOOK_KIND_NOTIFY,
                               {"clientinfo"}},
    [HOOK_CLIENT_DISCONNECTED] = {"OnClientDisconnected", "client.disconnected",
                                  "on_client_disconnected", NULL,
                                  REQ(client_disconnected_request), HOOK_KIND_NOTIFY,
                                  {"clientinfo", "reason"}},
    [HOOK_CLIENT_AUTHENTICATE] = {"OnClientAuthenticate", "client.authenticate",
                                  "on_client_authenticate", NULL,
                                  REQ(client_authenticate_request), HOOK_KIND_VERDICT,
                                  {"clientinfo", "result"}},
    [HOOK_CLIENT_AUTHORIZE] = {"OnClientAuthorize", "client.authorize", "on_client_authorize",
                               "on_client_check_acl", REQ(client_authorize_request),
                               HOOK_KIND_VERDICT, {"clientinfo", "type", "topic", "result"}},
    [HOOK_CLIENT_SUBSCRIBE] = {"OnClientSubscribe", "client.subscribe", "on_client_subscribe",
                               NULL, REQ(client_subscribe_request), HOOK_KIND_NOTIFY,
                               {"clientinfo", "props", "topic_filters"}},
    [HOOK_CLIENT_UNSUBSCRIBE] = {"OnClientUnsubscribe", "client.unsubscribe",
                                 "on_client_unsubscribe", NULL,
                                 REQ(client_unsubscribe_request), HOOK_KIND_NOTIFY,
                                 {"clientinfo", "props", "topic_filters"}},
    [HOOK_SESSION_CREATED] = {"OnSessionCreated", "session.created", "on_session_created", NULL,
                              REQ(session_created_request), HOOK_KIND_NOTIFY, {"clientinfo"}},
    [HOOK_SESSION_SUBSCRIBED] = {"OnSessionSubscribed", "session.subscribed",
                                 "on_session_subscribed", NULL,
                                 REQ(session_subscribed_request), HOOK_KIND_NOTIFY,
                                 {"clientinfo", "topic", "subopts"}},
    [HOOK_SESSION_UNSUBSCRIBED] = {"OnSessionUnsubscribed", "session.unsubscribed",
                                   "on_session_unsubscribed", NULL,
                                   REQ(session_unsubscribed_request), HOOK_KIND_NOTIFY,
                                   {"clientinfo", "topic"}},
    [HOOK_SESSION_RESUMED] = {"OnSessionResumed", "session.resumed", "on_session_resumed", NULL,
                              REQ(session_resumed_request), HOOK_KIND_NOTIFY, {"clientinfo"}},
    [HOOK_SESSION_DISCARDED] = {"OnSessionDiscarded", "session.discarded",
                                "on_session_discarded", NULL, REQ(session_discarded_request),
                                HOOK_KIND_NOTIFY, {"clientinfo"}},
    [HOOK_SESSION_TAKENOVER] = {"OnSessionTakenover", "session.takenover",
                                "on_session_takenover", "on_session_takeovered",
                                REQ(session_takenover_request), HOOK_KIND_NOTIFY,
                                {"clientinfo"}},
    [HOOK_SESSION_TERMINATED] = {"OnSessionTerminated", "session.terminated",
                                 "on_session_terminated", NULL,
                                 REQ(session_terminated_request), HOOK_KIND_NOTIFY,
                                 {"clientinfo", "reason"}},
    [HOOK_MESSAGE_PUBLISH] = {"OnMessagePublish", "message.publish", "on_message_publish", NULL,
                              REQ(message_publish_request), HOOK_KIND_PUBLISH, {"message"}},
    [HOOK_MESSAGE_DELIVERED] = {"OnMessageDelivered", "message.delivered",
                                "on_message_delivered", NULL, REQ(message_delivered_request),
                                HOOK_KIND_NOTIFY, {"clientinfo", "message"}},
    [HOOK_MESSAGE_DROPPED] = {"OnMessageDropped", "message.dropped", "on_message_dropped", NULL,
                              REQ(message_dropped_request), HOOK_KIND_NOTIFY,
                              {"message", "reason"}},
    [HOOK_MESSAGE_ACKED] = {"OnMessageAcked", "message.acked", "on_message_acked", NULL,
                            REQ(message_acked_request), HOOK_KIND_NOTIFY,
                            {"clientinfo", "message"}},
};

const struct hook_generation hook_generations[HOOK_GENERATION_COUNT] = {
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
