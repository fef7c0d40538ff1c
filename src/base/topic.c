#include "topic.h"

#include <stddef.h>
#include <string.h>

int topic_filter_valid(const char *filter, const char **why)
{
    const char *reason = NULL;

    if (filter == NULL || filter[0] == '\0') {
        reason = "empty filter";
        goto out;
    }
    /* strnlen keeps a huge string from being scanned to its end just to be rejected. */
    if (strnlen(filter, TOPIC_MAX_LEN + 1) > TOPIC_MAX_LEN) {
        reason = "longer than 65535 bytes";
        goto out;
    }
    for (const char *p = filter; *p != '\0'; p++) {
        bool level_start = p == filter || p[-1] == '/';
        bool level_end = p[1] == '\0' || p[1] == '/';
        if (*p == '#') {
            if (!level_start || p[1] != '\0') {
                reason = "'#' must be the whole last level";
                goto out;
            }
        } else if (*p == '+') {
            if (!level_start || !level_end) {
                reason = "'+' must be a whole level";
                goto out;
            }
        }
    }
out:
    if (why != NULL)
        *why = reason;
    return reason == NULL ? 0 : -1;
}

bool topic_match(const char *filter, const char *topic)
{
    if (topic_filter_valid(filter, NULL) != 0)
        return false;
    /* A topic name is never empty and never holds wildcards; such a "topic"
     * cannot have been published, so it matches nothing rather than being
     * compared character by character against wildcard filters. */
    if (topic == NULL || topic[0] == '\0' || strpbrk(topic, "+#") != NULL)
        return false;
    return topic_match_checked(filter, topic);
}

bool topic_match_checked(const char *filter, const char *topic)
{
    return topic_covers_checked(filter, topic);
}

bool topic_covers(const char *filter, const char *sub)
{
    if (topic_filter_valid(filter, NULL) != 0 || topic_filter_valid(sub, NULL) != 0)
        return false;
    return topic_covers_checked(filter, sub);
}

/* Walks both filters level by level. A topic name is a filter without
 * wildcards, and for one the question "is it covered" is "does it match":
 * the same walk serves both. */
