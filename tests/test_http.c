/* The HTTP client of a worker slot, driven by its event loop, against the
 * tests' own server (tests/httpd.py, plain and TLS) and its faults. */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "http.h"
#include "httpd_fixture.h"
#include "loop.h"

#define MS 1000000LL

/* The servers, started once for all tests. */
static struct fixture fx;
static struct httpd plain, tls;
static int plain_port, tls_port;
static const char *ca_file;

static int start_servers(void **state)
{
    (void)state;
    fx_init(&fx);
    httpd_start(&plain, fx.dir, "plain", false);
    httpd_start(&tls, fx.dir, "tls", true);
    plain_port = plain.port;
    tls_port = tls.port;
    ca_file = tls.ca_file;
    return 0;
}

static int stop_servers(void **state)
{
    (void)state;
    httpd_stop(&plain);
    httpd_stop(&tls);
    fx_free(&fx);
    return 0;
}

/* A loop and its client, per test. */
struct t {
    struct loop *loop;
    struct http_client *http;
    char url[300];
};

/* The clients here open at most this many connections to one server. */
#define FEW_CONNECTIONS 40

static int open_client(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    char err[200] = "";
    t->loop = loop_create(err, sizeof err);
    assert_non_null(t->loop);
    t->http = http_client_create(t->loop, FEW_CONNECTIONS, err, sizeof err);
    assert_non_null(t->http);
    *state = t;
    return 0;
}

static int close_client(void **state)
{
    struct t *t = *state;
    http_client_destroy(t->http);
    loop_destroy(t->loop);
    free(t);
    return 0;
}

static const char *url(struct t *t, const char *path)
{
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%d%s", plain_port, path);
    return t->url;
}

static const char *tls_url(struct t *t, const char *host, const char *path)
{
    snprintf(t->url, sizeof t->url, "https://%s:%d%s", host, tls_port, path);
    return t->url;
}

/* What a request's callback received. */
struct result {
    int calls;
    struct http_response *res;
};

static void on_done(void *ctx, struct http_response *res)
{
    struct result *r = ctx;
    r->calls++;
    r->res = res;
}

/* Runs the loop until `*count` reaches `target`; 20 s is far more than any
 * request here needs. */
static void run_until(struct t *t, const int *count, int target)
{
    int64_t give_up = loop_now_ns() + 20000 * MS;
    while (*count < target && loop_now_ns() < give_up)
        assert_true(loop_run_once(t->loop, 100) >= 0);
    assert_int_equal(*count, target);
}

static struct http_response *fetch(struct t *t, const struct http_request *spec)
{
    char err[200] = "";
    struct result r = {0};
    struct http_req *req = http_start(t->http, spec, on_done, &r, err, sizeof err);
    if (!req)
        fail_msg("http_start: %s", err);
    assert_int_equal(r.calls, 0); /* never from within http_start */
    run_until(t, &r.calls, 1);
    return r.res;
}

static struct http_response *get(struct t *t, const char *u)
{
    struct http_request spec = {.method = "GET", .url = u, .timeout_ms = 10000};
    return fetch(t, &spec);
}

