#ifndef EXHOOKD_ERRBUF_H
#define EXHOOKD_ERRBUF_H

/* The one-line error messages that functions hand back to their caller in a
 * buffer (`char *err, size_t errlen`). */

#include <stddef.h>

/* printf into `err`; does nothing when err is NULL or errlen is 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
