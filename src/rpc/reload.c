#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "log.h"

/* One reload's states, from the first built to the last. */
struct reload_build {
    int refs;                  /* the reload's, and one per builder at work on it */
    struct reload_target target;
    uint64_t generation;
    struct config own;         /* the configuration read for it */
    const struct config *cfg;  /* &own, or the reload's when there is no file */
    struct fingerprint fp;
    bool fp_known;             /* false: the scripts could not all be read */
    int next;                  /* the next slot to build */
    int *again, again_len;     /* slots to build once more */
    bool *retried;             /* by slot: built once more already */
    int finished, failed;      /* states done for good, failed for good */
    bool decided;              /* its first state is done */
    bool first_failed;
    bool committed, cancelled;
    struct script_engine **ready; /* built before the commit, by slot */
    uint64_t health_generation;
    int64_t start_ns;
    char err[1024];            /* why its first state failed */
};

int reload_init(struct reload *r, const char *config_path, struct config *cfg)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->build_lock, NULL);
    pthread_cond_init(&r->work_cond, NULL);
    pthread_cond_init(&r->decided_cond, NULL);
    r->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    char err[512];
    /* Before the states are built: a file edited meanwhile makes the next
     * reload load again, never the other way round. */
    r->fp_known = fingerprint_compute(&r->cfg, &r->fp, err, sizeof err) == 0;
    if (!r->fp_known)
        log_warn("cannot read every script to compare later reloads with (%s): the first "
                 "reload loads the scripts again",
                 err);
    if (config_path && !(r->config_path = strdup(config_path)))
        return -1;
    return 0;
}

static void build_free(struct reload_build *b);

/* Drops a reference to `b` under build_lock; true if it was the last, and
 * the caller frees it with build_free once the lock is let go. */
static bool build_unref(struct reload_build *b)
{
    return b && --b->refs == 0;
}

void reload_stop(struct reload *r)
{
    pthread_mutex_lock(&r->build_lock);
    r->quit = true;
    pthread_cond_broadcast(&r->work_cond);
    pthread_cond_broadcast(&r->decided_cond);
    pthread_mutex_unlock(&r->build_lock);
    for (int i = 0; i < r->builder_count; i++)
        pthread_join(r->builders[i], NULL);
    free(r->builders);
    r->builders = NULL;
    r->builder_count = 0;
    struct reload_build *builds[] = {r->build, r->paused};
    r->build = r->paused = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (build_unref(builds[i]))
            build_free(builds[i]);
    }
}

void reload_destroy(struct reload *r)
{
    reload_stop(r);
    cfg_free(&r->cfg);
    free(r->config_path);
    pthread_cond_destroy(&r->work_cond);
    pthread_cond_destroy(&r->decided_cond);
    pthread_mutex_destroy(&r->build_lock);
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

/* The dictionaries live as long as the process (shared_dicts.h). */
static bool same_shared(const struct config *a, const struct config *b)
{
    if (a->n_shared != b->n_shared)
        return false;
    for (size_t i = 0; i < a->n_shared; i++) {
        const struct cfg_shared *x = &a->shared[i], *y = &b->shared[i];
        if (strcmp(x->name, y->name) != 0 || x->size != y->size || !same_text(x->url, y->url))
            return false;
    }
    return true;
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
        running->metrics.histograms != new->metrics.histograms || !same_shared(running, new))
        log_warn("reload: changes to [server], [tls], [log], [metrics], [http] and [shared] take "
                 "effect after a restart");
}

static void build_free(struct reload_build *b)
{
    for (int i = 0; i < b->target.count; i++)
        reload_engine_free(b->ready[i]);
    free(b->ready);
    free(b->again);
    free(b->retried);
    cfg_free(&b->own);
    free(b);
}

static struct reload_build *build_new(const struct reload_target *t)
{
    struct reload_build *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    cfg_defaults(&b->own);
    b->refs = 1;
    b->target = *t;
    b->start_ns = script_now_ns();
    b->ready = calloc((size_t)t->count, sizeof *b->ready);
    b->again = calloc((size_t)t->count, sizeof *b->again);
    b->retried = calloc((size_t)t->count, sizeof *b->retried);
    if (!b->ready || !b->again || !b->retried) {
        build_free(b);
        return NULL;
    }
    return b;
}

