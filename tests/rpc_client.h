#ifndef EXHOOKD_TEST_RPC_CLIENT_H
#define EXHOOKD_TEST_RPC_CLIENT_H

/* A minimal blocking unary gRPC client on the C core API, as EMQX would call
 * exhookd: one channel, one call at a time. */

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_client;

struct rpc_result {
    grpc_status_code status;
    char *details;    /* grpc-message, malloc'd, "" when none */
    uint8_t *reply;   /* reply message bytes, malloc'd, NULL when none came */
    size_t reply_len;
    int got_message;  /* 1 if the server sent a message */
};

struct rpc_client *rpc_client_open(const char *target);
/* Same, with channel arguments (e.g. compression). */
struct rpc_client *rpc_client_open_args(const char *target, const grpc_channel_args *args);
/* Over TLS, trusting the PEM CA bundle `ca_pem`; `cert_pem` and `key_pem`
 * (both or neither, may be NULL) are the client certificate for mutual TLS.
 * `server_name`, when not NULL, is the name the server certificate must
 * carry instead of the target's host. */
struct rpc_client *rpc_client_open_tls(const char *target, const char *ca_pem,
                                       const char *cert_pem, const char *key_pem,
                                       const char *server_name);
/* Deadline of the following calls (default 30 s), sent as grpc-timeout. */
void rpc_client_set_timeout(struct rpc_client *c, int timeout_ms);
void rpc_client_close(struct rpc_client *c);

/* Calls `path` ("/emqx.exhook.v3.HookProvider/OnClientAuthenticate") with raw
 * request bytes; data NULL sends no message at all (only a half-close). 0
 * when the call completed (whatever its status). */
int rpc_call_raw(struct rpc_client *c, const char *path, const void *data, size_t len,
                 struct rpc_result *out);

/* Same, packing `req` first. */
int rpc_call(struct rpc_client *c, const char *path, const ProtobufCMessage *req,
             struct rpc_result *out);

void rpc_result_free(struct rpc_result *r);

/* grpc.health.v1.Health/Check for `service`: the call's status (-1 if it
 * did not complete), and when OK the answer's ServingStatus in *serving
 * (-1 if the reply did not decode). */
int rpc_health_check(struct rpc_client *c, const char *service, int *serving);

/* One OnClientAuthenticate call as `username` (clientid "c1") on a client
 * of its own: its status, its grpc-message in `details`, and its verdict in
 * *allowed (1 or 0; -1 when none came). -1 if the call did not complete. */
int rpc_authenticate(const char *target, const char *username, char *details, size_t len,
                     int *allowed);
/* The same with the client's deadline `timeout_ms` from now (0: the
 * client's default). */
int rpc_authenticate_within(const char *target, const char *username, int timeout_ms,
                            char *details, size_t len, int *allowed);

#endif
