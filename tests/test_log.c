/* The log as a line-based shipper reads it: with [log] format = json every
 * line is one JSON object (time, level, thread, then module, hook and
 * traceback when a script wrote it or failed), whatever bytes its text
 * holds. Each captured line is parsed by Python's json module, which also
 * prints it back in one canonical form that is compared here exactly. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "log.h"

/* Parses every line of the capture file with json.loads (failing on a line
 * that is not one whole object), checks the time's form and replaces it
 * with "T", and returns the lines json.dumps writes back (malloc'd). */
static char *parse_json_lines(const char *path)
{
    static const char script[] =
        "import json, re, sys\n"
        "for line in open(sys.argv[1], encoding='utf-8'):\n"
        "    o = json.loads(line)\n"
        "    assert re.fullmatch(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z', "
        "o['time'])\n"
        "    o['time'] = 'T'\n"
        "    print(json.dumps(o))\n";
    char cmd[1024];
    /* The script goes through the environment: no quoting to get wrong. */
    setenv("EXHOOKD_JSON_CHECK", script, 1);
    snprintf(cmd, sizeof cmd, "python3 -c \"$EXHOOKD_JSON_CHECK\" '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    if (pclose(p) != 0)
        fail_msg("a log line is not one JSON object: %s", out);
    return out;
}

static void test_json_lines_carry_module_hook_and_traceback_as_fields(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua",
                             "local function inner() error('boom') end\n"
                             "function on_client_authenticate(ci)\n"
                             "  inner()\n"
                             "end\n"
                             "function on_client_connected(ci)\n"
                             "  exhook.log('warn', 'two\\nlines \"quoted\" \\\\ \\1 \\255', 1)\n"
                             "end\n",
                             NULL);
    log_set_format(LOG_FORMAT_JSON);
    struct capture cap;
    capture_begin(&cap, t->fx.dir);
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthenticateRequest auth =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    auth.clientinfo = &ci;
    efx_call(t, HOOK_CLIENT_AUTHENTICATE, &auth.base, INT64_MAX);
    Emqx__Exhook__V3__ClientConnectedRequest conn =
        EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    conn.clientinfo = &ci;
    efx_call(t, HOOK_CLIENT_CONNECTED, &conn.base, INT64_MAX);
    log_info("a plain line from %s", "exhookd");
    free(capture_end(&cap));
    log_set_format(LOG_FORMAT_TEXT);

    char *got = parse_json_lines(cap.path);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"time\": \"T\", \"level\": \"error\", \"thread\": \"main\", \"module\": \"m\", "
             "\"hook\": \"client.authenticate\", \"message\": \"module 'm' "
             "on_client_authenticate: %s/m.lua:1: boom (script error)\", \"traceback\": \"stack "
             "traceback:\\n\\t[C]: in function 'error'\\n\\t%s/m.lua:1: in upvalue "
             "'inner'\\n\\t%s/m.lua:3: in function <%s/m.lua:2>\\n\\t[C]: in ?\"}\n"
             "{\"time\": \"T\", \"level\": \"warn\", \"thread\": \"main\", \"module\": \"m\", "
             "\"hook\": \"client.connected\", \"message\": \"[m] two\\nlines \\\"quoted\\\" "
             "\\\\ \\u0001 \\ufffd 1\"}\n"
             "{\"time\": \"T\", \"level\": \"info\", \"thread\": \"main\", \"message\": \"a plain "
             "line from exhookd\"}\n",
             t->fx.dir, t->fx.dir, t->fx.dir, t->fx.dir);
    assert_string_equal(got, want);
    free(got);
    efx_close(t);
}

static void test_json_line_cut_at_the_size_limit_is_still_one_object(void **state)
{
    (void)state;
    struct fixture fx;
    fx_init(&fx);
    log_set_format(LOG_FORMAT_JSON);
    struct capture cap;
    capture_begin(&cap, fx.dir);
    /* 4000 quotes: twice that escaped, more than a line holds. */
    char text[4001];
    memset(text, '"', 4000);
    text[4000] = '\0';
    struct log_fields f = {"m", NULL, text};
    log_fields_msg(LOG_ERROR, &f, "%s", text);
    free(capture_end(&cap));
    log_set_format(LOG_FORMAT_TEXT);
    char *got = parse_json_lines(cap.path);
    assert_non_null(strstr(got, "\"message\": \"\\\"\\\"\\\""));
    assert_non_null(strstr(got, "\"traceback\": \""));
    assert_int_equal(strchr(got, '\n') - got + 1, (long)strlen(got));
    free(got);
    fx_free(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines_carry_module_hook_and_traceback_as_fields),
        cmocka_unit_test(test_json_line_cut_at_the_size_limit_is_still_one_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