static const char *header(const struct http_response *res, const char *name)
{
    for (size_t i = 0; i < res->n_headers; i++)
        if (!strcmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

static void assert_body(const struct http_response *res, const char *want)
{
    assert_int_equal(res->err, HTTP_OK);
    assert_null(res->error);
    assert_int_equal(res->body_len, strlen(want));
    assert_memory_equal(res->body, want, strlen(want));
}

/* A number in the echo's JSON, e.g. "conn". */
static int json_int(const struct http_response *res, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    char *body = strndup(res->body, res->body_len);
    const char *p = strstr(body, pat);
    assert_non_null(p);
    int v = atoi(p + strlen(pat));
    free(body);
    return v;
}

static void test_get_gives_status_headers_and_body(void **state)
{
    struct t *t = *state;
    struct http_header hs[] = {{"X-Name", "abc"}, {"X-Empty", ""}};
    struct http_request spec = {.method = "GET",
                                .url = url(t, "/echo?q=1"),
                                .headers = hs,
                                .n_headers = 2,
                                .timeout_ms = 10000};
    struct http_response *res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_OK);
    assert_int_equal(res->status, 200);
    assert_int_equal(res->version, 1);
    assert_string_equal(header(res, "content-type"), "application/json");
    assert_non_null(header(res, "x-conn"));
    assert_null(header(res, "Content-Type")); /* names are lower-cased */
    char want[600];
    snprintf(want, sizeof want,
             "{\"method\": \"GET\", \"path\": \"/echo?q=1\", \"headers\": {\"host\": "
             "\"127.0.0.1:%d\", \"accept\": \"*/*\", \"x-name\": \"abc\", \"x-empty\": \"\"}, "
             "\"body\": \"\", \"conn\": %d, \"conn_requests\": 1}",
             plain_port, json_int(res, "conn"));
    assert_body(res, want);
    http_response_free(res);
}

static void test_methods_and_bodies_are_sent_as_given(void **state)
{
    struct t *t = *state;
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};
    for (size_t i = 0; i < 5; i++) {
        struct http_header hs[] = {{"Content-Type", "text/plain"}};
        struct http_request spec = {.method = methods[i],
                                    .url = url(t, "/echo"),
                                    .headers = hs,
                                    .n_headers = 1,
                                    .body = "a\0b=1",
                                    .body_len = 5,
                                    .timeout_ms = 10000};
        struct http_response *res = fetch(t, &spec);
        assert_int_equal(res->status, 200);
        char want[200];
        snprintf(want, sizeof want, "{\"method\": \"%s\", \"path\": \"/echo\"", methods[i]);
        assert_memory_equal(res->body, want, strlen(want));
        assert_non_null(memmem(res->body, res->body_len, "\"body\": \"a\\u0000b=1\"", 20));
        assert_non_null(memmem(res->body, res->body_len, "\"content-length\": \"5\"", 21));
        assert_non_null(memmem(res->body, res->body_len, "\"content-type\": \"text/plain\"", 28));
        assert_null(memmem(res->body, res->body_len, "expect", 6));
        http_response_free(res);
    }
    /* A POST without a body, a DELETE without one, and a HEAD. */
    struct http_request post = {.method = "POST", .url = url(t, "/echo"), .timeout_ms = 10000};
    struct http_response *res = fetch(t, &post);
    assert_non_null(memmem(res->body, res->body_len, "\"content-length\": \"0\"", 21));
    http_response_free(res);
    struct http_request del = {.method = "DELETE", .url = url(t, "/echo"), .timeout_ms = 10000};
    res = fetch(t, &del);
    assert_non_null(memmem(res->body, res->body_len, "{\"method\": \"DELETE\"", 19));
    http_response_free(res);
    struct http_request head = {
        .method = "HEAD", .url = url(t, "/status/201"), .timeout_ms = 10000};
    res = fetch(t, &head);
    assert_int_equal(res->status, 201);
    assert_string_equal(header(res, "content-length"), "10");
    assert_body(res, "");
    http_response_free(res);
}

static void test_a_large_body_is_sent_whole_without_waiting_for_continue(void **state)
{
    struct t *t = *state;
    size_t n = 200000;
    char *body = malloc(n);
    memset(body, 'z', n);
    struct http_request spec = {
        .method = "POST", .url = url(t, "/echo"), .body = body, .body_len = n, .timeout_ms = 10000};
    int64_t t0 = loop_now_ns();
    struct http_response *res = fetch(t, &spec);
    assert_int_equal(res->status, 200);
    assert_non_null(memmem(res->body, res->body_len, "\"content-length\": \"200000\"", 26));
    assert_true(res->body_len > n);
    /* curl's wait for 100 Continue would be a full second. */
    assert_true(loop_now_ns() - t0 < 900 * MS);
    http_response_free(res);
    free(body);
}

