#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"

static atomic_int current_level = LOG_INFO;
static atomic_int current_format = LOG_FORMAT_TEXT;
static _Thread_local char thread_name[32] = "";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&current_level);
}

int log_level_parse(const char *text, enum log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_set_format(enum log_format format)
{
    atomic_store(&current_format, (int)format);
}

int log_format_parse(const char *text, enum log_format *out)
{
    static const char *const names[] = {[LOG_FORMAT_TEXT] = "text", [LOG_FORMAT_JSON] = "json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = (enum log_format)i;
            return 0;
        }
    }
    return -1;
}

void log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name ? name : "");
}

/* Control characters are written as C escapes so that nothing a client or a
 * script puts into a message (an unknown method path, the text of
 * exhook.log) can start a new line or move the terminal's cursor: one event
 * is one line, whoever wrote its text. Exhookd's own multi-line text, a Lua
 * traceback, goes the same way and reads as "...\nstack traceback:\n\t...".
 * Backslashes are left alone: they cannot end a line, and doubling them
 * would garble Windows paths and Lua patterns in messages. */
static size_t escape_into(char *dst, size_t cap, const char *src)
{
    static const char short_escapes[0x20] = {['\a'] = 'a', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n',
                                             ['\v'] = 'v', ['\f'] = 'f', ['\r'] = 'r'};
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char esc[5];
        size_t len;
        if (*p >= 0x20 && *p != 0x7f) {
            esc[0] = (char)*p;
            len = 1;
        } else if (*p < 0x20 && short_escapes[*p]) {
            esc[0] = '\\';
            esc[1] = short_escapes[*p];
            len = 2;
        } else {
            len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        }
        /* A cut line ends before an escape, never inside one. */
        if (n + len >= cap)
            break;
        memcpy(dst + n, esc, len);
        n += len;
    }
    dst[n] = '\0';
    return n;
}

/* `src` as the inside of a JSON string: quote, backslash and control
 * characters escaped, a byte that is not UTF-8 written as U+FFFD. Cut, like
 * escape_into, before an escape that would not fit. */
static size_t json_escape_into(char *dst, size_t cap, const char *src)
{
    static const char short_escapes[0x20] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r'};
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p;) {
        char esc[8];
        size_t len, used = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            len = 2;
        } else if (*p < 0x20 && short_escapes[*p]) {
            esc[0] = '\\';
            esc[1] = short_escapes[*p];
            len = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else if (*p < 0x80) {
            esc[0] = (char)*p;
            len = 1;
        } else if ((used = codec_utf8_sequence(p, SIZE_MAX)) != 0) {
            memcpy(esc, p, used);
            len = used;
        } else {
            used = 1;
            len = (size_t)snprintf(esc, sizeof esc, "\\ufffd");
        }
        if (n + len >= cap)
            break;
        memcpy(dst + n, esc, len);
        n += len;
        p += used;
    }
    dst[n] = '\0';
    return n;
}

/* Room kept at every field for the keys of the fields after it and the
 * closing "}\n: a cut line is still one whole JSON object. */
#define JSON_RESERVE 64

/* Appends ,"key":"value" to line[0..*n) of `cap` bytes. */
static void json_field(char *line, size_t cap, size_t *n, const char *key, const char *value)
{
    *n += (size_t)snprintf(line + *n, cap - *n, ",\"%s\":\"", key);
    size_t room = cap - *n > JSON_RESERVE ? cap - *n - JSON_RESERVE : 1;
    *n += json_escape_into(line + *n, room, value);
    line[(*n)++] = '"';
}

static size_t format_json(char *line, size_t cap, const char *time, enum log_level level,
                          const struct log_fields *f, const char *text)
{
    size_t n =
        (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\"", time, level_names[level]);
    json_field(line, cap, &n, "thread", thread_name[0] ? thread_name : "main");
    if (f && f->module)
        json_field(line, cap, &n, "module", f->module);
    if (f && f->hook)
        json_field(line, cap, &n, "hook", f->hook);
    json_field(line, cap, &n, "message", text);
    if (f && f->traceback)
        json_field(line, cap, &n, "traceback", f->traceback);
    line[n++] = '}';
    return n;
}

static size_t format_text(char *line, size_t cap, const char *time, enum log_level level,
                          const struct log_fields *f, char *text, size_t textcap)
{
    size_t n = (size_t)snprintf(line, cap, "%s %-5s [%s] ", time, level_names[level],
                                thread_name[0] ? thread_name : "main");
    if (f && f->traceback) {
        size_t len = strlen(text);
        snprintf(text + len, textcap - len, "\n%s", f->traceback);
    }
    return n + escape_into(line + n, cap - n - 1, text);
}

/* The whole line is formatted first and written with one fputs so that lines
 * of concurrent workers never interleave. */
static void log_v(enum log_level level, const struct log_fields *f, const char *fmt, va_list ap)
{
    char text[4096], line[8192], time[128];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    vsnprintf(text, sizeof text, fmt, ap);
    size_t len = atomic_load(&current_format) == LOG_FORMAT_JSON
                     ? format_json(line, sizeof line - 1, time, level, f, text)
                     : format_text(line, sizeof line - 1, time, level, f, text, sizeof text);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, NULL, fmt, ap);
    va_end(ap);
}

void log_fields_msg(enum log_level level, const struct log_fields *fields, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fields, fmt, ap);
    va_end(ap);
}
