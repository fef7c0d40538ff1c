/* The values of etc/exhook.ini: durations, sizes, booleans, the listen
 * address, Lua module names and topic filter lists, each parsed and checked on
 * its own. config.c decides which key takes which kind of value and where the
 * result goes; nothing here knows about keys beyond naming them in errors. */

#include "config_values.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "topic.h"

#define MAX_DURATION_MS (60u * 60u * 1000u)
#define MAX_SIZE ((uint64_t)64 * 1024 * 1024 * 1024)

/* ---- small helpers ---------------------------------------------------- */

int cfgv_fail(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

int cfgv_parse_uint(const char *text, uint64_t max, uint64_t *out, const char **rest)
{
    uint64_t n = 0;
    const char *p = text;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > max)
            n = max + 1;
    }
    *out = n;
    if (rest != NULL)
        *rest = p;
    else if (*p != '\0')
        return -1;
    return 0;
}

/* ---- lists ------------------------------------------------------------ */

void cfg_filters_free(struct cfg_filters *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Splits "a, b ,c" into trimmed copies. An empty list or element is an error:
 * it is almost always a stray comma or a value cut short by a comment. */
static int list_split(const char *key, const char *value, struct cfg_filters *out, char *msg,
                      size_t msglen)
{
    struct cfg_filters list = {0};
    size_t slots = 1;
    const char *p = value;

    if (*value == '\0')
        return cfgv_fail(msg, msglen, "%s: empty list", key);
    for (const char *c = value; *c != '\0'; c++)
        slots += *c == ',';
    list.items = calloc(slots, sizeof *list.items);
    if (list.items == NULL)
        return cfgv_fail(msg, msglen, "out of memory");
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *s = p;
        const char *e = end;
        while (s < e && cfgv_is_space(*s))
            s++;
        while (e > s && cfgv_is_space(e[-1]))
            e--;
        if (s == e) {
            cfgv_fail(msg, msglen, "%s: empty element in list '%s'", key, value);
            goto error;
        }
        list.items[list.count] = strndup(s, (size_t)(e - s));
        if (list.items[list.count] == NULL) {
            cfgv_fail(msg, msglen, "out of memory");
            goto error;
        }
        list.count++;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *out = list;
    return 0;
error:
    cfg_filters_free(&list);
    return -1;
}

/* NULL if `name` can be handed to the module loader, else why not. Dots map
 * to subfolders as in Lua's require, so they must separate real names:
 * ".x", "x." or "x..y" would turn into odd or absolute paths. */
static const char *module_name_problem(const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return "allowed characters: letters, digits, '_', '.', '-'";
    }
    if (name[0] == '.' || name[strlen(name) - 1] == '.' || strstr(name, "..") != NULL)
        return "dots must separate non-empty names";
    return NULL;
}

