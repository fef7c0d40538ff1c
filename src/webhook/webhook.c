#define _GNU_SOURCE /* pthread_setname_np */
#include "webhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "hash.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "ratelimit.h"
#include "webhook_body.h"

/* How much nicer than the workers the delivery thread runs. */
#define WEBHOOK_NICE 10

/* At most one line per drop reason per interval. */
#define DROP_LOG_INTERVAL_NS (INT64_C(10) * 1000000000)

static const char *const drop_names[WEBHOOK_DROP_COUNT] = {
    [WEBHOOK_DROP_QUEUE_FULL] = "queue_full", [WEBHOOK_DROP_RETRIES] = "retries_exhausted",
    [WEBHOOK_DROP_REJECTED] = "rejected",     [WEBHOOK_DROP_UNDECODABLE] = "undecodable",
    [WEBHOOK_DROP_UNSENDABLE] = "unsendable", [WEBHOOK_DROP_SHUTDOWN] = "shutdown",
};

static const char *const drop_labels[WEBHOOK_DROP_COUNT] = {
    "reason=\"queue_full\"",  "reason=\"retries_exhausted\"", "reason=\"rejected\"",
    "reason=\"undecodable\"", "reason=\"unsendable\"",        "reason=\"shutdown\"",
};

/* One offered event, from the offer until each of its bodies is posted or
 * given up: what the queue's limits count. */
struct item {
    struct item *next; /* in the offered list */
    enum hook_id hook;
    int version;
    int64_t ts_ms;
    size_t len;
    size_t posts_left;
    struct webhook_event ev; /* once rendered */
    uint8_t req[];
};

/* One body to POST, in its client's lane. */
struct post {
    struct post *next;
    struct item *item;
    size_t body; /* index into item->ev.bodies */
    unsigned attempts;
};

/* The events of one client id: at most one POST in flight (or backing off)
 * at a time, so they arrive in order. */
struct lane {
    struct webhook *wh;
    struct lane *hash_next;
    struct lane *ready_next;
    char *clientid;
    struct post *head, *tail;
    bool busy;  /* its head is in flight or waits for a retry */
    bool ready; /* on the ready list */
    struct http_req *req;
    struct loop_timer backoff;
};

/* What the delivery thread posts with: a copy of the settings and the
 * request headers made from them. */
struct conf {
    struct cfg_webhook c;
    struct http_header *headers; /* Content-Type, then the configured ones */
    size_t n_headers;
};

struct webhook {
    /* Shared with the offering threads, under `lock`. */
    pthread_mutex_t lock;
    struct item *in_head, *in_tail; /* offered, not yet taken by the thread */
    struct conf *pending;           /* a reload's settings, not yet taken */
    size_t events, bytes;           /* accepted, not yet done */
    size_t max_events, max_bytes;
    /* The thread has taken every offered event and waits: the next offer
     * wakes it. While it renders, offers only join the list. */
    bool asleep;
    bool closed; /* stopping: offers are dropped */
    bool stopping;
    int64_t stop_at_ns;
    int wake_fd;

    /* The delivery thread's own. */
    pthread_t thread;
    bool started;
    struct net *net;
    struct conf *conf;
    unsigned pool_size, in_flight;
    struct lane **buckets;
    size_t n_buckets, n_lanes;
    uint32_t seed;              /* of the lanes' hash: client ids are chosen by clients */
    struct lane *ready_head, *ready_tail;
    struct loop_timer stop_timer;
    bool done;

    struct mx_family *sent, *retried, *dropped, *queue_events, *queue_bytes;
    struct ratelimit drop_lines[WEBHOOK_DROP_COUNT];
};

int64_t webhook_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Settings. The thread keeps a copy of its own, so that a reload on
 * another thread never changes what it is reading. */

static void conf_free(struct conf *k)
{
    if (!k)
        return;
    cfg_webhook_free(&k->c);
    free(k->headers);
    free(k);
}

