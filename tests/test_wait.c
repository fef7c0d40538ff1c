/* Handlers that wait: a call waiting in exhook.sleep lets its worker serve
 * other calls; the time limit covers the wait; waiting where Lua cannot
 * suspend is a clear error; exhook.timer runs after the reply, and from
 * init() once a worker takes the state up. Through the real server. */

#include <grpc/grpc.h>
#include <lauxlib.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"
#include "log.h"
#include "lua_timer.h"
#include "rpc_client.h"
#include "server.h"


struct world {
    struct fixture fx;
    struct server *srv;
    char target[64];
};

/* "nap" sleeps 3 s, "long" 10 s, "spin" runs for 2-3 s (wall clock), "sorted" waits in a table.sort
 * comparator, "later" sets a timer that writes timer.txt; anyone else gets
 * the value init()'s timer left in `loaded`. */
static struct world *start(const char *ini)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    char module[2048];
    snprintf(module, sizeof module,
             "local dir = '%s'\n"
             "local loaded = false\n"
             "function init() exhook.timer(0, function() exhook.sleep(0.01); loaded = true end) end\n"
             "function on_client_authenticate(ci)\n"
             "  if ci.username == 'nap' then exhook.sleep(3)\n"
             "  elseif ci.username == 'long' then exhook.sleep(10)\n"
             "  elseif ci.username == 'spin' then local t = os.time() + 3; while os.time() < t do end\n"
             "  elseif ci.username == 'sorted' then\n"
             "    table.sort({3, 1, 2}, function(a, b) exhook.sleep(0); return a < b end)\n"
             "  elseif ci.username == 'later' then\n"
             "    exhook.timer(0.05, function(name)\n"
             "      local f = io.open(dir .. '/timer.txt', 'a'); f:write(name, '\\n'); f:close()\n"
             "    end, ci.username)\n"
             "  else return loaded end\n"
             "  return true\n"
             "end\n",
             w->fx.dir);
    fx_write(&w->fx, "m.lua", module);
    fx_configure(&w->fx, "m", ini);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    return w;
}

static void stop(struct world *w)
{
    srv_destroy(w->srv);
    fx_free(&w->fx);
    free(w);
}

struct napper {
    const char *target;
    grpc_status_code status;
    volatile int done;
};

static void *run_napper(struct napper *n, const char *username)
{
    char details[512];
    int allowed;
    n->status = rpc_authenticate(n->target, username, details, sizeof details, &allowed);
    n->done = 1;
    return NULL;
}

static void *nap(void *arg) { return run_napper(arg, "nap"); }
static void *spin(void *arg) { return run_napper(arg, "spin"); }

/* While `hold` (a call that takes 2-3 s) runs on a server with `workers`,
 * 20 other calls are answered, each on a fresh connection. */
static void assert_served_meanwhile(const char *workers, void *(*hold)(void *))
{
    struct world *w = start(workers);
    struct napper n = {w->target, GRPC_STATUS_UNKNOWN, 0};
    pthread_t t;
    pthread_create(&t, NULL, hold, &n);
    usleep(200000); /* the long call is under way */
    char details[512];
    int allowed;
    for (int i = 0; i < 20; i++)
        assert_int_equal(rpc_authenticate(w->target, "fine", details, sizeof details, &allowed),
                         GRPC_STATUS_OK);
    assert_int_equal(n.done, 0);
    pthread_join(t, NULL);
    assert_int_equal(n.status, GRPC_STATUS_OK);
    stop(w);
}

/* The only worker serves other calls while one waits its 3 s. */
static void test_a_waiting_call_leaves_its_worker_free(void **state)
{
    (void)state;
    assert_served_meanwhile("[server]\nworkers = 1\n", nap);
}

/* Two workers, one busy for 2-3 s in a handler: every other call goes to the
 * other worker meanwhile, whatever connection it comes on. */
static void test_a_busy_worker_holds_up_no_other_call(void **state)
{
    (void)state;
    assert_served_meanwhile("[server]\nworkers = 2\n[lua]\ncall_timeout = 1m\n", spin);
}

/* The only worker is busy for 2-3 s; a call whose deadline passes while it
 * queues is answered without running any script, and the log says so. */
