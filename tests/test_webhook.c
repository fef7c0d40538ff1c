/* The WebHook's delivery (webhook.c) against the tests' own receiver
 * (httpd.py /hook) on a loopback port: order per client while the
 * receiver is down and when it is back, the queue's limits, retries of
 * 5xx, no retry of 4xx, the flush at a stop. Requests are packed as a v3
 * broker sends message.publish, and rendered by webhook_render. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "httpd_fixture.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "webhook.h"
#include "webhook_rx.h"

struct world {
    struct fixture fx;
    struct httpd rx;
    bool rx_up;
    struct mx_registry *mx;
    struct webhook *wh;
    struct config cfg;
    struct cfg_webhook *wc; /* the [webhook] of cfg, which tests adjust */
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    fx_init(&w->fx);
    w->rx.port = httpd_closed_port();
    char ini[512], err[512];
    snprintf(ini, sizeof ini,
             "[webhook]\nurl = http://127.0.0.1:%d/hook\npool_size = 4\nrequest_timeout = 5s\n"
             "max_retries = 1000\nretry_interval = 50ms\nmax_retry_interval = 200ms\n"
             "rule.message.publish.1 = {\"action\": \"on_message_publish\"}\n",
             w->rx.port);
    cfg_defaults(&w->cfg);
    if (cfg_load_string(&w->cfg, ini, "test.ini", err, sizeof err) != 0)
        fail_msg("%s", err);
    w->wc = &w->cfg.webhook;
    w->mx = mx_create(1);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    webhook_free(w->wh);
    if (w->rx_up)
        httpd_stop(&w->rx);
    mx_destroy(w->mx);
    cfg_free(&w->cfg);
    fx_free(&w->fx);
    free(w);
    return 0;
}

static void receiver_up(struct world *w)
{
    httpd_restart(&w->rx, w->fx.dir, "rx");
    w->rx_up = true;
}

static void receiver_down(struct world *w)
{
    httpd_stop(&w->rx);
    w->rx_up = false;
}

static void start(struct world *w)
{
    char err[256];
    w->wh = webhook_start(w->wc, w->mx, err, sizeof err);
    if (!w->wh)
        fail_msg("%s", err);
}

/* A message.publish request from client `from` with payload `payload`. */
static void offer(struct world *w, const char *from, const char *payload)
{
    Emqx__Exhook__V3__RequestMeta meta = EMQX__EXHOOK__V3__REQUEST_META__INIT;
    meta.node = "emqx@127.0.0.1";
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.node = "emqx@127.0.0.1";
    msg.id = "0005F8F0A1B2C3D4";
    msg.qos = 1;
    msg.from = (char *)from;
    msg.topic = "sensors/1";
    msg.payload = (ProtobufCBinaryData){strlen(payload), (uint8_t *)payload};
    msg.timestamp = 1764756000000;
    Emqx__Exhook__V3__MessagePublishRequest req = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    req.message = &msg;
    req.meta = &meta;
    uint8_t buf[512];
    size_t len = protobuf_c_message_pack(&req.base, buf);
    webhook_offer(w->wh, 0, HOOK_MESSAGE_PUBLISH, 3, buf, len, webhook_now_ms());
}

/* The value of series `name` (with its labels) in the registry, 0 if absent. */
static long long metric(struct world *w, const char *name)
{
    char *text = mx_render(w->mx, false, NULL);
    assert_non_null(text);
    long long v = 0;
    size_t len = strlen(name);
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            v = atoll(line + len + 1);
    }
    free(text);
    return v;
}

static void wait_metric(struct world *w, const char *name, long long value, int seconds)
{
    for (int i = 0; i < seconds * 20 && metric(w, name) != value; i++)
        usleep(50000);
    assert_int_equal(metric(w, name), value);
}

static void wait_empty(struct world *w, int seconds)
{
    size_t events = 1, bytes = 1;
    for (int i = 0; i < seconds * 20 && events; i++) {
        webhook_depth(w->wh, &events, &bytes);
        if (events)
            usleep(50000);
    }
    assert_int_equal(events, 0);
    assert_int_equal(bytes, 0);
}

/* The recorded lines of `text`, checked to be each client's payloads
 * `from`, from + 1, ... in order; returns how many each client had. */
