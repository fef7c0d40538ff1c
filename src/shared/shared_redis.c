#include "shared_redis.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "loop.h"
#include "redis.h"

#define KEY_PREFIX "exhookd:"
/* Keys SCAN looks at per round trip: a hint, Redis may return more. */
#define SCAN_COUNT "1000"

/* incr in one script, so that reading, creating and adding are one step
 * for every client. KEYS[1] the key, ARGV[1] the delta, ARGV[2] the init
 * value ('' when none), ARGV[3] init_ttl in ms ('0': none), numbers as
 * encode_value writes them. Two integers add with INCRBY (Lua's numbers in
 * Redis are doubles, INCRBY is exact to 64 bits); anything else adds as
 * floats. Answers {1, new value}, {0} "not found", {2} "not a number". */
static const char incr_script[] =
    "local k, d, init, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]\n"
    "local v = redis.call('GET', k)\n"
    "local created = false\n"
    "if not v then\n"
    "  if init == '' then return {0} end\n"
    "  v, created = init, true\n"
    "end\n"
    "local function create(value)\n"
    "  if ttl == '0' then redis.call('SET', k, value)\n"
    "  else redis.call('SET', k, value, 'PX', ttl) end\n"
    "end\n"
    "local int = '^%-?%d+$'\n"
    "if string.match(v, int) and string.match(d, int) then\n"
    "  if created then create(v) end\n"
    "  local r = redis.pcall('INCRBY', k, d)\n"
    "  if type(r) == 'table' and r.err then\n"
    "    if created then redis.call('DEL', k) end\n"
    "    return r\n"
    "  end\n"
    "  return {1, redis.call('GET', k)}\n"
    "end\n"
    "local function num(s)\n"
    "  if string.match(s, int) then return tonumber(s) end\n"
    "  if string.sub(s, 1, 1) == 'f' then return tonumber(string.sub(s, 2)) end\n"
    "end\n"
    "local a = num(v)\n"
    "if not a then return {2} end\n"
    "local r = 'f' .. string.format('%.17g', a + num(d))\n"
    "if created then create(r) else redis.call('SET', k, r, 'KEEPTTL') end\n"
    "return {1, r}\n";

/* expire: PEXPIRE, or PERSIST for "never", and "not found" told apart
 * from "had no ttl", which PERSIST alone cannot. ARGV[1]: ms, '0': never. */
static const char expire_script[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                                    "if ARGV[1] == '0' then redis.call('PERSIST', KEYS[1])\n"
                                    "else redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
                                    "return 1\n";

struct script {
    const char *text;
    char sha[41]; /* EVALSHA's name of it; "" if OpenSSL failed: NOSCRIPT then sends it whole */
};

static struct script scripts[] = {{incr_script, ""}, {expire_script, ""}};
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_hash(void)
{
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(scripts[i].text, strlen(scripts[i].text), md, &n, EVP_sha1(), NULL) &&
            n == 20) {
            codec_hex_encode(md, n, scripts[i].sha);
            scripts[i].sha[40] = '\0';
        }
    }
}

enum { MAX_ARGS = 8 };

/* Keys found by SCAN for keys(), each its own allocation until the end. */
struct found {
    char **keys;
    size_t *lens;
    size_t n, cap;
};

struct shared_redis_req {
    struct loop *loop;
    struct redis_pool *pool;
    struct redis_cmd *cmd;   /* the command in flight */
    struct loop_timer timer; /* ends from the loop what ended at once */
    int64_t deadline_ns;
    shared_redis_done_fn *done;
    void *ctx;
    enum shared_opcode code;
    size_t max;
    const struct script *script; /* sent as EVALSHA; resent with EVAL on NOSCRIPT */
    int argc;
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char *key; /* the namespaced key, or SCAN's pattern */
    size_t key_len;
    char *val; /* the encoded value or delta */
    size_t val_len;
    char nums[2][32]; /* numeric arguments */
    char cursor[32];  /* SCAN's, "0" at the start and the end */
    bool unlinking;   /* flush_all: an UNLINK is in flight */
    struct found found;
    struct shared_result r;
    char dict[];
};

static void req_free(struct shared_redis_req *q)
{
    for (size_t i = 0; i < q->found.n; i++)
        free(q->found.keys[i]);
    free(q->found.keys);
    free(q->found.lens);
    free(q->key);
    free(q->val);
    shared_result_free(&q->r);
    free(q);
}