static bool dup_text(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

static struct conf *conf_copy(const struct cfg_webhook *src)
{
    struct conf *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    struct cfg_webhook *c = &k->c;
    *c = *src;
    c->url = c->ssl.cacertfile = c->ssl.certfile = c->ssl.keyfile = NULL;
    c->headers = NULL;
    c->rules = NULL;
    c->n_headers = c->n_rules = 0;
    bool ok = dup_text(&c->url, src->url) && dup_text(&c->ssl.cacertfile, src->ssl.cacertfile) &&
              dup_text(&c->ssl.certfile, src->ssl.certfile) &&
              dup_text(&c->ssl.keyfile, src->ssl.keyfile);
    if (ok && src->n_headers && !(c->headers = calloc(src->n_headers, sizeof *c->headers)))
        ok = false;
    for (; ok && c->n_headers < src->n_headers; c->n_headers++) {
        const struct cfg_webhook_header *h = &src->headers[c->n_headers];
        ok = dup_text(&c->headers[c->n_headers].name, h->name) &&
             dup_text(&c->headers[c->n_headers].value, h->value);
    }
    if (ok && src->n_rules && !(c->rules = calloc(src->n_rules, sizeof *c->rules)))
        ok = false;
    for (; ok && c->n_rules < src->n_rules; c->n_rules++) {
        const struct cfg_webhook_rule *r = &src->rules[c->n_rules];
        c->rules[c->n_rules].hook = r->hook;
        ok = dup_text(&c->rules[c->n_rules].action, r->action) &&
             dup_text(&c->rules[c->n_rules].topic, r->topic) &&
             dup_text(&c->rules[c->n_rules].name, r->name);
    }
    /* The configured headers, after ours: a configured Content-Type is
     * sent instead of ours (curl sends the last one). */
    k->n_headers = c->n_headers + 1;
    if (ok && !(k->headers = calloc(k->n_headers, sizeof *k->headers)))
        ok = false;
    if (ok) {
        k->headers[0] = (struct http_header){"Content-Type", "application/json"};
        for (size_t i = 0; i < c->n_headers; i++)
            k->headers[i + 1] = (struct http_header){c->headers[i].name, c->headers[i].value};
    }
    if (!ok) {
        conf_free(k);
        return NULL;
    }
    return k;
}

/* Counting and telling. */

static void count_depth(struct webhook *wh, int shard, int64_t events, int64_t bytes)
{
    mx_inc(wh->queue_events, shard, 0, events);
    mx_inc(wh->queue_bytes, shard, 0, bytes);
}

static void count_drop(struct webhook *wh, int shard, enum webhook_drop why, uint64_t n,
                       const char *detail)
{
    mx_inc(wh->dropped, shard, (size_t)why, (int64_t)n);
    bool first = false;
    uint64_t since = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t hit = ratelimit_hit(&wh->drop_lines[why], loop_now_ns(), &first);
        since = hit ? hit : since;
    }
    if (since)
        log_warn("webhook: %llu event%s dropped (%s) since %s: %s", (unsigned long long)since,
                 since == 1 ? "" : "s", drop_names[why], first ? "start" : "the last line about it",
                 detail);
}

static void register_metrics(struct webhook *wh, struct mx_registry *mx)
{
    if (!mx)
        return;
    wh->sent =
        mx_add(mx, MX_COUNTER, "exhookd_webhook_sent_total",
               "WebHook POSTs the receiver accepted (status below 400).", 1, NULL, 0, NULL, 0);
    wh->retried = mx_add(mx, MX_COUNTER, "exhookd_webhook_retried_total",
                         "WebHook POSTs retried after a failure (no connection, timeout, 5xx).", 1,
                         NULL, 0, NULL, 0);
    wh->dropped = mx_add(mx, MX_COUNTER, "exhookd_webhook_dropped_total",
                         "WebHook events (queue_full) or POSTs given up, by reason.", 1,
                         &(struct mx_dim){drop_labels, WEBHOOK_DROP_COUNT}, 1, NULL, 0);
    wh->queue_events =
        mx_add(mx, MX_GAUGE, "exhookd_webhook_queue_events",
               "WebHook events accepted and not yet delivered or given up.", 1, NULL, 0, NULL, 0);
    wh->queue_bytes =
        mx_add(mx, MX_GAUGE, "exhookd_webhook_queue_bytes",
               "Request bytes of the events in the WebHook's queue.", 1, NULL, 0, NULL, 0);
}

/* The offering side. */

static void wake(struct webhook *wh)
{
    uint64_t one = 1;
    if (write(wh->wake_fd, &one, sizeof one) != sizeof one)
        log_error("webhook: cannot wake the delivery thread: %s", strerror(errno));
}

