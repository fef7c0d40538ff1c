/* The metrics: the registry's arithmetic, the /metrics endpoint scraped
 * over loopback after known calls (exact counts, and `promtool check
 * metrics` finds nothing wrong with the text), and the port shared by the
 * master's old and new child. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "metrics.h"
#include "metrics_http.h"
#include "rpc_client.h"
#include "server.h"

#define V3 "grpc_service=\"emqx.exhook.v3.HookProvider\","
#define AUTH_LABELS V3 "grpc_method=\"OnClientAuthenticate\""
#define AUTHZ_LABELS V3 "grpc_method=\"OnClientAuthorize\""

/* A GET of `path` on 127.0.0.1:`port`: the status code, and the body in
 * *body (malloc'd). */
static int http_get(int port, const char *path, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap + 1);
    for (ssize_t got; (got = read(fd, text + len, cap - len)) > 0;) {
        len += (size_t)got;
        if (len == cap)
            text = realloc(text, (cap *= 2) + 1);
    }
    close(fd);
    text[len] = '\0';
    int status = 0;
    assert_int_equal(sscanf(text, "HTTP/1.1 %d", &status), 1);
    const char *start = strstr(text, "\r\n\r\n");
    assert_non_null(start);
    *body = strdup(start + 4);
    free(text);
    return status;
}

/* `promtool check metrics` on `text`: its exit status; what it said is
 * printed on failure. */
static int promtool_check(const char *dir, const char *text)
{
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.out", path);
        (void)system(cmd);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* `line` is a whole line of `text`. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("no line \"%s\" in:\n%s", line, text);
}

struct world {
    struct fixture fx;
    struct server *srv;
    struct rpc_client *client;
};

/* example.lua on 2 workers, /metrics on a port the system picks. */
static struct world *start(const char *extra)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    char ini[1024], err[512];
    snprintf(ini, sizeof ini,
             "[server]\nworkers = 2\n[lua]\npath = %s/scripts\ninit_module = example\n"
             "[log]\nlevel = error\n%s",
             EXHOOKD_SOURCE_DIR, extra);
    cfg_free(&w->fx.cfg);
    cfg_defaults(&w->fx.cfg);
    if (cfg_load_string(&w->fx.cfg, ini, "test.ini", err, sizeof err) != 0)
        fail_msg("%s", err);
    /* The config file refuses port 0. */
    w->fx.cfg.metrics.listen = strdup("127.0.0.1:0");
    log_set_level(LOG_ERROR);
    char target[64];
    w->srv = fx_start_server(&w->fx.cfg, NULL, target, sizeof target);
    assert_true(srv_metrics_port(w->srv) > 0);
    w->client = rpc_client_open(target);
    return w;
}

static void stop(struct world *w)
{
    rpc_client_close(w->client);
    srv_destroy(w->srv);
    fx_free(&w->fx);
    free(w);
}

static grpc_status_code authenticate(struct world *w, const char *user)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = (char *)user;
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    struct rpc_result res;
    assert_int_equal(
        rpc_call(w->client, "/emqx.exhook.v3.HookProvider/OnClientAuthenticate", &r.base, &res), 0);
    grpc_status_code st = res.status;
    rpc_result_free(&res);
    return st;
}

static void authorize_publish(struct world *w, const char *topic)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.username = "u";
    ci.clientid = "c1";
    Emqx__Exhook__V3__ClientAuthorizeRequest r = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__INIT;
    r.clientinfo = &ci;
    r.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__PUBLISH;
    r.topic = (char *)topic;
    struct rpc_result res;
    assert_int_equal(
        rpc_call(w->client, "/emqx.exhook.v3.HookProvider/OnClientAuthorize", &r.base, &res), 0);
    assert_int_equal(res.status, GRPC_STATUS_OK);
    rpc_result_free(&res);
}

