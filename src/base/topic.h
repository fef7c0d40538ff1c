#ifndef EXHOOKD_TOPIC_H
#define EXHOOKD_TOPIC_H

#include <stdbool.h>

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

#endif
