#include "ratelimit.h"

void ratelimit_init(struct ratelimit *r, int64_t interval_ns)
{
    r->interval_ns = interval_ns;
    atomic_init(&r->last_ns, INT64_MIN);
    atomic_init(&r->pending, 0);
}

uint64_t ratelimit_hit(struct ratelimit *r, int64_t now_ns, bool *first)
{
    atomic_fetch_add_explicit(&r->pending, 1, memory_order_relaxed);
    int64_t last = atomic_load_explicit(&r->last_ns, memory_order_relaxed);
    if (last != INT64_MIN && now_ns - last < r->interval_ns)
        return 0;
    /* Several threads may get here at once: the one that moves the time
     * writes the line, the others have only counted. */
    if (!atomic_compare_exchange_strong(&r->last_ns, &last, now_ns))
        return 0;
    *first = last == INT64_MIN;
    return atomic_exchange(&r->pending, 0);
}
