#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

/* ---- topic_filter_valid ---------------------------------------------- */

static void assert_valid(const char *filter)
{
    const char *why = "unchanged";

    if (topic_filter_valid(filter, &why) != 0)
        fail_msg("'%s' should be valid, got: %s", filter, why);
    assert_null(why);
}

static void assert_invalid(const char *filter, const char *reason)
{
    const char *why = NULL;

    /* filter may be NULL: printf's %s of NULL is undefined (GCC -O3 says so). */
    if (topic_filter_valid(filter, &why) == 0)
        fail_msg("'%s' should be invalid", filter ? filter : "(null)");
    assert_string_equal(why, reason);
}

static void test_plain_filters_are_valid(void **state)
{
    (void)state;
    assert_valid("a");
    assert_valid("a/b/c");
    assert_valid("sensors/room 1/temp");
    assert_valid("$SYS/brokers");
    assert_valid("a-b_c.d");
}

static void test_empty_levels_are_valid(void **state)
{
    (void)state;
    assert_valid("/");
    assert_valid("/a");
    assert_valid("a/");
    assert_valid("a//b");
    assert_valid("//");
}

static void test_whole_level_wildcards_are_valid(void **state)
{
    (void)state;
    assert_valid("#");
    assert_valid("+");
    assert_valid("a/#");
    assert_valid("a/+");
    assert_valid("+/b");
    assert_valid("+/+/+");
    assert_valid("+/#");
    assert_valid("/#");
    assert_valid("/+");
    assert_valid("a/+/b/#");
    assert_valid("$SYS/#");
}

static void test_empty_filter_is_invalid(void **state)
{
    (void)state;
    assert_invalid("", "empty filter");
    assert_invalid(NULL, "empty filter");
}

static void test_hash_not_last_level_is_invalid(void **state)
{
    (void)state;
    assert_invalid("#/a", "'#' must be the whole last level");
    assert_invalid("a/#/b", "'#' must be the whole last level");
    assert_invalid("#/", "'#' must be the whole last level");
    assert_invalid("##", "'#' must be the whole last level");
}

static void test_hash_sharing_a_level_is_invalid(void **state)
{
    (void)state;
    assert_invalid("a#", "'#' must be the whole last level");
    assert_invalid("a/b#", "'#' must be the whole last level");
    assert_invalid("a/#b", "'#' must be the whole last level");
    assert_invalid("+#", "'+' must be a whole level");
}

static void test_plus_sharing_a_level_is_invalid(void **state)
{
    (void)state;
    assert_invalid("a+", "'+' must be a whole level");
    assert_invalid("+a", "'+' must be a whole level");
    assert_invalid("a/b+/c", "'+' must be a whole level");
    assert_invalid("a/+b", "'+' must be a whole level");
    assert_invalid("++", "'+' must be a whole level");
}

static void test_filter_length_limit_is_65535_bytes(void **state)
{
    char *f = malloc(65537);

    (void)state;
    assert_non_null(f);
    memset(f, 'a', 65535);
    f[65535] = '\0';
    assert_valid(f);
    f[65535] = 'a';
    f[65536] = '\0';
    assert_invalid(f, "longer than 65535 bytes");
    free(f);
}

static void test_reason_pointer_may_be_null(void **state)
{
    (void)state;
    assert_int_equal(topic_filter_valid("a/#", NULL), 0);
    assert_int_equal(topic_filter_valid("a/#/b", NULL), -1);
}

/* ---- topic_match ------------------------------------------------------ */

static void test_exact_filter_matches_identical_topic_only(void **state)
{
    (void)state;
    assert_true(topic_match("a/b", "a/b"));
    assert_false(topic_match("a/b", "a/b/c"));
    assert_false(topic_match("a/b", "a"));
    assert_false(topic_match("a/b", "a/bc"));
    assert_false(topic_match("a/b", "a/b/"));
    assert_false(topic_match("a/b", "/a/b"));
    assert_false(topic_match("a/b", "A/b"));
}

static void test_exact_filter_with_empty_levels(void **state)
{
    (void)state;
    assert_true(topic_match("/", "/"));
    assert_true(topic_match("a//b", "a//b"));
    assert_false(topic_match("a//b", "a/b"));
    assert_false(topic_match("/a", "a"));
}