static void test_a_call_late_when_taken_up_is_not_run(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 1\n[lua]\ncall_timeout = 1m\n");
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    log_set_level(LOG_WARN);
    struct napper n = {w->target, GRPC_STATUS_UNKNOWN, 0};
    pthread_t t;
    pthread_create(&t, NULL, spin, &n);
    usleep(200000);
    char details[512];
    int allowed;
    /* "later" would set a timer, were it run. */
    assert_int_equal(rpc_authenticate_within(w->target, "later", 300, details, sizeof details,
                                             &allowed),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    int seen = capture_wait(&cap, "OnClientAuthenticate: past its deadline when a worker took it "
                                  "up; not run", 10);
    char *log = capture_end(&cap);
    log_set_level(LOG_ERROR);
    free(log);
    assert_true(seen);
    pthread_join(t, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/timer.txt", w->fx.dir);
    usleep(200000);
    assert_int_equal(access(path, F_OK), -1);
    stop(w);
}

static void test_call_timeout_covers_the_wait_and_says_what_it_waited_for(void **state)
{
    (void)state;
    struct world *w = start("[lua]\ncall_timeout = 300ms\n");
    char details[512];
    int allowed;
    assert_int_equal(rpc_authenticate(w->target, "long", details, sizeof details, &allowed),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    const char *want = "module 'm' on_client_authenticate: waiting for exhook.sleep(10) after ";
    assert_memory_equal(details, want, strlen(want));
    assert_non_null(strstr(details, " ms"));
    /* The worker goes on. */
    assert_int_equal(rpc_authenticate(w->target, "fine", details, sizeof details, &allowed),
                     GRPC_STATUS_OK);
    stop(w);
}

/* Without call_timeout only the broker limits the call: when it gives up,
 * the wait is stopped and the slot goes on. */
static void test_a_call_the_broker_gives_up_on_is_stopped(void **state)
{
    (void)state;
    struct world *w = start("[lua]\ncall_timeout = 0\n[server]\nworkers = 1\n");
    struct capture cap;
    capture_begin(&cap, w->fx.dir);
    char details[512];
    int allowed;
    assert_int_equal(rpc_authenticate_within(w->target, "long", 300, details, sizeof details,
                                             &allowed),
                     GRPC_STATUS_DEADLINE_EXCEEDED);
    int seen = capture_wait(&cap, "(cancelled by the broker)", 10);
    char *log = capture_end(&cap);
    assert_true(seen);
    assert_non_null(strstr(log, "module 'm' on_client_authenticate: waiting for exhook.sleep(10) "
                                "after "));
    free(log);
    assert_int_equal(rpc_authenticate(w->target, "fine", details, sizeof details, &allowed),
                     GRPC_STATUS_OK);
    stop(w);
}

static void test_waiting_where_lua_cannot_suspend_is_a_clear_error(void **state)
{
    (void)state;
    struct world *w = start("");
    char details[512];
    int allowed;
    assert_int_equal(rpc_authenticate(w->target, "sorted", details, sizeof details, &allowed),
                     GRPC_STATUS_UNKNOWN);
    assert_non_null(strstr(details, "exhook.sleep: cannot wait here: Lua cannot suspend inside a "
                                    "table.sort comparator"));
    stop(w);
}

static void test_waiting_in_a_module_body_fails_the_load(void **state)
{
    (void)state;
    struct fixture fx;
    fx_init(&fx);
    fx_write(&fx, "m.lua", "exhook.sleep(1)\n");
    fx_configure(&fx, "m", "");
    struct script_engine e;
    char err[512];
    assert_int_equal(script_engine_open(&e, &fx.cfg, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "exhook.sleep: cannot wait here: a module's body and init() "
                                "run at load time"));
    fx_free(&fx);
}

static void test_timers_run_after_the_reply_and_from_init(void **state)
{
    (void)state;
    struct world *w = start("[server]\nworkers = 1\n");
    char details[512];
    int allowed = 0;
    /* init()'s timer ran once the worker took the state up. */
    for (int i = 0; i < 100 && allowed != 1; i++) {
        assert_int_equal(rpc_authenticate(w->target, "fine", details, sizeof details, &allowed),
                         GRPC_STATUS_OK);
        if (allowed != 1)
            usleep(50000);
    }
    assert_int_equal(allowed, 1);
    assert_int_equal(rpc_authenticate(w->target, "later", details, sizeof details, &allowed),
                     GRPC_STATUS_OK);
    char path[512], line[64] = "";
    snprintf(path, sizeof path, "%s/timer.txt", w->fx.dir);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            fclose(f);
        }
        if (line[0])
            break;
        usleep(50000);
    }
    assert_string_equal(line, "later\n");
    stop(w);
}

/* At most max_timers pending per state; on a state a reload replaced,
 * exhook.timer sets nothing and returns false. */
static void test_timers_are_bounded_and_refused_on_a_replaced_state(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", "max_timers = 2\n", "m.lua",
                             "function on_client_connected() end\n", NULL);
    lua_State *L = t->e.L;
    assert_int_equal(luaL_dostring(L, "assert(exhook.timer(60, print) == true)\n"
                                      "assert(exhook.timer(60, print) == true)\n"
                                      "exhook.timer(60, print)\n"),
                     1); /* failed */
    if (!strstr(lua_tostring(L, -1),
                "exhook.timer: 2 timers are pending on this worker (max_timers)"))
        fail_msg("got: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    assert_int_equal(t->e.timer_count, 2);
    lua_timer_retire(&t->e);
    assert_int_equal(t->e.timer_count, 0);
    assert_int_equal(luaL_dostring(L, "return exhook.timer(0, print)"), 0);
    assert_true(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
    lua_settop(L, 0);
    assert_int_equal(t->e.timer_count, 0);
    efx_close(t);
}

static size_t count_lines(struct world *w, const char *name, const char *want)
{
    char path[512], line[64];
    snprintf(path, sizeof path, "%s/%s", w->fx.dir, name);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strcmp(line, want) == 0;
    if (f)
        fclose(f);
    return n;
}

/* A timer that sets itself again every 50 ms, from init(): after a reload
 * the old state's timer stops, the new state's runs. */
static void test_a_reload_stops_the_old_states_timers(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    const char *fmt = "local function tick()\n"
                      "  local f = io.open('%s/ticks.txt', 'a'); f:write('%s\\n'); f:close()\n"
                      "  exhook.timer(0.05, tick)\n"
                      "end\n"
                      "function init() exhook.timer(0, tick) end\n"
                      "function on_client_connected() end\n";
    char module[1024];
    snprintf(module, sizeof module, fmt, w->fx.dir, "v1");
    fx_write(&w->fx, "m.lua", module);
    fx_configure(&w->fx, "m", "[server]\nworkers = 1\n");
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    for (int i = 0; i < 100 && count_lines(w, "ticks.txt", "v1\n") < 3; i++)
        usleep(50000);
    assert_true(count_lines(w, "ticks.txt", "v1\n") >= 3);
    snprintf(module, sizeof module, fmt, w->fx.dir, "v2");
    fx_write(&w->fx, "m.lua", module);
    assert_int_equal(srv_reload(w->srv), 0);
    for (int i = 0; i < 100 && count_lines(w, "ticks.txt", "v2\n") < 3; i++)
        usleep(50000);
    assert_true(count_lines(w, "ticks.txt", "v2\n") >= 3);
    size_t v1 = count_lines(w, "ticks.txt", "v1\n");
    usleep(500000); /* ten ticks of the new state */
    assert_int_equal(count_lines(w, "ticks.txt", "v1\n"), v1);
    stop(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_waiting_call_leaves_its_worker_free),
        cmocka_unit_test(test_a_busy_worker_holds_up_no_other_call),
        cmocka_unit_test(test_a_call_late_when_taken_up_is_not_run),
        cmocka_unit_test(test_call_timeout_covers_the_wait_and_says_what_it_waited_for),
        cmocka_unit_test(test_a_call_the_broker_gives_up_on_is_stopped),
        cmocka_unit_test(test_waiting_where_lua_cannot_suspend_is_a_clear_error),
        cmocka_unit_test(test_waiting_in_a_module_body_fails_the_load),
        cmocka_unit_test(test_timers_run_after_the_reply_and_from_init),
        cmocka_unit_test(test_a_reload_stops_the_old_states_timers),
        cmocka_unit_test(test_timers_are_bounded_and_refused_on_a_replaced_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
