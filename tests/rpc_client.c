#include "rpc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "health.pb-c.h"

struct rpc_client {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    int timeout_ms;
};

/* Takes `creds` over. */
static struct rpc_client *open_with(const char *target, grpc_channel_credentials *creds,
                                    const grpc_channel_args *args)
{
    struct rpc_client *c = calloc(1, sizeof *c);
    c->channel = grpc_channel_create(target, creds, args);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    c->timeout_ms = 30000;
    return c;
}

struct rpc_client *rpc_client_open_args(const char *target, const grpc_channel_args *args)
{
    return open_with(target, grpc_insecure_credentials_create(), args);
}

struct rpc_client *rpc_client_open_tls(const char *target, const char *ca_pem,
                                       const char *cert_pem, const char *key_pem,
                                       const char *server_name)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = cert_pem};
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create(ca_pem, cert_pem != NULL ? &pair : NULL, NULL, NULL);
    /* The name the server certificate is checked against, when the target
     * (an IP address) is not it. */
    grpc_arg arg = {.type = GRPC_ARG_STRING,
                    .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                    .value.string = (char *)server_name};
    grpc_channel_args args = {.num_args = 1, .args = &arg};
    return open_with(target, creds, server_name != NULL ? &args : NULL);
}

struct rpc_client *rpc_client_open(const char *target)
{
    return rpc_client_open_args(target, NULL);
}

void rpc_client_set_timeout(struct rpc_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

void rpc_client_close(struct rpc_client *c)
{
    grpc_channel_destroy(c->channel);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    free(c);
}

int rpc_call_raw(struct rpc_client *c, const char *path, const void *data, size_t len,
                 struct rpc_result *out)
{
    memset(out, 0, sizeof *out);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                               grpc_slice_from_static_string(path), NULL,
                                               deadline, NULL);
    grpc_byte_buffer *send = NULL;
    if (data) {
        grpc_slice body = grpc_slice_from_copied_buffer(data, len);
        send = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
    }
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (send) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = send;
    }
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &recv;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[n].data.recv_status_on_client.status = &out->status;
    ops[n++].data.recv_status_on_client.status_details = &details;

    int rc = -1;
    if (grpc_call_start_batch(call, ops, n, call, NULL) == GRPC_CALL_OK) {
        grpc_event ev =
            grpc_completion_queue_pluck(c->cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        rc = ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : -1;
    }
    char *d = grpc_slice_to_c_string(details);
    out->details = strdup(d);
    gpr_free(d);
    if (recv) {
        grpc_byte_buffer_reader reader;
        grpc_byte_buffer_reader_init(&reader, recv);
        grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        out->got_message = 1;
        out->reply_len = GRPC_SLICE_LENGTH(all);
        out->reply = malloc(out->reply_len + 1);
        memcpy(out->reply, GRPC_SLICE_START_PTR(all), out->reply_len);
        grpc_slice_unref(all);
        grpc_byte_buffer_destroy(recv);
    }
    grpc_slice_unref(details);
    if (send)
        grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    return rc;
}

int rpc_call(struct rpc_client *c, const char *path, const ProtobufCMessage *req,
             struct rpc_result *out)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(req, buf);
    int rc = rpc_call_raw(c, path, buf, len, out);
    free(buf);
    return rc;
}

void rpc_result_free(struct rpc_result *r)
{
    free(r->details);
    free(r->reply);
    memset(r, 0, sizeof *r);
}

int rpc_health_check(struct rpc_client *c, const char *service, int *serving)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    struct rpc_result r;
    if (rpc_call(c, "/grpc.health.v1.Health/Check", &req.base, &r) != 0)
        return -1;
    int status = r.status;
    if (status == GRPC_STATUS_OK) {
        Grpc__Health__V1__HealthCheckResponse *h =
            grpc__health__v1__health_check_response__unpack(NULL, r.reply_len, r.reply);
        *serving = h ? (int)h->status : -1;
        if (h)
            grpc__health__v1__health_check_response__free_unpacked(h, NULL);
    }
    rpc_result_free(&r);
    return status;
}

int rpc_authenticate(const char *target, const char *username, char *details, size_t len,
                     int *allowed)
{
    return rpc_authenticate_within(target, username, 0, details, len, allowed);
}

int rpc_authenticate_within(const char *target, const char *username, int timeout_ms,
                            char *details, size_t len, int *allowed)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)username;
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    req.clientinfo = &ci;
    struct rpc_client *c = rpc_client_open(target);
    if (timeout_ms > 0)
        rpc_client_set_timeout(c, timeout_ms);
    struct rpc_result r;
    int st = -1;
    *allowed = -1;
    if (rpc_call(c, "/emqx.exhook.v3.HookProvider/OnClientAuthenticate", &req.base, &r) == 0) {
        st = r.status;
        snprintf(details, len, "%s", r.details);
        Emqx__Exhook__V3__ValuedResponse *v =
            st == GRPC_STATUS_OK && r.reply
                ? emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply)
                : NULL;
        if (v && v->value_case == EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT)
            *allowed = v->bool_result;
        if (v)
            emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
        rpc_result_free(&r);
    }
    rpc_client_close(c);
    return st;
}