static void check_order(char *text, const char *const *clients, int n_clients, int from, int *count)
{
    for (int c = 0; c < n_clients; c++)
        count[c] = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char who[32];
        int n, c = 0;
        assert_int_equal(sscanf(line, "%31s %d", who, &n), 2);
        while (c < n_clients && strcmp(who, clients[c]) != 0)
            c++;
        assert_true(c < n_clients);
        assert_int_equal(n, from + count[c]);
        count[c]++;
    }
}

/* The receiver goes down while events come, then is back: every event
 * arrives, each client's in the order offered. */
static void test_order_across_an_outage(void **state)
{
    struct world *w = *state;
    static const char *const clients[] = {"alpha", "beta", "gamma"};
    char payload[16];
    int count[3];
    receiver_up(w);
    start(w);
    for (int i = 0; i < 5; i++) {
        for (int c = 0; c < 3; c++) {
            snprintf(payload, sizeof payload, "%d", i);
            offer(w, clients[c], payload);
        }
    }
    char *text = rx_wait_recorded(w->rx.port, 15, 30);
    check_order(text, clients, 3, 0, count);
    free(text);
    wait_empty(w, 10);
    receiver_down(w);
    for (int i = 5; i < 20; i++) {
        for (int c = 0; c < 3; c++) {
            snprintf(payload, sizeof payload, "%d", i);
            offer(w, clients[c], payload);
        }
    }
    /* Failed connections and retries meanwhile; nothing is lost. */
    for (int i = 0; i < 200 && metric(w, "exhookd_webhook_retried_total") < 6; i++)
        usleep(50000);
    assert_true(metric(w, "exhookd_webhook_retried_total") >= 6);
    size_t events, bytes;
    webhook_depth(w->wh, &events, &bytes);
    assert_int_equal(events, 45);
    receiver_up(w);
    text = rx_wait_recorded(w->rx.port, 45, 30);
    check_order(text, clients, 3, 5, count);
    free(text);
    for (int c = 0; c < 3; c++)
        assert_int_equal(count[c], 15);
    wait_empty(w, 10);
    assert_int_equal(metric(w, "exhookd_webhook_sent_total"), 60);
    assert_int_equal(metric(w, "exhookd_webhook_queue_events"), 0);
    assert_int_equal(metric(w, "exhookd_webhook_queue_bytes"), 0);
}

/* Clients in parallel, up to pool_size POSTs at once; one at a time for
 * each client: no client's second event goes before every first one. */
static void test_clients_in_parallel_one_post_each(void **state)
{
    struct world *w = *state;
    w->wc->pool_size = 3;
    receiver_up(w);
    rx_mode(w->rx.port, 200, 300);
    start(w);
    static const char *const clients[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 2; i++) {
        for (int c = 0; c < 6; c++)
            offer(w, clients[c], i ? "1" : "0");
    }
    char *text = rx_wait_recorded(w->rx.port, 12, 30);
    /* Each client's "1" waits for its "0"; three "0"s go at once, so the
     * first three POSTs are "0"s. */
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line && n < 3;
         line = strtok_r(NULL, "\n", &save), n++)
        assert_string_equal(line + 2, "0");
    free(text);
    char *most = rx_request(w->rx.port, "GET", "/recorded/concurrency", NULL);
    assert_string_equal(most, "3");
    free(most);
    int count[6];
    text = rx_request(w->rx.port, "GET", "/recorded", NULL);
    check_order(text, clients, 6, 0, count);
    free(text);
    for (int c = 0; c < 6; c++)
        assert_int_equal(count[c], 2);
}

/* A queue of N events, receiver down, N + K offered: K dropped, counted,
 * and the N arrive once it is back. */