/* Known calls through example.lua, then one scrape: every count exact. */
static void test_scrape_counts_known_calls_exactly(void **state)
{
    (void)state;
    struct world *w = start("");
    for (int i = 0; i < 3; i++)
        assert_int_equal(authenticate(w, "gooduser"), GRPC_STATUS_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(authenticate(w, "baduser"), GRPC_STATUS_OK);
    assert_int_equal(authenticate(w, "normaluser"), GRPC_STATUS_OK); /* true, "continue" */
    for (int i = 0; i < 2; i++)
        authorize_publish(w, "t/1"); /* nil */
    authorize_publish(w, "$SYS/x");  /* false */
    struct rpc_result res;           /* a request that does not decode */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(rpc_call_raw(w->client, "/emqx.exhook.v3.HookProvider/OnClientAuthenticate",
                                  garbage, sizeof garbage, &res),
                     0);
    assert_int_equal(res.status, GRPC_STATUS_INVALID_ARGUMENT);
    rpc_result_free(&res);

    char *text;
    assert_int_equal(http_get(srv_metrics_port(w->srv), "/metrics", &text), 200);
    assert_line(text, "grpc_server_started_total{" AUTH_LABELS "} 7");
    assert_line(text, "grpc_server_handled_total{" AUTH_LABELS ",grpc_code=\"OK\"} 6");
    assert_line(text,
                "grpc_server_handled_total{" AUTH_LABELS ",grpc_code=\"INVALID_ARGUMENT\"} 1");
    assert_line(text, "grpc_server_handled_total{" AUTHZ_LABELS ",grpc_code=\"OK\"} 3");
    assert_line(text, "grpc_server_handling_seconds_count{" AUTH_LABELS "} 7");
    assert_line(text, "grpc_server_handling_seconds_bucket{" AUTH_LABELS ",le=\"+Inf\"} 7");
    assert_line(text, "grpc_server_handling_seconds_count{" AUTHZ_LABELS "} 3");
    assert_line(text, "exhookd_verdicts_total{hook=\"client.authenticate\",result=\"allow\"} 4");
    assert_line(text, "exhookd_verdicts_total{hook=\"client.authenticate\",result=\"deny\"} 2");
    assert_line(text, "exhookd_verdicts_total{hook=\"client.authenticate\",result=\"error\"} 1");
    assert_line(text, "exhookd_verdicts_total{hook=\"client.authorize\",result=\"no_opinion\"} 2");
    assert_line(text, "exhookd_verdicts_total{hook=\"client.authorize\",result=\"deny\"} 1");
    assert_null(strstr(text, "result=\"no_opinion\"} 0"));
    assert_line(text, "exhookd_calls_in_flight 0");
    assert_line(text, "exhookd_build_info{version=\"" EXHOOKD_VERSION "\"} 1");
    assert_line(text, "# TYPE grpc_server_handling_seconds histogram");
    assert_non_null(strstr(text, "exhookd_lua_memory_bytes{worker=\"2\"} "));
    assert_int_equal(promtool_check(w->fx.dir, text), 0);
    free(text);
    stop(w);
}

static void test_paths_other_than_metrics_are_not_found(void **state)
{
    (void)state;
    struct world *w = start("");
    char *text;
    assert_int_equal(http_get(srv_metrics_port(w->srv), "/", &text), 404);
    free(text);
    assert_int_equal(http_get(srv_metrics_port(w->srv), "/metrics/x", &text), 404);
    free(text);
    stop(w);
}

static void test_histograms_off_leaves_the_latency_out(void **state)
{
    (void)state;
    struct world *w = start("[metrics]\nhistograms = false\n");
    assert_int_equal(authenticate(w, "gooduser"), GRPC_STATUS_OK);
    char *text;
    assert_int_equal(http_get(srv_metrics_port(w->srv), "/metrics", &text), 200);
    assert_line(text, "grpc_server_handled_total{" AUTH_LABELS ",grpc_code=\"OK\"} 1");
    assert_null(strstr(text, "grpc_server_handling_seconds"));
    assert_int_equal(promtool_check(w->fx.dir, text), 0);
    free(text);
    stop(w);
}

/* Shards add up; a value equal to a bound is in that bucket (le); the
 * buckets are cumulative; a labelled counter at zero is left out. */
static void test_registry_sums_shards_and_fills_buckets(void **state)
{
    (void)state;
    struct mx_registry *r = mx_create(3);
    static const char *const sides[] = {"side=\"a\"", "side=\"b\""};
    struct mx_dim dim = {sides, 2};
    struct mx_family *c = mx_add(r, MX_COUNTER, "t_total", "A counter.", 1, &dim, 1, NULL, 0);
    struct mx_family *g = mx_add(r, MX_GAUGE, "t_gauge", "A gauge.", 1, NULL, 0, NULL, 0);
    static const int64_t bounds[] = {1000, 2000};
    struct mx_family *h =
        mx_add(r, MX_HISTOGRAM, "t_seconds", "A histogram.", 1e3, NULL, 0, bounds, 2);
    mx_inc(c, 0, 1, 2);
    mx_inc(c, 1, 1, 3);
    mx_inc(c, 2, 1, 4);
    mx_inc(g, 1, 0, 5);
    mx_inc(g, 2, 0, -7);
    mx_observe(h, 0, 0, 1000);
    mx_observe(h, 1, 0, 1500);
    mx_observe(h, 2, 0, 9000);
    char *text = mx_render(r, false, NULL);
    assert_string_equal(text, "# HELP t_total A counter.\n"
                              "# TYPE t_total counter\n"
                              "t_total{side=\"b\"} 9\n"
                              "# HELP t_gauge A gauge.\n"
                              "# TYPE t_gauge gauge\n"
                              "t_gauge -2\n"
                              "# HELP t_seconds A histogram.\n"
                              "# TYPE t_seconds histogram\n"
                              "t_seconds_bucket{le=\"1\"} 1\n"
                              "t_seconds_bucket{le=\"2\"} 2\n"
                              "t_seconds_bucket{le=\"+Inf\"} 3\n"
                              "t_seconds_sum 11.5\n"
                              "t_seconds_count 3\n");
    free(text);
    text = mx_render(r, true, NULL);
    assert_string_equal(text, "t_total{side=\"b\"} 9\n"
                              "t_gauge -2\n"
                              "t_seconds_sum 11.5\n"
                              "t_seconds_count 3\n");
    free(text);
    mx_destroy(r);
}

static char *render_nothing(void *ctx, size_t *len)
{
    (void)ctx;
    *len = 0;
    return strdup("");
}

/* The master's next child binds the port while the old one still serves
 * it: both with SO_REUSEPORT. Without it, the port is in use. */
static void test_endpoint_port_is_shared_only_with_reuse_port(void **state)
{
    (void)state;
    char err[256], listen[64];
    struct mxhttp *old = mxhttp_start("127.0.0.1:0", true, render_nothing, NULL, err, sizeof err);
    assert_non_null(old);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", mxhttp_port(old));
    struct mxhttp *next = mxhttp_start(listen, true, render_nothing, NULL, err, sizeof err);
    assert_non_null(next);
    assert_int_equal(mxhttp_port(next), mxhttp_port(old));
    mxhttp_stop(next);
    assert_null(mxhttp_start(listen, false, render_nothing, NULL, err, sizeof err));
    char want[160];
    snprintf(want, sizeof want, "cannot listen for metrics on %s: the address is in use", listen);
    assert_non_null(strstr(err, want));
    mxhttp_stop(old);
}

static void test_metrics_keys(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    cfg_defaults(&cfg);
    assert_null(cfg.metrics.listen); /* off by default */
    assert_true(cfg.metrics.histograms);
    assert_int_equal(cfg_load_string(&cfg,
                                     "[metrics]\nlisten = 127.0.0.1:9100\nhistograms = false\n",
                                     "t.ini", err, sizeof err),
                     0);
    assert_string_equal(cfg.metrics.listen, "127.0.0.1:9100");
    assert_false(cfg.metrics.histograms);
    cfg_free(&cfg);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_string(&cfg, "[metrics]\nlisten =\n", "t.ini", err, sizeof err), 0);
    assert_null(cfg.metrics.listen);
    assert_int_equal(cfg_load_string(&cfg, "[metrics]\nlisten = 9100\n", "t.ini", err, sizeof err),
                     -1);
    assert_string_equal(err, "t.ini:2: listen: expected host:port, got '9100'");
    cfg_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_sums_shards_and_fills_buckets),
        cmocka_unit_test(test_metrics_keys),
        cmocka_unit_test(test_scrape_counts_known_calls_exactly),
        cmocka_unit_test(test_paths_other_than_metrics_are_not_found),
        cmocka_unit_test(test_histograms_off_leaves_the_latency_out),
        cmocka_unit_test(test_endpoint_port_is_shared_only_with_reuse_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
