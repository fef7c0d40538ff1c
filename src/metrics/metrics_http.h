#ifndef EXHOOKD_METRICS_HTTP_H
#define EXHOOKD_METRICS_HTTP_H

/* The Prometheus endpoint: GET /metrics on its own thread (libmicrohttpd),
 * 404 for any other path. */

#include <stdbool.h>
#include <stddef.h>

/* The page: malloc'd text and its length, or NULL when out of memory. */
typedef char *mxhttp_render_fn(void *ctx, size_t *len);

struct mxhttp;

/* Serves `render`'s text on `listen` ("host:port", "[v6]:port"; port 0 =
 * one the system picks). With `reuse_port`, the socket is bound with
 * SO_REUSEPORT, so that the master's next child can bind the same port
 * while this one still runs. NULL with `err` set when it cannot listen. */
struct mxhttp *mxhttp_start(const char *listen, bool reuse_port, mxhttp_render_fn *render,
                            void *ctx, char *err, size_t errlen);

/* The port it listens on. */
int mxhttp_port(const struct mxhttp *h);

/* Stops the thread and closes the port. NULL is ignored. */
void mxhttp_stop(struct mxhttp *h);

#endif
