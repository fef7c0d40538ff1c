/* Calls of hooks no loaded module handles: which calls those are, and the
 * rate-limited warning about them, on a clock the test sets. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "log.h"
#include "stale.h"

#define SEC INT64_C(1000000000)

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_unhandled_means_no_module_defines_the_hook(void **state)
{
    (void)state;
    struct efx *t =
        efx_open("a, b", NULL, "a.lua", "function on_client_authenticate() end\n", "b.lua",
                 /* a handler limited to other topics still handles the hook */
                 "topics = {['message.publish'] = 'b/#'}\n"
                 "function on_message_publish() end\n"
                 "function on_provider_loaded() end\n",
                 NULL);
    assert_false(stale_is_unhandled(&t->e, HOOK_CLIENT_AUTHENTICATE));
    assert_false(stale_is_unhandled(&t->e, HOOK_MESSAGE_PUBLISH));
    assert_true(stale_is_unhandled(&t->e, HOOK_CLIENT_CONNECTED));
    assert_true(stale_is_unhandled(&t->e, HOOK_CLIENT_AUTHORIZE));
    /* the provider rpcs are never stale, handled or not */
    assert_false(stale_is_unhandled(&t->e, HOOK_PROVIDER_LOADED));
    assert_false(stale_is_unhandled(&t->e, HOOK_PROVIDER_UNLOADED));
    efx_close(t);
}

static void test_one_line_per_hook_per_interval_counting_the_calls_between(void **state)
{
    (void)state;
    struct fixture fx;
    fx_init(&fx);
    struct stale_calls s;
    stale_init(&s, 60 * SEC);
    enum log_level level = log_get_level();
    log_set_level(LOG_WARN);
    struct capture cap;
    capture_begin(&cap, fx.dir);
    int64_t t0 = 1000 * SEC;
    bool wrote[14];
    size_t k = 0;
    wrote[k++] = stale_note(&s, HOOK_CLIENT_CONNECTED, 2, t0);
    /* a burst within the minute: counted, not written */
    for (int i = 1; i <= 9; i++)
        wrote[k++] = stale_note(&s, HOOK_CLIENT_CONNECTED, 2, t0 + i * 6 * SEC - 1);
    /* another hook has its own limit (and its 4.x name for a v1 broker) */
    wrote[k++] = stale_note(&s, HOOK_CLIENT_AUTHORIZE, 1, t0 + SEC);
    /* a minute after the first line: the next one, with the calls since */
    wrote[k++] = stale_note(&s, HOOK_CLIENT_CONNECTED, 2, t0 + 60 * SEC);
    wrote[k++] = stale_note(&s, HOOK_CLIENT_CONNECTED, 2, t0 + 61 * SEC);
    wrote[k++] = stale_note(&s, HOOK_CLIENT_CONNECTED, 2, t0 + 119 * SEC);
    char *text = capture_end(&cap);
    log_set_level(level);
    static const bool want[14] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0};
    assert_memory_equal(wrote, want, sizeof want);
    assert_int_equal(count(text, "\n"), 3);
    assert_int_equal(count(text, " warn  [main] the broker called "), 3);
    assert_non_null(
        strstr(text, " warn  [main] the broker called client.connected 1 time since start, and no "
                     "loaded script handles it: it still uses the hook list of earlier scripts "
                     "(exhookd was restarted, or reloaded by SIGHUP). Reload the provider in the "
                     "broker: EMQX 5, disable and enable the server in the dashboard or PUT "
                     "/api/v5/exhooks/{name}; EMQX 4, emqx_ctl exhook server disable <name>, then "
                     "enable <name>\n"));
    assert_non_null(strstr(text, "the broker called client.check_acl 1 time since start, "));
    assert_non_null(
        strstr(text, "the broker called client.connected 10 times since the last line about it, "));
    free(text);
    /* the two calls after the second line wait for the third */
    assert_int_equal(atomic_load(&s.lines[HOOK_CLIENT_CONNECTED].pending), 2);
    fx_free(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unhandled_means_no_module_defines_the_hook),
        cmocka_unit_test(test_one_line_per_hook_per_interval_counting_the_calls_between),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
