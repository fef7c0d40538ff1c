#include "redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "errbuf.h"
#include "loop.h"

enum {
    DEFAULT_PORT = 6379,
    DEFAULT_POOL = 2,
    MAX_POOL = 64,
    /* Pools per slot: URLs made from what clients send must not open
     * connections without end. */
    MAX_POOLS = 64,
    DEFAULT_CONNECT_TIMEOUT_MS = 2000,
    MAX_CONNECT_TIMEOUT_MS = 600000,
    /* Reconnect delays: the first retry after a failure at once, then
     * doubling from the first step up to the last. */
    BACKOFF_FIRST_MS = 50,
    BACKOFF_MAX_MS = 1000,
};

/* A connection closed while idle, after this long up, is an idle timeout,
 * not a failure (a server that closes every new connection must not be
 * reconnected to without a delay). */
#define IDLE_CLOSE_MIN_NS 1000000000LL

struct redis_url {
    char host[256];
    int port;
    char user[256];
    char pass[256];
    bool has_pass; /* AUTH [user] pass on connect */
    long db;
    int pool_size;
    int connect_timeout_ms;
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

/* One connection of a pool. hiredis owns its context; a new context is
 * only made at the pool's first command or from the connection's timer
 * (never while hiredis still frees the last one), so while one exists it
 * is the only one, and the event hooks (which get this struct) mean it. */
struct conn {
    struct redis_pool *pool;
    redisAsyncContext *ac; /* NULL once closing or closed */
    enum conn_state state;
    int fd;                /* what is watched on the loop, -1: nothing */
    int events;
    int setup_pending;     /* AUTH and SELECT replies still to come */
    int inflight;          /* commands in hiredis, dropped ones included */
    int live;              /* those whose caller still waits */
    bool draining;         /* a command was dropped: takes no new ones */
    bool suspect;          /* failed since it was last ready */
    int failures;          /* in a row, for the reconnect delay */
    int64_t ready_ns;      /* when its context was ready; 0: not yet */
    struct loop_timer timer; /* the connect timeout, or the reconnect delay */
    struct redis_error reason; /* why it closed: the error of its commands */
};

struct redis_pool {
    struct redis_pool *next;
    struct redis_pools *pools;
    char *key; /* the URL as given */
    struct redis_url url;
    char name[300]; /* host:port */
    bool started;
    /* Set when a connection failed and none has been ready since:
     * commands then fail at once with this error. */
    struct redis_error last_err;
    bool has_err;
    unsigned rotate;
    /* Commands waiting for a connection to come back into service. */
    struct redis_cmd *queue_head, *queue_tail;
    int size;
    struct conn conns[];
};

struct redis_pools {
    struct loop *loop;
    struct redis_pool *pools;
    int count;
    bool closing;
};

struct redis_cmd {
    struct redis_pool *pool;
    struct conn *conn;             /* NULL while queued in the pool */
    struct redis_cmd *prev, *next; /* in the pool's queue */
    char *fmt;                     /* the command in Redis' protocol, until sent */
    size_t fmtlen;
    redis_done_fn *done;           /* NULL once dropped (timed out or cancelled) */
    void *ctx;
    struct loop_timer timer;
    int64_t start_ns;
    char name[REDIS_NAME_MAX];
};

/* ---- URL ---- */

/* Percent-decodes s[0..len) into out; -1 if malformed or too long. */
static int pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < len ? codec_hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? codec_hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* A decimal number in s[0..len) within [min, max]; -1 otherwise. */
static long parse_num(const char *s, size_t len, long min, long max)
{
    if (len == 0 || len > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < min || v > max ? -1 : v;
}

static int parse_userinfo(const char *s, size_t len, struct redis_url *u, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    if (!colon) {
        errbuf_set(err, errlen, "a user needs a password (redis://user:password@host)");
        return -1;
    }
    size_t ulen = (size_t)(colon - s);
    if (pct_decode(s, ulen, u->user, sizeof u->user) != 0 ||
        pct_decode(colon + 1, len - ulen - 1, u->pass, sizeof u->pass) != 0) {
        errbuf_set(err, errlen, "bad user or password (percent-encode ':', '@', '/' and '%%')");
        return -1;
    }
    if (!u->pass[0]) {
        errbuf_set(err, errlen, "empty password");
        return -1;
    }
    u->has_pass = true;
    return 0;
}

static int parse_hostport(const char *s, size_t len, struct redis_url *u, char *err, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) {
            errbuf_set(err, errlen, "an IPv6 address needs its closing ']'");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':') {
                errbuf_set(err, errlen, "junk after ']'");
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        hlen = colon ? (size_t)(colon - s) : len;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen >= sizeof u->host) {
        errbuf_set(err, errlen, hlen ? "host name too long" : "no host");
        return -1;
    }
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    u->port = DEFAULT_PORT;
    if (port) {
        long p = parse_num(port, (size_t)(s + len - port), 1, 65535);
        if (p < 0) {
            errbuf_set(err, errlen, "bad port '%.*s' (1 to 65535)", (int)(s + len - port), port);
            return -1;
        }
        u->port = (int)p;
    }
    return 0;
}

static int parse_query(const char *s, struct redis_url *u, char *err, size_t errlen)
{
    while (*s) {
        size_t len = strcspn(s, "&");
        const char *eq = memchr(s, '=', len);
        size_t klen = eq ? (size_t)(eq - s) : len;
        const char *val = eq ? eq + 1 : s + len;
        size_t vlen = (size_t)(s + len - val);
        long v;
        if (klen == 4 && !memcmp(s, "pool", 4)) {
            if ((v = parse_num(val, vlen, 1, MAX_POOL)) < 0) {
                errbuf_set(err, errlen, "bad pool '%.*s' (1 to %d connections)", (int)vlen, val,
                           MAX_POOL);
                return -1;
            }
            u->pool_size = (int)v;
        } else if (klen == 15 && !memcmp(s, "connect_timeout", 15)) {
            if ((v = parse_num(val, vlen, 1, MAX_CONNECT_TIMEOUT_MS)) < 0) {
                errbuf_set(err, errlen, "bad connect_timeout '%.*s' (1 to %d ms)", (int)vlen, val,
                           MAX_CONNECT_TIMEOUT_MS);
                return -1;
            }
            u->connect_timeout_ms = (int)v;
        } else {
            errbuf_set(err, errlen, "unknown option '%.*s' (pool, connect_timeout)", (int)klen, s);
            return -1;
        }
        s += len + (s[len] == '&');
    }
    return 0;
}

static int parse_url(const char *url, struct redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->pool_size = DEFAULT_POOL;
    u->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        errbuf_set(err, errlen, "a Redis URL starts with redis:// (TLS is not supported)");
        return -1;
    }
    const char *auth = url + sizeof scheme - 1;
    size_t alen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *hostport = auth;
    if (at) {
        if (parse_userinfo(auth, (size_t)(at - auth), u, err, errlen) != 0)
            return -1;
        hostport = at + 1;
    }
    if (parse_hostport(hostport, (size_t)(auth + alen - hostport), u, err, errlen) != 0)
        return -1;
    const char *rest = auth + alen;
    if (*rest == '/') {
        size_t dlen = strcspn(rest + 1, "?");
        if (dlen && (u->db = parse_num(rest + 1, dlen, 0, INT_MAX)) < 0) {
            errbuf_set(err, errlen, "bad database '%.*s' (a number)", (int)dlen, rest + 1);
            return -1;
        }
        rest += 1 + dlen;
    }
    if (*rest == '?')
        return parse_query(rest + 1, u, err, errlen);
    return 0;
}

