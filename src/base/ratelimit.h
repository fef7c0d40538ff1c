#ifndef EXHOOKD_RATELIMIT_H
#define EXHOOKD_RATELIMIT_H

/* At most one log line per interval about one kind of event, with the
 * events in between counted and folded into the next line. Any thread may
 * count; no lock is taken. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
    int64_t interval_ns;
    _Atomic int64_t last_ns;      /* when the last line was allowed; INT64_MIN: never */
    atomic_uint_fast64_t pending; /* events since then */
};

void ratelimit_init(struct ratelimit *r, int64_t interval_ns);

/* Counts one event at `now_ns` (CLOCK_MONOTONIC). Returns 0 when the line
 * must stay quiet, otherwise the events to report in it, this one included;
 * `*first` then says whether it is the first line of all. */
uint64_t ratelimit_hit(struct ratelimit *r, int64_t now_ns, bool *first);

#endif
