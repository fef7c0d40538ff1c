#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
