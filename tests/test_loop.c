/* The event loop of a worker slot: timers and descriptors, dispatched
 * without blocking, and its one descriptor that says when to dispatch. */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"

#define MS 1000000LL

static struct loop *new_loop(void)
{
    char err[200] = "";
    struct loop *l = loop_create(err, sizeof err);
    assert_non_null(l);
    return l;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Runs the loop until `*count` reaches `target`, failing after 10 s (a
 * generous bound: the waits below are tens of milliseconds). */
static void run_until(struct loop *l, const int *count, int target)
{
    int64_t give_up = loop_now_ns() + 10000 * MS;
    while (*count < target && loop_now_ns() < give_up)
        assert_true(loop_run_once(l, 100) >= 0);
    assert_int_equal(*count, target);
}

/* Timers record the order they fired in. */
struct rec {
    int order[16];
    int n;
    struct loop *l;
    struct loop_timer *victim; /* stopped by the next timer to fire */
};

struct tmr {
    struct loop_timer t;
    struct rec *rec;
    int id;
};

static void on_timer(struct loop_timer *t)
{
    struct tmr *m = t->ctx;
    m->rec->order[m->rec->n++] = m->id;
    if (m->rec->victim) {
        loop_timer_stop(m->rec->l, m->rec->victim);
        assert_false(loop_timer_started(m->rec->victim));
        m->rec->victim = NULL;
    }
}

static void init_timers(struct tmr *ts, int n, struct rec *rec)
{
    for (int i = 0; i < n; i++) {
        ts[i].rec = rec;
        ts[i].id = i;
        loop_timer_init(&ts[i].t, on_timer, &ts[i]);
        assert_false(loop_timer_started(&ts[i].t));
    }
}

static void test_timers_fire_in_order_of_their_time(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[8];
    init_timers(ts, 8, &rec);
    /* Started out of order, 5 ms apart. */
    static const int slot[8] = {5, 2, 7, 0, 3, 6, 1, 4};
    int64_t base = loop_now_ns() + 20 * MS;
    for (int i = 0; i < 8; i++) {
        loop_timer_start(l, &ts[i].t, base + slot[i] * 5 * MS);
        assert_true(loop_timer_started(&ts[i].t));
    }
    assert_int_equal(loop_dispatch(l), 0); /* nothing due yet */
    run_until(l, &rec.n, 8);
    static const int want[8] = {3, 6, 1, 4, 7, 0, 5, 2};
    assert_memory_equal(rec.order, want, sizeof want);
    for (int i = 0; i < 8; i++)
        assert_false(loop_timer_started(&ts[i].t));
    loop_destroy(l);
}

static void test_timers_due_at_once_fire_in_one_dispatch_in_order(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[5];
    init_timers(ts, 5, &rec);
    int64_t past = loop_now_ns() - 100 * MS;
    for (int i = 4; i >= 0; i--)
        loop_timer_start(l, &ts[i].t, past + i * MS);
    assert_int_equal(loop_dispatch(l), 5);
    static const int want[5] = {0, 1, 2, 3, 4};
    assert_memory_equal(rec.order, want, sizeof want);
    loop_destroy(l);
}

static void test_restart_moves_a_timer_and_stop_cancels_it(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[3];
    init_timers(ts, 3, &rec);
    int64_t now = loop_now_ns();
    loop_timer_start(l, &ts[0].t, now + 10 * MS);
    loop_timer_start(l, &ts[1].t, now + 20 * MS);
    loop_timer_start(l, &ts[2].t, now + 30 * MS);
    loop_timer_start(l, &ts[0].t, now + 40 * MS); /* restarted: now last */
    loop_timer_stop(l, &ts[1].t);
    loop_timer_stop(l, &ts[1].t); /* stopping twice is harmless */
    run_until(l, &rec.n, 2);
    assert_int_equal(rec.order[0], 2);
    assert_int_equal(rec.order[1], 0);
    /* ts[1] never fires, and a stopped timer may be restarted. */
    assert_int_equal(loop_run_once(l, 50), 0);
    loop_timer_start(l, &ts[1].t, loop_now_ns());
    run_until(l, &rec.n, 3);
    assert_int_equal(rec.order[2], 1);
    loop_destroy(l);
}

static void test_a_timer_stops_another_due_in_the_same_dispatch(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[3];
    init_timers(ts, 3, &rec);
    int64_t past = loop_now_ns() - 10 * MS;
    loop_timer_start(l, &ts[0].t, past);
    loop_timer_start(l, &ts[1].t, past + 1);
    loop_timer_start(l, &ts[2].t, past + 2);
    rec.victim = &ts[1].t; /* ts[0] fires first and stops ts[1] */
    assert_int_equal(loop_dispatch(l), 2);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.order[0], 0);
    assert_int_equal(rec.order[1], 2);
    loop_destroy(l);
}