static void test_plus_matches_exactly_one_level(void **state)
{
    (void)state;
    assert_true(topic_match("a/+", "a/b"));
    assert_true(topic_match("a/+/c", "a/b/c"));
    assert_true(topic_match("+", "a"));
    assert_true(topic_match("+/+", "a/b"));
    assert_false(topic_match("a/+", "a/b/c"));
    assert_false(topic_match("a/+", "a"));
    assert_false(topic_match("+", "a/b"));
    assert_false(topic_match("a/+/c", "a/b/d"));
}

static void test_plus_matches_an_empty_level(void **state)
{
    (void)state;
    assert_true(topic_match("a/+", "a/"));
    assert_true(topic_match("a/+/b", "a//b"));
    assert_true(topic_match("+/a", "/a"));
    assert_true(topic_match("+/+", "/"));
}

static void test_hash_matches_everything_below(void **state)
{
    (void)state;
    assert_true(topic_match("#", "a"));
    assert_true(topic_match("#", "a/b/c"));
    assert_true(topic_match("#", "/"));
    assert_true(topic_match("a/#", "a/b"));
    assert_true(topic_match("a/#", "a/b/c/d"));
    assert_true(topic_match("a/#", "a/"));
    assert_true(topic_match("a/+/#", "a/b/c"));
    assert_false(topic_match("a/#", "b/a"));
    assert_false(topic_match("a/#", "ab"));
    assert_false(topic_match("a/#", "ab/c"));
}

static void test_hash_matches_the_parent_level(void **state)
{
    (void)state;
    assert_true(topic_match("a/#", "a"));
    assert_true(topic_match("a/b/#", "a/b"));
    assert_true(topic_match("a/+/#", "a/b"));
    assert_false(topic_match("a/b/#", "a"));
    assert_false(topic_match("a/+/#", "a"));
}

static void test_dollar_topic_not_matched_by_leading_wildcard(void **state)
{
    (void)state;
    assert_false(topic_match("#", "$SYS"));
    assert_false(topic_match("#", "$SYS/brokers"));
    assert_false(topic_match("+/brokers", "$SYS/brokers"));
    assert_false(topic_match("+", "$SYS"));
    assert_false(topic_match("+/#", "$SYS/a/b"));
    assert_false(topic_match("#", "$share/g/t"));
}

static void test_dollar_topic_matched_by_explicit_first_level(void **state)
{
    (void)state;
    assert_true(topic_match("$SYS/#", "$SYS/brokers/x"));
    assert_true(topic_match("$SYS/#", "$SYS"));
    assert_true(topic_match("$SYS/+", "$SYS/brokers"));
    assert_true(topic_match("$SYS/brokers", "$SYS/brokers"));
    assert_false(topic_match("$SYS/#", "SYS/brokers"));
}

static void test_dollar_in_later_level_is_ordinary(void **state)
{
    (void)state;
    assert_true(topic_match("#", "a/$b"));
    assert_true(topic_match("+/$b", "a/$b"));
    assert_true(topic_match("a/+", "a/$b"));
}

static void test_invalid_filter_matches_nothing(void **state)
{
    (void)state;
    assert_false(topic_match("a/#/b", "a/x/b"));
    assert_false(topic_match("a+", "a+"));
    assert_false(topic_match("a#", "a#"));
    assert_false(topic_match("", ""));
    assert_false(topic_match("", "a"));
    assert_false(topic_match(NULL, "a"));
}

static void test_invalid_topic_name_matches_nothing(void **state)
{
    (void)state;
    assert_false(topic_match("#", ""));
    assert_false(topic_match("#", NULL));
    assert_false(topic_match("#", "a/+"));
    assert_false(topic_match("+", "+"));
    assert_false(topic_match("a/+", "a/+"));
    assert_false(topic_match("a/#", "a/#"));
}

/* ---- topic_covers ------------------------------------------------------ */

static void covered(const char *filter, const char *sub)
{
    if (!topic_covers(filter, sub))
        fail_msg("'%s' should cover '%s'", filter, sub);
}

static void not_covered(const char *filter, const char *sub)
{
    /* Either may be NULL: printf's %s of NULL is undefined. */
    if (topic_covers(filter, sub))
        fail_msg("'%s' should not cover '%s'", filter ? filter : "(null)", sub ? sub : "(null)");
}

