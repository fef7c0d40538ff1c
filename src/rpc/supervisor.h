#ifndef EXHOOKD_SUPERVISOR_H
#define EXHOOKD_SUPERVISOR_H

/* The master process, as nginx has one: `exhookd` forks a child that runs
 * the server, and stays behind, single-threaded and without gRPC, to
 * supervise it. gRPC cannot take a thread back from a C function that never
 * returns, so a worker stuck in one is recovered by replacing the process:
 * when the child reports a stuck worker, or dies, the master starts a new
 * child on the same port (both bind it with SO_REUSEPORT), waits until it
 * is ready, then stops the old one (SIGTERM, then SIGKILL past
 * shutdown_timeout + a bound). SIGTERM, SIGINT, SIGHUP and SIGUSR1 sent to
 * the master go to the serving child. */

#include "config.h"

/* Runs the server in the child: everything exhookd does without a master.
 * `report_fd` is for sup_report_ready / sup_report_stuck. Returns the exit
 * code of the child. */
typedef int sup_child_fn(struct config *cfg, int report_fd, void *ctx);

/* Checks the port is free, then supervises children running `child` on
 * `cfg` (with cfg->reuse_port set) until SIGTERM or SIGINT. Returns the exit
 * code: the serving child's, 1 if the port is in use or the children keep
 * failing. */
int sup_run(struct config *cfg, sup_child_fn *child, void *ctx);

/* From the child: it serves calls on `port`. */
void sup_report_ready(int fd, int port);

/* From the child (any thread): a worker is stuck; async-signal-safe. */
void sup_report_stuck(int fd);

#endif