static void finish(struct shared_redis_req *q)
{
    struct shared_result r = q->r;
    shared_result_init(&q->r);
    shared_redis_done_fn *done = q->done;
    void *ctx = q->ctx;
    req_free(q);
    done(ctx, &r);
}

static void on_timer(struct loop_timer *t)
{
    finish(t->ctx);
}

/* What ended at once still ends from a loop callback, as the caller expects. */
static void finish_later(struct shared_redis_req *q)
{
    loop_timer_start(q->loop, &q->timer, loop_now_ns());
}

/* A failure, named by dictionary and method: "exhook.shared.sessions:incr:
 * redis 127.0.0.1:6379: connection refused". */
static void fail(struct shared_redis_req *q, const char *fmt, ...)
{
    struct shared_result *r = &q->r;
    r->status = SHARED_FAILED;
    int n = snprintf(r->message, sizeof r->message, "exhook.shared.%.48s:%s: ", q->dict,
                     shared_op_name(q->code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message + n, sizeof r->message - (size_t)n, fmt, ap);
    va_end(ap);
}

static void on_reply(void *ctx, struct redis_value *v, const struct redis_error *err);

static void send_args(struct shared_redis_req *q, int argc, const char **argv, const size_t *lens)
{
    struct redis_error err;
    q->cmd = redis_command(q->pool, argc, argv, lens, q->deadline_ns, on_reply, q, &err);
    if (!q->cmd) {
        fail(q, "%s", err.msg);
        finish_later(q);
    }
}

static void send_prepared(struct shared_redis_req *q)
{
    send_args(q, q->argc, q->argv, q->lens);
}

/* ---- values as Redis holds them ---- */

/* The stored form of `v` in a new allocation (see shared_redis.h). */
static int encode_value(const struct shared_value *v, char **out, size_t *out_len)
{
    char num[40];
    const char *body = num;
    size_t n;
    char tag = 0;
    switch (v->type) {
    case SHARED_INTEGER:
        n = (size_t)snprintf(num, sizeof num, "%lld", v->integer);
        break;
    case SHARED_FLOAT:
        tag = 'f';
        n = (size_t)snprintf(num, sizeof num, "%.17g", v->number);
        break;
    case SHARED_BOOLEAN:
        tag = 'b';
        body = v->boolean ? "1" : "0";
        n = 1;
        break;
    case SHARED_STRING:
        tag = 's';
        body = v->str;
        n = v->len;
        break;
    default:
        return -1;
    }
    size_t len = n + (tag != 0);
    char *s = malloc(len + 1);
    if (!s)
        return -1;
    if (tag)
        s[0] = tag;
    memcpy(s + (tag != 0), body, n);
    s[len] = '\0';
    *out = s;
    *out_len = len;
    return 0;
}

/* Reads a stored value (`s` ends with a NUL past `len`) into r->value,
 * a string copied into r->owned. -1 if exhookd did not write it so. */
static int decode_value(struct shared_result *r, const char *s, size_t len)
{
    struct shared_value *v = &r->value;
    char *end;
    if (len == 0)
        return -1;
    if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
        errno = 0;
        v->integer = strtoll(s, &end, 10);
        v->type = SHARED_INTEGER;
        return errno || end != s + len ? -1 : 0;
    }
    switch (s[0]) {
    case 'f':
        v->number = strtod(s + 1, &end);
        v->type = SHARED_FLOAT;
        return len > 1 && end == s + len ? 0 : -1;
    case 'b':
        v->boolean = s[1] == '1';
        v->type = SHARED_BOOLEAN;
        return len == 2 && (s[1] == '0' || s[1] == '1') ? 0 : -1;
    case 's':
        r->owned = malloc(len);
        if (!r->owned)
            return -1;
        memcpy(r->owned, s + 1, len - 1);
        v->str = r->owned;
        v->len = len - 1;
        v->type = SHARED_STRING;
        return 0;
    default:
        return -1;
    }
}

/* ---- building the commands ---- */

static void arg(struct shared_redis_req *q, const char *s, size_t len)
{
    q->argv[q->argc] = s;
    q->lens[q->argc++] = len;
}

static void arg_str(struct shared_redis_req *q, const char *s)
{
    arg(q, s, strlen(s));
}

/* A ttl in seconds as PX milliseconds: "0" for never; at least 1 ms
 * otherwise, so that a tiny ttl still expires rather than never. */
