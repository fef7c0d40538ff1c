#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cells of one shard's row are padded to a cache line, so that two workers
 * never write to the same line. */
#define CELLS_PER_LINE 8

struct mx_family {
    struct mx_family *next;
    enum mx_type type;
    char *name, *help;
    double unit;
    int ndims;
    size_t dim_count[MX_MAX_DIMS];
    char **dim_labels[MX_MAX_DIMS];
    size_t series;
    int nbounds;
    int64_t *bounds;
    size_t width;  /* cells per series: 1, or a histogram's buckets (with +Inf) and sum */
    size_t stride; /* cells per shard */
    int shards;
    atomic_uint_fast64_t *cells;
};

struct mx_registry {
    int shards;
    struct mx_family *first, **last;
};

struct mx_registry *mx_create(int shards)
{
    struct mx_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->shards = shards > 0 ? shards : 1;
    r->last = &r->first;
    return r;
}

static void family_free(struct mx_family *f)
{
    for (int d = 0; d < f->ndims; d++) {
        for (size_t i = 0; f->dim_labels[d] && i < f->dim_count[d]; i++)
            free(f->dim_labels[d][i]);
        free(f->dim_labels[d]);
    }
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f->cells);
    free(f);
}

void mx_destroy(struct mx_registry *r)
{
    if (!r)
        return;
    for (struct mx_family *f = r->first, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    free(r);
}

struct mx_family *mx_add(struct mx_registry *r, enum mx_type type, const char *name,
                         const char *help, double unit, const struct mx_dim *dims, int ndims,
                         const int64_t *bounds, int nbounds)
{
    if (!r || ndims > MX_MAX_DIMS)
        return NULL;
    struct mx_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->unit = unit;
    f->ndims = ndims;
    f->series = 1;
    f->shards = r->shards;
    f->name = strdup(name);
    f->help = strdup(help);
    bool ok = f->name && f->help;
    for (int d = 0; ok && d < ndims; d++) {
        f->dim_count[d] = dims[d].count;
        f->series *= dims[d].count;
        f->dim_labels[d] = calloc(dims[d].count, sizeof(char *));
        ok = f->dim_labels[d] != NULL;
        for (size_t i = 0; ok && i < dims[d].count; i++)
            ok = (f->dim_labels[d][i] = strdup(dims[d].labels[i])) != NULL;
    }
    f->width = 1;
    if (ok && type == MX_HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = malloc((size_t)nbounds * sizeof *bounds);
        ok = f->bounds != NULL;
        if (ok)
            memcpy(f->bounds, bounds, (size_t)nbounds * sizeof *bounds);
        f->width = (size_t)nbounds + 2;
    }
    size_t row = f->series * f->width;
    f->stride = (row + CELLS_PER_LINE - 1) / CELLS_PER_LINE * CELLS_PER_LINE;
    if (ok) {
        f->cells = aligned_alloc(64, f->stride * (size_t)f->shards * sizeof *f->cells);
        ok = f->cells != NULL;
    }
    if (!ok) {
        family_free(f);
        return NULL;
    }
    for (size_t i = 0; i < f->stride * (size_t)f->shards; i++)
        atomic_init(&f->cells[i], 0);
    *r->last = f;
    r->last = &f->next;
    return f;
}

static atomic_uint_fast64_t *cell(struct mx_family *f, int shard, size_t series)
{
    return &f->cells[(size_t)(shard % f->shards) * f->stride + series * f->width];
}

void mx_inc(struct mx_family *f, int shard, size_t series, int64_t v)
{
    if (f)
        atomic_fetch_add_explicit(cell(f, shard, series), (uint64_t)v, memory_order_relaxed);
}

void mx_set(struct mx_family *f, int shard, size_t series, int64_t v)
{
    if (f)
        atomic_store_explicit(cell(f, shard, series), (uint64_t)v, memory_order_relaxed);
}

void mx_observe(struct mx_family *f, int shard, size_t series, int64_t v)
{
    if (!f)
        return;
    atomic_uint_fast64_t *c = cell(f, shard, series);
    int b = 0;
    while (b < f->nbounds && v > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&c[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[f->nbounds + 1], (uint64_t)v, memory_order_relaxed);
}

/* Cell `k` of a series, summed over the shards. */
static uint64_t total(const struct mx_family *f, size_t series, size_t k)
{
    uint64_t sum = 0;
    for (int s = 0; s < f->shards; s++)
        sum += atomic_load_explicit(&f->cells[(size_t)s * f->stride + series * f->width + k],
                                    memory_order_relaxed);
    return sum;
}

/* The label texts of `series`, comma-joined, with `extra` last. */
static void labels_of(const struct mx_family *f, size_t series, const char *extra, char *buf,
                      size_t len)
{
    const char *part[MX_MAX_DIMS + 1];
    int n = 0;
    for (int d = f->ndims - 1; d >= 0; d--) {
        part[d] = f->dim_labels[d][series % f->dim_count[d]];
        series /= f->dim_count[d];
    }
    n = f->ndims;
    if (extra)
        part[n++] = extra;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s", i ? "," : "{", part[i],
                                 i == n - 1 ? "}" : "");
}

/* A value as Prometheus reads it: an integer, or a fraction in `unit`. */
static void print_value(FILE *out, const struct mx_family *f, uint64_t v)
{
    if (f->type == MX_GAUGE && f->unit == 1)
        fprintf(out, "%lld\n", (long long)v);
    else if (f->unit == 1)
        fprintf(out, "%llu\n", (unsigned long long)v);
    else
        fprintf(out, "%.9g\n", (double)(int64_t)v / f->unit);
}

static void render_histogram(FILE *out, const struct mx_family *f, size_t i, bool summary)
{
    char labels[512], le[48];
    uint64_t count = 0;
    for (int b = 0; b <= f->nbounds; b++) {
        count += total(f, i, (size_t)b);
        if (summary)
            continue;
        if (b < f->nbounds)
            snprintf(le, sizeof le, "le=\"%.9g\"", (double)f->bounds[b] / f->unit);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        labels_of(f, i, le, labels, sizeof labels);
        fprintf(out, "%s_bucket%s %llu\n", f->name, labels, (unsigned long long)count);
    }
    labels_of(f, i, NULL, labels, sizeof labels);
    fprintf(out, "%s_sum%s ", f->name, labels);
    print_value(out, f, total(f, i, (size_t)f->nbounds + 1));
    fprintf(out, "%s_count%s %llu\n", f->name, labels, (unsigned long long)count);
}

static const char *const type_names[] = {
    [MX_COUNTER] = "counter", [MX_GAUGE] = "gauge", [MX_HISTOGRAM] = "histogram"};

static void render_family(FILE *out, const struct mx_family *f, bool summary)
{
    if (!summary)
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                type_names[f->type]);
    for (size_t i = 0; i < f->series; i++) {
        /* For a histogram, whether it counted anything; else the value. */
        uint64_t v = total(f, i, f->type == MX_HISTOGRAM ? (size_t)f->nbounds + 1 : 0);
        if (f->type == MX_HISTOGRAM)
            for (int b = 0; b <= f->nbounds; b++)
                v |= total(f, i, (size_t)b);
        if (v == 0 && (summary || (f->ndims > 0 && f->type != MX_GAUGE)))
            continue;
        if (f->type == MX_HISTOGRAM) {
            render_histogram(out, f, i, summary);
            continue;
        }
        char labels[512];
        labels_of(f, i, NULL, labels, sizeof labels);
        fprintf(out, "%s%s ", f->name, labels);
        print_value(out, f, v);
    }
}

char *mx_render(struct mx_registry *r, bool summary, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    if (!out)
        return NULL;
    for (const struct mx_family *f = r ? r->first : NULL; f; f = f->next)
        render_family(out, f, summary);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    if (len)
        *len = n;
    return text;
}