static void test_any_status_is_a_response(void **state)
{
    struct t *t = *state;
    static const int codes[] = {204, 301, 404, 500, 503};
    for (size_t i = 0; i < 5; i++) {
        char path[40], want[40];
        snprintf(path, sizeof path, "/status/%d", codes[i]);
        struct http_response *res = get(t, url(t, path));
        assert_int_equal(res->status, codes[i]);
        assert_string_equal(header(res, "x-test"), "yes");
        snprintf(want, sizeof want, "status %d", codes[i]);
        assert_body(res, codes[i] == 204 ? "" : want);
        http_response_free(res);
    }
    struct http_response *res = get(t, url(t, "/nowhere"));
    assert_int_equal(res->status, 404);
    assert_body(res, "no such path");
    http_response_free(res);
}

static void test_a_hung_server_times_out(void **state)
{
    struct t *t = *state;
    struct http_request spec = {.method = "GET", .url = url(t, "/hang"), .timeout_ms = 300};
    int64_t t0 = loop_now_ns();
    struct http_response *res = fetch(t, &spec);
    int64_t took = loop_now_ns() - t0;
    assert_int_equal(res->err, HTTP_ERR_TIMEOUT);
    assert_memory_equal(res->error, "timeout: Operation timed out after 3", 36);
    assert_non_null(strstr(res->error, " milliseconds with 0 bytes received"));
    assert_true(took >= 290 * MS && took < 10000 * MS);
    http_response_free(res);
}

static void test_a_slow_body_arrives_whole_or_times_out(void **state)
{
    struct t *t = *state;
    struct http_response *res = get(t, url(t, "/slow/5/20"));
    assert_int_equal(res->status, 200);
    assert_body(res, "chunk\nchunk\nchunk\nchunk\nchunk\n");
    http_response_free(res);
    struct http_request spec = {.method = "GET", .url = url(t, "/slow/50/100"), .timeout_ms = 300};
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_TIMEOUT);
    assert_non_null(strstr(res->error, "timeout: Operation timed out after 3"));
    http_response_free(res);
}

static void test_a_closed_port_is_refused(void **state)
{
    struct t *t = *state;
    int port = httpd_closed_port();
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%d/", port);
    struct http_response *res = get(t, t->url);
    assert_int_equal(res->err, HTTP_ERR_REFUSED);
    char want[200];
    snprintf(want, sizeof want, "cannot connect: Failed to connect to 127.0.0.1 port %d after ",
             port);
    assert_memory_equal(res->error, want, strlen(want));
    assert_non_null(strstr(res->error, "(Connection refused)"));
    assert_int_equal(res->status, 0);
    assert_null(res->body);
    http_response_free(res);
}

static void test_a_reset_mid_body_is_reported(void **state)
{
    struct t *t = *state;
    struct http_response *res = get(t, url(t, "/reset"));
    assert_int_equal(res->err, HTTP_ERR_RESET);
    assert_string_equal(res->error, "connection reset: Recv failure: Connection reset by peer");
    http_response_free(res);
    /* The same over TLS. */
    struct http_request spec = {.method = "GET",
                                .url = tls_url(t, "127.0.0.1", "/reset"),
                                .ca_file = ca_file,
                                .timeout_ms = 10000};
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_RESET);
    assert_memory_equal(res->error, "connection reset: ", 18);
    http_response_free(res);
}

static void test_garbage_is_a_bad_response(void **state)
{
    struct t *t = *state;
    struct http_response *res = get(t, url(t, "/garbage"));
    assert_int_equal(res->err, HTTP_ERR_BAD_RESPONSE);
    assert_string_equal(res->error, "bad response: Received HTTP/0.9 when not allowed");
    http_response_free(res);
}