static void url_name(const struct redis_url *u, char *name, size_t namelen)
{
    snprintf(name, namelen, strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, u->port);
}

int redis_url_check(const char *url, char *name, size_t namelen, char *err, size_t errlen)
{
    struct redis_url u;
    if (parse_url(url, &u, err, errlen) != 0)
        return -1;
    url_name(&u, name, namelen);
    return 0;
}

/* ---- replies ---- */

/* Counts the values and string bytes of a reply, to copy it in one block. */
static void reply_measure(const redisReply *r, size_t *nvals, size_t *nbytes)
{
    (*nvals)++;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        *nbytes += r->len + 1;
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++)
            reply_measure(r->element[i], nvals, nbytes);
        break;
    default:
        break;
    }
}

struct copy_cursor {
    struct redis_value *vals; /* the next free value */
    char *bytes;              /* the next free string byte */
};

static void reply_fill(const redisReply *r, struct redis_value *v, struct copy_cursor *c)
{
    memset(v, 0, sizeof *v);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        v->type = r->type == REDIS_REPLY_STRING   ? REDIS_V_STRING
                  : r->type == REDIS_REPLY_STATUS ? REDIS_V_STATUS
                                                  : REDIS_V_ERROR;
        memcpy(c->bytes, r->str, r->len);
        c->bytes[r->len] = '\0';
        v->str = c->bytes;
        v->len = r->len;
        c->bytes += r->len + 1;
        break;
    case REDIS_REPLY_INTEGER:
        v->type = REDIS_V_INTEGER;
        v->integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        v->type = REDIS_V_ARRAY;
        v->n = r->elements;
        v->elems = c->vals;
        c->vals += r->elements;
        for (size_t i = 0; i < r->elements; i++)
            reply_fill(r->element[i], &v->elems[i], c);
        break;
    default:
        v->type = REDIS_V_NIL;
        break;
    }
}