void webhook_offer(struct webhook *wh, int shard, enum hook_id hook, int version,
                   const uint8_t *req, size_t len, int64_t ts_ms)
{
    struct item *it = malloc(sizeof *it + len);
    if (it) {
        *it = (struct item){.hook = hook, .version = version, .ts_ms = ts_ms, .len = len};
        memcpy(it->req, req, len);
    }
    pthread_mutex_lock(&wh->lock);
    enum webhook_drop why = WEBHOOK_DROP_COUNT;
    if (wh->closed)
        why = WEBHOOK_DROP_SHUTDOWN;
    else if (!it || wh->events >= wh->max_events || wh->bytes + len > wh->max_bytes)
        why = WEBHOOK_DROP_QUEUE_FULL;
    bool wake_it = false;
    size_t max_events = wh->max_events, max_bytes = wh->max_bytes;
    if (why == WEBHOOK_DROP_COUNT) {
        wh->events++;
        wh->bytes += len;
        if (wh->in_tail)
            wh->in_tail->next = it;
        else
            wh->in_head = it;
        wh->in_tail = it;
        wake_it = wh->asleep;
        wh->asleep = false;
    }
    pthread_mutex_unlock(&wh->lock);
    if (why != WEBHOOK_DROP_COUNT) {
        char detail[160];
        if (why == WEBHOOK_DROP_SHUTDOWN)
            snprintf(detail, sizeof detail, "exhookd is stopping");
        else
            snprintf(detail, sizeof detail,
                     "the last one %s; the queue holds at most %zu events and %zu bytes",
                     it ? hooks_name(hook, version) : "(out of memory)", max_events, max_bytes);
        free(it);
        count_drop(wh, shard, why, 1, detail);
        return;
    }
    count_depth(wh, shard, 1, (int64_t)len);
    if (wake_it)
        wake(wh);
}

void webhook_depth(struct webhook *wh, size_t *events, size_t *bytes)
{
    pthread_mutex_lock(&wh->lock);
    *events = wh->events;
    *bytes = wh->bytes;
    pthread_mutex_unlock(&wh->lock);
}

/* An event is done with: its place in the queue is free again. */
static void item_done(struct webhook *wh, struct item *it)
{
    pthread_mutex_lock(&wh->lock);
    wh->events--;
    wh->bytes -= it->len;
    pthread_mutex_unlock(&wh->lock);
    count_depth(wh, 0, -1, -(int64_t)it->len);
    webhook_event_free(&it->ev);
    free(it);
}

/* Lanes, by client id. */

static size_t hash_text(const struct webhook *wh, const char *s)
{
    return hash_fnv1a(wh->seed, s, strlen(s));
}

static void on_backoff(struct loop_timer *t);

static bool grow_buckets(struct webhook *wh)
{
    size_t n = wh->n_buckets ? wh->n_buckets * 2 : 64;
    struct lane **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < wh->n_buckets; i++) {
        for (struct lane *l = wh->buckets[i], *next; l; l = next) {
            next = l->hash_next;
            size_t k = hash_text(wh, l->clientid) & (n - 1);
            l->hash_next = b[k];
            b[k] = l;
        }
    }
    free(wh->buckets);
    wh->buckets = b;
    wh->n_buckets = n;
    return true;
}

static struct lane *lane_get(struct webhook *wh, const char *clientid)
{
    if (wh->n_buckets) {
        for (struct lane *l = wh->buckets[hash_text(wh, clientid) & (wh->n_buckets - 1)]; l;
             l = l->hash_next)
            if (strcmp(l->clientid, clientid) == 0)
                return l;
    }
    if (wh->n_lanes >= wh->n_buckets && !grow_buckets(wh))
        return NULL;
    struct lane *l = calloc(1, sizeof *l);
    if (!l || !(l->clientid = strdup(clientid))) {
        free(l);
        return NULL;
    }
    l->wh = wh;
    loop_timer_init(&l->backoff, on_backoff, l);
    size_t k = hash_text(wh, clientid) & (wh->n_buckets - 1);
    l->hash_next = wh->buckets[k];
    wh->buckets[k] = l;
    wh->n_lanes++;
    return l;
}

static void lane_free(struct webhook *wh, struct lane *l)
{
    struct lane **p = &wh->buckets[hash_text(wh, l->clientid) & (wh->n_buckets - 1)];
    while (*p != l)
        p = &(*p)->hash_next;
    *p = l->hash_next;
    wh->n_lanes--;
    if (l->req)
        http_cancel(l->req);
    loop_timer_stop(wh->net->loop, &l->backoff);
    free(l->clientid);
    free(l);
}