static void ms_arg(struct shared_redis_req *q, char out[32], double ttl)
{
    double ms = ttl * 1000;
    if (ttl > 0 && ms < 1)
        ms = 1;
    if (ms > 1e15) /* 31,000 years: beyond it Redis refuses the expiry anyway */
        ms = 1e15;
    snprintf(out, 32, "%lld", ms > 0 ? llround(ms) : 0LL);
    arg_str(q, out);
}

/* "exhookd:<dict>:" followed by `len` bytes of `s`, into q->key. */
static int make_key(struct shared_redis_req *q, const char *s, size_t len)
{
    size_t plen = strlen(KEY_PREFIX) + strlen(q->dict) + 1;
    q->key = malloc(plen + len + 1);
    if (!q->key)
        return -1;
    snprintf(q->key, plen + 1, KEY_PREFIX "%s:", q->dict);
    memcpy(q->key + plen, s, len);
    q->key[plen + len] = '\0';
    q->key_len = plen + len;
    return 0;
}

/* SCAN's pattern for the dictionary's keys: its prefix, glob characters
 * of the name escaped, then '*'. */
static int make_pattern(struct shared_redis_req *q)
{
    size_t dlen = strlen(q->dict);
    char *p = malloc(strlen(KEY_PREFIX) + 2 * dlen + 3);
    if (!p)
        return -1;
    size_t n = strlen(KEY_PREFIX);
    memcpy(p, KEY_PREFIX, n);
    for (size_t i = 0; i < dlen; i++) {
        if (strchr("*?[]\\", q->dict[i]))
            p[n++] = '\\';
        p[n++] = q->dict[i];
    }
    memcpy(p + n, ":*", 3);
    q->key = p;
    q->key_len = n + 2;
    return 0;
}

static void script_args(struct shared_redis_req *q, const struct script *s)
{
    q->script = s;
    arg_str(q, "EVALSHA");
    arg_str(q, s->sha);
    arg_str(q, "1");
    arg(q, q->key, q->key_len);
}

/* SET key value [NX|XX] [PX ms] */
static void set_args(struct shared_redis_req *q, const struct shared_op *op, const char *cond)
{
    arg_str(q, "SET");
    arg(q, q->key, q->key_len);
    arg(q, q->val, q->val_len);
    if (cond)
        arg_str(q, cond);
    if (op->ttl > 0) {
        arg_str(q, "PX");
        ms_arg(q, q->nums[0], op->ttl);
    }
}

static void scan_args(struct shared_redis_req *q)
{
    strcpy(q->cursor, "0");
    arg_str(q, "SCAN");
    arg_str(q, q->cursor);
    arg_str(q, "MATCH");
    arg(q, q->key, q->key_len);
    arg_str(q, "COUNT");
    arg_str(q, SCAN_COUNT);
}

/* Fills argv for `op`, or leaves it empty for an operation Redis has no
 * part in (or for an operation already failed). -1 when out of memory. */
static int prepare(struct shared_redis_req *q, const struct shared_op *op)
{
    switch (op->code) {
    case SHARED_KEYS:
    case SHARED_FLUSH_ALL:
        if (make_pattern(q) != 0)
            return -1;
        scan_args(q);
        return 0;
    case SHARED_FLUSH_EXPIRED:
        return 0;
    case SHARED_CAPACITY:
    case SHARED_FREE_SPACE:
        arg_str(q, "INFO");
        arg_str(q, "memory");
        return 0;
    default:
        break;
    }
    if (make_key(q, op->key, op->key_len) != 0)
        return -1;
    bool write = op->code >= SHARED_SET && op->code <= SHARED_REPLACE;
    if (write || op->code == SHARED_INCR) {
        if (op->value.type == SHARED_NIL) {
            fail(q, "no value");
            return 0;
        }
        if (encode_value(&op->value, &q->val, &q->val_len) != 0)
            return -1;
    }
    switch (op->code) {
    case SHARED_GET:
    case SHARED_TTL:
    case SHARED_DELETE:
        arg_str(q, op->code == SHARED_GET ? "GET" : op->code == SHARED_TTL ? "PTTL" : "UNLINK");
        arg(q, q->key, q->key_len);
        return 0;
    case SHARED_ADD:
    case SHARED_SAFE_ADD:
        set_args(q, op, "NX");
        return 0;
    case SHARED_REPLACE:
        set_args(q, op, "XX");
        return 0;
    case SHARED_INCR: {
        char *init = NULL;
        size_t init_len = 0;
        if (op->has_init && encode_value(&op->init, &init, &init_len) != 0)
            return -1;
        snprintf(q->nums[1], sizeof q->nums[1], "%s", init ? init : "");
        free(init);
        script_args(q, &scripts[0]);
        arg(q, q->val, q->val_len);
        arg_str(q, q->nums[1]);
        ms_arg(q, q->nums[0], op->ttl);
        return 0;
    }
    case SHARED_EXPIRE:
        script_args(q, &scripts[1]);
        ms_arg(q, q->nums[0], op->ttl);
        return 0;
    default: /* SET, SAFE_SET */
        set_args(q, op, NULL);
        return 0;
    }
}