/* hiredis frees its reply when the callback returns; the caller gets a
 * copy it owns. */
static struct redis_value *reply_copy(const redisReply *r)
{
    size_t nvals = 0, nbytes = 0;
    reply_measure(r, &nvals, &nbytes);
    struct redis_value *v = malloc(nvals * sizeof *v + nbytes);
    if (!v)
        return NULL;
    struct copy_cursor c = {v + 1, (char *)(v + nvals)};
    reply_fill(r, v, &c);
    return v;
}

/* ---- errors ---- */

static void set_error(struct redis_error *e, const struct redis_pool *pool, enum redis_fail kind,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct redis_error *e, const struct redis_pool *pool, enum redis_fail kind,
                      const char *fmt, ...)
{
    e->kind = kind;
    int n = snprintf(e->msg, sizeof e->msg, "redis %s: ", pool->name);
    if (n < 0 || (size_t)n >= sizeof e->msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- the pool's queue ---- */

static struct conn *pick_conn(struct redis_pool *pool);
static int cmd_send(struct conn *c, struct redis_cmd *cmd);

static struct loop *pool_loop(const struct redis_pool *pool) { return pool->pools->loop; }

static void cmd_free(struct redis_cmd *cmd)
{
    loop_timer_stop(pool_loop(cmd->pool), &cmd->timer);
    redisFreeCommand(cmd->fmt);
    free(cmd);
}

static void queue_push(struct redis_pool *pool, struct redis_cmd *cmd)
{
    cmd->prev = pool->queue_tail;
    cmd->next = NULL;
    if (pool->queue_tail)
        pool->queue_tail->next = cmd;
    else
        pool->queue_head = cmd;
    pool->queue_tail = cmd;
}

static void queue_unlink(struct redis_pool *pool, struct redis_cmd *cmd)
{
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        pool->queue_head = cmd->next;
    if (cmd->next)
        cmd->next->prev = cmd->prev;
    else
        pool->queue_tail = cmd->prev;
}

/* Ends a command that got no reply, its caller learning why (unless the
 * pools are closing: callers are gone then). */
static void cmd_fail(struct redis_cmd *cmd, const struct redis_error *err)
{
    redis_done_fn *done = cmd->pool->pools->closing ? NULL : cmd->done;
    void *ctx = cmd->ctx;
    cmd_free(cmd);
    if (done)
        done(ctx, NULL, err);
}

/* Sends what waits in the queue, while a connection takes it. */
static void pool_flush(struct redis_pool *pool)
{
    struct conn *c;
    while (pool->queue_head && (c = pick_conn(pool))) {
        struct redis_cmd *cmd = pool->queue_head;
        queue_unlink(pool, cmd);
        if (cmd_send(c, cmd) != 0) {
            struct redis_error e;
            set_error(&e, pool, REDIS_FAIL_OTHER, "cannot send %s", cmd->name);
            cmd_fail(cmd, &e);
        }
    }
}

static void pool_fail_queue(struct redis_pool *pool, const struct redis_error *err)
{
    while (pool->queue_head) {
        struct redis_cmd *cmd = pool->queue_head;
        queue_unlink(pool, cmd);
        cmd_fail(cmd, err);
    }
}

/* ---- connections ---- */

static struct loop *conn_loop(const struct conn *c) { return pool_loop(c->pool); }

/* After a failure the first retry is at once (a restarted server is back),
 * then the delay doubles up to BACKOFF_MAX_MS. Until a connection is ready
 * again, commands fail at once with this failure. */
static void schedule_reconnect(struct conn *c, bool failure)
{
    struct redis_pool *pool = c->pool;
    if (pool->pools->closing)
        return;
    int64_t delay_ms = 0;
    if (failure) {
        c->failures++;
        c->suspect = true;
        if (c->failures > 1) {
            int doublings = c->failures - 2 < 16 ? c->failures - 2 : 16;
            delay_ms = (int64_t)BACKOFF_FIRST_MS << doublings;
            if (delay_ms > BACKOFF_MAX_MS)
                delay_ms = BACKOFF_MAX_MS;
        }
    }
    loop_timer_start(conn_loop(c), &c->timer, loop_now_ns() + delay_ms * 1000000);
    if (failure) {
        pool->last_err = c->reason;
        pool->has_err = true;
        if (!pick_conn(pool))
            pool_fail_queue(pool, &c->reason);
    }
}

/* Takes the connection out of service (reason in c->reason) and frees its
 * context: at once, or when the hiredis callback running now returns. The
 * commands in flight then finish with c->reason. */
static void conn_close(struct conn *c, bool failure)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = CONN_DOWN;
    c->draining = false;
    redisAsyncFree(ac);
    schedule_reconnect(c, failure);
}

/* hiredis closed the context on its own (the server went away, a read
 * failed): note why; hiredis frees it. A server that closes a connection
 * idle for long (its `timeout` setting) has failed no one: the connection
 * is reopened at once and commands wait for it. */
static void conn_lost(struct conn *c, const redisAsyncContext *ac)
{
    const char *why = ac->err ? ac->errstr : "connection closed";
    set_error(&c->reason, c->pool, REDIS_FAIL_OTHER, "connection lost: %s", why);
    bool idle_close = ac->err == REDIS_ERR_EOF && c->inflight == 0 && c->ready_ns &&
                      loop_now_ns() - c->ready_ns >= IDLE_CLOSE_MIN_NS;
    c->ac = NULL;
    c->state = CONN_DOWN;
    c->draining = false;
    schedule_reconnect(c, !idle_close);
}

/* A draining connection returns to service when all its replies are in,
 * and is reopened when only dropped commands are left on it: one of them
 * may block it for good. */
static void conn_drain_check(struct conn *c)
{
    if (!c->ac || !c->draining)
        return;
    if (c->inflight == 0) {
        c->draining = false;
        pool_flush(c->pool);
    } else if (c->live == 0) {
        set_error(&c->reason, c->pool, REDIS_FAIL_OTHER, "connection closed");
        conn_close(c, false);
    }
}

static void conn_ready(struct conn *c)
{
    c->ready_ns = loop_now_ns();
    c->failures = 0;
    c->suspect = false;
    c->pool->has_err = false;
    pool_flush(c->pool);
}

/* ---- event loop hooks ---- */

static void on_io(void *ctx, int fd, int events)
{
    (void)fd;
    struct conn *c = ctx;
    redisAsyncContext *ac = c->ac;
    if (!ac)
        return;
    if ((c->events & LOOP_READ) && (events & (LOOP_READ | LOOP_ERROR)))
        redisAsyncHandleRead(ac);
    /* The read may have closed it. */
    if (c->ac == ac && (c->events & LOOP_WRITE) && (events & (LOOP_WRITE | LOOP_ERROR)))
        redisAsyncHandleWrite(ac);
}

static void watch(struct conn *c, int events)
{
    if (events == c->events || c->fd < 0)
        return;
    c->events = events;
    /* Only fails out of memory; the connect timeout or the command
     * deadlines then end what waits on it. */
    loop_watch(conn_loop(c), c->fd, events, on_io, c);
}

static void ev_add_read(void *p) { struct conn *c = p; watch(c, c->events | LOOP_READ); }
static void ev_del_read(void *p) { struct conn *c = p; watch(c, c->events & ~LOOP_READ); }
static void ev_add_write(void *p) { struct conn *c = p; watch(c, c->events | LOOP_WRITE); }
static void ev_del_write(void *p) { struct conn *c = p; watch(c, c->events & ~LOOP_WRITE); }

/* The context is being freed, whoever started it. */
static void ev_cleanup(void *p)
{
    struct conn *c = p;
    watch(c, 0);
    c->fd = -1;
    if (c->ac)
        conn_lost(c, c->ac);
}

/* ---- connect ---- */

/* hiredis reports connect errors as strerror text. */
static void connect_failed(struct conn *c, const char *errstr)
{
    if (strcmp(errstr, strerror(ECONNREFUSED)) == 0)
        set_error(&c->reason, c->pool, REDIS_FAIL_REFUSED, "connection refused");
    else
        set_error(&c->reason, c->pool, REDIS_FAIL_OTHER, "cannot connect: %s", errstr);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (c->ac != ac)
        return;
    loop_timer_stop(conn_loop(c), &c->timer);
    if (status == REDIS_OK) {
        c->state = CONN_UP;
        if (c->setup_pending == 0)
            conn_ready(c);
        else
            pool_flush(c->pool);
        return;
    }
    /* hiredis frees the context when this returns (freeing it here would
     * pull it from under hiredis). */
    connect_failed(c, ac->errstr);
    c->ac = NULL;
    c->state = CONN_DOWN;
    schedule_reconnect(c, true);
}

static void setup_reply(redisAsyncContext *ac, void *r, struct conn *c, const char *what)
{
    const redisReply *reply = r;
    if (c->ac != ac)
        return;
    if (!reply) {
        conn_lost(c, ac);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        set_error(&c->reason, c->pool, REDIS_FAIL_OTHER, "%s failed: %s", what, reply->str);
        conn_close(c, true);
    } else if (--c->setup_pending == 0 && c->state == CONN_UP) {
        conn_ready(c);
    }
}

static void on_auth(redisAsyncContext *ac, void *r, void *c) { setup_reply(ac, r, c, "AUTH"); }
static void on_select(redisAsyncContext *ac, void *r, void *c) { setup_reply(ac, r, c, "SELECT"); }

/* Queues AUTH and SELECT: hiredis sends them first once connected. */
static int conn_setup(struct conn *c)
{
    const struct redis_url *u = &c->pool->url;
    c->setup_pending = 0;
    if (u->has_pass) {
        const char *argv[3] = {"AUTH", u->user, u->pass};
        int argc = 3;
        if (!u->user[0]) {
            argv[1] = u->pass;
            argc = 2;
        }
        if (redisAsyncCommandArgv(c->ac, on_auth, c, argc, argv, NULL) != REDIS_OK)
            return -1;
        c->setup_pending++;
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof db, "%ld", u->db);
        const char *argv[2] = {"SELECT", db};
        if (redisAsyncCommandArgv(c->ac, on_select, c, 2, argv, NULL) != REDIS_OK)
            return -1;
        c->setup_pending++;
    }
    return 0;
}