/* A timer that starts itself again for a time already past (a deadline
 * that has passed, a client asking to be called again at once): one run
 * per dispatch, not an endless loop. */
static int again_runs;
static struct loop *again_loop;
static void on_again(struct loop_timer *t)
{
    again_runs++;
    loop_timer_start(again_loop, t, t->at_ns);
}

static void test_a_timer_restarted_for_now_runs_once_per_dispatch(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    again_loop = l;
    again_runs = 0;
    struct loop_timer t;
    loop_timer_init(&t, on_again, NULL);
    loop_timer_start(l, &t, loop_now_ns());
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(again_runs, 1);
    assert_true(readable(loop_fd(l))); /* still due: the loop says so */
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(again_runs, 2);
    loop_timer_stop(l, &t);
    loop_destroy(l);
}

static void test_loop_fd_is_readable_while_a_timer_is_due(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[1];
    init_timers(ts, 1, &rec);
    assert_false(readable(loop_fd(l)));
    loop_timer_start(l, &ts[0].t, loop_now_ns() + 30 * MS);
    assert_false(readable(loop_fd(l)));
    /* Waiting on loop_fd alone (as a worker does) wakes when it is due. */
    struct pollfd p = {.fd = loop_fd(l), .events = POLLIN};
    int64_t t0 = loop_now_ns();
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(loop_now_ns() - t0 >= 25 * MS);
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(rec.n, 1);
    assert_false(readable(loop_fd(l)));
    /* A timer stopped before it is due leaves loop_fd quiet. */
    loop_timer_start(l, &ts[0].t, loop_now_ns() + 20 * MS);
    loop_timer_stop(l, &ts[0].t);
    assert_int_equal(poll(&p, 1, 60), 0);
    loop_destroy(l);
}

/* Descriptors. */
struct io {
    struct loop *l;
    int fd, other_fd; /* `other_fd`: unwatched by this callback, if >= 0 */
    int calls, events;
    int reopen[2]; /* a pipe made by the callback in place of other_fd */
};