static void make_ready(struct webhook *wh, struct lane *l)
{
    if (l->ready)
        return;
    l->ready = true;
    l->ready_next = NULL;
    if (wh->ready_tail)
        wh->ready_tail->ready_next = l;
    else
        wh->ready_head = l;
    wh->ready_tail = l;
}

/* Posting. */

static void pump(struct webhook *wh);

/* Takes the lane's head off; its event is done with its last post. */
static void post_pop(struct webhook *wh, struct lane *l)
{
    struct post *p = l->head;
    l->head = p->next;
    if (!l->head)
        l->tail = NULL;
    if (--p->item->posts_left == 0)
        item_done(wh, p->item);
    free(p);
}

/* The lane's head is done with (posted or given up): the next one may go. */
static void post_done(struct webhook *wh, struct lane *l)
{
    post_pop(wh, l);
    l->busy = false;
    if (l->head)
        make_ready(wh, l);
    else
        lane_free(wh, l);
}

static void drop_post(struct webhook *wh, struct lane *l, enum webhook_drop why, const char *what)
{
    char detail[512];
    snprintf(detail, sizeof detail, "the last one %s of client %s: %s",
             hooks_name(l->head->item->hook, l->head->item->version), l->clientid, what);
    count_drop(wh, 0, why, 1, detail);
    post_done(wh, l);
}

static int64_t backoff_ms(const struct cfg_webhook *c, unsigned attempts)
{
    int64_t ms = c->retry_interval_ms;
    for (unsigned i = 1; i < attempts && ms < c->max_retry_interval_ms; i++)
        ms *= 2;
    return ms < c->max_retry_interval_ms ? ms : c->max_retry_interval_ms;
}

static void on_posted(void *ctx, struct http_response *res)
{
    struct lane *l = ctx;
    struct webhook *wh = l->wh;
    const struct cfg_webhook *c = &wh->conf->c;
    l->req = NULL;
    wh->in_flight--;
    char what[300];
    if (res->err == HTTP_OK)
        snprintf(what, sizeof what, "status %ld", res->status);
    else
        snprintf(what, sizeof what, "%s", res->error);
    if (res->err == HTTP_OK && res->status < 400) {
        mx_inc(wh->sent, 0, 0, 1);
        post_done(wh, l);
    } else if (res->err == HTTP_OK && res->status < 500) {
        drop_post(wh, l, WEBHOOK_DROP_REJECTED, what);
    } else if (l->head->attempts > c->max_retries) {
        drop_post(wh, l, WEBHOOK_DROP_RETRIES, what);
    } else {
        /* The lane waits: a later event of this client must not overtake. */
        mx_inc(wh->retried, 0, 0, 1);
        log_debug("webhook: retrying a POST for client %s in %lld ms: %s", l->clientid,
                  (long long)backoff_ms(c, l->head->attempts), what);
        loop_timer_start(wh->net->loop, &l->backoff,
                         loop_now_ns() + backoff_ms(c, l->head->attempts) * 1000000);
    }
    http_response_free(res);
    pump(wh);
}

static void on_backoff(struct loop_timer *t)
{
    struct lane *l = t->ctx;
    l->busy = false;
    make_ready(l->wh, l);
    pump(l->wh);
}

static void start_post(struct webhook *wh, struct lane *l)
{
    const struct conf *k = wh->conf;
    struct post *p = l->head;
    const struct webhook_event *ev = &p->item->ev;
    struct http_request spec = {
        .method = "POST",
        .url = k->c.url,
        .headers = k->headers,
        .n_headers = k->n_headers,
        .body = ev->bodies[p->body],
        .body_len = ev->lens[p->body],
        .timeout_ms = k->c.request_timeout_ms,
        .ca_file = k->c.ssl.cacertfile,
        .cert_file = k->c.ssl.certfile,
        .key_file = k->c.ssl.keyfile,
        .insecure = !k->c.ssl.verify,
    };
    char err[256];
    p->attempts++;
    l->busy = true;
    if (!(l->req = http_start(wh->net->http, &spec, on_posted, l, err, sizeof err))) {
        drop_post(wh, l, WEBHOOK_DROP_UNSENDABLE, err);
        return;
    }
    wh->in_flight++;
}