static void test_hash_covers_everything_but_dollar_filters(void **state)
{
    (void)state;
    covered("#", "#");
    covered("#", "a/#");
    covered("#", "+");
    covered("#", "+/+/#");
    covered("#", "a/+/b");
    not_covered("#", "$SYS/#");
    not_covered("#", "$SYS/+");
    not_covered("#", "$share/g/#");
    covered("$SYS/#", "$SYS/#");
    covered("$SYS/#", "$SYS/+/x");
    covered("$SYS/#", "$SYS");
    not_covered("$SYS/#", "#");
    not_covered("$SYS/#", "+/#");
}

static void test_subfilter_hash_needs_hash_at_its_level(void **state)
{
    (void)state;
    covered("a/#", "a/#");
    covered("a/#", "a/b/#");
    covered("a/#", "a/+/#");
    not_covered("a/b/#", "a/#");
    /* "a/#" also matches "a", which "a/+/#" does not. */
    not_covered("a/+/#", "a/#");
    not_covered("a/+", "a/#");
    not_covered("a/+/+", "a/+/#");
    not_covered("+", "#");
    not_covered("a", "a/#");
}

static void test_whole_hash_and_plus_hash_are_the_same_set(void **state)
{
    (void)state;
    /* A topic name is never empty: "#" has no parent of its own to match. */
    covered("+/#", "#");
    covered("#", "+/#");
    /* The same holds below an empty first level: "" is no topic name. */
    covered("/+/#", "/#");
    covered("/#", "/+/#");
    not_covered("a/+/#", "a/#");
    covered("/+/#", "//#");
    not_covered("/+/+/#", "//#");
    not_covered("+/+/#", "#");
    not_covered("a/+/#", "a/#");
}

static void test_plus_covers_one_level_of_anything_but_hash(void **state)
{
    (void)state;
    covered("+", "+");
    covered("+", "a");
    covered("a/+", "a/+");
    covered("a/+", "a/b");
    covered("+/+", "a/+");
    covered("+/b", "+/b");
    not_covered("a/+", "a/+/c");
    not_covered("a/+", "+/b");
    not_covered("a/b", "a/+");
    not_covered("+", "$SYS");
    covered("$SYS/+", "$SYS/+");
    not_covered("+/+", "$SYS/+");
}

static void test_hash_covers_the_parent_level_filter(void **state)
{
    (void)state;
    covered("a/#", "a");
    covered("a/+/#", "a/+");
    covered("a/+/#", "a/b");
    covered("+/#", "+");
    not_covered("a/b/#", "a/+");
}

static void test_invalid_filter_covers_and_is_covered_by_nothing(void **state)
{
    (void)state;
    not_covered("#", "a/#/b");
    not_covered("#", "a+");
    not_covered("#", "");
    not_covered("#", NULL);
    not_covered("a#", "a");
    not_covered(NULL, "a");
}

static void test_overlaps_is_what_a_deny_rule_needs(void **state)
{
    (void)state;
    /* Subscriptions that receive "secret/..." messages without falling
     * within "secret/#". */
    assert_true(topic_overlaps("secret/#", "+/#"));
    assert_true(topic_overlaps("secret/#", "#"));
    assert_true(topic_overlaps("secret/#", "+/x"));
    assert_false(topic_covers("secret/#", "+/#"));
    assert_true(topic_overlaps("secret/#", "secret"));
    assert_true(topic_overlaps("secret", "secret/#"));
    assert_true(topic_overlaps("a/+/c", "+/b/+"));
    assert_false(topic_overlaps("secret/#", "public/#"));
    assert_false(topic_overlaps("a/+", "a/b/c"));
    assert_false(topic_overlaps("$SYS/#", "#"));
    assert_false(topic_overlaps("#", "$SYS/x"));
    assert_true(topic_overlaps("$SYS/#", "$SYS/+"));
    /* One empty level is no topic name: "+" and "/#" share nothing. */
    assert_false(topic_overlaps("+", "/#"));
    assert_true(topic_overlaps("+/#", "/#"));
    assert_false(topic_overlaps("#", "a/#/b"));
    assert_false(topic_overlaps(NULL, "a"));
}

/* Every topic name a list of filters could tell apart: levels of the
 * filters' literals, "$x", the empty level, and "c", which no filter names,
 * up to one level deeper than the deepest filter. */