static void conn_open(struct conn *c)
{
    const struct redis_url *u = &c->pool->url;
    /* A host name is resolved here, blocking (hiredis has no asynchronous
     * resolver). */
    redisAsyncContext *ac = redisAsyncConnect(u->host, u->port);
    if (!ac || ac->err) {
        connect_failed(c, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c, true);
        return;
    }
    c->ac = ac;
    c->ready_ns = 0;
    c->fd = ac->c.fd;
    c->events = 0;
    c->inflight = c->live = 0;
    c->draining = false;
    c->state = CONN_CONNECTING;
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    /* hiredis learns that the connect finished from the first write event. */
    ev_add_write(c);
    loop_timer_start(conn_loop(c), &c->timer,
                     loop_now_ns() + (int64_t)u->connect_timeout_ms * 1000000);
    if (conn_setup(c) != 0) {
        set_error(&c->reason, c->pool, REDIS_FAIL_OTHER, "cannot send AUTH or SELECT");
        conn_close(c, true);
        return;
    }
    pool_flush(c->pool);
}

/* The connect timeout while connecting; the reconnect delay while down. */
static void on_conn_timer(struct loop_timer *t)
{
    struct conn *c = t->ctx;
    if (c->state == CONN_CONNECTING) {
        set_error(&c->reason, c->pool, REDIS_FAIL_TIMEOUT, "connect timed out after %d ms",
                  c->pool->url.connect_timeout_ms);
        conn_close(c, true);
    } else if (c->state == CONN_DOWN) {
        conn_open(c);
    }
}

