#ifndef EXHOOKD_CONFIG_VALUES_H
#define EXHOOKD_CONFIG_VALUES_H

/* Private to the config module (config.c and config_values.c): how the text of
 * one value in etc/exhook.ini is parsed and checked, apart from which key it
 * belongs to and where in struct config it goes. The checks that report an
 * error take the key, fill `msg` with "<key>: <what>" and return -1. */

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Formats a message and returns -1, so a setter can `return cfgv_fail(...)`. */
int cfgv_fail(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline bool cfgv_is_space(char c)
{
    return isspace((unsigned char)c) != 0;
}

/* Parses a plain decimal number (no sign, no spaces). Values above `max`
 * saturate to max + 1 so an overlong number cannot wrap into range. With
 * `rest`, the text after the digits is left there; without, there must be none. */
int cfgv_parse_uint(const char *text, uint64_t max, uint64_t *out, const char **rest);

/* A comma-separated list of Lua module names, each valid and none twice. */
int cfgv_parse_module_list(const char *key, const char *value, struct cfg_filters *out, char *msg,
                           size_t msglen);

/* A comma-separated list of valid MQTT topic filters. */
int cfgv_parse_filter_list(const char *key, const char *value, struct cfg_filters *out, char *msg,
                           size_t msglen);

/* Checks a listen address: host:port, IPv6 hosts in brackets, port 1..65535. */
int cfgv_check_listen(const char *key, const char *value, char *msg, size_t msglen);

/* cfg_parse_duration_ms, where `allow_zero` also accepts a zero duration
 * ("0", "0ms", "0s", "0m"). */
int cfgv_parse_duration(const char *text, bool allow_zero, unsigned *out_ms);

/* true, yes, on, 1 / false, no, off, 0, in any case, into *out. */
int cfgv_parse_bool(const char *key, const char *value, bool *out, char *msg, size_t msglen);

#endif
