#include "server_internal.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "log.h"
#include "script.h"

void call_post(struct call *c)
{
    struct worker *w = c->w;
    struct server *s = w->srv;
    pthread_mutex_lock(&w->post_lock);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&w->post_lock);
        return;
    }
    c->state = CALL_WAITING;
    c->call = NULL;
    c->payload = NULL;
    grpc_metadata_array_init(&c->request_md);
    grpc_call_error rc;
    if (c->method >= 0) {
        rc = grpc_server_request_registered_call(s->grpc, s->methods[c->method].handle, &c->call,
                                                 &c->deadline, &c->request_md, &c->payload, w->cq,
                                                 w->cq, c);
    } else {
        grpc_call_details_init(&c->details);
        rc = grpc_server_request_call(s->grpc, &c->call, &c->details, &c->request_md, w->cq, w->cq,
                                      c);
    }
    pthread_mutex_unlock(&w->post_lock);
    if (rc != GRPC_CALL_OK)
        log_error("cannot post a request for calls (grpc error %d)", (int)rc);
}

void call_release(struct call *c)
{
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    c->payload = c->reply = NULL;
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_destroy(&c->request_md);
    if (c->method < 0)
        grpc_call_details_destroy(&c->details);
    if (c->call)
        grpc_call_unref(c->call);
    c->call = NULL;
}

/* Reads the whole request message into one contiguous slice. */
grpc_slice call_read_payload(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return grpc_empty_slice();
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return all;
}

/* Starts the batch that answers `c`. Unless REPLY_STARTED, no completion
 * will come for it: the caller decides what becomes of the call. */
enum reply_outcome call_reply(struct call *c, grpc_status_code status, const char *error,
                              const uint8_t *data, size_t len)
{
    size_t n = 0;
    grpc_op *ops = c->ops;
    memset(ops, 0, sizeof c->ops);
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    /* On error no message is sent: the broker's HTTP/2 client takes any
     * DATA frame for success, whatever the trailers say. */
    if (status == GRPC_STATUS_OK) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->reply;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    if (status != GRPC_STATUS_OK) {
        c->status_details = grpc_slice_from_copied_string(error);
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;
    c->state = CALL_REPLYING;
    struct worker *w = c->w;
    pthread_mutex_lock(&w->post_lock);
    if (w->cq_closed) {
        /* The call outlived the shutdown grace period and was cancelled. */
        pthread_mutex_unlock(&w->post_lock);
        return REPLY_CLOSED;
    }
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, c, NULL);
    pthread_mutex_unlock(&w->post_lock);
    if (rc != GRPC_CALL_OK) {
        log_error("cannot answer a call (grpc error %d)", (int)rc);
        return REPLY_FAILED;
    }
    return REPLY_STARTED;
}

/* The broker's deadline on the scripts' clock. gRPC's monotonic clock has
 * its own epoch, so go through the time remaining. */
int64_t call_deadline_ns(gpr_timespec deadline)
{
    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
    int64_t now = script_now_ns();
    if (left.tv_sec < 0)
        return now;
    /* A grpc-timeout of years must not wrap around into the past. */
    if (left.tv_sec >= (INT64_MAX - now) / 1000000000 - 1)
        return INT64_MAX;
    return now + left.tv_sec * 1000000000 + left.tv_nsec;
}