static void on_io(void *ctx, int fd, int events)
{
    struct io *io = ctx;
    assert_int_equal(fd, io->fd);
    io->calls++;
    io->events = events;
    char buf[64];
    if (events & LOOP_READ)
        while (read(fd, buf, sizeof buf) > 0)
            ;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void test_watch_unwatch_and_modify_a_descriptor(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct io io = {.l = l, .fd = p[0]};
    assert_int_equal(loop_watch(l, p[0], LOOP_READ, on_io, &io), 0);
    assert_false(readable(loop_fd(l)));
    assert_int_equal(loop_dispatch(l), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_true(readable(loop_fd(l)));
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(io.calls, 1);
    assert_int_equal(io.events, LOOP_READ);
    assert_false(readable(loop_fd(l)));

    /* Unwatched: data waiting, no callback, loop_fd quiet. */
    assert_int_equal(loop_watch(l, p[0], 0, NULL, NULL), 0);
    assert_int_equal(loop_watch(l, p[0], 0, NULL, NULL), 0);
    assert_int_equal(write(p[1], "y", 1), 1);
    assert_false(readable(loop_fd(l)));
    assert_int_equal(loop_dispatch(l), 0);
    assert_int_equal(io.calls, 1);

    /* Watched again, then changed to writing on the other end. */
    assert_int_equal(loop_watch(l, p[0], LOOP_READ, on_io, &io), 0);
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(io.calls, 2);
    struct io wio = {.l = l, .fd = p[1]};
    assert_int_equal(loop_watch(l, p[1], LOOP_READ | LOOP_WRITE, on_io, &wio), 0);
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(wio.events, LOOP_WRITE);
    assert_int_equal(loop_watch(l, p[1], LOOP_READ, on_io, &wio), 0); /* never readable */
    assert_int_equal(loop_dispatch(l), 0);
    assert_int_equal(wio.calls, 1);

    /* The writer closes: the reader learns of the hang-up. */
    assert_int_equal(loop_watch(l, p[1], 0, NULL, NULL), 0);
    close(p[1]);
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(io.calls, 3);
    assert_int_equal(io.events, LOOP_ERROR);
    assert_int_equal(loop_watch(l, p[0], 0, NULL, NULL), 0);
    close(p[0]);
    /* Bad descriptors are refused. */
    assert_int_equal(loop_watch(l, -1, LOOP_READ, on_io, &io), -1);
    loop_destroy(l);
}

/* Each of two ready descriptors' callbacks unwatches the other, and closes
 * it and watches a fresh pipe that takes its number: whichever runs first,
 * the other's pending event reaches neither it nor the newcomer. */
static void on_io_unwatching(void *ctx, int fd, int events)
{
    on_io(ctx, fd, events);
    struct io *io = ctx;
    if (io->other_fd < 0)
        return;
    assert_int_equal(loop_watch(io->l, io->other_fd, 0, NULL, NULL), 0);
    close(io->other_fd);
    make_pipe(io->reopen);
    assert_int_equal(io->reopen[0], io->other_fd); /* the lowest free number */
    static struct io fresh;
    fresh = (struct io){.l = io->l, .fd = io->reopen[0], .other_fd = -1};
    assert_int_equal(loop_watch(io->l, io->reopen[0], LOOP_READ, on_io, &fresh), 0);
    io->other_fd = -1;
}

static void test_a_callback_unwatches_a_descriptor_ready_in_the_same_dispatch(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    struct io ia = {.l = l, .fd = a[0], .other_fd = b[0], .reopen = {-1, -1}};
    struct io ib = {.l = l, .fd = b[0], .other_fd = a[0], .reopen = {-1, -1}};
    assert_int_equal(loop_watch(l, a[0], LOOP_READ, on_io_unwatching, &ia), 0);
    assert_int_equal(loop_watch(l, b[0], LOOP_READ, on_io_unwatching, &ib), 0);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(b[1], "b", 1), 1);
    assert_int_equal(loop_dispatch(l), 1);
    assert_int_equal(ia.calls + ib.calls, 1);
    struct io *ran = ia.calls ? &ia : &ib;
    /* The fresh pipe is quiet: nothing more runs. */
    assert_int_equal(loop_dispatch(l), 0);
    assert_false(readable(loop_fd(l)));
    loop_watch(l, ran->fd, 0, NULL, NULL);
    loop_watch(l, ran->reopen[0], 0, NULL, NULL);
    close(ran->reopen[0]);
    close(ran->reopen[1]);
    close(ran->fd);
    close(ran == &ia ? a[1] : b[1]);
    close(ran == &ia ? b[1] : a[1]);
    loop_destroy(l);
}

static void test_timers_and_descriptors_in_one_dispatch(void **state)
{
    (void)state;
    struct loop *l = new_loop();
    struct rec rec = {.l = l};
    struct tmr ts[1];
    init_timers(ts, 1, &rec);
    int p[2];
    make_pipe(p);
    struct io io = {.l = l, .fd = p[0]};
    assert_int_equal(loop_watch(l, p[0], LOOP_READ, on_io, &io), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    loop_timer_start(l, &ts[0].t, loop_now_ns() - MS);
    assert_int_equal(loop_dispatch(l), 2);
    assert_int_equal(io.calls, 1);
    assert_int_equal(rec.n, 1);
    loop_watch(l, p[0], 0, NULL, NULL);
    close(p[0]);
    close(p[1]);
    loop_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_order_of_their_time),
        cmocka_unit_test(test_timers_due_at_once_fire_in_one_dispatch_in_order),
        cmocka_unit_test(test_restart_moves_a_timer_and_stop_cancels_it),
        cmocka_unit_test(test_a_timer_stops_another_due_in_the_same_dispatch),
        cmocka_unit_test(test_a_timer_restarted_for_now_runs_once_per_dispatch),
        cmocka_unit_test(test_loop_fd_is_readable_while_a_timer_is_due),
        cmocka_unit_test(test_watch_unwatch_and_modify_a_descriptor),
        cmocka_unit_test(test_a_callback_unwatches_a_descriptor_ready_in_the_same_dispatch),
        cmocka_unit_test(test_timers_and_descriptors_in_one_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
