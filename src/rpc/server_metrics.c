/* The server's metrics: the families the gRPC server, its workers, the
 * watchdog and reloads count into, their label texts, and the counting done
 * at each call's start and answer. The registry itself is metrics.c's. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "script.h"
#include "server_internal.h"

/* Upper bounds of grpc_server_handling_seconds, in nanoseconds: an ExHook
 * call takes tens of microseconds to a few milliseconds, past 5 s it is
 * about to meet the broker's timeout. */
static const int64_t latency_bounds[] = {100000,    250000,    500000,     1000000,    2500000,
                                         5000000,   10000000,  25000000,   50000000,   100000000,
                                         250000000, 500000000, 1000000000, 2500000000, 5000000000};

/* grpc_code label values, indexed by grpc_status_code. */
static const char *const code_labels[GRPC_CODE_COUNT] = {
    "grpc_code=\"OK\"",
    "grpc_code=\"CANCELLED\"",
    "grpc_code=\"UNKNOWN\"",
    "grpc_code=\"INVALID_ARGUMENT\"",
    "grpc_code=\"DEADLINE_EXCEEDED\"",
    "grpc_code=\"NOT_FOUND\"",
    "grpc_code=\"ALREADY_EXISTS\"",
    "grpc_code=\"PERMISSION_DENIED\"",
    "grpc_code=\"RESOURCE_EXHAUSTED\"",
    "grpc_code=\"FAILED_PRECONDITION\"",
    "grpc_code=\"ABORTED\"",
    "grpc_code=\"OUT_OF_RANGE\"",
    "grpc_code=\"UNIMPLEMENTED\"",
    "grpc_code=\"INTERNAL\"",
    "grpc_code=\"UNAVAILABLE\"",
    "grpc_code=\"DATA_LOSS\"",
    "grpc_code=\"UNAUTHENTICATED\"",
};

static const char *const verdict_labels[VERDICT_COUNT] = {
    [DISPATCH_NO_OPINION] = "result=\"no_opinion\"",
    [DISPATCH_ALLOW] = "result=\"allow\"",
    [DISPATCH_DENY] = "result=\"deny\"",
    [VERDICT_ERROR] = "result=\"error\"",
};

/* exhookd_lua_failures_total's reasons: the kinds of failure.h that are a
 * script's doing, FAIL_RUNTIME up to FAIL_LATE, labelled from its table. */
#define REASON_COUNT (FAIL_LATE - FAIL_RUNTIME)
static char reason_text[REASON_COUNT][48];
static const char *failure_labels[REASON_COUNT];

static void reasons_init(void)
{
    for (int i = 0; i < REASON_COUNT; i++) {
        snprintf(reason_text[i], sizeof reason_text[i], "reason=\"%s\"",
                 failure_defs[FAIL_RUNTIME + i].reason);
        failure_labels[i] = reason_text[i];
    }
}

static const char *const reload_labels[] = {"result=\"ok\"", "result=\"failed\""};

/* `text` quoted as a label value, into `buf`. */
static void quote(char *buf, size_t len, const char *name, const char *text)
{
    size_t n = (size_t)snprintf(buf, len, "%s=\"", name);
    for (const char *p = text; *p && n + 3 < len; p++) {
        if (*p == '"' || *p == '\\' || *p == '\n')
            buf[n++] = '\\';
        buf[n++] = *p == '\n' ? 'n' : *p;
    }
    snprintf(buf + n, len - n, "\"");
}

/* Label texts of one dimension (methods, hooks or modules). */
#define LABEL_LEN 160
struct labels {
    const char *ptr[METHOD_COUNT];
    char text[METHOD_COUNT][LABEL_LEN];
};

static struct mx_dim method_dim(const struct server *s, struct labels *l)
{
    for (int k = 0; k < METHOD_COUNT; k++) {
        const char *path = s->methods[k].path;
        const char *slash = strrchr(path, '/');
        snprintf(l->text[k], LABEL_LEN, "grpc_service=\"%.*s\",grpc_method=\"%s\"",
                 (int)(slash - path - 1), path + 1, slash + 1);
        l->ptr[k] = l->text[k];
    }
    return (struct mx_dim){l->ptr, METHOD_COUNT};
}

static struct mx_dim hook_dim(struct labels *l)
{
    for (int h = 0; h < HOOK_COUNT; h++) {
        quote(l->text[h], LABEL_LEN, "hook",
              hook_defs[h].name ? hook_defs[h].name : hook_defs[h].rpc);
        l->ptr[h] = l->text[h];
    }
    return (struct mx_dim){l->ptr, HOOK_COUNT};
}

