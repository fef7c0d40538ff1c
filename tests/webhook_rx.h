#ifndef EXHOOKD_TEST_WEBHOOK_RX_H
#define EXHOOKD_TEST_WEBHOOK_RX_H

/* Talking to the receiver side of the tests' HTTP server (httpd.py /hook,
 * /control, /recorded) on loopback port `port`. */

#include <stddef.h>

/* The body of `method` `path` (malloc'd); fails the test unless it answers. */
char *rx_request(int port, const char *method, const char *path, const char *body);

/* /hook answers `status` after `delay_ms` from now on. */
void rx_mode(int port, int status, int delay_ms);

/* The /recorded lines ("<clientid> <payload>\n" each) once there are at
 * least `n`; fails the test after `seconds`. */
char *rx_wait_recorded(int port, size_t n, int seconds);

size_t rx_count_lines(const char *text);

#endif