static void test_queue_full_drops_the_excess(void **state)
{
    struct world *w = *state;
    w->wc->queue_events = 10;
    start(w);
    char payload[16];
    struct capture cap;
    log_set_level(LOG_WARN);
    capture_begin(&cap, w->fx.dir);
    for (int i = 0; i < 15; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        offer(w, i % 2 ? "odd" : "even", payload);
    }
    char *log = capture_end(&cap);
    log_set_level(LOG_ERROR);
    assert_int_equal(metric(w, "exhookd_webhook_dropped_total{reason=\"queue_full\"}"), 5);
    /* The first drop is told at once; the next ones wait for the next line. */
    const char *line = strstr(log, "webhook: 1 event dropped (queue_full) since start: the last "
                                   "one message.publish; the queue holds at most 10 events");
    assert_non_null(line);
    assert_non_null(strchr(line, '\n'));
    assert_null(strstr(strchr(line, '\n'), "dropped (queue_full)"));
    free(log);
    assert_int_equal(metric(w, "exhookd_webhook_queue_events"), 10);
    receiver_up(w);
    char *text = rx_wait_recorded(w->rx.port, 10, 30);
    wait_empty(w, 10);
    usleep(200000);
    free(text);
    text = rx_request(w->rx.port, "GET", "/recorded", NULL);
    /* Nothing more came than what the queue held: the first ten. */
    assert_int_equal(rx_count_lines(text), 10);
    assert_non_null(strstr(text, "even 0\n"));
    assert_non_null(strstr(text, "odd 9\n"));
    assert_null(strstr(text, " 10\n"));
    free(text);
    assert_int_equal(metric(w, "exhookd_webhook_sent_total"), 10);
}

/* The byte limit: events that would pass it are dropped too. */
static void test_queue_bytes_limit(void **state)
{
    struct world *w = *state;
    start(w);
    offer(w, "probe", "x");
    size_t events, bytes;
    webhook_depth(w->wh, &events, &bytes);
    assert_int_equal(events, 1);
    webhook_free(w->wh);
    mx_destroy(w->mx);
    w->mx = mx_create(1);
    /* Room for three such requests, not four. */
    w->wc->queue_bytes = bytes * 3 + bytes / 2;
    start(w);
    for (int i = 0; i < 5; i++)
        offer(w, "probe", "x");
    webhook_depth(w->wh, &events, &bytes);
    assert_int_equal(events, 3);
    assert_int_equal(metric(w, "exhookd_webhook_dropped_total{reason=\"queue_full\"}"), 2);
}

/* A 4xx answer is final: one POST, counted as rejected. */
static void test_4xx_is_not_retried(void **state)
{
    struct world *w = *state;
    receiver_up(w);
    rx_mode(w->rx.port, 404, 0);
    start(w);
    offer(w, "c1", "once");
    wait_metric(w, "exhookd_webhook_dropped_total{reason=\"rejected\"}", 1, 10);
    wait_empty(w, 5);
    /* Retries, had there been any, would have come 50 ms apart. */
    usleep(400000);
    char *text = rx_request(w->rx.port, "GET", "/recorded", NULL);
    assert_string_equal(text, "c1 once\n");
    free(text);
    assert_int_equal(metric(w, "exhookd_webhook_retried_total"), 0);
    assert_int_equal(metric(w, "exhookd_webhook_sent_total"), 0);
}

/* A 5xx answer is retried max_retries times, then the POST is dropped;
 * the client's next event goes after it. */
static void test_5xx_is_retried_max_retries_times(void **state)
{
    struct world *w = *state;
    w->wc->max_retries = 3;
    w->wc->retry_interval_ms = 20;
    w->wc->max_retry_interval_ms = 80;
    receiver_up(w);
    rx_mode(w->rx.port, 503, 0);
    start(w);
    offer(w, "c1", "first");
    wait_metric(w, "exhookd_webhook_dropped_total{reason=\"retries_exhausted\"}", 1, 10);
    rx_mode(w->rx.port, 200, 0);
    offer(w, "c1", "second");
    char *text = rx_wait_recorded(w->rx.port, 5, 10);
    assert_string_equal(text, "c1 first\nc1 first\nc1 first\nc1 first\nc1 second\n");
    free(text);
    /* Recorded as it arrives, counted once answered. */
    wait_metric(w, "exhookd_webhook_sent_total", 1, 10);
    assert_int_equal(metric(w, "exhookd_webhook_retried_total"), 3);
    wait_empty(w, 5);
}

/* A receiver that does not answer within request_timeout: retried. */
static void test_timeout_is_retried(void **state)
{
    struct world *w = *state;
    w->wc->request_timeout_ms = 200;
    w->wc->max_retries = 1;
    w->wc->retry_interval_ms = 20;
    receiver_up(w);
    rx_mode(w->rx.port, 200, 1000);
    start(w);
    offer(w, "c1", "slow");
    wait_metric(w, "exhookd_webhook_dropped_total{reason=\"retries_exhausted\"}", 1, 10);
    assert_int_equal(metric(w, "exhookd_webhook_retried_total"), 1);
}