static void test_the_body_is_capped(void **state)
{
    struct t *t = *state;
    struct http_request spec = {
        .method = "GET", .url = url(t, "/big/1000"), .max_body = 1000, .timeout_ms = 10000};
    struct http_response *res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_OK);
    assert_int_equal(res->body_len, 1000);
    http_response_free(res);
    spec.url = url(t, "/big/1001");
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_TOO_LARGE);
    assert_string_equal(res->error, "response too large: the body exceeds 1000 bytes");
    http_response_free(res);
    /* Also when the server does not announce the length (/slow sends it
     * in pieces that reach the cap one at a time). */
    spec.url = url(t, "/slow/3/10");
    spec.max_body = 10;
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_TOO_LARGE);
    http_response_free(res);
}

static void test_tls_is_verified_with_the_given_ca(void **state)
{
    struct t *t = *state;
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    for (int i = 0; i < 2; i++) {
        struct http_request spec = {.method = "GET",
                                    .url = tls_url(t, hosts[i], "/status/200"),
                                    .ca_file = ca_file,
                                    .timeout_ms = 10000};
        struct http_response *res = fetch(t, &spec);
        assert_int_equal(res->status, 200);
        assert_body(res, "status 200");
        http_response_free(res);
    }
}

static void test_tls_without_the_ca_is_refused(void **state)
{
    struct t *t = *state;
    struct http_request spec = {
        .method = "GET", .url = tls_url(t, "127.0.0.1", "/status/200"), .timeout_ms = 10000};
    struct http_response *res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_TLS);
    assert_string_equal(
        res->error, "TLS failure: SSL certificate problem: unable to get local issuer certificate");
    http_response_free(res);
    /* A CA file that is not there. */
    spec.ca_file = "/nonexistent/ca.pem";
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_ERR_TLS);
    assert_non_null(strstr(res->error, "/nonexistent/ca.pem"));
    http_response_free(res);
    /* Verification turned off. */
    spec.ca_file = NULL;
    spec.insecure = true;
    res = fetch(t, &spec);
    assert_int_equal(res->status, 200);
    http_response_free(res);
}

/* A server that asks for a client certificate: refused without one, served
 * with cert_file and key_file. */
static void test_a_client_certificate_is_sent_when_given(void **state)
{
    struct t *t = *state;
    struct httpd mtls;
    httpd_start_mtls(&mtls, fx.dir, "mtls");
    char dir[512], cert[600], key[600];
    snprintf(dir, sizeof dir, "%.*s", (int)(strlen(mtls.ca_file) - strlen("/ca.pem")),
             mtls.ca_file);
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(t->url, sizeof t->url, "https://127.0.0.1:%d/status/200", mtls.port);
    struct http_request spec = {
        .method = "GET", .url = t->url, .ca_file = mtls.ca_file, .timeout_ms = 10000};
    struct http_response *res = fetch(t, &spec);
    assert_int_not_equal(res->err, HTTP_OK);
    http_response_free(res);
    spec.cert_file = cert;
    spec.key_file = key;
    res = fetch(t, &spec);
    assert_int_equal(res->err, HTTP_OK);
    assert_int_equal(res->status, 200);
    http_response_free(res);
    httpd_stop(&mtls);
}

static void test_connections_are_kept_alive_and_reused(void **state)
{
    struct t *t = *state;
    struct http_response *res = get(t, url(t, "/echo"));
    int conn = json_int(res, "conn");
    assert_int_equal(res->new_connections, 1);
    assert_int_equal(json_int(res, "conn_requests"), 1);
    http_response_free(res);
    for (int i = 2; i <= 4; i++) {
        res = get(t, url(t, "/echo"));
        assert_int_equal(res->new_connections, 0);
        assert_int_equal(json_int(res, "conn"), conn);
        assert_int_equal(json_int(res, "conn_requests"), i);
        http_response_free(res);
    }
    /* The server closes it: the next request opens a new one. */
    res = get(t, url(t, "/close"));
    assert_body(res, "bye");
    http_response_free(res);
    res = get(t, url(t, "/echo"));
    assert_int_equal(res->new_connections, 1);
    assert_int_not_equal(json_int(res, "conn"), conn);
    http_response_free(res);
    /* The same over TLS. */
    struct http_request spec = {.method = "GET",
                                .url = tls_url(t, "localhost", "/echo"),
                                .ca_file = ca_file,
                                .timeout_ms = 10000};
    res = fetch(t, &spec);
    conn = json_int(res, "conn");
    http_response_free(res);
    res = fetch(t, &spec);
    assert_int_equal(res->new_connections, 0);
    assert_int_equal(json_int(res, "conn"), conn);
    http_response_free(res);
}

