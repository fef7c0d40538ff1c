#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "script.h"

/* One worker's published state, behind a sequence lock: the worker makes
 * `seq` odd, writes the fields, makes it even again. The even value is the
 * id of the busy period, so a reader that sees the same even value before
 * and after reading the fields has read one consistent period. A line of its
 * own so that workers never share a cache line. */
struct wd_slot {
    alignas(64) atomic_uint_fast64_t seq;
    atomic_int kind;
    _Atomic(void *) what;
    atomic_int_fast64_t deadline_ns;
    /* Watchdog thread only: the last period reported, not reported twice. */
    uint64_t reported;
};

struct watchdog {
    struct wd_slot *slots;
    int count;
    unsigned bound_ms;
    wd_stuck_fn *fn;
    void *ctx;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

struct watchdog *wd_create(int slots, unsigned bound_ms, wd_stuck_fn *fn, void *ctx)
{
    struct watchdog *wd = calloc(1, sizeof *wd);
    if (!wd)
        return NULL;
    wd->slots = aligned_alloc(alignof(struct wd_slot), (size_t)slots * sizeof *wd->slots);
    if (!wd->slots) {
        free(wd);
        return NULL;
    }
    for (int i = 0; i < slots; i++) {
        struct wd_slot *s = &wd->slots[i];
        atomic_init(&s->seq, 0);
        atomic_init(&s->kind, WD_IDLE);
        atomic_init(&s->what, NULL);
        atomic_init(&s->deadline_ns, INT64_MAX);
        s->reported = 0;
    }
    wd->count = slots;
    wd->bound_ms = bound_ms;
    wd->fn = fn;
    wd->ctx = ctx;
    pthread_mutex_init(&wd->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->wake, &attr);
    pthread_condattr_destroy(&attr);
    return wd;
}

static uint64_t publish(struct wd_slot *s, enum wd_busy kind, void *what, int64_t deadline_ns,
                        atomic_uint_fast64_t *token)
{
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->kind, (int)kind, memory_order_relaxed);
    atomic_store_explicit(&s->what, what, memory_order_relaxed);
    atomic_store_explicit(&s->deadline_ns, deadline_ns, memory_order_relaxed);
    if (token)
        atomic_store_explicit(token, seq + 2, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    return seq + 2;
}

uint64_t wd_busy(struct watchdog *wd, int slot, enum wd_busy kind, void *what, int64_t deadline_ns,
                 atomic_uint_fast64_t *token)
{
    return publish(&wd->slots[slot], kind, what, deadline_ns, token);
}

void wd_idle(struct watchdog *wd, int slot)
{
    publish(&wd->slots[slot], WD_IDLE, NULL, INT64_MAX, NULL);
}

int64_t wd_deadline(struct watchdog *wd, int slot)
{
    struct wd_slot *s = &wd->slots[slot];
    for (;;) {
        uint64_t id = atomic_load_explicit(&s->seq, memory_order_acquire);
        int kind = atomic_load_explicit(&s->kind, memory_order_relaxed);
        int64_t deadline = atomic_load_explicit(&s->deadline_ns, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (!(id & 1) && atomic_load_explicit(&s->seq, memory_order_relaxed) == id)
            return kind == WD_IDLE ? INT64_MIN : deadline;
    }
}

/* Reports slot `i` if it is stuck now. */
static void check_slot(struct watchdog *wd, int i, int64_t now)
{
    struct wd_slot *s = &wd->slots[i];
    uint64_t id = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (id & 1 || id == s->reported)
        return;
    enum wd_busy kind = (enum wd_busy)atomic_load_explicit(&s->kind, memory_order_relaxed);
    void *what = atomic_load_explicit(&s->what, memory_order_relaxed);
    int64_t deadline = atomic_load_explicit(&s->deadline_ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != id || kind == WD_IDLE ||
        deadline == INT64_MAX)
        return;
    int64_t late = now - deadline;
    if (late <= (int64_t)wd->bound_ms * 1000000)
        return;
    s->reported = id;
    wd->fn(wd->ctx, i, kind, what, id, late);
}

/* Looks four times per bound (at most every 250 ms, at least every 10 ms):
 * a stuck worker is reported between `bound` and 1.25 x `bound` past its
 * deadline. */
static void *watch(void *arg)
{
    struct watchdog *wd = arg;
    log_set_thread_name("watchdog");
    int64_t tick_ns = (int64_t)wd->bound_ms * 1000000 / 4;
    if (tick_ns > 250000000)
        tick_ns = 250000000;
    if (tick_ns < 10000000)
        tick_ns = 10000000;
    pthread_mutex_lock(&wd->lock);
    while (!wd->stopping) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        int64_t ns = at.tv_nsec + tick_ns;
        at.tv_sec += ns / 1000000000;
        at.tv_nsec = ns % 1000000000;
        int rc = pthread_cond_timedwait(&wd->wake, &wd->lock, &at);
        if (wd->stopping || (rc != 0 && rc != ETIMEDOUT))
            break;
        pthread_mutex_unlock(&wd->lock);
        int64_t now = script_now_ns();
        for (int i = 0; i < wd->count; i++)
            check_slot(wd, i, now);
        pthread_mutex_lock(&wd->lock);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

int wd_start(struct watchdog *wd)
{
    if (wd->bound_ms == 0)
        return 0;
    if (pthread_create(&wd->thread, NULL, watch, wd) != 0)
        return -1;
    wd->started = true;
    return 0;
}

void wd_destroy(struct watchdog *wd)
{
    if (!wd)
        return;
    if (wd->started) {
        pthread_mutex_lock(&wd->lock);
        wd->stopping = true;
        pthread_cond_signal(&wd->wake);
        pthread_mutex_unlock(&wd->lock);
        pthread_join(wd->thread, NULL);
    }
    pthread_cond_destroy(&wd->wake);
    pthread_mutex_destroy(&wd->lock);
    free(wd->slots);
    free(wd);
}
