#ifndef EXHOOKD_PUBLISH_H
#define EXHOOKD_PUBLISH_H

/* The message a message.publish chain hands from module to module, as plain
 * C data. A table a handler returns is read once and raw (no metamethod
 * runs, no field is read twice) into this structure, which is then checked,
 * shown to the next module and packed into the reply: the broker gets
 * exactly what was checked, however the returned value was built. */

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "exhook.pb-c.h"

typedef Emqx__Exhook__V3__Message__HeadersEntry publish_header;

struct publish_msg {
    const Emqx__Exhook__V3__Message *request; /* the broker's message, or NULL */
    const char *topic; /* no NUL inside; points into `request` or an anchored Lua string */
    uint32_t qos;      /* 0, 1 or 2 */
    ProtobufCBinaryData payload;
    publish_header **headers; /* the request's, or copies in the call's arena */
    size_t n_headers;
    bool changed;         /* a module returned a table */
    bool headers_changed; /* a module returned headers */
    /* Two stack slots that keep alive the Lua strings topic and payload
     * point into (nil while they are the request's). */
    int anchors;
};

/* Starts from the request's message (NULL: an empty one). Pushes the two
 * anchor slots, which must stay on the stack while `pm` is used. */
void publish_msg_init(lua_State *L, struct publish_msg *pm,
                      const Emqx__Exhook__V3__Message *request);

/* Takes topic, qos, payload and headers of the table at `idx` into `pm`,
 * checking each; with `whole` (the handler returned the message table it
 * was given) all four must be there. Header strings are copied into `a`.
 * 0 on success; -1 with the reason in `why`; -2 when `a` is out of memory. */
int publish_msg_read(lua_State *L, int idx, bool whole, struct publish_msg *pm, struct arena *a,
                     char *why, size_t whylen);

/* Pushes the table the next module gets: a copy of the request's message
 * table at `base` (and of the tables in it, so that edits in place stay in
 * the copy), with the changes made so far. */
void publish_msg_push(lua_State *L, int base, const struct publish_msg *pm);

/* Fills `out` with the message to reply with: the request's, with pm's
 * topic, qos, payload and headers, and allow_publish = "false" instead of
 * any allow_publish header when `drop`. -1 when `a` is out of memory. */
int publish_msg_fill(const struct publish_msg *pm, bool drop, struct arena *a,
                     Emqx__Exhook__V3__Message *out);

#endif
