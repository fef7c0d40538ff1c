#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Settings a reload cannot change: the port is bound and the workers run. */
static void warn_restart_settings(const struct config *old, const struct config *new)
{
    if (strcmp(old->listen, new->listen) != 0 || old->workers != new->workers ||
        old->shutdown_timeout_ms != new->shutdown_timeout_ms || old->log_level != new->log_level)
        log_warn("reload: changes to [server] and [log] take effect after a restart");
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
    if (cfg == &fresh) {
        cfg_free(&r->cfg);
        r->cfg = fresh;
    } else {
        cfg_free(&fresh);
    }
    uint64_t generation = ++r->generation;
    char hooks[2048];
    script_describe_hooks(engines[0], hooks, sizeof hooks);
    publish(ctx, engines, count);
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