/* The state of `slot`, checked against the generation's fingerprint. */
static struct script_engine *build_state(struct reload_build *b, int slot, char *err,
                                         size_t errlen)
{
    struct script_engine *e = reload_engine_new(b->cfg, slot + 1, err, errlen);
    if (!e || !b->fp_known)
        return e;
    struct fingerprint now;
    if (fingerprint_compute(b->cfg, &now, err, errlen) != 0 || !fingerprint_equal(&now, &b->fp)) {
        snprintf(err, errlen, "the scripts changed while generation %llu was being loaded",
                 (unsigned long long)b->generation);
        reload_engine_free(e);
        return NULL;
    }
    return e;
}

/* Under build_lock: `e` goes to its slot, now that its generation runs. */
static void publish_state(struct reload_build *b, int slot, struct script_engine *e)
{
    health_adopt(e, b->health_generation);
    b->target.publish(b->target.ctx, slot, e, b->generation);
}

/* Under build_lock: what became of `slot`'s state (`e`, NULL if it failed
 * with `err`). Returns a state to close once the lock is let go. */
static struct script_engine *settle(struct reload *r, struct reload_build *b, int slot,
                                    struct script_engine *e, const char *err)
{
    if (b->cancelled || b->first_failed)
        return e;
    if (!b->decided) {
        b->decided = true;
        b->first_failed = !e;
        snprintf(b->err, sizeof b->err, "%s", e ? "" : err);
        pthread_cond_broadcast(&r->decided_cond);
        if (!e)
            return NULL;
    } else if (!e && !b->retried[slot]) {
        /* The first state loaded, so the scripts can: more likely a time
         * limit passed while the CPUs were shared, or a backend init()
         * reads was away for a moment. */
        b->retried[slot] = true;
        b->again[b->again_len++] = slot;
        log_warn("reload: worker w%d could not load generation %llu, trying once more: %s",
                 slot + 1, (unsigned long long)b->generation, err);
        return NULL;
    } else if (!e) {
        b->failed++;
        if (b->committed)
            r->incomplete = true;
        log_error("reload: worker w%d could not load generation %llu and takes no calls until the "
                  "next reload: %s",
                  slot + 1, (unsigned long long)b->generation, err);
    }
    if (e && b->committed)
        publish_state(b, slot, e);
    else if (e)
        b->ready[slot] = e;
    if (++b->finished == b->target.count)
        log_info("reload: generation %llu loaded on %d of %d workers in %.1f ms (%d at a time)",
                 (unsigned long long)b->generation, b->target.count - b->failed, b->target.count,
                 (double)(script_now_ns() - b->start_ns) / 1e6, r->builder_count);
    return NULL;
}

/* Under build_lock: the build with a state left to build, the newest
 * first. */
static struct reload_build *next_job(struct reload *r)
{
    struct reload_build *builds[] = {r->build, r->paused};
    for (size_t i = 0; i < 2; i++) {
        struct reload_build *b = builds[i];
        if (b && !b->cancelled && !b->first_failed &&
            (b->next < b->target.count || b->again_len > 0))
            return b;
    }
    return NULL;
}

static void *builder_main(void *arg)
{
    struct reload *r = arg;
    log_set_thread_name("build");
    pthread_mutex_lock(&r->build_lock);
    while (!r->quit) {
        struct reload_build *b = next_job(r);
        if (!b) {
            pthread_cond_wait(&r->work_cond, &r->build_lock);
            continue;
        }
        int slot = b->next < b->target.count ? b->next++ : b->again[--b->again_len];
        b->refs++;
        pthread_mutex_unlock(&r->build_lock);
        char err[1024];
        struct script_engine *e = build_state(b, slot, err, sizeof err);
        pthread_mutex_lock(&r->build_lock);
        struct script_engine *discard = settle(r, b, slot, e, err);
        bool last = build_unref(b);
        pthread_mutex_unlock(&r->build_lock);
        reload_engine_free(discard);
        if (last)
            build_free(b);
        pthread_mutex_lock(&r->build_lock);
    }
    pthread_mutex_unlock(&r->build_lock);
    return NULL;
}

/* One builder per CPU, at most one per slot; started with the first
 * reload that loads. */
static int start_builders(struct reload *r, int count)
{
    if (r->builder_count > 0)
        return 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus < 1 ? 1 : cpus < count ? (int)cpus : count;
    if (!(r->builders = calloc((size_t)n, sizeof *r->builders)))
        return -1;
    /* As many as can be started; none is a failure. */
    while (r->builder_count < n &&
           pthread_create(&r->builders[r->builder_count], NULL, builder_main, r) == 0)
        r->builder_count++;
    if (r->builder_count > 0)
        return 0;
    free(r->builders);
    r->builders = NULL;
    return -1;
}

