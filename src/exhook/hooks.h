#ifndef EXHOOKD_HOOKS_H
#define EXHOOKD_HOOKS_H

/* The one table of the ExHook interface: every rpc with its EMQX hook name,
 * its request type, the Lua handler that serves it and the request fields a
 * handler receives. Everything else (method registration, OnProviderLoaded,
 * config validation, dispatch) reads it. */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

enum hook_id {
    HOOK_PROVIDER_LOADED = 0,
    HOOK_PROVIDER_UNLOADED,
    HOOK_CLIENT_CONNECT,
    HOOK_CLIENT_CONNACK,
    HOOK_CLIENT_CONNECTED,
    HOOK_CLIENT_DISCONNECTED,
    HOOK_CLIENT_AUTHENTICATE,
    HOOK_CLIENT_AUTHORIZE,
    HOOK_CLIENT_SUBSCRIBE,
    HOOK_CLIENT_UNSUBSCRIBE,
    HOOK_SESSION_CREATED,
    HOOK_SESSION_SUBSCRIBED,
    HOOK_SESSION_UNSUBSCRIBED,
    HOOK_SESSION_RESUMED,
    HOOK_SESSION_DISCARDED,
    HOOK_SESSION_TAKENOVER,
    HOOK_SESSION_TERMINATED,
    HOOK_MESSAGE_PUBLISH,
    HOOK_MESSAGE_DELIVERED,
    HOOK_MESSAGE_DROPPED,
    HOOK_MESSAGE_ACKED,
    HOOK_COUNT
};

/* How the handlers' results become the reply. */
enum hook_kind {
    HOOK_KIND_LOADED,   /* OnProviderLoaded: LoadedResponse with the hook list */
    HOOK_KIND_NOTIFY,   /* EmptySuccess; every module's handler runs */
    HOOK_KIND_VERDICT,  /* ValuedResponse with bool_result (authenticate, authorize) */
    HOOK_KIND_PUBLISH,  /* ValuedResponse with the whole message */
};

#define HOOK_MAX_ARGS 4

struct hook_def {
    const char *rpc;     /* method name, e.g. "OnClientAuthenticate" */
    const char *name;    /* EMQX hook name, e.g. "client.authenticate"; NULL for provider rpcs */
    const char *rpc_v1;  /* the v1 (EMQX 4.x) method name where it differs, else NULL */
    const char *name_v1; /* the v1 hook name where it differs, else NULL */
    const char *handler; /* Lua function, e.g. "on_client_authenticate" */
    const char *alias;   /* another accepted Lua function name, or NULL */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *request_v1; /* where v1's wire format differs */
    enum hook_kind kind;
    /* Request fields handed to the handler, in order; `meta` always follows. */
    const char *args[HOOK_MAX_ARGS];
};

extern const struct hook_def hook_defs[HOOK_COUNT];

/* Interface generations served on the same port: v1 = EMQX 4.3/4.4,
 * v2 = EMQX 5.0-5.8, v3 = EMQX 5.9+ and 6.x. */
struct hook_generation {
    const char *package; /* "emqx.exhook.v2" */
    int version;         /* 2 */
};

#define HOOK_GENERATION_COUNT 3
extern const struct hook_generation hook_generations[HOOK_GENERATION_COUNT];

/* The method name, EMQX hook name (NULL for provider rpcs) and request type
 * of `id` in interface generation `version`. */
const char *hooks_rpc(enum hook_id id, int version);
const char *hooks_name(enum hook_id id, int version);
const ProtobufCMessageDescriptor *hooks_request(enum hook_id id, int version);

/* The gRPC method path of `id` in generation `version`, e.g.
 * "/emqx.exhook.v3.HookProvider/OnClientAuthenticate". A `version` outside
 * 1..3 gives the v3 method under package emqx.exhook.v<version>. */
void hooks_path(char *buf, size_t len, enum hook_id id, int version);

/* Index of the hook with EMQX name `name` ("message.publish"), or -1. */
int hooks_find_by_name(const char *name);

/* True for the four message.* hooks, the only ones EMQX filters by topic. */
bool hooks_is_message(enum hook_id id);

#endif
