#include "stale.h"

#include "log.h"

void stale_init(struct stale_calls *s, int64_t interval_ns)
{
    for (int h = 0; h < HOOK_COUNT; h++)
        ratelimit_init(&s->lines[h], interval_ns);
}

bool stale_is_unhandled(const struct script_engine *e, enum hook_id hook)
{
    return hook_defs[hook].name && !e->specs[hook].registered && !e->specs[hook].webhook;
}

bool stale_note(struct stale_calls *s, enum hook_id hook, int version, int64_t now_ns)
{
    bool first;
    unsigned long long n = ratelimit_hit(&s->lines[hook], now_ns, &first);
    if (!n)
        return false;
    log_warn("the broker called %s %llu time%s since %s, and no loaded script handles it: "
             "it still uses the hook list of earlier scripts (exhookd was restarted, or "
             "reloaded by SIGHUP). Reload the provider in the broker: EMQX 5, disable and "
             "enable the server in the dashboard or PUT /api/v5/exhooks/{name}; EMQX 4, "
             "emqx_ctl exhook server disable <name>, then enable <name>",
             hooks_name(hook, version), n, n == 1 ? "" : "s",
             first ? "start" : "the last line about it");
    return true;
}
