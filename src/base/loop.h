#ifndef EXHOOKD_LOOP_H
#define EXHOOKD_LOOP_H

/* An event loop: file descriptors and timers, for the network clients of
 * one worker slot. All readiness gathers in one epoll instance whose own
 * descriptor (loop_fd) turns readable when a watched descriptor is ready or
 * a timer is due, so a thread that waits on something else (the gRPC
 * completion queue) learns of it through that one descriptor, and
 * loop_dispatch then runs the callbacks without blocking.
 *
 * Not thread-safe: one thread at a time uses a loop (the thread that holds
 * its slot). Callbacks may watch, unwatch, start and stop anything,
 * including what is being dispatched. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_ERROR = 4 };

struct loop;

/* A descriptor is ready: `events` is LOOP_READ and/or LOOP_WRITE as asked,
 * with LOOP_ERROR added on an error or hang-up. */
typedef void loop_io_fn(void *ctx, int fd, int events);

struct loop_timer;
typedef void loop_timer_fn(struct loop_timer *t);

/* Owned by its user, who starts and stops it; a started timer must be
 * stopped (or have fired) before it is freed. */
struct loop_timer {
    int64_t at_ns;   /* when it fires, on loop_now_ns()'s clock */
    size_t heap_pos; /* its place in the loop's heap, plus 1; 0 = not started */
    uint64_t started_run; /* the loop's count of timer runs when it was started */
    loop_timer_fn *fn;
    void *ctx;
};

/* NULL with a message in `err` when the kernel refuses an epoll instance
 * or a timerfd. */
struct loop *loop_create(char *err, size_t errlen);
/* Closes the loop's own descriptors; watched descriptors stay open (their
 * owners close them), started timers are forgotten. */
void loop_destroy(struct loop *l);

/* Readable while something is ready or due. */
int loop_fd(const struct loop *l);

/* Watches `fd` for `events` (LOOP_READ | LOOP_WRITE), replacing an earlier
 * watch of the same descriptor; 0 stops watching it. 0 on success, -1 with
 * errno set. */
int loop_watch(struct loop *l, int fd, int events, loop_io_fn *fn, void *ctx);

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *ctx);
/* Starts `t` to fire at `at_ns` (restarts it if started). */
void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t at_ns);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_started(const struct loop_timer *t) { return t->heap_pos != 0; }

/* Runs the callbacks of the descriptors that are ready and of the timers
 * that are due, without blocking. Returns how many ran. */
int loop_dispatch(struct loop *l);

/* Waits up to `timeout_ms` (-1: without limit) for something to be ready,
 * then dispatches: for tests and tools that have nothing else to wait on. */
int loop_run_once(struct loop *l, int timeout_ms);

/* CLOCK_MONOTONIC in nanoseconds: the clock of timers and call deadlines. */
int64_t loop_now_ns(void);

#endif