static int server_connections(struct t *t)
{
    struct http_response *res = get(t, url(t, "/stats"));
    int n = json_int(res, "connections");
    http_response_free(res);
    return n;
}

/* Many requests in flight at once on one client; each gets its own answer. */
#define CONCURRENT 200
#define MOST (FEW_CONNECTIONS + 50)
static void run_concurrent(struct t *t, int n)
{
    static struct result rs[CONCURRENT > MOST ? CONCURRENT : MOST];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < n; i++) {
        char path[40], err[200];
        snprintf(path, sizeof path, "/delay/%d", 50 + i % 50);
        struct http_request spec = {.method = "GET", .url = url(t, path), .timeout_ms = 30000};
        assert_non_null(http_start(t->http, &spec, on_done, &rs[i], err, sizeof err));
    }
    int done = 0;
    int64_t give_up = loop_now_ns() + 60000 * MS;
    while (done < n && loop_now_ns() < give_up) {
        loop_run_once(t->loop, 100);
        done = 0;
        for (int i = 0; i < n; i++)
            done += rs[i].calls;
    }
    assert_int_equal(done, n);
    for (int i = 0; i < n; i++) {
        char want[40];
        snprintf(want, sizeof want, "delayed %d", 50 + i % 50);
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].res->status, 200);
        assert_body(rs[i].res, want);
        http_response_free(rs[i].res);
    }
}

/* Twice: the second round runs on the first round's connections. */
static void test_many_concurrent_requests_on_one_client(void **state)
{
    struct t *t = *state;
    int before = server_connections(t);
    run_concurrent(t, CONCURRENT);
    int after = server_connections(t);
    assert_in_range(after - before, 1, CONCURRENT);
    run_concurrent(t, CONCURRENT);
    assert_int_equal(server_connections(t), after);
}

/* More requests in flight to one server than connections allowed to it:
 * the rest wait for a connection, and all are answered. */
static void test_connections_to_one_server_are_bounded(void **state)
{
    struct t *t = *state;
    int before = server_connections(t);
    run_concurrent(t, MOST);
    assert_in_range(server_connections(t) - before, 1, FEW_CONNECTIONS);
}

/* Requests in flight together to an HTTP/2 server share one connection. */
static void test_http2_is_used_and_multiplexed(void **state)
{
    struct t *t = *state;
    struct httpd nginx;
    nginx_h2_start(&nginx, fx.dir, &tls);
    static struct result rs[20];
    memset(rs, 0, sizeof rs);
    snprintf(t->url, sizeof t->url, "https://localhost:%d/x", nginx.port);
    for (int i = 0; i < 20; i++) {
        struct http_request spec = {
            .method = "GET", .url = t->url, .ca_file = ca_file, .timeout_ms = 10000};
        char err[200];
        assert_non_null(http_start(t->http, &spec, on_done, &rs[i], err, sizeof err));
    }
    int done = 0;
    int64_t give_up = loop_now_ns() + 20000 * MS;
    while (done < 20 && loop_now_ns() < give_up) {
        loop_run_once(t->loop, 100);
        done = 0;
        for (int i = 0; i < 20; i++)
            done += rs[i].calls;
    }
    assert_int_equal(done, 20);
    long opened = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rs[i].res->version, 2);
        assert_body(rs[i].res, "h2 ok");
        opened += rs[i].res->new_connections;
        http_response_free(rs[i].res);
    }
    assert_int_equal(opened, 1);
    httpd_stop(&nginx);
}

