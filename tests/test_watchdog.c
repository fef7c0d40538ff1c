/* The watchdog in process, with one worker blocked in a C call (os.execute,
 * sandbox off) past its deadline: the call it holds is answered with
 * DEADLINE_EXCEEDED and the server's owner is told; a call that reaches the
 * worker's queue meanwhile is answered UNAVAILABLE by the stand-in; once
 * the worker comes back, nothing is answered or freed twice and the server
 * stops cleanly. Without the watchdog the call waits for the worker. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "log.h"
#include "rpc_client.h"

#define AUTH_PATH "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"

/* 'block' holds the worker in a C function for `seconds`. */
static const char module[] = "function on_client_authenticate(ci)\n"
                             "  if ci.username == 'block' then os.execute('sleep %d') end\n"
                             "  return true\n"
                             "end\n";

struct world {
    struct fixture fx;
    struct server *srv;
    char target[64];
    atomic_int stuck_reports;
};

static void count_report(void *ctx)
{
    struct world *w = ctx;
    atomic_fetch_add(&w->stuck_reports, 1);
}

static struct world *start(int block_s, const char *watchdog)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    char text[256], ini[256];
    snprintf(text, sizeof text, module, block_s);
    fx_write(&w->fx, "m.lua", text);
    snprintf(ini, sizeof ini,
             "[server]\nworkers = 1\nwatchdog = %s\n[lua]\ncall_timeout = 100ms\n"
             "sandbox = false\n[log]\nlevel = error\n",
             watchdog);
    fx_configure(&w->fx, "m", ini);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    srv_on_stuck(w->srv, count_report, w);
    return w;
}

/* One authenticate call as `user`: its status, and grpc-message in `details`. */
static grpc_status_code authenticate(struct world *w, const char *user, char *details,
                                     size_t len)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)user;
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    struct rpc_client *c = rpc_client_open(w->target);
    struct rpc_result res;
    assert_int_equal(rpc_call(c, AUTH_PATH, &r.base, &res), 0);
    snprintf(details, len, "%s", res.details);
    grpc_status_code st = res.status;
    rpc_result_free(&res);
    rpc_client_close(c);
    return st;
}

static void test_stuck_call_answered_and_queue_served_by_a_stand_in(void **state)
{
    (void)state;
    struct world *w = start(6, "200ms");
    char details[512];
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    grpc_status_code st = authenticate(w, "block", details, sizeof details);
    char *log = capture_end(&cap);
    /* The worker would have answered OK, 6 s later: far beyond the 300 ms
     * after which the watchdog answers, also on a busy machine. */
    assert_int_equal(st, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_string_equal(details, "exhookd worker w1 is stuck in code that cannot be "
                                 "interrupted (hook client.authenticate, module m)");
    assert_non_null(strstr(log, " error [watchdog] worker w1 stuck in code that cannot be "
                                "interrupted: hook client.authenticate, module m, "));
    assert_non_null(strstr(log, " s past its deadline; the call is answered with "
                                "DEADLINE_EXCEEDED\n"));
    free(log);
    assert_int_equal(atomic_load(&w->stuck_reports), 1);

    /* The only worker slot is still in os.execute: the thread started in
     * its place finds no slot to run the call on, and answers at once. */
    assert_int_equal(authenticate(w, "fine", details, sizeof details), GRPC_STATUS_UNAVAILABLE);
    assert_string_equal(details, "exhookd workers are stuck in code that cannot be "
                                 "interrupted; call not run");

    /* The worker comes back to a call already answered: a clean stop. */
    assert_int_equal(srv_destroy(w->srv), 0);
    assert_int_equal(atomic_load(&w->stuck_reports), 1);
    fx_free(&w->fx);
    free(w);
}

static void test_without_the_watchdog_the_call_waits_for_the_worker(void **state)
{
    (void)state;
    struct world *w = start(1, "0");
    char details[512];
    assert_int_equal(authenticate(w, "block", details, sizeof details), GRPC_STATUS_OK);
    assert_int_equal(atomic_load(&w->stuck_reports), 0);
    assert_int_equal(srv_destroy(w->srv), 0);
    fx_free(&w->fx);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuck_call_answered_and_queue_served_by_a_stand_in),
        cmocka_unit_test(test_without_the_watchdog_the_call_waits_for_the_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