/* ---- pools ---- */

struct redis_pools *redis_pools_create(struct loop *loop)
{
    struct redis_pools *p = calloc(1, sizeof *p);
    if (p)
        p->loop = loop;
    return p;
}

void redis_pools_destroy(struct redis_pools *p)
{
    if (!p)
        return;
    p->closing = true;
    while (p->pools) {
        struct redis_pool *pool = p->pools;
        struct redis_error closed;
        set_error(&closed, pool, REDIS_FAIL_OTHER, "closed");
        pool_fail_queue(pool, &closed);
        for (int i = 0; i < pool->size; i++) {
            struct conn *c = &pool->conns[i];
            loop_timer_stop(p->loop, &c->timer);
            if (c->ac) {
                c->reason = closed;
                conn_close(c, false); /* frees the commands in flight */
            }
        }
        p->pools = pool->next;
        free(pool->key);
        free(pool);
    }
    free(p);
}

struct redis_pool *redis_pool_get(struct redis_pools *p, const char *url, char *err, size_t errlen)
{
    for (struct redis_pool *pool = p->pools; pool; pool = pool->next)
        if (strcmp(pool->key, url) == 0)
            return pool;
    struct redis_url u;
    if (parse_url(url, &u, err, errlen) != 0)
        return NULL;
    if (p->count == MAX_POOLS) {
        errbuf_set(err, errlen, "too many Redis URLs: at most %d per worker", MAX_POOLS);
        return NULL;
    }
    struct redis_pool *pool = calloc(1, sizeof *pool + (size_t)u.pool_size * sizeof pool->conns[0]);
    char *key = strdup(url);
    if (!pool || !key) {
        free(pool);
        free(key);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    pool->pools = p;
    pool->key = key;
    pool->url = u;
    pool->size = u.pool_size;
    url_name(&u, pool->name, sizeof pool->name);
    for (int i = 0; i < pool->size; i++) {
        struct conn *c = &pool->conns[i];
        c->pool = pool;
        c->fd = -1;
        loop_timer_init(&c->timer, on_conn_timer, c);
    }
    pool->next = p->pools;
    p->pools = pool;
    p->count++;
    return pool;
}

const char *redis_pool_name(const struct redis_pool *pool) { return pool->name; }

void redis_cmd_name(char out[REDIS_NAME_MAX], const char *name, size_t len)
{
    size_t n = len < REDIS_NAME_MAX - 1 ? len : REDIS_NAME_MAX - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    out[n] = '\0';
}

/* ---- commands ---- */

/* Commands that change a connection's state would leak into the commands
 * of other callers sharing it. */
static const char *const shared_state_cmds[] = {
    "AUTH",       "SELECT",      "HELLO",       "QUIT",         "RESET",        "MULTI",
    "EXEC",       "DISCARD",     "WATCH",       "UNWATCH",      "MONITOR",      "SUBSCRIBE",
    "PSUBSCRIBE", "SSUBSCRIBE",  "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
};

static bool changes_shared_state(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof shared_state_cmds / sizeof *shared_state_cmds; i++)
        if (strlen(shared_state_cmds[i]) == len && strncasecmp(shared_state_cmds[i], name, len) == 0)
            return true;
    return false;
}