/* The /hang requests whose connection the server still has, asked on a
 * client of its own. */
static int server_hanging(struct t *t, struct http_client *side)
{
    struct result r = {0};
    char err[200];
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%d/stats", plain_port);
    struct http_request spec = {.method = "GET", .url = t->url, .timeout_ms = 10000};
    assert_non_null(http_start(side, &spec, on_done, &r, err, sizeof err));
    run_until(t, &r.calls, 1);
    int n = json_int(r.res, "hanging");
    http_response_free(r.res);
    return n;
}

/* Waits (up to 10 s) for the server to count `want` of them. */
static void wait_hanging(struct t *t, struct http_client *side, int want)
{
    int n = -1;
    for (int i = 0; i < 200 && (n = server_hanging(t, side)) != want; i++)
        usleep(50000);
    assert_int_equal(n, want);
}

static void test_cancel_stops_a_request_for_good(void **state)
{
    struct t *t = *state;
    char err[200];
    struct http_client *side = http_client_create(t->loop, FEW_CONNECTIONS, err, sizeof err);
    wait_hanging(t, side, 0); /* those of earlier tests are gone */
    struct result r = {0};
    struct http_request spec = {.method = "GET", .url = url(t, "/hang"), .timeout_ms = 10000};
    /* At once, before the loop ran... */
    struct http_req *req = http_start(t->http, &spec, on_done, &r, err, sizeof err);
    assert_non_null(req);
    http_cancel(req);
    /* ... and in flight, its connection closed. */
    req = http_start(t->http, &spec, on_done, &r, err, sizeof err);
    wait_hanging(t, side, 1);
    http_cancel(req);
    wait_hanging(t, side, 0);
    assert_int_equal(r.calls, 0);
    http_client_destroy(side);
    /* The client goes on serving. */
    struct http_response *res = get(t, url(t, "/status/200"));
    assert_int_equal(res->status, 200);
    http_response_free(res);
}

/* A callback may start the next request and cancel another in flight. */
struct chain {
    struct t *t;
    struct http_req *victim;
    const struct result *victim_result;
    struct result next;
    int calls;
};

static void on_chain_done(void *ctx, struct http_response *res)
{
    struct chain *c = ctx;
    c->calls++;
    http_response_free(res);
    assert_int_equal(c->victim_result->calls, 0); /* a fast answer is not held up by a slow one */
    http_cancel(c->victim);
    struct http_request spec = {
        .method = "GET", .url = url(c->t, "/status/202"), .timeout_ms = 10000};
    char err[200];
    assert_non_null(http_start(c->t->http, &spec, on_done, &c->next, err, sizeof err));
}

static void test_a_callback_starts_and_cancels_requests(void **state)
{
    struct t *t = *state;
    struct result victim = {0};
    struct chain c = {.t = t, .victim_result = &victim};
    char err[200];
    struct http_request slow = {.method = "GET", .url = url(t, "/delay/2000"), .timeout_ms = 10000};
    c.victim = http_start(t->http, &slow, on_done, &victim, err, sizeof err);
    struct http_request fast = {.method = "GET", .url = url(t, "/status/200"), .timeout_ms = 10000};
    assert_non_null(http_start(t->http, &fast, on_chain_done, &c, err, sizeof err));
    run_until(t, &c.next.calls, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.next.res->status, 202);
    http_response_free(c.next.res);
    int64_t until = loop_now_ns() + 500 * MS;
    while (loop_now_ns() < until)
        loop_run_once(t->loop, 50);
    assert_int_equal(victim.calls, 0);
}

static void test_destroying_the_client_cancels_what_is_in_flight(void **state)
{
    (void)state;
    struct t *t;
    open_client((void **)&t);
    struct result r = {0};
    char err[200];
    for (int i = 0; i < 5; i++) {
        struct http_request spec = {
            .method = "GET", .url = url(t, i % 2 ? "/hang" : "/delay/100"), .timeout_ms = 10000};
        assert_non_null(http_start(t->http, &spec, on_done, &r, err, sizeof err));
    }
    int64_t until = loop_now_ns() + 50 * MS;
    while (loop_now_ns() < until)
        loop_run_once(t->loop, 10);
    close_client((void **)&t);
    assert_int_equal(r.calls, 0);
}

