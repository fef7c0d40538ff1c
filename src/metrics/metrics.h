#ifndef EXHOOKD_METRICS_H
#define EXHOOKD_METRICS_H

/* One registry of counters, gauges and histograms, which each subsystem
 * fills with its own families at start (mx_add next to the code that
 * counts). The same registry is served in Prometheus text format 0.0.4 on
 * [metrics] listen and logged by SIGUSR1.
 *
 * Counting is lock-free: every family keeps one row of relaxed atomics per
 * shard (a worker thread writes to its own shard, other threads to shard 0)
 * and the rows are summed when the registry is read. A family's series are
 * fixed at registration: the product of its label dimensions, each a list
 * of ready label texts ('hook="client.connected"'). The series index is
 * row-major: for dimensions (a, b), series = ia * nb + ib. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM };

/* One label dimension: `count` label texts, each one or more
 * `name="value"` pairs joined by commas (already escaped). */
struct mx_dim {
    const char *const *labels;
    size_t count;
};

#define MX_MAX_DIMS 3

struct mx_registry;
struct mx_family;

/* A registry whose families have `shards` rows each; NULL when out of memory. */
struct mx_registry *mx_create(int shards);
void mx_destroy(struct mx_registry *r);

/* Adds a family. Values are integers; `unit` divides them when they are
 * shown (1e9 for nanoseconds shown as seconds, 1 otherwise). A histogram
 * takes `nbounds` ascending upper bounds in the same integer unit. The
 * label texts are copied. NULL when out of memory (counting into a NULL
 * family does nothing, so a failure costs the metric, not the server). */
struct mx_family *mx_add(struct mx_registry *r, enum mx_type type, const char *name,
                         const char *help, double unit, const struct mx_dim *dims, int ndims,
                         const int64_t *bounds, int nbounds);

/* Adds `v` to a counter or gauge series. */
void mx_inc(struct mx_family *f, int shard, size_t series, int64_t v);
/* Sets a gauge series in this shard (the shown value is the sum of shards). */
void mx_set(struct mx_family *f, int shard, size_t series, int64_t v);
/* Counts one observation of `v` in a histogram series. */
void mx_observe(struct mx_family *f, int shard, size_t series, int64_t v);

/* The registry in Prometheus text format 0.0.4 (malloc'd, NUL-terminated,
 * length in *len if not NULL), or NULL when out of memory. Series of a
 * labelled counter or histogram still at zero are left out. With
 * `summary`, only the samples that are not zero, without comments and
 * without histogram buckets: the lines SIGUSR1 logs. */
char *mx_render(struct mx_registry *r, bool summary, size_t *len);

#endif
