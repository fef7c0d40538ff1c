#ifndef EXHOOKD_RELOAD_H
#define EXHOOKD_RELOAD_H

/* Script generations: editing scripts while the server runs.
 *
 * A reload (the broker's OnProviderLoaded, or SIGHUP) re-reads the [lua] and
 * [topics] settings and the scripts. Unless it is forced (SIGHUP), it loads
 * nothing when their fingerprint (fingerprint.h) is the running
 * generation's: the running Lua states stay, init() and deinit() do not run.
 *
 * Otherwise it builds a new Lua state for every worker slot, init()
 * included, on builder threads (one per CPU, at most one per slot) while
 * the workers go on serving. The first state to be built decides: if it
 * failed, the reload fails, the other states are discarded and the running
 * scripts stay. If it succeeded, the new generation is committed at once,
 * without waiting for the others: from then on new calls go only to slots
 * that have a state of it (the server's part), and each other slot joins as
 * its state is built. A state that fails later is built once more; failing
 * again, it leaves its slot out of service until the next reload, which
 * then loads everything again, fingerprint or not. Each state is checked
 * once built: the scripts must still have the generation's fingerprint, so
 * that every slot runs exactly the scripts that were checked, whatever
 * happens to the files afterwards. A Lua state is used by one thread at a
 * time: built by a builder, then used only by its slot. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "fingerprint.h"
#include "script.h"

/* Where a reload's states go: worker slots 0..count-1. */
struct reload_target {
    int count;
    /* Hands state `e` of `generation` to `slot`, which takes it over. */
    void (*publish)(void *ctx, int slot, struct script_engine *e, uint64_t generation);
    /* From now on new calls go to the slots of `generation`, built from
     * `cfg` (valid during the call); at least one has been given its state. */
    void (*commit)(void *ctx, uint64_t generation, const struct config *cfg);
    void *ctx;
};

struct reload_build;

struct reload {
    pthread_mutex_t lock;  /* serialises reloads, guards generation and fp */
    char *config_path;     /* re-read on reload; NULL = keep the config */
    /* The configuration as started; a reload's [lua] and [topics] settings
     * are held by its build. */
    struct config cfg;
    uint64_t generation;   /* number of committed reloads */
    struct fingerprint fp; /* of the running generation */
    bool fp_known;         /* false: the next reload loads, fingerprint or not */
    /* The builder threads, under build_lock: the build they work on, and
     * a committed one whose remaining states wait while a newer is being
     * decided (it goes on if the newer fails). */
    pthread_mutex_t build_lock;
    pthread_cond_t work_cond;    /* a state to build, or quit */
    pthread_cond_t decided_cond; /* a build's first state is done */
    struct reload_build *build, *paused;
    bool incomplete;       /* a state of the running generation failed */
    bool quit;
    pthread_t *builders;
    int builder_count;
};

enum reload_result { RELOAD_FAILED = -1, RELOAD_DONE = 0, RELOAD_KEPT = 1 };

/* Takes `cfg` over (it is left empty). `config_path` may be NULL. The
 * states built from `cfg` at the start are generation 0. */
int reload_init(struct reload *r, const char *config_path, struct config *cfg);
/* Stops the builder threads: states being built are finished and
 * discarded, the others not built. Before the target goes away. */
void reload_stop(struct reload *r);
void reload_destroy(struct reload *r);

/* A new engine on the heap for `cfg`; NULL with `err` set on failure. */
struct script_engine *reload_engine_new(const struct config *cfg, int worker_id, char *err,
                                        size_t errlen);
/* Closes (running deinit) and frees an engine from reload_engine_new. */
void reload_engine_free(struct script_engine *e);

/* Re-reads the configuration and the scripts and, if they changed or
 * `force`, loads them for `t` as described above. Returns once the new
 * generation is committed (RELOAD_DONE), at once when nothing changed
 * (RELOAD_KEPT), or RELOAD_FAILED with the reason logged and nothing
 * changed. */
enum reload_result reload_build(struct reload *r, const struct reload_target *t, bool force);

#endif
