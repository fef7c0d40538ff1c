#ifndef EXHOOKD_TEST_HTTPD_FIXTURE_H
#define EXHOOKD_TEST_HTTPD_FIXTURE_H

/* The tests' own HTTP server (tests/httpd.py) as a child process on a free
 * loopback port. */

#include <stdbool.h>
#include <sys/types.h>

struct httpd {
    pid_t pid;
    int port;
    char ca_file[512]; /* with tls: the CA that signed its certificate */
};

/* Starts it with its files in `dir` (the port in <dir>/<name>.port; with
 * `tls`, certificates made there). Fails the test if it does not start. */
void httpd_start(struct httpd *h, const char *dir, const char *name, bool tls);
/* Over TLS, refusing clients without a certificate of its CA; the one it
 * made for them is client.pem and client.key beside ca_file. */
void httpd_start_mtls(struct httpd *h, const char *dir, const char *name);
void httpd_stop(struct httpd *h);
/* Starts it again on the port it had (plain HTTP), after httpd_stop, or
 * for the first time on h->port (e.g. httpd_closed_port()). */
void httpd_restart(struct httpd *h, const char *dir, const char *name);

/* nginx from the system, speaking HTTP/2 over TLS with the certificate
 * of `tls` (an httpd started with tls), answering "h2 ok" on every path;
 * its files in <dir>/nginx. */
void nginx_h2_start(struct httpd *h, const char *dir, const struct httpd *tls);

/* A loopback port nothing listens on (bound, then closed). */
int httpd_closed_port(void);

#endif
