#ifndef EXHOOKD_LOG_H
#define EXHOOKD_LOG_H

/* Logging to stderr: one line per event with UTC time, level and the worker
 * that wrote it ("main" outside worker threads). Control characters in a
 * message are written escaped (\n, \t, \x1b), so no text can add a line.
 * [log] format = json writes each line as one JSON object instead, with the
 * script's module, hook and traceback as fields of their own. */

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* What a line from script code carries besides its message; any may be
 * NULL. The text format shows the traceback after the message, as
 * "...\nstack traceback:\n\t..." on the same line. */
struct log_fields {
    const char *module;    /* the module whose code ran */
    const char *hook;      /* the hook it ran for, as EMQX names it */
    const char *traceback; /* "stack traceback:\n\t..." */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn" (or "warning"), "error". 0 on success, -1 otherwise. */
int log_level_parse(const char *text, enum log_level *out);

void log_set_format(enum log_format format);
/* Parses "text" or "json". 0 on success, -1 otherwise. */
int log_format_parse(const char *text, enum log_format *out);

/* Names the calling thread in its log lines; NULL restores "main". */
void log_set_thread_name(const char *name);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_fields_msg(enum log_level level, const struct log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