/* The connection with the fewest commands in flight, taking turns among
 * equals. One still connecting takes commands (hiredis sends them once it
 * is up) unless it failed before. */
static struct conn *pick_conn(struct redis_pool *pool)
{
    struct conn *best = NULL;
    for (int k = 0; k < pool->size; k++) {
        struct conn *c = &pool->conns[(pool->rotate + (unsigned)k) % (unsigned)pool->size];
        if (!c->ac || c->draining || (c->state != CONN_UP && c->suspect))
            continue;
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    pool->rotate++;
    return best;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static int cmd_send(struct conn *c, struct redis_cmd *cmd)
{
    if (redisAsyncFormattedCommand(c->ac, on_reply, cmd, cmd->fmt, cmd->fmtlen) !=
        REDIS_OK)
        return -1;
    redisFreeCommand(cmd->fmt);
    cmd->fmt = NULL;
    cmd->conn = c;
    c->inflight++;
    c->live++;
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_cmd *cmd = privdata;
    struct conn *c = cmd->conn;
    if (!r && c->ac == ac)
        conn_lost(c, ac); /* with this command still counted: it was not idle */
    c->inflight--;
    if (!cmd->done || c->pool->pools->closing) {
        cmd_free(cmd);
    } else {
        c->live--;
        struct redis_value *v = r ? reply_copy(r) : NULL;
        if (v) {
            redis_done_fn *done = cmd->done;
            void *ctx = cmd->ctx;
            cmd_free(cmd);
            done(ctx, v, NULL);
        } else if (r) {
            struct redis_error e;
            set_error(&e, c->pool, REDIS_FAIL_OTHER, "out of memory for a reply");
            cmd_fail(cmd, &e);
        } else {
            cmd_fail(cmd, &c->reason);
        }
    }
    if (c->ac == ac)
        conn_drain_check(c);
}

/* The caller is told (or knows) the command is over; a reply, if one ever
 * comes, goes nowhere. */
static void cmd_drop(struct redis_cmd *cmd)
{
    struct conn *c = cmd->conn;
    cmd->done = NULL;
    loop_timer_stop(conn_loop(c), &cmd->timer);
    c->live--;
    c->draining = true;
}

static void on_cmd_timer(struct loop_timer *t)
{
    struct redis_cmd *cmd = t->ctx;
    struct redis_error e;
    set_error(&e, cmd->pool, REDIS_FAIL_TIMEOUT, "%s timed out after %lld ms", cmd->name,
              (long long)((t->at_ns - cmd->start_ns + 500000) / 1000000));
    struct conn *c = cmd->conn;
    if (!c) {
        queue_unlink(cmd->pool, cmd);
        cmd_fail(cmd, &e);
        return;
    }
    redis_done_fn *done = cmd->done;
    cmd_drop(cmd);
    done(cmd->ctx, NULL, &e);
    conn_drain_check(c);
}

void redis_cancel(struct redis_cmd *cmd)
{
    struct conn *c = cmd->conn;
    if (!c) {
        queue_unlink(cmd->pool, cmd);
        cmd_free(cmd);
        return;
    }
    cmd_drop(cmd);
    conn_drain_check(c);
}

static void pool_start(struct redis_pool *pool)
{
    pool->started = true;
    for (int i = 0; i < pool->size; i++)
        conn_open(&pool->conns[i]);
}

struct redis_cmd *redis_command(struct redis_pool *pool, int argc, const char **argv,
                                const size_t *lens, int64_t deadline_ns, redis_done_fn *done,
                                void *ctx, struct redis_error *err)
{
    if (argc < 1) {
        set_error(err, pool, REDIS_FAIL_OTHER, "no command");
        return NULL;
    }
    size_t nlen = lens ? lens[0] : strlen(argv[0]);
    char name[REDIS_NAME_MAX];
    redis_cmd_name(name, argv[0], nlen);
    if (changes_shared_state(argv[0], nlen)) {
        set_error(err, pool, REDIS_FAIL_OTHER,
                  "%s is not allowed: callers share the pool's connections "
                  "(EVAL runs several commands at once)",
                  name);
        return NULL;
    }
    if (pool->pools->closing) {
        set_error(err, pool, REDIS_FAIL_OTHER, "closed");
        return NULL;
    }
    int64_t now = loop_now_ns();
    if (deadline_ns <= now) {
        set_error(err, pool, REDIS_FAIL_TIMEOUT, "%s: no time left", name);
        return NULL;
    }
    if (!pool->started)
        pool_start(pool);
    struct conn *c = pick_conn(pool);
    if (!c && pool->has_err) {
        *err = pool->last_err;
        return NULL;
    }
    struct redis_cmd *cmd = calloc(1, sizeof *cmd);
    long long len = cmd ? redisFormatCommandArgv(&cmd->fmt, argc, argv, lens) : -1;
    if (len < 0) {
        free(cmd);
        set_error(err, pool, REDIS_FAIL_OTHER, "out of memory");
        return NULL;
    }
    cmd->fmtlen = (size_t)len;
    cmd->pool = pool;
    cmd->done = done;
    cmd->ctx = ctx;
    cmd->start_ns = now;
    memcpy(cmd->name, name, sizeof name);
    loop_timer_init(&cmd->timer, on_cmd_timer, cmd);
    if (!c) {
        /* Every connection is on its way back into service. */
        queue_push(pool, cmd);
    } else if (cmd_send(c, cmd) != 0) {
        set_error(err, pool, REDIS_FAIL_OTHER, "cannot send %s", cmd->name);
        cmd_free(cmd);
        return NULL;
    }
    if (deadline_ns != INT64_MAX)
        loop_timer_start(pool_loop(pool), &cmd->timer, deadline_ns);
    return cmd;
}
