/* bench_stats: exhook-bench's results. Each client thread records the
 * latency of its measured calls and counts them; at the end the threads'
 * records are merged and summed up in one result line, with nearest-rank
 * percentiles of the latency. */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"

void bstats_record(struct bstats *st, int64_t t0, int64_t now, bool ok)
{
    if (st->nlat == st->caplat) {
        st->caplat = st->caplat ? st->caplat * 2 : 65536;
        st->lat = realloc(st->lat, st->caplat * sizeof *st->lat);
        if (!st->lat) {
            fprintf(stderr, "exhook-bench: out of memory\n");
            exit(1);
        }
    }
    int64_t us = (now - t0) / 1000;
    st->lat[st->nlat++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    st->calls++;
    st->errors += !ok;
    if (now > st->last_done)
        st->last_done = now;
}

void bstats_count(struct bstats *st, int status, enum breq_verdict verdict)
{
    st->status[status]++;
    st->verdict[verdict]++;
}

void bstats_merge(struct bstats *into, const struct bstats *from)
{
    for (int i = 0; i < BREQ_NSTATUS; i++)
        into->status[i] += from->status[i];
    for (int i = 0; i < BREQ_NVERDICTS; i++)
        into->verdict[i] += from->verdict[i];
    into->calls += from->calls;
    into->errors += from->errors;
    into->warm_errors += from->warm_errors;
    into->clients += from->clients;
    if (from->last_done > into->last_done)
        into->last_done = from->last_done;
    if (from->nlat == 0)
        return;
    if (into->nlat + from->nlat > into->caplat) {
        into->caplat = into->nlat + from->nlat;
        into->lat = realloc(into->lat, into->caplat * sizeof *into->lat);
        if (!into->lat) {
            fprintf(stderr, "exhook-bench: out of memory\n");
            exit(1);
        }
    }
    memcpy(into->lat + into->nlat, from->lat, from->nlat * sizeof *from->lat);
    into->nlat += from->nlat;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted `v`. */
static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return v[r == 0 ? 0 : r - 1];
}

void bstats_print(struct bstats *st, const struct bstats_run *run, int64_t from)
{
    const uint32_t *lat = st->lat;
    size_t nlat = st->nlat;
    if (nlat > 0)
        qsort(st->lat, nlat, sizeof *st->lat, cmp_u32);

    double secs = (double)(st->last_done - from) / 1e9;
    double per_s = secs > 0 ? (double)st->calls / secs : 0;
    char extra[96] = "";
    int n = 0;
    if (run->count_clients)
        n += snprintf(extra + n, sizeof extra - n, " clients=%" PRIu64 " clients_per_s=%.0f",
                      st->clients, secs > 0 ? (double)st->clients / secs : 0);
    if (run->rate > 0)
        snprintf(extra + n, sizeof extra - n, " offered_per_s=%.0f", run->rate);
    if (st->warm_errors > 0)
        fprintf(stderr, "exhook-bench: %" PRIu64 " calls failed during the warm-up\n",
                st->warm_errors);
    printf("exhook-bench: rpc=%s interface=v%d connections=%d in_flight=%d threads=%d "
           "calls=%" PRIu64 " errors=%" PRIu64 " duration=%.2fs calls_per_s=%.0f%s "
           "p50_us=%u p90_us=%u p99_us=%u p99.9_us=%u max_us=%u",
           run->rpc, run->version, run->connections, run->in_flight, run->threads, st->calls,
           st->errors, secs, per_s, extra, pct(lat, nlat, 50), pct(lat, nlat, 90),
           pct(lat, nlat, 99), pct(lat, nlat, 99.9), nlat ? lat[nlat - 1] : 0);
    /* The counts that are not zero: status_OK=..., then the verdicts
     * (BREQ_V_NONE, a reply without a message, shows in the statuses). */
    for (int i = 0; run->count_replies && i < BREQ_NSTATUS; i++)
        if (st->status[i])
            printf(" status_%s=%" PRIu64, breq_status_names[i], st->status[i]);
    for (int i = BREQ_V_NONE + 1; run->count_replies && i < BREQ_NVERDICTS; i++)
        if (st->verdict[i])
            printf(" %s=%" PRIu64, breq_verdict_names[i], st->verdict[i]);
    putchar('\n');
}

void bstats_free(struct bstats *st)
{
    free(st->lat);
    st->lat = NULL;
    st->nlat = st->caplat = 0;
}
