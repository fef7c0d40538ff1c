#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"

struct watch {
    loop_io_fn *fn;
    void *ctx;
    int events;   /* 0: not watched */
    uint32_t gen; /* counts unwatches: tells an event of an earlier watch of the number */
};

/* What epoll hands back with an event: the descriptor and the generation
 * of its watch, or this for the timerfd. */
#define TIMERFD_TAG UINT64_MAX
static uint64_t watch_tag(int fd, uint32_t gen) { return (uint64_t)gen << 32 | (uint32_t)fd; }

struct loop {
    int epfd;
    int tfd;             /* a timerfd set to the earliest timer */
    int64_t tfd_at;      /* what it is set to; INT64_MAX = disarmed */
    uint64_t timer_runs; /* how many times due timers were run */
    struct watch *watches; /* indexed by descriptor */
    size_t watch_cap;
    struct loop_timer **heap; /* min-heap on at_ns */
    size_t heap_len, heap_cap;
};

int64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct loop *loop_create(char *err, size_t errlen)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    l->tfd_at = INT64_MAX;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TIMERFD_TAG};
    if (l->epfd < 0 || l->tfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) != 0) {
        errbuf_set(err, errlen, "cannot create an event loop: %s", strerror(errno));
        loop_destroy(l);
        return NULL;
    }
    return l;
}

void loop_destroy(struct loop *l)
{
    if (!l)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->tfd >= 0)
        close(l->tfd);
    free(l->watches);
    free(l->heap);
    free(l);
}

int loop_fd(const struct loop *l) { return l->epfd; }

static uint32_t epoll_events(int events)
{
    return (events & LOOP_READ ? EPOLLIN : 0) | (events & LOOP_WRITE ? EPOLLOUT : 0);
}

int loop_watch(struct loop *l, int fd, int events, loop_io_fn *fn, void *ctx)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if ((size_t)fd >= l->watch_cap) {
        if (events == 0)
            return 0;
        size_t cap = l->watch_cap ? l->watch_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct watch *w = realloc(l->watches, cap * sizeof *w);
        if (!w)
            return -1;
        memset(w + l->watch_cap, 0, (cap - l->watch_cap) * sizeof *w);
        l->watches = w;
        l->watch_cap = cap;
    }
    struct watch *w = &l->watches[fd];
    struct epoll_event ev = {.events = epoll_events(events), .data.u64 = watch_tag(fd, w->gen)};
    if (events == 0) {
        if (w->events) {
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, &ev); /* fails if already closed: fine */
            /* Events of this watch already gathered in a dispatch must not
             * reach a later watch of the same number (a new socket). */
            w->gen++;
        }
        w->events = 0;
        return 0;
    }
    int op = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) != 0) {
        /* A descriptor closed and reused without an unwatch in between. */
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else
            return -1;
        if (epoll_ctl(l->epfd, op, fd, &ev) != 0)
            return -1;
    }
    w->fn = fn;
    w->ctx = ctx;
    w->events = events;
    return 0;
}

/* The timerfd follows the heap's top. */
static void arm_timerfd(struct loop *l)
{
    int64_t at = l->heap_len ? l->heap[0]->at_ns : INT64_MAX;
    if (at == l->tfd_at)
        return;
    l->tfd_at = at;
    struct itimerspec its = {0};
    if (at != INT64_MAX) {
        if (at <= 0)
            at = 1; /* all zeros would disarm it */
        its.it_value.tv_sec = at / 1000000000;
        its.it_value.tv_nsec = at % 1000000000;
    }
    timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->heap_pos = i + 1;
}

static void sift_up(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->at_ns <= t->at_ns)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void sift_down(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->heap_len)
            break;
        if (child + 1 < l->heap_len && l->heap[child + 1]->at_ns < l->heap[child]->at_ns)
            child++;
        if (l->heap[child]->at_ns >= t->at_ns)
            break;
        heap_set(l, i, l->heap[child]);
        i = child;
    }
    heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *ctx)
{
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->ctx = ctx;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (!t->heap_pos)
        return;
    size_t i = t->heap_pos - 1;
    t->heap_pos = 0;
    struct loop_timer *last = l->heap[--l->heap_len];
    if (i < l->heap_len) {
        heap_set(l, i, last);
        sift_up(l, i);
        sift_down(l, last->heap_pos - 1);
    }
    arm_timerfd(l);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t at_ns)
{
    loop_timer_stop(l, t);
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct loop_timer **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            abort(); /* a timer that silently never fires would hang its call */
        l->heap = h;
        l->heap_cap = cap;
    }
    t->at_ns = at_ns;
    t->started_run = l->timer_runs;
    heap_set(l, l->heap_len++, t);
    sift_up(l, l->heap_len - 1);
    arm_timerfd(l);
}

/* Runs the timers that are due, except those started by these very
 * callbacks: a timer started again for a time already past runs once per
 * dispatch instead of forever (the timerfd, set to that time, makes the
 * next dispatch come at once). */
static int run_timers(struct loop *l)
{
    uint64_t expirations;
    while (read(l->tfd, &expirations, sizeof expirations) > 0)
        ;
    l->tfd_at = INT64_MIN; /* whatever it was set to has passed: set it again */
    uint64_t run = ++l->timer_runs;
    int n = 0;
    int64_t now = loop_now_ns();
    while (l->heap_len && l->heap[0]->at_ns <= now && l->heap[0]->started_run < run) {
        struct loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->fn(t);
        n++;
    }
    arm_timerfd(l);
    return n;
}

int loop_dispatch(struct loop *l)
{
    struct epoll_event evs[64];
    int n = epoll_wait(l->epfd, evs, 64, 0);
    int ran = 0;
    bool timers = false;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == TIMERFD_TAG) {
            timers = true;
            continue;
        }
        int fd = (int)(uint32_t)evs[i].data.u64;
        /* Looked up now: an earlier callback may have stopped or changed
         * this watch, or closed the descriptor and watched a new one. */
        struct watch *w = &l->watches[fd];
        if (!w->events || w->gen != (uint32_t)(evs[i].data.u64 >> 32))
            continue;
        uint32_t e = evs[i].events;
        int events = (e & EPOLLIN ? LOOP_READ : 0) | (e & EPOLLOUT ? LOOP_WRITE : 0);
        events &= w->events;
        if (e & (EPOLLERR | EPOLLHUP))
            events |= LOOP_ERROR;
        if (!events)
            continue;
        w->fn(w->ctx, fd, events);
        ran++;
    }
    if (timers || (l->heap_len && l->heap[0]->at_ns <= loop_now_ns()))
        ran += run_timers(l);
    return ran;
}

int loop_run_once(struct loop *l, int timeout_ms)
{
    struct pollfd p = {.fd = l->epfd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
        return -1;
    return loop_dispatch(l);
}
