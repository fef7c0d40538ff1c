#ifndef EXHOOKD_TOPIC_H
#define EXHOOKD_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* MQTT caps every string, topic filters included, at a 16-bit length. */
#define TOPIC_MAX_LEN 65535

/* MQTT topic filters (MQTT 3.1.1 section 4.7 / MQTT 5 section 4.7).
 *
 * topic_filter_valid: 0 if `filter` is a valid subscription filter, otherwise
 * -1 with a short reason in *why (static string). A filter is invalid when it
 * is empty, contains a NUL-free "#" that is not the whole last level, contains
 * "+" that is not a whole level, or is longer than 65535 bytes.
 *
 * topic_match: true if topic name `topic` matches `filter`. "+" matches one
 * whole level (also an empty one), "#" the parent level and everything below
 * it ("a/#" matches "a"). A topic starting with '$' is never matched by a
 * filter whose first level is "+" or "#". An invalid filter matches nothing.
 * An exact filter without wildcards matches the identical topic only. */
int topic_filter_valid(const char *filter, const char **why);
bool topic_match(const char *filter, const char *topic);

/* topic_match for a filter already known valid and a topic name already
 * known to be non-empty and without wildcards: what the call path uses, with
 * filters checked at load time and the topic once per call. */
bool topic_match_checked(const char *filter, const char *topic);

/* topic_covers: true if filter `filter` covers filter `sub`, that is every
 * topic name `sub` matches is matched by `filter` too (a subscription to
 * `sub` receives nothing a subscription to `filter` would not). Decided
 * level by level:
 *   - "#" covers the rest, whatever it is (also "#" and "+");
 *   - "+" covers one level: a literal one or "+", never "#";
 *   - a literal level covers the same literal only;
 *   - "#" in `sub` is covered only by "#" at the same level; or also by
 *     "+/#" when what precedes it is empty ("#", "/#"): a topic name is
 *     never empty, so there "#" has no parent to match, and "#" is every
 *     topic but '$' ones, as "+/#" is;
 *   - "x/#" covers "x" (its parent level), as for matching;
 *   - `sub` starting with '$' is covered only by a filter whose first level
 *     is literal, never "+" or "#".
 * For a `sub` without wildcards this is topic_match. Either filter invalid:
 * false (an invalid filter is refused by the broker, and covers nothing). */
bool topic_covers(const char *filter, const char *sub);
/* topic_covers for two filters already known valid. */
bool topic_covers_checked(const char *filter, const char *sub);

/* topic_overlaps: true if some topic name matches both filters `a` and
 * `b` (a subscription to `b` may receive a message `a` matches). What a
 * deny rule needs: "+/#" does not fall within "secret/#" (topic_covers is
 * false) yet receives its messages. Symmetric. Either filter invalid:
 * false. */
bool topic_overlaps(const char *a, const char *b);
/* topic_overlaps for two filters already known valid. */
bool topic_overlaps_checked(const char *a, const char *b);

/* topic_level_check: 0 if `value` (`len` bytes) can be put in a filter as
 * one literal level, otherwise -1 with a short reason in *why (static
 * string). Refused: empty, or containing NUL, '/', '+' or '#' (each would
 * make it match more than itself), and, at the first level (`first_level`),
 * starting with '$' (it would name the server's own topics). */
int topic_level_check(const char *value, size_t len, bool first_level, const char **why);

/* topic_filter_format: builds a filter from a template in which each "%s"
 * is a whole level, replaced by the next of `nvalues` values (value i is
 * `lens[i]` bytes), each checked with topic_level_check; "%%" stands for one
 * '%'. Writes the filter, NUL-terminated, to `out` (`cap` bytes, at least
 * 1; room for the template plus the values, or TOPIC_MAX_LEN + 1, is
 * enough) and its length to *out_len.
 *   TOPIC_FORMAT_BAD_TEMPLATE: the template is at fault (a "%s" sharing its
 *     level, another '%' sequence, more or fewer "%s" than values, an invalid
 *     filter once filled); err->why says which.
 *   TOPIC_FORMAT_BAD_VALUE: value number err->value (from 0) was refused;
 *     err->why says why.
 *   TOPIC_FORMAT_TOO_LONG: the filter would pass TOPIC_MAX_LEN bytes. */
enum topic_format_status {
    TOPIC_FORMAT_OK,
    TOPIC_FORMAT_BAD_TEMPLATE,
    TOPIC_FORMAT_BAD_VALUE,
    TOPIC_FORMAT_TOO_LONG,
};
struct topic_format_error {
    size_t value;
    const char *why;
};
enum topic_format_status topic_filter_format(const char *tmpl, const char *const *values,
                                             const size_t *lens, size_t nvalues, char *out,
                                             size_t cap, size_t *out_len,
                                             struct topic_format_error *err);

#endif
