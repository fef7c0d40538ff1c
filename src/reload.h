#ifndef EXHOOKD_RELOAD_H
#define EXHOOKD_RELOAD_H

/* Script generations: editing scripts while the server runs.
 *
 * A reload (the broker's OnProviderLoaded, or SIGHUP) re-reads the [lua] and
 * [topics] settings and the scripts, and loads them into a new Lua state,
 * init() included. Only if that succeeds does it publish a new generation;
 * otherwise the running scripts stay and the error is logged. Each worker
 * notices a new generation before its next call, builds its own state for
 * it and closes the old one (deinit() included): a call runs start to finish
 * on one state, never half old and half new. The call path reads one atomic
 * counter; the lock is taken only to reload or to switch. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "script.h"

/* A configuration shared by the workers of one generation. */
struct cfg_ref {
    atomic_int refs;
    struct config cfg;
};

struct reload {
    pthread_mutex_t lock;     /* serialises reloads, guards `current` */
    char *config_path;        /* re-read on reload; NULL = keep the config */
    struct cfg_ref *current;
    atomic_uint_fast64_t generation;
};

/* Takes `cfg` over (it is left empty). `config_path` may be NULL. */
int reload_init(struct reload *r, const char *config_path, struct config *cfg);
void reload_destroy(struct reload *r);

/* The configuration of the current generation; give it back with reload_put. */
struct cfg_ref *reload_get(struct reload *r, uint64_t *generation);
void reload_put(struct cfg_ref *ref);

/* A new engine on the heap for `cfg`; NULL with `err` set on failure. */
struct script_engine *reload_engine_new(const struct config *cfg, int worker_id, char *err,
                                        size_t errlen);
/* Closes (running deinit) and frees an engine from reload_engine_new. */
void reload_engine_free(struct script_engine *e);

/* Re-reads configuration and scripts and loads them into a new state for
 * worker `worker_id`. On success publishes the new generation, stores the
 * new engine in *out (the caller owns it) and its generation in *generation,
 * and returns 0. On failure logs why, changes nothing and returns -1. */
int reload_scripts(struct reload *r, int worker_id, struct script_engine **out,
                   uint64_t *generation);

/* True when a worker that runs generation `seen` is behind. */
static inline bool reload_behind(struct reload *r, uint64_t seen)
{
    return atomic_load_explicit(&r->generation, memory_order_acquire) != seen;
}

/* Moves a worker's engine to the current generation: builds the new state,
 * then closes the old one. If the new state fails to load here, the worker
 * keeps its engine and the error is logged. */
void reload_refresh(struct reload *r, int worker_id, struct script_engine **engine,
                    uint64_t *seen);

#endif
