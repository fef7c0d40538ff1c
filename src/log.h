#ifndef EXHOOKD_LOG_H
#define EXHOOKD_LOG_H

/* Logging to stderr: one line per event with UTC time, level and the worker
 * that wrote it ("main" outside worker threads). Control characters in a
 * message are written escaped (\n, \t, \x1b), so no text can add a line. */

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn" (or "warning"), "error". 0 on success, -1 otherwise. */
int log_level_parse(const char *text, enum log_level *out);

/* Names the calling thread in its log lines; NULL restores "main". */
void log_set_thread_name(const char *name);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
