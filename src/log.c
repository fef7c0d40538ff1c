#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static atomic_int current_level = LOG_INFO;
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

/* The whole line is formatted first and written with one fputs so that lines
 * of concurrent workers never interleave. */
void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    char text[4096], line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[level], thread_name[0] ? thread_name : "main");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + escape_into(line + n, sizeof line - (size_t)n - 1, text);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}