/* The modules named at start, then one for failures outside them (before
 * any handler, or in a module a reload added). */
static struct mx_dim module_dim(const struct config *cfg, struct labels *l, size_t *count)
{
    size_t n =
        cfg->init_module_count < METHOD_COUNT - 1 ? cfg->init_module_count : METHOD_COUNT - 1;
    for (size_t i = 0; i < n; i++) {
        quote(l->text[i], LABEL_LEN, "module", cfg->init_modules[i]);
        l->ptr[i] = l->text[i];
    }
    snprintf(l->text[n], LABEL_LEN, "module=\"\"");
    l->ptr[n] = l->text[n];
    *count = n + 1;
    return (struct mx_dim){l->ptr, n + 1};
}

int srvm_init(struct server *s)
{
    struct server_metrics *m = &s->mx;
    const struct config *cfg = &s->reload.cfg;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, reasons_init);
    if (!(m->registry = mx_create(s->worker_count + 1)))
        return -1;
    struct labels *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    int rc = -1;
    if (!a || !b || !c)
        goto out;
    struct mx_dim methods = method_dim(s, a);
    struct mx_dim codes = {code_labels, GRPC_CODE_COUNT};
    struct mx_registry *r = m->registry;
    m->started = mx_add(r, MX_COUNTER, "grpc_server_started_total", "RPCs started on the server.",
                        1, &methods, 1, NULL, 0);
    m->handled = mx_add(r, MX_COUNTER, "grpc_server_handled_total",
                        "RPCs completed on the server, whatever their status.", 1,
                        (struct mx_dim[]){methods, codes}, 2, NULL, 0);
    if (cfg->metrics.histograms)
        m->seconds =
            mx_add(r, MX_HISTOGRAM, "grpc_server_handling_seconds",
                   "Time from the start of an RPC's handling to its answer.", 1e9, &methods, 1,
                   latency_bounds, (int)(sizeof latency_bounds / sizeof latency_bounds[0]));
    m->in_flight = mx_add(r, MX_GAUGE, "exhookd_calls_in_flight",
                          "Hook calls a worker is running now.", 1, NULL, 0, NULL, 0);

    struct mx_dim hooks = hook_dim(b);
    m->verdicts = mx_add(r, MX_COUNTER, "exhookd_verdicts_total",
                         "Answers of client.authenticate and client.authorize by result.", 1,
                         (struct mx_dim[]){hooks, {verdict_labels, VERDICT_COUNT}}, 2, NULL, 0);
    m->unhandled = mx_add(r, MX_COUNTER, "exhookd_unhandled_calls_total",
                          "Calls of a hook that no loaded script handles.", 1, &hooks, 1, NULL, 0);
    struct mx_dim modules = module_dim(cfg, c, &m->module_count);
    m->lua_failures =
        mx_add(r, MX_COUNTER, "exhookd_lua_failures_total",
               "Hook calls failed by a script, by reason (see the README).", 1,
               (struct mx_dim[]){modules, hooks, {failure_labels, REASON_COUNT}}, 3, NULL, 0);
    /* A name that could not be copied counts as module "". */
    if (!(m->modules = calloc(m->module_count, sizeof *m->modules)))
        goto out;
    for (size_t i = 0; i + 1 < m->module_count; i++)
        m->modules[i] = strdup(cfg->init_modules[i]);

    char(*worker_text)[24] = calloc((size_t)s->worker_count, sizeof *worker_text);
    const char **worker_ptr = calloc((size_t)s->worker_count, sizeof *worker_ptr);
    for (int i = 0; worker_text && worker_ptr && i < s->worker_count; i++) {
        snprintf(worker_text[i], sizeof worker_text[i], "worker=\"%d\"", i + 1);
        worker_ptr[i] = worker_text[i];
    }
    if (worker_text && worker_ptr)
        m->lua_memory =
            mx_add(r, MX_GAUGE, "exhookd_lua_memory_bytes", "Memory held by a worker's Lua state.",
                   1, &(struct mx_dim){worker_ptr, (size_t)s->worker_count}, 1, NULL, 0);
    free(worker_text);
    free(worker_ptr);
    m->stuck = mx_add(r, MX_COUNTER, "exhookd_stuck_workers_total",
                      "Workers the watchdog found stuck in code that cannot be interrupted.", 1,
                      NULL, 0, NULL, 0);
    m->reloads = mx_add(r, MX_COUNTER, "exhookd_reloads_total", "Script reloads by result.", 1,
                        &(struct mx_dim){reload_labels, 2}, 1, NULL, 0);
    m->reload_seconds = mx_add(r, MX_GAUGE, "exhookd_reload_last_duration_seconds",
                               "How long the last reload took.", 1e9, NULL, 0, NULL, 0);
    char version[LABEL_LEN];
    quote(version, sizeof version, "version", EXHOOKD_VERSION);
    m->build_info = mx_add(r, MX_GAUGE, "exhookd_build_info", "The exhookd version that runs: 1.",
                           1, &(struct mx_dim){(const char *const[]){version}, 1}, 1, NULL, 0);
    mx_set(m->build_info, 0, 0, 1);
    for (int i = 0; i < s->worker_count; i++)
        srvm_lua_memory(&s->workers[i]);
    /* A family that could not be added counts nothing; the server runs. */
    rc = 0;
