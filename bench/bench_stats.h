#ifndef EXHOOK_BENCH_STATS_H
#define EXHOOK_BENCH_STATS_H

/* The load generator's results: the latency of every measured call, the
 * counters, and the one result line with throughput and percentiles. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_requests.h"

/* What one client thread measured; the threads' are merged at the end. */
struct bstats {
    uint32_t *lat; /* microseconds, one per measured call */
    size_t nlat, caplat;
    uint64_t calls, errors, warm_errors, clients;
    int64_t last_done; /* monotonic ns of the last measured reply */
    /* counting runs: measured replies by status and by verdict */
    uint64_t status[BREQ_NSTATUS], verdict[BREQ_NVERDICTS];
};

/* Records a measured call sent at `t0` and answered at `now` (ns), right or
 * wrong as `ok` says. */
void bstats_record(struct bstats *st, int64_t t0, int64_t now, bool ok);

/* Counts a measured reply of status `status` (or BREQ_TRANSPORT) and
 * verdict `verdict`. */
void bstats_count(struct bstats *st, int status, enum breq_verdict verdict);

/* Adds the counters and latencies of `from` to `into`. */
void bstats_merge(struct bstats *into, const struct bstats *from);

/* The run as the result line describes it. */
struct bstats_run {
    const char *rpc;
    int version, connections, in_flight, threads;
    bool count_clients; /* the scenario plays whole clients (mix) */
    bool count_replies; /* print the replies by status and verdict */
    double rate;        /* offered calls/s; 0 in closed loop */
};

/* Prints the result line for the calls measured from `from` (monotonic ns)
 * on, and to stderr how many warm-up calls failed, if any. Sorts st->lat. */
void bstats_print(struct bstats *st, const struct bstats_run *run, int64_t from);

void bstats_free(struct bstats *st);

#endif