static void expect_refused(struct t *t, const struct http_request *spec, const char *want)
{
    char err[200] = "";
    struct result r = {0};
    assert_null(http_start(t->http, spec, on_done, &r, err, sizeof err));
    assert_string_equal(err, want);
}

static void test_requests_that_cannot_be_sent_are_refused_at_once(void **state)
{
    struct t *t = *state;
    struct http_request spec = {.method = "GE T", .url = "http://127.0.0.1/"};
    expect_refused(t, &spec, "bad method 'GE T'");
    spec.method = "";
    expect_refused(t, &spec, "bad method ''");
    spec.method = "GET";
    spec.url = "ftp://127.0.0.1/x";
    expect_refused(t, &spec, "bad url 'ftp://127.0.0.1/x': not http or https");
    spec.url = "http://";
    expect_refused(t, &spec, "bad url 'http://': No host part in the URL");
    spec.url = "127.0.0.1:8080/x";
    expect_refused(t, &spec, "bad url '127.0.0.1:8080/x': Unsupported URL scheme");
    spec.url = "http://127.0.0.1/";
    struct http_header bad_name[] = {{"X Name", "v"}};
    spec.headers = bad_name;
    spec.n_headers = 1;
    expect_refused(t, &spec, "bad header name 'X Name'");
    struct http_header bad_value[] = {{"X-Name", "v\r\nX-Injected: 1"}};
    spec.headers = bad_value;
    expect_refused(t, &spec, "header 'X-Name': line breaks in its value");
}

static void test_urls_for_logs_carry_no_secrets(void **state)
{
    (void)state;
    char out[100];
    http_url_for_log("http://svc:pw@auth:8080/u?token=t#x", out, sizeof out);
    assert_string_equal(out, "http://auth:8080/u");
    http_url_for_log("https://auth/a/b", out, sizeof out);
    assert_string_equal(out, "https://auth/a/b");
    http_url_for_log("not a url", out, sizeof out);
    assert_string_equal(out, "not a url");
    http_url_for_log("http://a@b:p@w@auth/x#f?g", out, sizeof out);
    assert_string_equal(out, "http://auth/x");
    http_url_for_log("http://auth?q=a@b", out, sizeof out);
    assert_string_equal(out, "http://auth");
}

int main(void)
{
    /* Ignored: a reset connection must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
#define T(name) cmocka_unit_test_setup_teardown(name, open_client, close_client)
    const struct CMUnitTest tests[] = {
        T(test_get_gives_status_headers_and_body),
        T(test_methods_and_bodies_are_sent_as_given),
        T(test_a_large_body_is_sent_whole_without_waiting_for_continue),
        T(test_any_status_is_a_response),
        T(test_a_hung_server_times_out),
        T(test_a_slow_body_arrives_whole_or_times_out),
        T(test_a_closed_port_is_refused),
        T(test_a_reset_mid_body_is_reported),
        T(test_garbage_is_a_bad_response),
        T(test_the_body_is_capped),
        T(test_tls_is_verified_with_the_given_ca),
        T(test_tls_without_the_ca_is_refused),
        T(test_a_client_certificate_is_sent_when_given),
        T(test_connections_are_kept_alive_and_reused),
        T(test_many_concurrent_requests_on_one_client),
        T(test_connections_to_one_server_are_bounded),
        T(test_http2_is_used_and_multiplexed),
        T(test_cancel_stops_a_request_for_good),
        T(test_a_callback_starts_and_cancels_requests),
        cmocka_unit_test(test_destroying_the_client_cancels_what_is_in_flight),
        T(test_requests_that_cannot_be_sent_are_refused_at_once),
        cmocka_unit_test(test_urls_for_logs_carry_no_secrets),
    };
    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
