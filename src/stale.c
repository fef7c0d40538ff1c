#include "stale.h"

#include "log.h"

void stale_init(struct stale_calls *s, int64_t interval_ns)
{
    s->interval_ns = interval_ns;
    for (int h = 0; h < HOOK_COUNT; h++) {
        atomic_init(&s->last_ns[h], INT64_MIN);
        atomic_init(&s->seen[h], 0);
    }
}

bool stale_is_unhandled(const struct script_engine *e, enum hook_id hook)
{
    return hook_defs[hook].name && !e->specs[hook].registered;
}

bool stale_note(struct stale_calls *s, enum hook_id hook, int version, int64_t now_ns)
{
    atomic_fetch_add_explicit(&s->seen[hook], 1, memory_order_relaxed);
    int64_t last = atomic_load_explicit(&s->last_ns[hook], memory_order_relaxed);
    if (last != INT64_MIN && now_ns - last < s->interval_ns)
        return false;
    /* Several workers may get here at once: the one that moves the time
     * writes the line, the others have only counted. */
    if (!atomic_compare_exchange_strong(&s->last_ns[hook], &last, now_ns))
        return false;
    unsigned long long n = atomic_exchange(&s->seen[hook], 0);
    log_warn("the broker called %s %llu time%s since %s, and no loaded script handles it: "
             "it still uses the hook list of earlier scripts (exhookd was restarted, or "
             "reloaded by SIGHUP). Reload the provider in the broker: EMQX 5, disable and "
             "enable the server in the dashboard or PUT /api/v5/exhooks/{name}; EMQX 4, "
             "emqx_ctl exhook server disable <name>, then enable <name>",
             hooks_name(hook, version), n, n == 1 ? "" : "s",
             last == INT64_MIN ? "start" : "the last line about it");
    return true;
}
