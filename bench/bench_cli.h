#ifndef EXHOOK_BENCH_CLI_H
#define EXHOOK_BENCH_CLI_H

/* The load generator's command line: the settings of one run. */

#include <stdbool.h>

#include "bench_requests.h"

/* How replies are checked: against what scripts/example.lua answers, or
 * counted by status and verdict and held against `expect`. */
enum bcli_check { BCLI_CHECK_EXAMPLE, BCLI_CHECK_COUNT };

struct bcli_opts {
    const char *target;
    int version; /* interface generation: 1, 2, 3, or another to see errors */
    const struct breq_scenario *sc;
    int connections, in_flight, threads;
    double duration, warmup, rate; /* seconds, seconds, calls/s (0: closed loop) */
    long long calls;               /* 0: run for `duration` */
    bool split_frames;             /* headers and message of a call in separate writes */
    bool quiet;
    enum bcli_check check;
    struct breq_expectation expect; /* BCLI_CHECK_COUNT */
    struct breq_content content;
    long long max_errors; /* failed calls tolerated before exit status 1 */
    long long deadline_ms; /* each call's deadline, sent as grpc-timeout */
};

/* Fills `o` from the command line. Prints the usage and exits 0 on --help;
 * on a bad option says what is wrong, prints the usage and exits 2. */
void bcli_parse(int argc, char **argv, struct bcli_opts *o);

/* Frees the value lists bcli_parse read. */
void bcli_free(struct bcli_opts *o);

#endif
