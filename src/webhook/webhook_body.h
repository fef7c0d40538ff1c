#ifndef EXHOOKD_WEBHOOK_BODY_H
#define EXHOOKD_WEBHOOK_BODY_H

/* The 4.x WebHook's bodies: one broker request (as a v1, v2 or v3 broker
 * sends it) becomes the JSON bodies EMQX 4.x's emqx_web_hook posted for
 * the event, one per [webhook] rule that matches it. No I/O here. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hooks.h"

struct webhook_event {
    char *clientid;  /* whose event it is: events of one client keep their order */
    size_t n_bodies; /* 0: no rule wants it (e.g. no topic filter matches) */
    char **bodies;   /* JSON texts, NUL-terminated */
    size_t *lens;
};

/* Renders the serialized request `req` of hook `hook` in interface
 * generation `version`, received at `ts_ms` (milliseconds since the epoch).
 * 0 on success (n_bodies may be 0); -1 with a message in `err` for a
 * request that does not decode. */
int webhook_render(const struct cfg_webhook *wc, enum hook_id hook, int version,
                   const uint8_t *req, size_t len, int64_t ts_ms, struct webhook_event *out,
                   char *err, size_t errlen);

void webhook_event_free(struct webhook_event *ev);

/* Whether a rule of `wc` asks for `hook`. For a message hook, *every_topic
 * tells whether some rule takes every topic; if not, the rules' topic
 * filters are added to `topics` (what OnProviderLoaded registers). */
bool webhook_wants(const struct cfg_webhook *wc, enum hook_id hook, bool *every_topic,
                   struct cfg_filters *topics);

#endif
