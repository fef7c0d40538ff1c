#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static struct cfg_ref *ref_new(void)
{
    struct cfg_ref *ref = calloc(1, sizeof *ref);
    if (ref) {
        atomic_init(&ref->refs, 1);
        cfg_defaults(&ref->cfg);
    }
    return ref;
}

void reload_put(struct cfg_ref *ref)
{
    if (ref && atomic_fetch_sub(&ref->refs, 1) == 1) {
        cfg_free(&ref->cfg);
        free(ref);
    }
}

int reload_init(struct reload *r, const char *config_path, struct config *cfg)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->generation, 0);
    r->current = calloc(1, sizeof *r->current);
    r->config_path = config_path ? strdup(config_path) : NULL;
    if (!r->current || (config_path && !r->config_path)) {
        cfg_free(cfg);
        return -1;
    }
    atomic_init(&r->current->refs, 1);
    r->current->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    return 0;
}

void reload_destroy(struct reload *r)
{
    reload_put(r->current);
    free(r->config_path);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

struct cfg_ref *reload_get(struct reload *r, uint64_t *generation)
{
    pthread_mutex_lock(&r->lock);
    struct cfg_ref *ref = r->current;
    atomic_fetch_add(&ref->refs, 1);
    *generation = atomic_load(&r->generation);
    pthread_mutex_unlock(&r->lock);
    return ref;
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

int reload_scripts(struct reload *r, int worker_id, struct script_engine **out,
                   uint64_t *generation)
{
    char err[1024];
    int64_t start = script_now_ns();
    pthread_mutex_lock(&r->lock);
    struct cfg_ref *ref;
    if (r->config_path) {
        ref = ref_new();
        if (!ref) {
            log_error("reload failed, the running scripts stay: out of memory");
            goto fail;
        }
        if (cfg_load(&ref->cfg, r->config_path, err, sizeof err) != 0) {
            log_error("reload failed, the running scripts stay: %s", err);
            reload_put(ref);
            goto fail;
        }
        warn_restart_settings(&r->current->cfg, &ref->cfg);
    } else {
        ref = r->current;
        atomic_fetch_add(&ref->refs, 1);
    }
    struct script_engine *e = reload_engine_new(&ref->cfg, worker_id, err, sizeof err);
    if (!e) {
        log_error("reload failed, the running scripts stay: %s", err);
        reload_put(ref);
        goto fail;
    }
    reload_put(r->current);
    r->current = ref;
    *generation = atomic_fetch_add_explicit(&r->generation, 1, memory_order_release) + 1;
    pthread_mutex_unlock(&r->lock);

    char hooks[2048];
    script_describe_hooks(e, hooks, sizeof hooks);
    log_info("reloaded scripts (generation %llu) in %.1f ms; hooks: %s",
             (unsigned long long)*generation, (double)(script_now_ns() - start) / 1e6, hooks);
    *out = e;
    return 0;
fail:
    pthread_mutex_unlock(&r->lock);
    return -1;
}

void reload_refresh(struct reload *r, int worker_id, struct script_engine **engine,
                    uint64_t *seen)
{
    uint64_t generation;
    struct cfg_ref *ref = reload_get(r, &generation);
    char err[1024];
    struct script_engine *e = reload_engine_new(&ref->cfg, worker_id, err, sizeof err);
    reload_put(ref);
    *seen = generation;
    if (!e) {
        log_error("worker %d keeps its previous scripts: %s", worker_id, err);
        return;
    }
    reload_engine_free(*engine);
    *engine = e;
    log_debug("switched to scripts generation %llu", (unsigned long long)generation);
}
