#ifndef EXHOOKD_RELOAD_H
#define EXHOOKD_RELOAD_H

/* Script generations: editing scripts while the server runs.
 *
 * A reload (the broker's OnProviderLoaded, or SIGHUP) re-reads the [lua] and
 * [topics] settings and the scripts and loads them, init() included, into a
 * new Lua state for every worker. All or nothing: if any state fails, all
 * are discarded, the running scripts stay and the error is logged. Each new
 * state is then handed to its worker, which takes it up before its next
 * call and closes its old one (deinit() included): a call runs start to
 * finish on one state, and every worker runs exactly the scripts that were
 * checked, whatever happens to the files afterwards. A Lua state is used by
 * one thread at a time: built here, then used only by its worker. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "script.h"

struct reload {
    pthread_mutex_t lock;  /* serialises reloads, guards `cfg` */
    char *config_path;     /* re-read on reload; NULL = keep the config */
    /* The running configuration: [server], [tls] and [log] as started,
     * [lua], [topics] and [webhook] from the last successful reload. */
    struct config cfg;
    uint64_t generation;   /* number of successful reloads */
};

/* Takes `cfg` over (it is left empty). `config_path` may be NULL. */
int reload_init(struct reload *r, const char *config_path, struct config *cfg);
void reload_destroy(struct reload *r);

/* A new engine on the heap for `cfg`; NULL with `err` set on failure. */
struct script_engine *reload_engine_new(const struct config *cfg, int worker_id, char *err,
                                        size_t errlen);
/* Closes (running deinit) and frees an engine from reload_engine_new. */
void reload_engine_free(struct script_engine *e);

/* Hands engines[i] to worker i + 1; takes them over. */
typedef void reload_publish_fn(void *ctx, struct script_engine **engines, int count);

/* Re-reads the configuration and the scripts into `count` new engines, for
 * workers 1..count, and passes them to `publish` (still under the lock, so
 * that two reloads never interleave). 0 on success; -1 with the reason
 * logged and nothing changed if the configuration or any engine failed. */
int reload_build(struct reload *r, int count, reload_publish_fn *publish, void *ctx);

#endif
