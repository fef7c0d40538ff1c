#include "server_internal.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "script.h"

/* Calls freed by a thread, kept for its next requests: their reply buffer
 * and arena stay allocated, so a call in the steady state allocates
 * nothing. */
#define SPARE_CALLS 32
static __thread struct call *spare[SPARE_CALLS];
static __thread int spare_count;

static struct call *call_new(void)
{
    if (spare_count > 0)
        return spare[--spare_count];
    struct call *c = calloc(1, sizeof *c);
    if (c)
        c->status_details = grpc_empty_slice();
    return c;
}

static void call_free(struct call *c)
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
    if (spare_count < SPARE_CALLS) {
        spare[spare_count++] = c;
        return;
    }
    dispatch_reply_free(&c->out);
    free(c);
}

void call_unref(struct call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

void call_post(struct server *s, int method)
{
    struct call *c = call_new();
    if (!c) {
        log_error("cannot post a request for calls: out of memory");
        return;
    }
    c->kind = TAG_CALL;
    c->close.kind = TAG_CLOSE;
    c->srv = s;
    c->w = NULL;
    c->method = method;
    c->state = CALL_WAITING;
    c->call = NULL;
    c->payload = NULL;
    c->cancelled = 0;
    c->close_watched = c->deferred = false;
    atomic_store(&c->refs, 1);
    grpc_metadata_array_init(&c->request_md);
    if (method < 0)
        grpc_call_details_init(&c->details);
    pthread_mutex_lock(&s->post_lock);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->post_lock);
        call_unref(c);
        return;
    }
    grpc_call_error rc;
    if (method >= 0)
        rc = grpc_server_request_registered_call(s->grpc, s->methods[method].handle, &c->call,
                                                 &c->deadline, &c->request_md, &c->payload, s->cq,
                                                 s->cq, c);
    else
        rc = grpc_server_request_call(s->grpc, &c->call, &c->details, &c->request_md, s->cq,
                                      s->cq, c);
    pthread_mutex_unlock(&s->post_lock);
    if (rc != GRPC_CALL_OK) {
        log_error("cannot post a request for calls (grpc error %d)", (int)rc);
        call_unref(c);
    }
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

/* Starts `n` ops of `c` with `tag`, unless the queue is shut down. */
static bool start_batch(struct call *c, size_t n, void *tag)
{
    struct server *s = c->srv;
    pthread_mutex_lock(&s->post_lock);
    if (s->cq_closed) {
        /* The call outlived the shutdown grace period and was cancelled. */
        pthread_mutex_unlock(&s->post_lock);
        return false;
    }
    atomic_fetch_add(&c->refs, 1);
    grpc_call_error rc = grpc_call_start_batch(c->call, n ? c->ops : NULL, n, tag, NULL);
    pthread_mutex_unlock(&s->post_lock);
    if (rc != GRPC_CALL_OK) {
        atomic_fetch_sub(&c->refs, 1);
        log_error("cannot start a batch on a call (grpc error %d)", (int)rc);
        return false;
    }
    return true;
}

void call_watch_close(struct call *c)
{
    if (c->close_watched)
        return;
    c->close_watched = true;
    memset(c->ops, 0, sizeof c->ops);
    c->ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    c->ops[0].data.recv_close_on_server.cancelled = &c->cancelled;
    if (!start_batch(c, 1, &c->close))
        c->close_watched = false;
}

bool call_reply(struct call *c, grpc_status_code status, const char *error, const uint8_t *data,
                size_t len)
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
    if (!c->close_watched) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
        n++;
    }
    c->state = CALL_REPLYING;
    return start_batch(c, n, c);
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

void call_spares_free(void)
{
    while (spare_count > 0) {
        struct call *c = spare[--spare_count];
        dispatch_reply_free(&c->out);
        free(c);
    }
}
