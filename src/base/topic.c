#include "topic.h"

#include <stddef.h>
#include <string.h>

/* MQTT caps every string, topic filters included, at a 16-bit length. */
#define TOPIC_MAX_LEN 65535

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
    /* $SYS and friends are server-internal: MQTT keeps them out of reach of
     * catch-all filters, so only a filter naming the '$' level matches them. */
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;

    const char *f = filter;
    const char *t = topic;
    for (;;) {
        /* The filter is valid, so '#' here is the whole last level. */
        if (f[0] == '#')
            return true;
        size_t flen = strcspn(f, "/");
        size_t tlen = strcspn(t, "/");
        bool plus = flen == 1 && f[0] == '+';
        if (!plus && (flen != tlen || memcmp(f, t, flen) != 0))
            return false;
        f += flen;
        t += tlen;
        if (*f == '\0')
            return *t == '\0';
        if (*t == '\0')
            /* "a/#" also matches its parent "a". */
            return strcmp(f, "/#") == 0;
        f++; /* both at '/': step into the next level */
        t++;
    }
}
