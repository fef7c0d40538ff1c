#include "lua_topic.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "topic.h"

/* The longest piece of a script's value quoted back in a message. */
#define QUOTED_MAX 60

/* Argument `arg` as a C string, or NULL if it holds a NUL byte (C would see
 * only the part before it). */
static const char *check_c_string(lua_State *L, int arg, size_t *len)
{
    const char *s = luaL_checklstring(L, arg, len);
    return strlen(s) == *len ? s : NULL;
}

/* Argument `arg` as a valid filter, or an error naming it. */
static const char *check_filter(lua_State *L, int arg, const char *fname)
{
    size_t len;
    const char *filter = check_c_string(L, arg, &len);
    const char *why;
    if (filter == NULL)
        luaL_error(L, "exhook.%s: argument %d contains a NUL byte", fname, arg);
    else if (topic_filter_valid(filter, &why) != 0)
        luaL_error(L, "exhook.%s: invalid filter '%s': %s", fname, filter, why);
    return filter;
}

static int api_topic_match(lua_State *L)
{
    size_t slen;
    const char *filter = check_filter(L, 1, "topic_match");
    const char *second = check_c_string(L, 2, &slen);

    if (second == NULL)
        lua_pushboolean(L, 0);
    else if (strpbrk(second, "+#") != NULL)
        lua_pushboolean(L, topic_covers(filter, second));
    else
        lua_pushboolean(L, topic_match(filter, second));
    return 1;
}

/* Both arguments must be valid: false for an invalid one would let a deny
 * rule pass it. */
static int api_topic_overlaps(lua_State *L)
{
    const char *a = check_filter(L, 1, "topic_overlaps");
    const char *b = check_filter(L, 2, "topic_overlaps");
    lua_pushboolean(L, topic_overlaps_checked(a, b));
    return 1;
}

/* nil and "exhook.topic_filter: argument N ('value') why". The value is
 * untrusted text, possibly long: quoted, cut short. */
static int push_value_error(lua_State *L, int arg, const char *value, size_t len, const char *why)
{
    char msg[QUOTED_MAX + 160];
    snprintf(msg, sizeof msg, "exhook.topic_filter: argument %d ('%.*s%s') %s", arg,
             (int)(len < QUOTED_MAX ? len : QUOTED_MAX), value, len > QUOTED_MAX ? "..." : "", why);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int api_topic_filter(lua_State *L)
{
    size_t tlen;
    const char *tmpl = check_c_string(L, 1, &tlen);
    if (tmpl == NULL)
        return luaL_error(L, "exhook.topic_filter: the template contains a NUL byte");
    int nvalues = lua_gettop(L) - 1;
    const char **values = lua_newuserdatauv(L, (size_t)nvalues * sizeof *values, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)nvalues * sizeof *lens, 0);
    /* Room for the template and every value: no filter is longer. */
    size_t cap = tlen + 1;
    for (int i = 0; i < nvalues; i++) {
        values[i] = luaL_checklstring(L, i + 2, &lens[i]);
        cap += lens[i] < TOPIC_MAX_LEN ? lens[i] : TOPIC_MAX_LEN + 1;
    }
    if (cap > TOPIC_MAX_LEN + 1)
        cap = TOPIC_MAX_LEN + 1;

    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, cap);
    size_t out_len;
    struct topic_format_error err;
    switch (topic_filter_format(tmpl, values, lens, (size_t)nvalues, out, cap, &out_len, &err)) {
    case TOPIC_FORMAT_OK:
        luaL_pushresultsize(&b, out_len);
        return 1;
    case TOPIC_FORMAT_BAD_VALUE:
        return push_value_error(L, (int)err.value + 2, values[err.value], lens[err.value], err.why);
    case TOPIC_FORMAT_TOO_LONG:
        lua_pushnil(L);
        lua_pushfstring(L, "exhook.topic_filter: the filter would be %s", err.why);
        return 2;
    case TOPIC_FORMAT_BAD_TEMPLATE:
        break;
    }
    return luaL_error(L, "exhook.topic_filter: template '%s': %s", tmpl, err.why);
}

void lua_topic_open(lua_State *L, struct script_engine *e)
{
    (void)e;
    lua_pushcfunction(L, api_topic_match);
    lua_setfield(L, -2, "topic_match");
    lua_pushcfunction(L, api_topic_overlaps);
    lua_setfield(L, -2, "topic_overlaps");
    lua_pushcfunction(L, api_topic_filter);
    lua_setfield(L, -2, "topic_filter");
}