/* A request that does not decode is dropped and counted, and takes
 * nothing else with it. */
static void test_an_undecodable_request_is_dropped(void **state)
{
    struct world *w = *state;
    receiver_up(w);
    start(w);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07, 0x01};
    webhook_offer(w->wh, 0, HOOK_MESSAGE_PUBLISH, 3, garbage, sizeof garbage, webhook_now_ms());
    offer(w, "c1", "fine");
    char *text = rx_wait_recorded(w->rx.port, 1, 10);
    assert_string_equal(text, "c1 fine\n");
    free(text);
    wait_metric(w, "exhookd_webhook_dropped_total{reason=\"undecodable\"}", 1, 10);
    wait_empty(w, 5);
}

/* At a stop the queue is delivered first; what is left at the deadline is
 * counted and logged. */
static void test_stop_flushes_the_queue(void **state)
{
    struct world *w = *state;
    w->wc->pool_size = 1;
    receiver_up(w);
    rx_mode(w->rx.port, 200, 100);
    start(w);
    for (int i = 0; i < 5; i++)
        offer(w, "c1", "flushed");
    webhook_stop(w->wh, loop_now_ns() + INT64_C(20) * 1000000000);
    char *text = rx_request(w->rx.port, "GET", "/recorded", NULL);
    assert_int_equal(rx_count_lines(text), 5);
    free(text);
    assert_int_equal(metric(w, "exhookd_webhook_sent_total"), 5);
    /* After the stop, offers are counted and dropped. */
    offer(w, "c1", "late");
    assert_int_equal(metric(w, "exhookd_webhook_dropped_total{reason=\"shutdown\"}"), 1);
}

static void test_stop_gives_up_at_its_deadline(void **state)
{
    struct world *w = *state;
    start(w); /* the receiver stays down */
    for (int i = 0; i < 7; i++)
        offer(w, i % 2 ? "a" : "b", "never");
    struct capture cap;
    log_set_level(LOG_WARN);
    capture_begin(&cap, w->fx.dir);
    int64_t t0 = loop_now_ns();
    webhook_stop(w->wh, t0 + 300 * 1000000);
    int64_t took = loop_now_ns() - t0;
    char *log = capture_end(&cap);
    log_set_level(LOG_ERROR);
    assert_true(took >= 250 * 1000000 && took < INT64_C(5) * 1000000000);
    assert_non_null(strstr(log, "webhook: stopping with 7 events"));
    free(log);
    assert_int_equal(metric(w, "exhookd_webhook_dropped_total{reason=\"shutdown\"}"), 7);
    size_t events, bytes;
    webhook_depth(w->wh, &events, &bytes);
    assert_int_equal(events, 0);
}

/* A reload's headers and url apply to the next POSTs. */
static void test_reconfigure_takes_new_headers(void **state)
{
    struct world *w = *state;
    receiver_up(w);
    start(w);
    offer(w, "c1", "before");
    free(rx_wait_recorded(w->rx.port, 1, 10));
    struct cfg_webhook_header h = {"X-Tenant", "blue"};
    struct cfg_webhook next = *w->wc;
    next.headers = &h;
    next.n_headers = 1;
    webhook_reconfigure(w->wh, &next);
    offer(w, "c1", "after");
    free(rx_wait_recorded(w->rx.port, 2, 10));
    char *v0 = rx_request(w->rx.port, "GET", "/recorded/header/0/x-tenant", NULL);
    char *v1 = rx_request(w->rx.port, "GET", "/recorded/header/1/x-tenant", NULL);
    char *ct = rx_request(w->rx.port, "GET", "/recorded/header/1/content-type", NULL);
    assert_string_equal(v0, "");
    assert_string_equal(v1, "blue");
    assert_string_equal(ct, "application/json");
    free(v0);
    free(v1);
    free(ct);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_across_an_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_in_parallel_one_post_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_drops_the_excess, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bytes_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_4xx_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_5xx_is_retried_max_retries_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_undecodable_request_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_flushes_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_gives_up_at_its_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconfigure_takes_new_headers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