/* ---- replies ---- */

/* Each returns true when the operation goes on (another command sent, or
 * its end scheduled), false when q->r is its result. */
typedef bool reply_fn(struct shared_redis_req *q, const struct redis_value *v);

static bool unexpected(struct shared_redis_req *q)
{
    fail(q, "redis %s: unexpected reply", redis_pool_name(q->pool));
    return false;
}

static bool reply_ok(struct shared_redis_req *q, const struct redis_value *v)
{
    (void)q;
    (void)v;
    return false;
}

static bool reply_add(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type == REDIS_V_NIL)
        q->r.status = SHARED_EXISTS;
    return false;
}

static bool reply_replace(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type == REDIS_V_NIL)
        q->r.status = SHARED_NOT_FOUND;
    return false;
}

static bool bad_value(struct shared_redis_req *q)
{
    fail(q, "redis %s: the key holds a value exhookd did not write", redis_pool_name(q->pool));
    return false;
}

static bool reply_get(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type == REDIS_V_NIL)
        return false;
    if (v->type != REDIS_V_STRING)
        return unexpected(q);
    if (decode_value(&q->r, v->str, v->len) != 0)
        return bad_value(q);
    return false;
}

/* The incr script's {1, value}, {0} or {2}. */
static bool reply_incr(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type != REDIS_V_ARRAY || v->n < 1 || v->elems[0].type != REDIS_V_INTEGER)
        return unexpected(q);
    switch (v->elems[0].integer) {
    case 0:
        q->r.status = SHARED_NOT_FOUND;
        return false;
    case 2:
        q->r.status = SHARED_NOT_A_NUMBER;
        return false;
    default:
        if (v->n != 2 || v->elems[1].type != REDIS_V_STRING)
            return unexpected(q);
        if (decode_value(&q->r, v->elems[1].str, v->elems[1].len) != 0 ||
            q->r.value.type == SHARED_STRING)
            return bad_value(q);
        return false;
    }
}

static bool reply_expire(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type != REDIS_V_INTEGER)
        return unexpected(q);
    if (v->integer == 0)
        q->r.status = SHARED_NOT_FOUND;
    return false;
}

/* PTTL: -2 no key, -1 no expiry, else milliseconds. */
static bool reply_ttl(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type != REDIS_V_INTEGER)
        return unexpected(q);
    if (v->integer == -2)
        q->r.status = SHARED_NOT_FOUND;
    else
        q->r.ttl = v->integer < 0 ? 0 : (double)v->integer / 1000;
    return false;
}

/* A SCAN reply, [next cursor, [keys]]: keeps the cursor and returns the
 * keys, or NULL if it is not one. */
static const struct redis_value *scan_reply(struct shared_redis_req *q, const struct redis_value *v)
{
    if (v->type != REDIS_V_ARRAY || v->n != 2 || v->elems[0].type != REDIS_V_STRING ||
        v->elems[0].len >= sizeof q->cursor || v->elems[1].type != REDIS_V_ARRAY)
        return NULL;
    memcpy(q->cursor, v->elems[0].str, v->elems[0].len + 1);
    q->lens[1] = v->elems[0].len;
    return &v->elems[1];
}

static bool scan_over(const struct shared_redis_req *q)
{
    return strcmp(q->cursor, "0") == 0;
}

