#include "webhook_rx.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "net.h"

struct got {
    bool done;
    struct http_response *res;
};

static void got_it(void *ctx, struct http_response *res)
{
    struct got *g = ctx;
    g->done = true;
    g->res = res;
}

char *rx_request(int port, const char *method, const char *path, const char *body)
{
    char err[256], url[160];
    struct net *n = net_open(1, err, sizeof err);
    assert_non_null(n);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct http_request spec = {.method = method,
                                .url = url,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = 10000};
    struct got g = {0};
    assert_non_null(http_start(n->http, &spec, got_it, &g, err, sizeof err));
    while (!g.done)
        loop_run_once(n->loop, -1);
    if (g.res->err != HTTP_OK)
        fail_msg("%s %s: %s", method, url, g.res->error);
    char *text = strndup(g.res->body ? g.res->body : "", g.res->body_len);
    http_response_free(g.res);
    net_close(n);
    return text;
}

void rx_mode(int port, int status, int delay_ms)
{
    char body[64];
    snprintf(body, sizeof body, "{\"status\": %d, \"delay_ms\": %d}", status, delay_ms);
    free(rx_request(port, "POST", "/control", body));
}

size_t rx_count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

char *rx_wait_recorded(int port, size_t n, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        char *text = rx_request(port, "GET", "/recorded", NULL);
        if (rx_count_lines(text) >= n)
            return text;
        free(text);
        usleep(50000);
    }
    fail_msg("fewer than %zu POSTs arrived within %d s", n, seconds);
    return NULL;
}