static const char *const filter_levels[] = {"a", "b", "", "$x", "+", "#"};
static const char *const topic_levels[] = {"a", "b", "", "$x", "c"};
#define NFILTER_LEVELS (sizeof filter_levels / sizeof filter_levels[0])
#define NTOPIC_LEVELS (sizeof topic_levels / sizeof topic_levels[0])
#define TEXT_MAX 32

/* All strings of 1 to `depth` levels from `levels`, joined by '/', that
 * are valid filters; returns how many (each TEXT_MAX bytes in `out`). */
static size_t all_filters(const char *const *levels, size_t nlevels, int depth, char *out)
{
    size_t count = 0;
    size_t combos = 1;
    for (int d = 1; d <= depth; d++) {
        combos *= nlevels;
        for (size_t c = 0; c < combos; c++) {
            char *s = out + count * TEXT_MAX;
            s[0] = '\0';
            for (size_t rest = c, i = 0; i < (size_t)d; i++, rest /= nlevels) {
                if (i > 0)
                    strcat(s, "/");
                strcat(s, levels[rest % nlevels]);
            }
            if (topic_filter_valid(s, NULL) == 0)
                count++;
        }
    }
    return count;
}

/* topic_covers and topic_overlaps against their definitions: `sub` is
 * covered by `filter` when every topic `sub` matches, `filter` matches; two
 * filters overlap when some topic matches both. */
static void test_covers_and_overlaps_agree_with_their_definitions(void **state)
{
    (void)state;
    enum { MAX_FILTERS = 6 + 36 + 216, MAX_TOPICS = 5 + 25 + 125 + 625 };
    char *filters = malloc(MAX_FILTERS * TEXT_MAX);
    char *topics = malloc(MAX_TOPICS * TEXT_MAX);
    assert_non_null(filters);
    assert_non_null(topics);
    size_t nf = all_filters(filter_levels, NFILTER_LEVELS, 3, filters);
    size_t nt = all_filters(topic_levels, NTOPIC_LEVELS, 4, topics);
    bool *matches = malloc(nf * nt);
    assert_non_null(matches);

    for (size_t f = 0; f < nf; f++)
        for (size_t t = 0; t < nt; t++) {
            const char *filter = filters + f * TEXT_MAX;
            const char *topic = topics + t * TEXT_MAX;
            matches[f * nt + t] = topic_match(filter, topic);
            /* A topic name, seen as a filter, is covered where it matches. */
            assert_int_equal(topic_covers(filter, topic), matches[f * nt + t]);
        }
    size_t pairs_covered = 0;
    size_t pairs_overlapping = 0;
    for (size_t f = 0; f < nf; f++)
        for (size_t g = 0; g < nf; g++) {
            bool subset = true;
            bool common = false;
            for (size_t t = 0; t < nt; t++) {
                subset = subset && (!matches[g * nt + t] || matches[f * nt + t]);
                common = common || (matches[g * nt + t] && matches[f * nt + t]);
            }
            const char *filter = filters + f * TEXT_MAX;
            const char *sub = filters + g * TEXT_MAX;
            if (topic_covers(filter, sub) != subset)
                fail_msg("topic_covers('%s', '%s') should be %s", filter, sub,
                         subset ? "true" : "false");
            if (topic_overlaps(filter, sub) != common)
                fail_msg("topic_overlaps('%s', '%s') should be %s", filter, sub,
                         common ? "true" : "false");
            pairs_covered += subset;
            pairs_overlapping += common;
        }
    /* The sets are large enough to say something: many pairs each way. */
    assert_true(nf > 150);
    assert_true(pairs_covered > 1000 && pairs_covered < nf * nf / 2);
    assert_true(pairs_overlapping > pairs_covered && pairs_overlapping < nf * nf);
    free(matches);
    free(topics);
    free(filters);
}

/* ---- topic_level_check and topic_filter_format --------------------------- */

static void level_refused(const char *value, size_t len, bool first, const char *reason)
{
    const char *why = NULL;
    assert_int_equal(topic_level_check(value, len, first, &why), -1);
    assert_string_equal(why, reason);
}