static int found_add(struct found *f, const char *s, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        char **keys = realloc(f->keys, cap * sizeof *keys);
        if (keys)
            f->keys = keys;
        size_t *lens = realloc(f->lens, cap * sizeof *lens);
        if (lens)
            f->lens = lens;
        if (!keys || !lens)
            return -1;
        f->cap = cap;
    }
    char *k = malloc(len ? len : 1);
    if (!k)
        return -1;
    memcpy(k, s, len);
    f->keys[f->n] = k;
    f->lens[f->n++] = len;
    return 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* SCAN may return a key twice: sorts the keys and drops repeats (simple
 * insertion of each into the sorted front; batches are small). */
static void found_unique(struct found *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++) {
        char *k = f->keys[i];
        size_t len = f->lens[i];
        size_t j = n;
        while (j > 0 && key_cmp(f->keys[j - 1], f->lens[j - 1], k, len) > 0)
            j--;
        if (j > 0 && key_cmp(f->keys[j - 1], f->lens[j - 1], k, len) == 0) {
            free(k);
            continue;
        }
        memmove(f->keys + j + 1, f->keys + j, (n - j) * sizeof *f->keys);
        memmove(f->lens + j + 1, f->lens + j, (n - j) * sizeof *f->lens);
        f->keys[j] = k;
        f->lens[j] = len;
        n++;
    }
    f->n = n;
}

/* keys(): the unique keys found, at most `max`, in one allocation. */
static bool keys_result(struct shared_redis_req *q)
{
    struct found *f = &q->found;
    found_unique(f);
    size_t n = q->max && f->n > q->max ? q->max : f->n;
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += f->lens[i];
    struct shared_result *r = &q->r;
    r->owned = malloc(total);
    r->keys = calloc(n ? n : 1, sizeof *r->keys);
    r->key_lens = calloc(n ? n : 1, sizeof *r->key_lens);
    if (!r->owned || !r->keys || !r->key_lens) {
        fail(q, "out of memory");
        return false;
    }
    char *p = r->owned;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, f->keys[i], f->lens[i]);
        r->keys[i] = p;
        r->key_lens[i] = f->lens[i];
        p += f->lens[i];
    }
    r->n_keys = n;
    return false;
}

static size_t prefix_len(const struct shared_redis_req *q)
{
    return strlen(KEY_PREFIX) + strlen(q->dict) + 1;
}

static bool reply_keys(struct shared_redis_req *q, const struct redis_value *v)
{
    const struct redis_value *keys = scan_reply(q, v);
    if (!keys)
        return unexpected(q);
    size_t plen = prefix_len(q);
    for (size_t i = 0; i < keys->n; i++) {
        const struct redis_value *k = &keys->elems[i];
        if (k->type != REDIS_V_STRING || k->len < plen)
            return unexpected(q);
        if (found_add(&q->found, k->str + plen, k->len - plen) != 0) {
            fail(q, "out of memory");
            return false;
        }
    }
    if (q->max && q->found.n >= q->max)
        found_unique(&q->found);
    if (scan_over(q) || (q->max && q->found.n >= q->max))
        return keys_result(q);
    send_prepared(q);
    return true;
}

/* UNLINK of the keys of one SCAN batch. */
static bool unlink_batch(struct shared_redis_req *q, const struct redis_value *keys)
{
    const char **argv = malloc((keys->n + 1) * sizeof *argv);
    size_t *lens = malloc((keys->n + 1) * sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        fail(q, "out of memory");
        return false;
    }
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t i = 0; i < keys->n; i++) {
        argv[i + 1] = keys->elems[i].str;
        lens[i + 1] = keys->elems[i].len;
    }
    q->unlinking = true;
    send_args(q, (int)keys->n + 1, argv, lens);
    free(argv);
    free(lens);
    return true;
}

/* flush_all: SCAN a batch, UNLINK it, until the cursor comes back to 0. */
static bool reply_flush_all(struct shared_redis_req *q, const struct redis_value *v)
{
    if (!q->unlinking) {
        const struct redis_value *keys = scan_reply(q, v);
        if (!keys)
            return unexpected(q);
        for (size_t i = 0; i < keys->n; i++)
            if (keys->elems[i].type != REDIS_V_STRING)
                return unexpected(q);
        if (keys->n > 0 && keys->n < INT32_MAX)
            return unlink_batch(q, keys);
    }
    q->unlinking = false;
    if (scan_over(q))
        return false;
    send_prepared(q);
    return true;
}

