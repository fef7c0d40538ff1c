#ifndef EXHOOKD_SERVER_H
#define EXHOOKD_SERVER_H

/* The gRPC side: one listening port serving every rpc of every interface
 * generation, N worker threads each with its own completion queue and its
 * own Lua state. A call is served start to finish on the worker whose queue
 * it arrived on, so nothing on the call path takes a lock. */

#include <stddef.h>

#include "config.h"

struct server;

/* Binds the configured address and loads the scripts into every worker's
 * state. Takes `cfg` over (it is left empty, whatever the outcome);
 * `config_path` is the file re-read on each reload (NULL: keep `cfg`). NULL
 * with a one-line message in `err` on failure (port in use, script error). */
struct server *srv_create(struct config *cfg, const char *config_path, char *err,
                          size_t errlen);

/* The port actually bound (useful with "host:0"). */
int srv_port(const struct server *s);

/* Number of worker threads. */
int srv_worker_count(const struct server *s);

/* Called (on the watchdog thread) each time a worker is found stuck in code
 * that cannot be interrupted, after the call it held has been answered. */
typedef void srv_stuck_fn(void *ctx);

/* Sets the function called when a worker is stuck ([server] watchdog). */
void srv_on_stuck(struct server *s, srv_stuck_fn *fn, void *ctx);

/* Starts the workers and the watchdog; calls are served from now on. */
int srv_start(struct server *s, char *err, size_t errlen);

/* Re-reads the configuration and the scripts and loads them, changed or
 * not (SIGHUP). 0 once the new scripts are in use (the first worker has
 * them, the others join as theirs load), -1 if the old ones stay. */
int srv_reload(struct server *s);

/* Logs the metrics that are not zero, one "stats: " line each: the same
 * registry /metrics serves, without comments and histogram buckets. */
void srv_log_stats(struct server *s);

/* The metrics in Prometheus text format (malloc'd; its length in *len), or
 * NULL when out of memory. */
char *srv_metrics_text(struct server *s, size_t *len);

/* The port of the metrics endpoint, 0 when [metrics] listen is off. */
int srv_metrics_port(const struct server *s);

/* Stops taking calls, lets those in flight finish (up to [server]
 * shutdown_timeout, then cancels them), stops the workers, logs the final
 * counters and frees everything, running each module's deinit(). Safe on a
 * server that was never started. 0; or -1 when a worker did not stop within
 * shutdown_timeout (or the time limit of the handler it was running) + 2 s:
 * stuck in code that cannot be interrupted; then nothing is freed and the
 * caller should end the process with _exit. */
int srv_destroy(struct server *s);

#endif
