#ifndef EXHOOKD_WEBHOOK_H
#define EXHOOKD_WEBHOOK_H

/* The built-in WebHook's delivery: broker events, offered by the workers as
 * the request bytes the broker sent, wait in a bounded queue and are POSTed
 * by a thread of their own, with its own event loop and HTTP client
 * (src/net), so that nothing a receiver does reaches the broker's calls.
 *
 * On the worker's side, webhook_offer only copies the request into the
 * queue: decoding, rendering (webhook_body.h) and HTTP all happen on the
 * delivery thread. Events of one client are posted in the order they were
 * offered, one at a time (a lane per client id); different clients in
 * parallel, up to pool_size POSTs at once. Failed POSTs (no connection,
 * timeout, 5xx) are retried with a doubling backoff up to max_retries; a
 * 4xx answer is final. */

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hooks.h"

struct webhook;
struct mx_registry;

/* Why an event or a POST was given up. */
enum webhook_drop {
    WEBHOOK_DROP_QUEUE_FULL,  /* offered while the queue was full: never rendered */
    WEBHOOK_DROP_RETRIES,     /* failed max_retries + 1 times */
    WEBHOOK_DROP_REJECTED,    /* the receiver answered 4xx */
    WEBHOOK_DROP_UNDECODABLE, /* the request did not decode */
    WEBHOOK_DROP_UNSENDABLE,  /* the POST could not be made as configured */
    WEBHOOK_DROP_SHUTDOWN,    /* still waiting when the stop's time was up */
    WEBHOOK_DROP_COUNT,
};

/* Starts the delivery thread for `cfg` (whose url is set; copied), counting
 * into families it adds to `mx` (which outlives it; may be NULL). NULL with
 * a message in `err`. */
struct webhook *webhook_start(const struct cfg_webhook *cfg, struct mx_registry *mx, char *err,
                              size_t errlen);

/* Queues the request `req` of `hook`, as sent by a broker of interface
 * generation `version`, which arrived at `ts_ms` (ms since the epoch), or
 * counts it dropped when the queue is full. Never waits for the delivery
 * thread beyond a short lock; `shard` is the metrics shard of the calling
 * thread. Safe from any thread, also after webhook_stop. */
void webhook_offer(struct webhook *wh, int shard, enum hook_id hook, int version,
                   const uint8_t *req, size_t len, int64_t ts_ms);

/* A reload's [webhook] settings (copied): the rules, url, headers, payload
 * encoding, TLS files, timeouts, retries and queue limits apply from the
 * next event the thread renders or posts; pool_size, and turning the
 * webhook on or off, take a restart. Safe from any thread. */
void webhook_reconfigure(struct webhook *wh, const struct cfg_webhook *cfg);

/* Stops taking events, goes on delivering what is queued until it is empty
 * or until `deadline_ns` (CLOCK_MONOTONIC), then logs how many events were
 * left undelivered and ends the thread. */
void webhook_stop(struct webhook *wh, int64_t deadline_ns);

/* Stops it (at once, if webhook_stop did not) and frees it. */
void webhook_free(struct webhook *wh);

/* Events accepted and not yet delivered or given up, and their bytes. */
void webhook_depth(struct webhook *wh, size_t *events, size_t *bytes);

/* Wall-clock milliseconds since the epoch: the ts of an offered event. */
int64_t webhook_now_ms(void);

#endif