bool topic_covers_checked(const char *filter, const char *sub)
{
    /* $SYS and friends are server-internal: MQTT keeps them out of reach of
     * catch-all filters, so only a filter naming the '$' level matches them.
     * `sub` starting with '$' starts with such a level, not a wildcard. */
    if (sub[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    const char *f = filter;
    const char *s = sub;
    for (;;) {
        /* The filters are valid, so '#' here is the whole last level. */
        if (f[0] == '#')
            return true;
        /* "x/#" also matches its parent "x", which only '#' at the same
         * level matches too; unless the parent is the empty text ("#" or
         * "/#"), which is no topic name: then "+/#" there is the same set. */
        if (s[0] == '#')
            return s - sub <= 1 && strcmp(f, "+/#") == 0;
        size_t flen = strcspn(f, "/");
        size_t slen = strcspn(s, "/");
        /* '+' covers any one level, '+' included; a literal level covers
         * only the same literal ('+' in `sub` is then a different text). */
        bool plus = flen == 1 && f[0] == '+';
        if (!plus && (flen != slen || memcmp(f, s, flen) != 0))
            return false;
        f += flen;
        s += slen;
        if (*f == '\0')
            return *s == '\0';
        if (*s == '\0')
            /* "a/#" also matches its parent "a". */
            return strcmp(f, "/#") == 0;
        f++; /* both at '/': step into the next level */
        s++;
    }
}

bool topic_overlaps(const char *a, const char *b)
{
    if (topic_filter_valid(a, NULL) != 0 || topic_filter_valid(b, NULL) != 0)
        return false;
    return topic_overlaps_checked(a, b);
}

/* Builds, in effect, a topic both match, level by level: a literal where
 * either has one, any non-empty text where both have '+'. */
bool topic_overlaps_checked(const char *a, const char *b)
{
    /* A '$' first level is matched by no wildcard first level. */
    if ((a[0] == '$' && (b[0] == '+' || b[0] == '#')) ||
        (b[0] == '$' && (a[0] == '+' || a[0] == '#')))
        return false;

    const char *x = a;
    const char *y = b;
    for (;;) {
        /* '#' matches whatever the other has from here on, at least one
         * level, so the shared topic is never empty. */
        if (x[0] == '#' || y[0] == '#')
            return true;
        size_t xlen = strcspn(x, "/");
        size_t ylen = strcspn(y, "/");
        bool xplus = xlen == 1 && x[0] == '+';
        bool yplus = ylen == 1 && y[0] == '+';
        if (!xplus && !yplus && (xlen != ylen || memcmp(x, y, xlen) != 0))
            return false;
        /* The shared topic would be one empty level, "", which no topic
         * name is: it can only be the parent that "/#" matches. */
        bool only_empty = x == a && (xlen == 0 || ylen == 0);
        x += xlen;
        y += ylen;
        if (*x == '\0' && *y == '\0')
            return true;
        if (*x == '\0')
            /* "a" and "a/#": "a/#" also matches its parent. */
            return strcmp(y, "/#") == 0 && !only_empty;
        if (*y == '\0')
            return strcmp(x, "/#") == 0 && !only_empty;
        x++;
        y++;
    }
}

int topic_level_check(const char *value, size_t len, bool first_level, const char **why)
{
    const char *reason = NULL;

    if (len == 0)
        reason = "is empty";
    else if (memchr(value, '\0', len))
        reason = "contains a NUL byte";
    else if (memchr(value, '/', len))
        reason = "contains '/'";
    else if (memchr(value, '+', len))
        reason = "contains '+'";
    else if (memchr(value, '#', len))
        reason = "contains '#'";
    else if (first_level && value[0] == '$')
        /* It would turn the filter into one for the server's own topics. */
        reason = "starts with '$' at the first level";
    if (why != NULL)
        *why = reason;
    return reason == NULL ? 0 : -1;
}

/* Appends `len` bytes to out[*pos], refusing to grow the filter past
 * TOPIC_MAX_LEN or past the buffer. */
static bool append(char *out, size_t cap, size_t *pos, const char *src, size_t len)
{
    size_t room = cap - 1 < TOPIC_MAX_LEN ? cap - 1 : TOPIC_MAX_LEN;
    if (len > room - *pos)
        return false;
    memcpy(out + *pos, src, len);
    *pos += len;
    return true;
}

enum topic_format_status topic_filter_format(const char *tmpl, const char *const *values,
                                             const size_t *lens, size_t nvalues, char *out,
                                             size_t cap, size_t *out_len,
                                             struct topic_format_error *err)
{
    size_t pos = 0;
    size_t used = 0;

    err->value = 0;
    err->why = NULL;
    for (const char *p = tmpl; *p != '\0';) {
        if (p[0] != '%') {
            size_t n = strcspn(p, "%");
            if (!append(out, cap, &pos, p, n))
                goto too_long;
            p += n;
        } else if (p[1] == '%') {
            if (!append(out, cap, &pos, "%", 1))
                goto too_long;
            p += 2;
        } else if (p[1] == 's') {
            bool level_start = p == tmpl || p[-1] == '/';
            if (!level_start || (p[2] != '\0' && p[2] != '/')) {
                err->why = "'%s' must be a whole level";
                return TOPIC_FORMAT_BAD_TEMPLATE;
            }
            if (used == nvalues) {
                err->why = "more '%s' than values";
                return TOPIC_FORMAT_BAD_TEMPLATE;
            }
            if (topic_level_check(values[used], lens[used], p == tmpl, &err->why) != 0) {
                err->value = used;
                return TOPIC_FORMAT_BAD_VALUE;
            }
            if (!append(out, cap, &pos, values[used], lens[used]))
                goto too_long;
            used++;
            p += 2;
        } else {
            err->why = "'%' must start '%s' or '%%' (a percent sign)";
            return TOPIC_FORMAT_BAD_TEMPLATE;
        }
    }
    if (used < nvalues) {
        err->why = "fewer '%s' than values";
        return TOPIC_FORMAT_BAD_TEMPLATE;
    }
    out[pos] = '\0';
    *out_len = pos;
    /* The values hold no wildcard, no '/' and are never empty: a filter
     * that is still invalid is the template's doing. */
    if (topic_filter_valid(out, &err->why) != 0)
        return TOPIC_FORMAT_BAD_TEMPLATE;
    return TOPIC_FORMAT_OK;

too_long:
    err->why = "longer than 65535 bytes";
    return TOPIC_FORMAT_TOO_LONG;
}