/* Starts the heads of ready lanes while fewer than pool_size are in flight. */
static void pump(struct webhook *wh)
{
    while (wh->in_flight < wh->pool_size && wh->ready_head) {
        struct lane *l = wh->ready_head;
        wh->ready_head = l->ready_next;
        if (!wh->ready_head)
            wh->ready_tail = NULL;
        l->ready = false;
        start_post(wh, l);
    }
}

/* Rendering what was offered. */

static void render(struct webhook *wh, struct item *it)
{
    char err[256];
    if (webhook_render(&wh->conf->c, it->hook, it->version, it->req, it->len, it->ts_ms, &it->ev,
                       err, sizeof err) != 0) {
        char detail[400];
        snprintf(detail, sizeof detail, "the last one %s: %s", hooks_name(it->hook, it->version),
                 err);
        count_drop(wh, 0, WEBHOOK_DROP_UNDECODABLE, 1, detail);
        item_done(wh, it);
        return;
    }
    struct lane *l = it->ev.n_bodies ? lane_get(wh, it->ev.clientid ? it->ev.clientid : "") : NULL;
    if (it->ev.n_bodies && !l) {
        count_drop(wh, 0, WEBHOOK_DROP_UNSENDABLE, 1, "out of memory");
        item_done(wh, it);
        return;
    }
    it->posts_left = it->ev.n_bodies;
    for (size_t i = 0; i < it->ev.n_bodies; i++) {
        struct post *p = calloc(1, sizeof *p);
        if (!p) {
            it->posts_left -= it->ev.n_bodies - i;
            count_drop(wh, 0, WEBHOOK_DROP_UNSENDABLE, it->ev.n_bodies - i, "out of memory");
            break;
        }
        *p = (struct post){.item = it, .body = i};
        if (l->tail)
            l->tail->next = p;
        else
            l->head = p;
        l->tail = p;
    }
    if (it->posts_left == 0) {
        item_done(wh, it);
        if (l && !l->head)
            lane_free(wh, l);
        return;
    }
    if (!l->busy)
        make_ready(wh, l);
}

static void take_conf(struct webhook *wh, struct conf *k)
{
    conf_free(wh->conf);
    wh->conf = k;
}

/* Woken: what was offered, a reload's settings, or the stop. */
static void on_wake(void *ctx, int fd, int events)
{
    (void)events;
    struct webhook *wh = ctx;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_error("webhook: reading the wake-up descriptor: %s", strerror(errno));
    for (;;) {
        pthread_mutex_lock(&wh->lock);
        struct item *it = wh->in_head;
        wh->in_head = wh->in_tail = NULL;
        struct conf *k = wh->pending;
        wh->pending = NULL;
        wh->asleep = !it;
        pthread_mutex_unlock(&wh->lock);
        if (k)
            take_conf(wh, k);
        if (!it)
            break;
        while (it) {
            struct item *next = it->next;
            render(wh, it);
            it = next;
        }
        pump(wh);
    }
    pthread_mutex_lock(&wh->lock);
    bool stopping = wh->stopping;
    int64_t stop_at = wh->stop_at_ns;
    pthread_mutex_unlock(&wh->lock);
    if (stopping && !loop_timer_started(&wh->stop_timer))
        loop_timer_start(wh->net->loop, &wh->stop_timer, stop_at);
}

static void on_stop_time(struct loop_timer *t)
{
    struct webhook *wh = t->ctx;
    wh->done = true;
}

/* Whatever is left at the end (counted as dropped by the caller). */
static void discard_all(struct webhook *wh)
{
    wh->ready_head = wh->ready_tail = NULL;
    for (size_t i = 0; i < wh->n_buckets; i++) {
        while (wh->buckets[i]) {
            struct lane *l = wh->buckets[i];
            while (l->head)
                post_pop(wh, l);
            lane_free(wh, l);
        }
    }
    pthread_mutex_lock(&wh->lock);
    struct item *it = wh->in_head;
    wh->in_head = wh->in_tail = NULL;
    pthread_mutex_unlock(&wh->lock);
    while (it) {
        struct item *next = it->next;
        item_done(wh, it);
        it = next;
    }
}

static bool finished(struct webhook *wh)
{
    pthread_mutex_lock(&wh->lock);
    bool over = wh->stopping && wh->events == 0;
    pthread_mutex_unlock(&wh->lock);
    return over || wh->done;
}

