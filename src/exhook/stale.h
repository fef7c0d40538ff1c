#ifndef EXHOOKD_STALE_H
#define EXHOOKD_STALE_H

/* A broker calling a hook that no loaded module handles: the sign of a stale
 * registration. A broker keeps the hook list of the last OnProviderLoaded
 * it called; when exhookd is restarted, EMQX 5.8 reconnects without calling
 * OnProviderLoaded again and goes on calling the hooks the earlier scripts
 * registered (so does any broker after a SIGHUP reload that dropped a
 * handler). Such a call is answered like any hook without a handler; the
 * operator is told, at most once per hook per interval, how to make the
 * broker load the provider again. */

#include <stdbool.h>
#include <stdint.h>

#include "hooks.h"
#include "ratelimit.h"
#include "script.h"

/* At most one line per hook per minute. */
#define STALE_LOG_INTERVAL_NS (INT64_C(60) * 1000000000)

struct stale_calls {
    struct ratelimit lines[HOOK_COUNT];
};

void stale_init(struct stale_calls *s, int64_t interval_ns);

/* True if neither a module of `e` nor a [webhook] rule of its generation
 * handles `hook`, so that OnProviderLoaded from these scripts would not
 * have listed it. The provider rpcs themselves are never stale. */
bool stale_is_unhandled(const struct script_engine *e, enum hook_id hook);

/* Counts a call of `hook`, from a broker of interface generation `version`,
 * that no module handles, and logs a warning if none was logged about this
 * hook in the interval before `now_ns` (CLOCK_MONOTONIC). Safe from any
 * worker thread. Returns true if it wrote the line. */
bool stale_note(struct stale_calls *s, enum hook_id hook, int version, int64_t now_ns);

#endif
