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
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs httpd.py with `port` (0: a free one) and waits for its port. */
static void spawn(struct httpd *h, const char *dir, const char *name, bool tls, bool verify,
                  int port)
{
    char script[512], port_file[400], tls_dir[400], port_text[16];
    snprintf(script, sizeof script, "%s/tests/httpd.py", EXHOOKD_SOURCE_DIR);
    snprintf(port_file, sizeof port_file, "%s/%s.port", dir, name);
    snprintf(tls_dir, sizeof tls_dir, "%s/%s-tls", dir, name);
    snprintf(port_text, sizeof port_text, "%d", port);
    snprintf(h->ca_file, sizeof h->ca_file, "%s/ca.pem", tls_dir);
    if (tls)
        mkdir(tls_dir, 0700);
    unlink(port_file);
    char *argv[] = {"python3",          script,  port_file,
                    "--port",           port_text,
                    "--verify-client",  verify ? "yes" : "no",
                    tls ? "--tls" : NULL, tls_dir, NULL};
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

void httpd_start(struct httpd *h, const char *dir, const char *name, bool tls)
{
    spawn(h, dir, name, tls, false, 0);
}

void httpd_start_mtls(struct httpd *h, const char *dir, const char *name)
{
    spawn(h, dir, name, true, true, 0);
}

void httpd_restart(struct httpd *h, const char *dir, const char *name)
{
    spawn(h, dir, name, false, false, h->port);
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

void nginx_h2_start(struct httpd *h, const char *dir, const struct httpd *tls)
{
    char prefix[400], conf[450], tls_dir[512];
    snprintf(prefix, sizeof prefix, "%s/nginx", dir);
    snprintf(conf, sizeof conf, "%s/nginx.conf", prefix);
    snprintf(tls_dir, sizeof tls_dir, "%.*s", (int)(strlen(tls->ca_file) - strlen("/ca.pem")),
             tls->ca_file);
    mkdir(prefix, 0700);
    h->port = httpd_closed_port();
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "daemon off;\nworker_processes 1;\npid %s/pid;\nerror_log %s/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n"
            "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
            "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
            "  server {\n    listen 127.0.0.1:%d ssl http2;\n"
            "    ssl_certificate %s/server.pem;\n    ssl_certificate_key %s/server.key;\n"
            "    location / { return 200 \"h2 ok\"; }\n  }\n}\n",
            prefix, prefix, prefix, prefix, prefix, prefix, prefix, h->port, tls_dir, tls_dir);
    fclose(f);
    char *argv[] = {"nginx", "-c", conf, "-p", prefix, NULL};
    assert_int_equal(posix_spawnp(&h->pid, "nginx", NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)h->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int up = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (up)
            return;
        usleep(50000);
    }
    fail_msg("nginx did not start within 10 s (see %s/error.log)", prefix);
}