/* A field of INFO's "name:value" lines. */
static bool info_field(const struct redis_value *v, const char *name, unsigned long long *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s:", name);
    const char *p = strstr(v->str, pat);
    if (!p)
        return false;
    char *end;
    *out = strtoull(p + strlen(pat), &end, 10);
    return *end == '\r' || *end == '\n';
}

static bool reply_info(struct shared_redis_req *q, const struct redis_value *v)
{
    unsigned long long used, max;
    if (v->type != REDIS_V_STRING || !info_field(v, "used_memory", &used) ||
        !info_field(v, "maxmemory", &max))
        return unexpected(q);
    if (max == 0) {
        fail(q, "redis %s has no maxmemory: the dictionary is bounded only by the host's memory",
             redis_pool_name(q->pool));
        return false;
    }
    q->r.count = q->code == SHARED_CAPACITY ? max : max > used ? max - used : 0;
    return false;
}

static reply_fn *const replies[SHARED_OPCODE_COUNT] = {
    [SHARED_GET] = reply_get,       [SHARED_SET] = reply_ok,
    [SHARED_SAFE_SET] = reply_ok,   [SHARED_ADD] = reply_add,
    [SHARED_SAFE_ADD] = reply_add,  [SHARED_REPLACE] = reply_replace,
    [SHARED_DELETE] = reply_ok,     [SHARED_INCR] = reply_incr,
    [SHARED_EXPIRE] = reply_expire, [SHARED_TTL] = reply_ttl,
    [SHARED_KEYS] = reply_keys,     [SHARED_FLUSH_ALL] = reply_flush_all,
    [SHARED_CAPACITY] = reply_info, [SHARED_FREE_SPACE] = reply_info,
};

static bool starts_with(const struct redis_value *v, const char *word)
{
    size_t n = strlen(word);
    return v->len >= n && memcmp(v->str, word, n) == 0;
}

/* An error reply: the script's text if Redis does not have it yet, "no
 * memory" for Redis' OOM, else a failure quoting Redis. */
static bool error_reply(struct shared_redis_req *q, const struct redis_value *v)
{
    if (q->script && starts_with(v, "NOSCRIPT")) {
        q->argv[0] = "EVAL";
        q->lens[0] = 4;
        q->argv[1] = q->script->text;
        q->lens[1] = strlen(q->script->text);
        q->script = NULL;
        send_prepared(q);
        return true;
    }
    if (starts_with(v, "OOM")) {
        q->r.status = SHARED_NO_MEMORY;
        return false;
    }
    fail(q, "redis %s: %.*s", redis_pool_name(q->pool), (int)(v->len < 160 ? v->len : 160), v->str);
    return false;
}

static void on_reply(void *ctx, struct redis_value *v, const struct redis_error *err)
{
    struct shared_redis_req *q = ctx;
    q->cmd = NULL;
    bool goes_on = false;
    if (err)
        fail(q, "%s", err->msg);
    else if (v->type == REDIS_V_ERROR)
        goes_on = error_reply(q, v);
    else
        goes_on = replies[q->code](q, v);
    free(v);
    if (!goes_on)
        finish(q);
}

struct shared_redis_req *shared_redis_start(struct loop *loop, struct redis_pool *pool,
                                            const char *dict, const struct shared_op *op,
                                            int64_t deadline_ns, shared_redis_done_fn *done,
                                            void *ctx)
{
    pthread_once(&scripts_once, scripts_hash);
    size_t dlen = strlen(dict);
    struct shared_redis_req *q = calloc(1, sizeof *q + dlen + 1);
    if (!q)
        return NULL;
    q->loop = loop;
    q->pool = pool;
    q->deadline_ns = deadline_ns;
    q->done = done;
    q->ctx = ctx;
    q->code = op->code;
    q->max = op->max;
    memcpy(q->dict, dict, dlen + 1);
    loop_timer_init(&q->timer, on_timer, q);
    shared_result_init(&q->r);
    if ((unsigned)op->code >= SHARED_OPCODE_COUNT)
        fail(q, "no such operation");
    else if (prepare(q, op) != 0)
        fail(q, "out of memory");
    if (q->r.status != SHARED_OK || q->argc == 0)
        finish_later(q);
    else
        send_prepared(q);
    return q;
}

void shared_redis_cancel(struct shared_redis_req *q)
{
    if (q->cmd)
        redis_cancel(q->cmd);
    loop_timer_stop(q->loop, &q->timer);
    req_free(q);
}
