/* The scripts' word in the health check (health.c), without a server: the
 * real Lua states of two generations of a module, as a reload has them
 * side by side, and the log line each change writes. Over gRPC the same is
 * checked in test_reload. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "health.h"
#include <lauxlib.h>

/* Runs `code` in the state of `t` as module "m" would. */
static void run(struct efx *t, const char *code)
{
    t->e.current_module = "m";
    if (luaL_dostring(t->e.L, code) != 0)
        fail_msg("%s", lua_tostring(t->e.L, -1));
    t->e.current_module = NULL;
}

#define MODULE "function on_client_connected() end\n"

static void test_a_replaced_state_cannot_undo_what_the_new_init_said(void **state)
{
    (void)state;
    struct efx *old = efx_open("m", NULL, "m.lua", MODULE, NULL);
    uint64_t g1 = health_generation_new();
    health_adopt(&old->e, g1);
    health_publish(g1);
    assert_true(health_scripts_serving());

    /* The new generation's init() says NOT_SERVING: it waits for adoption. */
    struct efx *new =
        efx_open("m", NULL, "m.lua",
                 MODULE "function init() exhook.health.set(false, 'no backend') end\n", NULL);
    assert_true(health_scripts_serving());
    uint64_t g2 = health_generation_new();
    health_adopt(&new->e, g2);
    /* The old state, finishing a call before its worker switches. */
    run(old, "exhook.health.set(true)");
    health_publish(g2);
    assert_false(health_scripts_serving());
    run(old, "exhook.health.set(true)");
    assert_false(health_scripts_serving());
    run(new, "exhook.health.set(true)");
    assert_true(health_scripts_serving());
    efx_close(new);
    efx_close(old);
}

static void test_a_change_is_logged_once_with_the_module_and_reason(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua", MODULE, NULL);
    uint64_t g = health_generation_new();
    health_adopt(&t->e, g);
    health_publish(g);
    struct capture cap;
    capture_begin(&cap, t->fx.dir);
    run(t, "exhook.health.set(false, 'redis down')");
    run(t, "exhook.health.set(false, 'redis down')");
    run(t, "exhook.health.set(true)");
    run(t, "exhook.health.set(true)");
    char *text = capture_end(&cap);
    const char *lines[] = {"warn  [main] health: NOT_SERVING, module 'm' says: redis down\n",
                           "info  [main] health: SERVING again, module 'm' says\n"};
    const char *p = text;
    for (size_t i = 0; i < 2; i++) {
        assert_true(is_log_timestamp(p));
        assert_memory_equal(p + 25, lines[i], strlen(lines[i]));
        p += 25 + strlen(lines[i]);
    }
    assert_string_equal(p, "");
    free(text);
    efx_close(t);
}

static void test_health_set_wants_a_boolean(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua", MODULE, NULL);
    t->e.current_module = "m";
    assert_int_not_equal(luaL_dostring(t->e.L, "exhook.health.set('no')"), 0);
    assert_non_null(strstr(lua_tostring(t->e.L, -1), "boolean expected, got string"));
    efx_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_replaced_state_cannot_undo_what_the_new_init_said),
        cmocka_unit_test(test_a_change_is_logged_once_with_the_module_and_reason),
        cmocka_unit_test(test_health_set_wants_a_boolean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