out:
    free(a);
    free(b);
    free(c);
    return rc;
}

void srvm_free(struct server *s)
{
    struct server_metrics *m = &s->mx;
    for (size_t i = 0; m->modules && i < m->module_count; i++)
        free(m->modules[i]);
    free(m->modules);
    mx_destroy(m->registry);
    memset(m, 0, sizeof *m);
}

/* The module dimension's index of `name`: the last one for a module not
 * named at start. */
static size_t module_index(const struct server_metrics *m, const char *name)
{
    size_t i = 0;
    while (name && i + 1 < m->module_count && !(m->modules[i] && strcmp(m->modules[i], name) == 0))
        i++;
    return name ? i : m->module_count - 1;
}

int64_t srvm_call_start(struct worker *w, int method, bool counts_in_flight)
{
    struct server_metrics *m = &w->srv->mx;
    mx_inc(m->started, w->id, (size_t)method, 1);
    if (counts_in_flight)
        mx_inc(m->in_flight, w->id, 0, 1);
    return m->seconds ? script_now_ns() : 0;
}

void srvm_answered(struct server *s, int shard, int method, grpc_status_code status,
                   int64_t start_ns)
{
    struct server_metrics *m = &s->mx;
    if ((unsigned)status >= GRPC_CODE_COUNT)
        status = GRPC_STATUS_UNKNOWN;
    mx_inc(m->handled, shard, (size_t)method * GRPC_CODE_COUNT + (size_t)status, 1);
    if (m->seconds)
        mx_observe(m->seconds, shard, (size_t)method, script_now_ns() - start_ns);
}

void srvm_call_end(struct worker *w, int method, const struct dispatch_reply *r, bool held)
{
    struct server_metrics *m = &w->srv->mx;
    enum hook_id hook = w->srv->methods[method].hook;
    mx_inc(m->in_flight, w->id, 0, -1);
    if (hook == HOOK_CLIENT_AUTHENTICATE || hook == HOOK_CLIENT_AUTHORIZE) {
        size_t v = r->status == GRPC_STATUS_OK ? (size_t)r->verdict : VERDICT_ERROR;
        mx_inc(m->verdicts, w->id, (size_t)hook * VERDICT_COUNT + v, 1);
    }
    enum failure_kind kind = r->fail.kind;
    if (kind >= FAIL_RUNTIME && kind < FAIL_LATE)
        mx_inc(m->lua_failures, w->id,
               (module_index(m, r->fail.module) * HOOK_COUNT + hook) * REASON_COUNT +
                   (size_t)(kind - FAIL_RUNTIME),
               1);
    if (held)
        srvm_lua_memory(w);
}

void srvm_lua_memory(struct worker *w)
{
    mx_set(w->srv->mx.lua_memory, w->id, (size_t)(w->id - 1), (int64_t)w->engine->mem_used);
}

void srvm_unhandled(struct worker *w, enum hook_id hook)
{
    mx_inc(w->srv->mx.unhandled, w->id, (size_t)hook, 1);
}

void srvm_stuck(struct server *s)
{
    mx_inc(s->mx.stuck, 0, 0, 1);
}

void srvm_reloaded(struct server *s, bool ok, int64_t took_ns)
{
    mx_inc(s->mx.reloads, 0, ok ? 0 : 1, 1);
    mx_set(s->mx.reload_seconds, 0, 0, took_ns);
}

void srv_log_stats(struct server *s)
{
    char *text = mx_render(s->mx.registry, true, NULL);
    if (!text) {
        log_error("stats: out of memory");
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        log_info("stats: %s", line);
    free(text);
}

char *srv_metrics_text(struct server *s, size_t *len)
{
    return mx_render(s->mx.registry, false, len);
}