int cfgv_parse_module_list(const char *key, const char *value, struct cfg_filters *out, char *msg,
                           size_t msglen)
{
    struct cfg_filters list;

    if (list_split(key, value, &list, msg, msglen) != 0)
        return -1;
    for (size_t i = 0; i < list.count; i++) {
        const char *why = module_name_problem(list.items[i]);
        if (why != NULL) {
            cfgv_fail(msg, msglen, "%s: invalid module name '%s' (%s)", key, list.items[i], why);
            goto error;
        }
        /* Loading a module twice would run each of its handlers twice. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(list.items[i], list.items[j]) == 0) {
                cfgv_fail(msg, msglen, "%s: module '%s' listed twice", key, list.items[i]);
                goto error;
            }
        }
    }
    *out = list;
    return 0;
error:
    cfg_filters_free(&list);
    return -1;
}

int cfgv_parse_filter_list(const char *key, const char *value, struct cfg_filters *out, char *msg,
                           size_t msglen)
{
    struct cfg_filters list;

    if (list_split(key, value, &list, msg, msglen) != 0)
        return -1;
    for (size_t i = 0; i < list.count; i++) {
        const char *why = NULL;
        if (topic_filter_valid(list.items[i], &why) != 0) {
            cfgv_fail(msg, msglen, "%s: invalid topic filter '%s': %s", key, list.items[i], why);
            cfg_filters_free(&list);
            return -1;
        }
    }
    *out = list;
    return 0;
}

/* ---- scalars ---------------------------------------------------------- */

/* host:port as gRPC takes it. IPv6 hosts need brackets, because otherwise the
 * last ':' of the address could not be told from the port separator. */
int cfgv_check_listen(const char *key, const char *value, char *msg, size_t msglen)
{
    const char *colon = strrchr(value, ':');
    uint64_t port;

    if (colon == NULL || colon == value)
        goto bad;
    size_t hostlen = (size_t)(colon - value);
    for (size_t i = 0; i < hostlen; i++) {
        if (cfgv_is_space(value[i]))
            goto bad;
    }
    if (value[0] == '[') {
        if (hostlen < 3 || value[hostlen - 1] != ']' || memchr(value + 1, '[', hostlen - 1) ||
            memchr(value + 1, ']', hostlen - 2))
            goto bad;
    } else if (memchr(value, ':', hostlen) || memchr(value, '[', hostlen) ||
               memchr(value, ']', hostlen)) {
        goto bad;
    }
    if (cfgv_parse_uint(colon + 1, 65535, &port, NULL) != 0)
        goto bad;
    if (port < 1 || port > 65535)
        return cfgv_fail(msg, msglen, "%s: port must be 1..65535, got '%s'", key, value);
    return 0;
bad:
    return cfgv_fail(msg, msglen, "%s: expected host:port, got '%s'", key, value);
}

int cfgv_parse_duration(const char *text, bool allow_zero, unsigned *out_ms)
{
    uint64_t n;
    uint64_t unit;
    const char *suffix;

    if (text == NULL || out_ms == NULL)
        return -1;
    if (cfgv_parse_uint(text, MAX_DURATION_MS, &n, &suffix) != 0)
        return -1;
    if (*suffix == '\0' || strcmp(suffix, "ms") == 0)
        unit = 1;
    else if (strcmp(suffix, "s") == 0)
        unit = 1000;
    else if (strcmp(suffix, "m") == 0)
        unit = 60 * 1000;
    else
        return -1;
    /* n is at most MAX_DURATION_MS + 1, so this cannot overflow 64 bits. */
    n *= unit;
    if ((n == 0 && !allow_zero) || n > MAX_DURATION_MS)
        return -1;
    *out_ms = (unsigned)n;
    return 0;
}

int cfg_parse_duration_ms(const char *text, unsigned *out_ms)
{
    return cfgv_parse_duration(text, false, out_ms);
}

int cfg_parse_size(const char *text, size_t *out_bytes)
{
    uint64_t n;
    uint64_t unit;
    const char *suffix;

    if (text == NULL || out_bytes == NULL)
        return -1;
    if (cfgv_parse_uint(text, MAX_SIZE, &n, &suffix) != 0)
        return -1;
    /* "K", "KB", "k", "kb", "kB": a letter for the power of 1024, then an optional B. */
    switch (suffix[0]) {
    case '\0':
        unit = 1;
        break;
    case 'k':
    case 'K':
        unit = 1024;
        break;
    case 'm':
    case 'M':
        unit = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        unit = 1024 * 1024 * 1024;
        break;
    default:
        return -1;
    }
    if (unit != 1) {
        suffix++;
        if (*suffix == 'b' || *suffix == 'B')
            suffix++;
        if (*suffix != '\0')
            return -1;
    }
    /* n is at most MAX_SIZE + 1; dividing first keeps n * unit from overflowing. */
    if (n > MAX_SIZE / unit)
        return -1;
#if SIZE_MAX < UINT64_MAX
    if (n * unit > SIZE_MAX)
        return -1;
#endif
    *out_bytes = (size_t)(n * unit);
    return 0;
}

/* Every boolean key takes the same spellings, so that a form that works for
 * one works for all. */
int cfgv_parse_bool(const char *key, const char *value, bool *out, char *msg, size_t msglen)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return cfgv_fail(msg, msglen, "%s: expected true or false, got '%s'", key, value);
}
