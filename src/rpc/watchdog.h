#ifndef EXHOOKD_WATCHDOG_H
#define EXHOOKD_WATCHDOG_H

/* The watchdog: one thread that notices a worker stuck in code that cannot
 * be interrupted. Lua's time limit is a count hook, and no hook runs inside
 * a C function (a backtracking string.find, a C module's blocking call) or
 * inside a __gc finalizer. Each worker publishes here what it is doing and
 * until when; a worker still on the same thing `bound_ms` past that deadline
 * is reported once, to the server's callback, from the watchdog thread.
 *
 * Publishing is a few atomic stores on the worker's own cache line: no lock
 * and no system call on the call path. */

#include <stdatomic.h>
#include <stdint.h>

enum wd_busy { WD_IDLE, WD_CALL, WD_CLOSING };

struct watchdog;

/* Called on the watchdog thread for a worker busy `late_ns` past its
 * deadline: `id` names that busy period (wd_busy returned it to the worker,
 * never 0), `what` is what the worker published. */
typedef void wd_stuck_fn(void *ctx, int slot, enum wd_busy kind, void *what, uint64_t id,
                         int64_t late_ns);

/* `slots` workers, numbered 0..slots-1. bound_ms = 0: busy periods are
 * still numbered, nothing is watched. NULL when out of memory. */
struct watchdog *wd_create(int slots, unsigned bound_ms, wd_stuck_fn *fn, void *ctx);

/* Starts the thread (nothing to do with bound 0). 0, or -1 if it cannot. */
int wd_start(struct watchdog *wd);

/* Worker `slot` starts `kind` on `what`, to be done by `deadline_ns`
 * (CLOCK_MONOTONIC; INT64_MAX = never stuck). Returns the period's id, also
 * stored in `*token` (unless NULL) before the period is published, so that
 * whoever sees the period also sees the token. */
uint64_t wd_busy(struct watchdog *wd, int slot, enum wd_busy kind, void *what, int64_t deadline_ns,
                 atomic_uint_fast64_t *token);

/* Worker `slot` is done with what it published. */
void wd_idle(struct watchdog *wd, int slot);

/* The deadline of what worker `slot` is busy with now; INT64_MIN when it is
 * idle, INT64_MAX when what it does has no deadline. */
int64_t wd_deadline(struct watchdog *wd, int slot);

/* Stops the thread and frees everything. NULL is fine. */
void wd_destroy(struct watchdog *wd);

#endif
