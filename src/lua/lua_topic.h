#ifndef EXHOOKD_LUA_TOPIC_H
#define EXHOOKD_LUA_TOPIC_H

/* exhook.topic_match, topic_overlaps and topic_filter: MQTT topic filters for
 * scripts, above all for authorization rules (topic.h has the logic).
 *
 *   exhook.topic_match(filter, topic_or_filter) -> boolean
 *
 * With a topic name (no '+' or '#'): whether `filter` matches it. With a
 * filter: whether `filter` covers it, i.e. matches every topic it matches
 * (a subscription to it receives nothing `filter` would not). The two agree
 * where both apply: a topic name is the filter that matches only itself.
 * `filter` must be valid (an error otherwise: it is the script's own rule);
 * a second argument that is no valid topic or filter, or holds a NUL byte,
 * gives false (it is usually the client's, and covers nothing).
 *
 *   exhook.topic_overlaps(a, b) -> boolean
 *
 * Whether some topic matches both filters (or topics): what a deny rule
 * asks, since "+/#" receives "secret/..." messages without being covered
 * by "secret/#". Both must be valid: an error otherwise (false would let a
 * deny rule pass).
 *
 *   exhook.topic_filter(template, ...) -> filter | nil, err
 *
 * Builds a filter from a template in which each "%s" is a whole level,
 * replaced by the next argument as one literal level ("%%" is a '%'). An
 * argument that is empty, contains '/', '+', '#' or NUL, or, at the first
 * level, starts with '$', gives nil and a message saying which and why: a
 * clientid of "#" cannot widen "clients/%s/#". A template at fault (a "%s"
 * that is not a whole level, too many or too few arguments) is an error. */

#include <lua.h>

struct script_engine;

/* Sets exhook.topic_match, topic_overlaps and topic_filter in the table at
 * the top of the stack. */
void lua_topic_open(lua_State *L, struct script_engine *e);

#endif
