#include "reload.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "log.h"

int reload_init(struct reload *r, const char *config_path, struct config *cfg)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    if (config_path && !(r->config_path = strdup(config_path)))
        return -1;
    return 0;
}

void reload_destroy(struct reload *r)
{
    cfg_free(&r->cfg);
    free(r->config_path);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

struct script_engine *reload_engine_new(const struct config *cfg, int worker_id, char *err,
                                        size_t errlen)
{
    struct script_engine *e = malloc(sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (script_engine_open(e, cfg, worker_id, err, errlen) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

void reload_engine_free(struct script_engine *e)
{
    if (e) {
        script_engine_close(e);
        free(e);
    }
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Settings a reload cannot change: the port is bound with its TLS
 * credentials and the workers run. `running` keeps the values exhookd
 * started with. */
static void warn_restart_settings(const struct config *running, const struct config *new)
{
    if ((!running->listen_fixed && !same_text(running->listen, new->listen)) ||
        running->workers != new->workers ||
        running->shutdown_timeout_ms != new->shutdown_timeout_ms ||
        running->max_message_size != new->max_message_size ||
        running->handshake_timeout_ms != new->handshake_timeout_ms ||
        running->memory_quota != new->memory_quota || running->watchdog_ms != new->watchdog_ms ||
        running->max_waiting_calls != new->max_waiting_calls ||
        running->http_max_connections != new->http_max_connections ||
        running->log_level != new->log_level || running->log_format != new->log_format ||
        !same_text(running->tls.cert, new->tls.cert) ||
        !same_text(running->tls.key, new->tls.key) || !same_text(running->tls.ca, new->tls.ca) ||
        running->tls.verify_client != new->tls.verify_client ||
        !same_text(running->metrics.listen, new->metrics.listen) ||
        running->metrics.histograms != new->metrics.histograms)
        log_warn("reload: changes to [server], [tls], [log], [metrics] and [http] take effect "
                 "after a restart");
}

/* Takes the [lua], [topics] and [webhook] settings of `fresh` into `running`, and
 * leaves the old ones in `fresh` to be freed. */
static void take_script_settings(struct config *running, struct config *fresh)
{
#define SWAP(field)                                                                            \
    do {                                                                                       \
        __typeof__(running->field) tmp = running->field;                                      \
        running->field = fresh->field;                                                         \
        fresh->field = tmp;                                                                    \
    } while (0)
    SWAP(lua_path);
    SWAP(init_modules);
    SWAP(init_module_count);
    SWAP(call_timeout_ms);
    SWAP(memory_limit);
    SWAP(sandbox);
    for (int h = 0; h < HOOK_COUNT; h++)
        SWAP(topics[h]);
    SWAP(webhook);
#undef SWAP
}

int reload_build(struct reload *r, int count, reload_publish_fn *publish, void *ctx)
{
    char err[1024] = "out of memory";
    int64_t start = script_now_ns();
    int built = 0;
    struct config fresh;
    cfg_defaults(&fresh);
    struct script_engine **engines = calloc((size_t)count, sizeof *engines);
    pthread_mutex_lock(&r->lock);
    const struct config *cfg = &r->cfg;
    if (!engines)
        goto fail;
    if (r->config_path) {
        if (cfg_load(&fresh, r->config_path, err, sizeof err) != 0)
            goto fail;
        warn_restart_settings(&r->cfg, &fresh);
        cfg = &fresh;
    }
    for (; built < count; built++) {
        engines[built] = reload_engine_new(cfg, built + 1, err, sizeof err);
        if (!engines[built])
            goto fail;
    }
    if (cfg == &fresh)
        take_script_settings(&r->cfg, &fresh);
    uint64_t health_generation = health_generation_new();
    for (int i = 0; i < count; i++)
        health_adopt(engines[i], health_generation);
    cfg_free(&fresh);
    uint64_t generation = ++r->generation;
    char hooks[2048];
    script_describe_hooks(engines[0], hooks, sizeof hooks);
    publish(ctx, engines, count);
    health_publish(health_generation);
    pthread_mutex_unlock(&r->lock);
    free(engines);
    log_info("reloaded scripts (generation %llu) in %.1f ms; hooks: %s",
             (unsigned long long)generation, (double)(script_now_ns() - start) / 1e6, hooks);
    return 0;
fail:
    pthread_mutex_unlock(&r->lock);
    log_error("reload failed, the running scripts stay: %s", err);
    while (built-- > 0)
        reload_engine_free(engines[built]);
    free(engines);
    cfg_free(&fresh);
    return -1;
}