static void test_level_check_refuses_what_would_widen(void **state)
{
    (void)state;
    const char *why = "unchanged";
    assert_int_equal(topic_level_check("dev-42", 6, true, &why), 0);
    assert_null(why);
    assert_int_equal(topic_level_check("a b.c%s$", 8, false, NULL), 0);
    level_refused("", 0, false, "is empty");
    level_refused("+", 1, false, "contains '+'");
    level_refused("#", 1, false, "contains '#'");
    level_refused("a/b", 3, false, "contains '/'");
    level_refused("x+", 2, false, "contains '+'");
    level_refused("a\0b", 3, false, "contains a NUL byte");
    level_refused("$SYS", 4, true, "starts with '$' at the first level");
    assert_int_equal(topic_level_check("$SYS", 4, false, NULL), 0);
}

struct formatted {
    enum topic_format_status status;
    char out[64];
    size_t len;
    struct topic_format_error err;
};

/* Formats `tmpl` with the NULL-terminated string values that follow. */
static struct formatted format(const char *tmpl, ...)
{
    const char *values[8];
    size_t lens[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, tmpl);
    for (const char *v; (v = va_arg(ap, const char *)) != NULL && n < 8; n++) {
        values[n] = v;
        lens[n] = strlen(v);
    }
    va_end(ap);
    struct formatted r;
    memset(&r, 0, sizeof r);
    r.status = topic_filter_format(tmpl, values, lens, n, r.out, sizeof r.out, &r.len, &r.err);
    return r;
}

static void test_format_puts_each_value_in_one_level(void **state)
{
    (void)state;
    struct formatted r = format("clients/%s/#", "dev-1", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_OK);
    assert_string_equal(r.out, "clients/dev-1/#");
    assert_int_equal(r.len, 15);
    r = format("%s/%s/up", "tenant", "dev", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_OK);
    assert_string_equal(r.out, "tenant/dev/up");
    r = format("$SYS/brokers/%s", "$node", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_OK);
    assert_string_equal(r.out, "$SYS/brokers/$node");
    r = format("100%%/%s", "x", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_OK);
    assert_string_equal(r.out, "100%/x");
    r = format("a/+/#", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_OK);
    assert_string_equal(r.out, "a/+/#");
}

/* The attack: a client names itself "#" or "+" to make "its own" filter
 * cover every other client's topics. */
static void test_format_refuses_a_clientid_that_would_widen_the_rule(void **state)
{
    (void)state;
    /* Pasted in, "+" covers every client's topics, and so does "#" where
     * it lands last; exhook.topic_match would then allow them. */
    assert_true(topic_covers("clients/+/#", "clients/victim/secret"));
    assert_true(topic_covers("clients/#", "clients/victim/secret"));
    static const char *const attacks[][2] = {
        {"#", "contains '#'"},      {"+", "contains '+'"}, {"a/#", "contains '/'"},
        {"x/../y", "contains '/'"}, {"", "is empty"},      {"dev+", "contains '+'"},
    };
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        struct formatted r = format("clients/%s/#", attacks[i][0], NULL);
        assert_int_equal(r.status, TOPIC_FORMAT_BAD_VALUE);
        assert_int_equal(r.err.value, 0);
        assert_string_equal(r.err.why, attacks[i][1]);
        r = format("clients/%s", attacks[i][0], NULL);
        assert_int_equal(r.status, TOPIC_FORMAT_BAD_VALUE);
    }
    struct formatted r = format("%s/status", "$SYS", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_BAD_VALUE);
    assert_string_equal(r.err.why, "starts with '$' at the first level");
    r = format("t/%s/%s", "ok", "#", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_BAD_VALUE);
    assert_int_equal(r.err.value, 1);
    const char *nul_value[] = {"a\0b"};
    size_t nul_len[] = {3};
    char out[16];
    size_t len;
    struct topic_format_error err;
    assert_int_equal(
        topic_filter_format("c/%s", nul_value, nul_len, 1, out, sizeof out, &len, &err),
        TOPIC_FORMAT_BAD_VALUE);
    assert_string_equal(err.why, "contains a NUL byte");
}

static void test_format_template_errors(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"clients/x%s", "'%s' must be a whole level"},
        {"clients/%sx", "'%s' must be a whole level"},
        {"clients/%d", "'%' must start '%s' or '%%' (a percent sign)"},
        {"clients/%", "'%' must start '%s' or '%%' (a percent sign)"},
        {"a/%s/%s", "more '%s' than values"},
        {"a/#/%s", "'#' must be the whole last level"},
        {"a+/%s", "'+' must be a whole level"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct formatted r = format(bad[i][0], "v", NULL);
        assert_int_equal(r.status, TOPIC_FORMAT_BAD_TEMPLATE);
        assert_string_equal(r.err.why, bad[i][1]);
    }
    struct formatted r = format("a/%s", "v", "w", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_BAD_TEMPLATE);
    assert_string_equal(r.err.why, "fewer '%s' than values");
    r = format("", NULL);
    assert_int_equal(r.status, TOPIC_FORMAT_BAD_TEMPLATE);
    assert_string_equal(r.err.why, "empty filter");
}

