#include "httpd_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void httpd_start(struct httpd *h, const char *dir, const char *name, bool tls)
{
    char script[512], port_file[400], tls_dir[400];
    snprintf(script, sizeof script, "%s/tests/httpd.py", EXHOOKD_SOURCE_DIR);
    snprintf(port_file, sizeof port_file, "%s/%s.port", dir, name);
    snprintf(tls_dir, sizeof tls_dir, "%s/%s-tls", dir, name);
    snprintf(h->ca_file, sizeof h->ca_file, "%s/ca.pem", tls_dir);
    if (tls)
        mkdir(tls_dir, 0700);
    char *argv[] = {"python3", script, port_file, tls ? "--tls" : NULL, tls_dir, NULL};
    assert_int_equal(posix_spawnp(&h->pid, "python3", NULL, NULL, argv, environ), 0);
    /* It writes the file once it listens (after making certificates). */
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            assert_int_equal(fscanf(f, "%d", &h->port), 1);
            fclose(f);
            return;
        }
        usleep(50000);
    }
    fail_msg("httpd.py did not start within 15 s");
}

void httpd_stop(struct httpd *h)
{
    kill(h->pid, SIGTERM);
    waitpid(h->pid, NULL, 0);
}

int httpd_closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, len), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}