static void *delivery_main(void *arg)
{
    struct webhook *wh = arg;
    log_set_thread_name("webhook");
    /* Its own name in top -H and /proc, for its CPU time. */
    pthread_setname_np(pthread_self(), "exhookd-webhook");
    /* When the CPU is short, the broker's calls go first: the queue is
     * there to wait. Linux applies a nice value to one thread. */
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), nice_now + WEBHOOK_NICE) != 0)
        log_debug("webhook: cannot lower the delivery thread's priority: %s", strerror(errno));
    while (!finished(wh))
        loop_run_once(wh->net->loop, -1);
    size_t left, bytes;
    webhook_depth(wh, &left, &bytes);
    if (left) {
        log_warn("webhook: stopping with %zu event%s (%zu bytes) not delivered: shutdown_timeout "
                 "is over",
                 left, left == 1 ? "" : "s", bytes);
        mx_inc(wh->dropped, 0, WEBHOOK_DROP_SHUTDOWN, (int64_t)left);
    }
    discard_all(wh);
    loop_timer_stop(wh->net->loop, &wh->stop_timer);
    return NULL;
}

struct webhook *webhook_start(const struct cfg_webhook *cfg, struct mx_registry *mx, char *err,
                              size_t errlen)
{
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&wh->lock, NULL);
    wh->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    wh->asleep = true;
    wh->max_events = cfg->queue_events;
    wh->max_bytes = cfg->queue_bytes;
    wh->pool_size = cfg->pool_size ? cfg->pool_size : 1;
    for (int i = 0; i < WEBHOOK_DROP_COUNT; i++)
        ratelimit_init(&wh->drop_lines[i], DROP_LOG_INTERVAL_NS);
    register_metrics(wh, mx);
    if (wh->wake_fd < 0) {
        errbuf_set(err, errlen, "webhook: cannot create an eventfd: %s", strerror(errno));
        goto fail;
    }
    if (!(wh->conf = conf_copy(cfg))) {
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    char why[256];
    if (!(wh->net = net_open(wh->pool_size, why, sizeof why))) {
        errbuf_set(err, errlen, "webhook: %s", why);
        goto fail;
    }
    loop_timer_init(&wh->stop_timer, on_stop_time, wh);
    if (loop_watch(wh->net->loop, wh->wake_fd, LOOP_READ, on_wake, wh) != 0) {
        errbuf_set(err, errlen, "webhook: cannot watch its wake-up descriptor");
        goto fail;
    }
    if (getrandom(&wh->seed, sizeof wh->seed, GRND_NONBLOCK) != sizeof wh->seed)
        wh->seed = (uint32_t)webhook_now_ms();
    int rc = pthread_create(&wh->thread, NULL, delivery_main, wh);
    if (rc != 0) {
        errbuf_set(err, errlen, "webhook: cannot start the delivery thread: %s", strerror(rc));
        goto fail;
    }
    wh->started = true;
    return wh;
fail:
    webhook_free(wh);
    return NULL;
}

void webhook_reconfigure(struct webhook *wh, const struct cfg_webhook *cfg)
{
    struct conf *k = conf_copy(cfg);
    if (!k) {
        log_error("webhook: out of memory taking the new [webhook] settings; the old ones stay");
        return;
    }
    if (cfg->pool_size != wh->pool_size)
        log_warn("reload: [webhook] pool_size takes effect after a restart");
    pthread_mutex_lock(&wh->lock);
    conf_free(wh->pending);
    wh->pending = k;
    wh->max_events = cfg->queue_events;
    wh->max_bytes = cfg->queue_bytes;
    pthread_mutex_unlock(&wh->lock);
    wake(wh);
}

void webhook_stop(struct webhook *wh, int64_t deadline_ns)
{
    if (!wh || !wh->started)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->closed = wh->stopping = true;
    wh->stop_at_ns = deadline_ns;
    pthread_mutex_unlock(&wh->lock);
    wake(wh);
    pthread_join(wh->thread, NULL);
    wh->started = false;
}

void webhook_free(struct webhook *wh)
{
    if (!wh)
        return;
    webhook_stop(wh, loop_now_ns());
    net_close(wh->net);
    conf_free(wh->conf);
    conf_free(wh->pending);
    for (struct item *it = wh->in_head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    free(wh->buckets);
    if (wh->wake_fd >= 0)
        close(wh->wake_fd);
    pthread_mutex_destroy(&wh->lock);
    free(wh);
}