static void test_format_refuses_a_filter_past_65535_bytes(void **state)
{
    (void)state;
    size_t n = TOPIC_MAX_LEN - 2;
    char *value = malloc(n + 1);
    char *out = malloc(TOPIC_MAX_LEN + 1);
    assert_non_null(value);
    assert_non_null(out);
    memset(value, 'v', n);
    value[n] = '\0';
    const char *values[] = {value};
    size_t lens[] = {n};
    size_t len;
    struct topic_format_error err;
    /* "a/" and the value: 65535 bytes, the most MQTT allows. */
    assert_int_equal(
        topic_filter_format("a/%s", values, lens, 1, out, TOPIC_MAX_LEN + 1, &len, &err),
        TOPIC_FORMAT_OK);
    assert_int_equal(len, TOPIC_MAX_LEN);
    assert_int_equal(
        topic_filter_format("ab/%s", values, lens, 1, out, TOPIC_MAX_LEN + 1, &len, &err),
        TOPIC_FORMAT_TOO_LONG);
    assert_string_equal(err.why, "longer than 65535 bytes");
    /* A buffer smaller than the filter is not overrun either. */
    assert_int_equal(topic_filter_format("a/%s", values, lens, 1, out, 100, &len, &err),
                     TOPIC_FORMAT_TOO_LONG);
    free(out);
    free(value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_filters_are_valid),
        cmocka_unit_test(test_empty_levels_are_valid),
        cmocka_unit_test(test_whole_level_wildcards_are_valid),
        cmocka_unit_test(test_empty_filter_is_invalid),
        cmocka_unit_test(test_hash_not_last_level_is_invalid),
        cmocka_unit_test(test_hash_sharing_a_level_is_invalid),
        cmocka_unit_test(test_plus_sharing_a_level_is_invalid),
        cmocka_unit_test(test_filter_length_limit_is_65535_bytes),
        cmocka_unit_test(test_reason_pointer_may_be_null),
        cmocka_unit_test(test_exact_filter_matches_identical_topic_only),
        cmocka_unit_test(test_exact_filter_with_empty_levels),
        cmocka_unit_test(test_plus_matches_exactly_one_level),
        cmocka_unit_test(test_plus_matches_an_empty_level),
        cmocka_unit_test(test_hash_matches_everything_below),
        cmocka_unit_test(test_hash_matches_the_parent_level),
        cmocka_unit_test(test_dollar_topic_not_matched_by_leading_wildcard),
        cmocka_unit_test(test_dollar_topic_matched_by_explicit_first_level),
        cmocka_unit_test(test_dollar_in_later_level_is_ordinary),
        cmocka_unit_test(test_invalid_filter_matches_nothing),
        cmocka_unit_test(test_invalid_topic_name_matches_nothing),
        cmocka_unit_test(test_hash_covers_everything_but_dollar_filters),
        cmocka_unit_test(test_subfilter_hash_needs_hash_at_its_level),
        cmocka_unit_test(test_whole_hash_and_plus_hash_are_the_same_set),
        cmocka_unit_test(test_plus_covers_one_level_of_anything_but_hash),
        cmocka_unit_test(test_hash_covers_the_parent_level_filter),
        cmocka_unit_test(test_invalid_filter_covers_and_is_covered_by_nothing),
        cmocka_unit_test(test_covers_and_overlaps_agree_with_their_definitions),
        cmocka_unit_test(test_overlaps_is_what_a_deny_rule_needs),
        cmocka_unit_test(test_level_check_refuses_what_would_widen),
        cmocka_unit_test(test_format_puts_each_value_in_one_level),
        cmocka_unit_test(test_format_refuses_a_clientid_that_would_widen_the_rule),
        cmocka_unit_test(test_format_template_errors),
        cmocka_unit_test(test_format_refuses_a_filter_past_65535_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