/* True when the running generation has what `b` would build. */
static bool unchanged(struct reload *r, const struct reload_build *b)
{
    pthread_mutex_lock(&r->build_lock);
    bool complete = !r->incomplete;
    pthread_mutex_unlock(&r->build_lock);
    return complete && b->fp_known && r->fp_known && fingerprint_equal(&b->fp, &r->fp);
}

/* Under both locks: `b`'s first state is good. Its generation runs from
 * now on; the states built so far go to their slots. */
static void commit(struct reload *r, struct reload_build *b)
{
    b->committed = true;
    b->health_generation = health_generation_new();
    for (int i = 0; i < b->target.count; i++) {
        if (b->ready[i])
            publish_state(b, i, b->ready[i]);
        b->ready[i] = NULL;
    }
    r->incomplete = b->failed > 0;
    b->target.commit(b->target.ctx, b->generation, b->cfg);
    health_publish(b->health_generation);
    r->generation = b->generation;
    r->fp = b->fp;
    r->fp_known = b->fp_known;
}

/* Under r->lock: builds `b` until its first state decides, then commits it
 * (true, the hooks of its states in `hooks`) or gives it up (false, why in
 * `err`). Builders may free `b` as soon as this returns. */
static bool decide(struct reload *r, struct reload_build *b, char *hooks, size_t hooks_len,
                   char *err, size_t errlen)
{
    pthread_mutex_lock(&r->build_lock);
    /* The running generation's remaining states wait while this one is
     * decided, and go on if it fails. */
    r->paused = r->build;
    r->build = b;
    pthread_cond_broadcast(&r->work_cond);
    while (!b->decided && !r->quit)
        pthread_cond_wait(&r->decided_cond, &r->build_lock);
    bool ok = b->decided && !b->first_failed;
    struct reload_build *drop;
    if (ok) {
        for (int i = 0; i < b->target.count; i++) {
            if (b->ready[i]) {
                script_describe_hooks(b->ready[i], hooks, hooks_len);
                break;
            }
        }
        commit(r, b);
        drop = r->paused;
        if (drop)
            drop->cancelled = true;
    } else {
        snprintf(err, errlen, "%s", b->decided ? b->err : "exhookd is stopping");
        b->cancelled = true;
        drop = b;
        r->build = r->paused;
    }
    r->paused = NULL;
    pthread_cond_broadcast(&r->work_cond);
    bool last = build_unref(drop);
    pthread_mutex_unlock(&r->build_lock);
    if (last)
        build_free(drop);
    return ok;
}

enum reload_result reload_build(struct reload *r, const struct reload_target *t, bool force)
{
    char err[1024] = "out of memory";
    struct reload_build *b = build_new(t);
    pthread_mutex_lock(&r->lock);
    if (!b)
        goto fail;
    b->cfg = &r->cfg;
    if (r->config_path) {
        if (cfg_load(&b->own, r->config_path, err, sizeof err) != 0)
            goto fail;
        warn_restart_settings(&r->cfg, &b->own);
        b->cfg = &b->own;
    }
    int64_t compare_start = script_now_ns();
    b->fp_known = fingerprint_compute(b->cfg, &b->fp, err, sizeof err) == 0;
    if (!b->fp_known)
        log_warn("reload: cannot read every script to compare (%s): loading them", err);
    if (!force && unchanged(r, b)) {
        log_info("reload: scripts unchanged since generation %llu: kept (%zu files, %zu bytes "
                 "compared in %.1f ms)",
                 (unsigned long long)r->generation, b->fp.files, b->fp.bytes,
                 (double)(script_now_ns() - compare_start) / 1e6);
        pthread_mutex_unlock(&r->lock);
        build_free(b);
        return RELOAD_KEPT;
    }
    if (start_builders(r, t->count) != 0) {
        snprintf(err, sizeof err, "cannot start the threads that load the scripts");
        goto fail;
    }
    uint64_t generation = b->generation = r->generation + 1;
    int64_t start = b->start_ns;
    char hooks[2048] = "";
    bool ok = decide(r, b, hooks, sizeof hooks, err, sizeof err);
    pthread_mutex_unlock(&r->lock);
    if (!ok)
        goto failed;
    /* Timed to the commit: what the broker waits for. */
    log_info("reloaded scripts (generation %llu) in %.1f ms; hooks: %s",
             (unsigned long long)generation, (double)(script_now_ns() - start) / 1e6, hooks);
    return RELOAD_DONE;
fail:
    pthread_mutex_unlock(&r->lock);
    if (b)
        build_free(b);
failed:
    log_error("reload failed, the running scripts stay: %s", err);
    return RELOAD_FAILED;
}
