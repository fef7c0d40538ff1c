/* Loading etc/exhook.ini: the table of keys and what each one sets in struct
 * config, the reading of the file line by line under inih so that every error
 * names its line, and the public cfg_ calls. How the text of a single value is
 * parsed and checked is config_values.c's part. */

#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_values.h"
#include "config_webhook.h"
#include "errbuf.h"

#define DEFAULT_LISTEN "0.0.0.0:9000"
#define DEFAULT_LUA_PATH "scripts"
#define DEFAULT_INIT_MODULE "main"
#define DEFAULT_CALL_TIMEOUT_MS 5000u
#define DEFAULT_WATCHDOG_MS 1000u
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 5000u
#define DEFAULT_MEMORY_LIMIT ((size_t)64 * 1024 * 1024)
/* gRPC's own default receive limit, which EMQX's client also keeps. */
#define DEFAULT_MAX_MESSAGE_SIZE ((size_t)4 * 1024 * 1024)
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define DEFAULT_MEMORY_QUOTA ((size_t)128 * 1024 * 1024)
/* Below 1KB even an ordinary authenticate request would not fit; above 1GB
 * one request could hold a worker's memory hostage (and gRPC counts message
 * sizes in an int). */
#define MIN_MESSAGE_SIZE ((size_t)1024)
#define MAX_MESSAGE_SIZE ((size_t)1024 * 1024 * 1024)
#define MAX_WORKERS 256
#define DEFAULT_MAX_WAITING_CALLS 10000
#define MAX_WAITING_CALLS 1000000
#define DEFAULT_MAX_TIMERS 1000
#define MAX_TIMERS 1000000
#define DEFAULT_HTTP_CONNECTIONS 256
#define MAX_HTTP_CONNECTIONS 100000
/* Below this, gRPC starts closing the brokers' connections to stay under the
 * quota while serving a few ordinary calls. */
#define MIN_MEMORY_QUOTA ((size_t)16 * 1024 * 1024)
/* A Lua state with the standard libraries loaded takes a few hundred KB, so
 * a smaller limit would only make every script fail to load. */
#define MIN_MEMORY_LIMIT ((size_t)1024 * 1024)
/* A config file is a few hundred bytes; the cap only keeps us from slurping
 * something that is not a config file at all (a device, a huge log). */
#define MAX_FILE_SIZE (1024 * 1024)
#define MSG_MAX 512

/* EMQX's own order of the message hooks, as users know them from its docs. */
#define MESSAGE_HOOK_NAMES "message.publish, message.delivered, message.acked, message.dropped"

/* ---- small helpers ---------------------------------------------------- */

/* Defaults have no way to report failure; running on without a listen
 * address or script path would only fail later and more obscurely. */
static char *xstrdup(const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL) {
        log_error("config: out of memory");
        abort();
    }
    return copy;
}

/* ---- value setters ---------------------------------------------------- */

typedef int (*setter_fn)(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen);

static int replace_string(char **slot, const char *value, char *msg, size_t msglen)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return cfgv_fail(msg, msglen, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static int set_listen(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen)
{
    if (cfgv_check_listen(key, value, msg, msglen) != 0)
        return -1;
    return replace_string(&cfg->listen, value, msg, msglen);
}

int cfg_override_listen(struct config *cfg, const char *value, char *err, size_t errlen)
{
    if (set_listen(cfg, "--listen", value, err, errlen) != 0)
        return -1;
    cfg->listen_fixed = true;
    return 0;
}

/* An empty value turns the endpoint off, as leaving the key out does. */
static int set_metrics_listen(struct config *cfg, const char *key, const char *value, char *msg,
                              size_t msglen)
{
    if (value[0] == '\0') {
        free(cfg->metrics.listen);
        cfg->metrics.listen = NULL;
        return 0;
    }
    if (cfgv_check_listen(key, value, msg, msglen) != 0)
        return -1;
    return replace_string(&cfg->metrics.listen, value, msg, msglen);
}

static int set_metrics_histograms(struct config *cfg, const char *key, const char *value,
                                  char *msg, size_t msglen)
{
    return cfgv_parse_bool(key, value, &cfg->metrics.histograms, msg, msglen);
}

static int set_workers(struct config *cfg, const char *key, const char *value, char *msg,
                       size_t msglen)
{
    uint64_t n;

    if (cfgv_parse_uint(value, MAX_WORKERS, &n, NULL) != 0 || n > MAX_WORKERS)
        return cfgv_fail(msg, msglen, "%s: expected an integer 0..%d, got '%s'", key, MAX_WORKERS,
                         value);
    cfg->workers = (int)n;
    return 0;
}

/* A count from 1 to `max` into `*out`. */
static int set_count(unsigned *out, uint64_t max, const char *key, const char *value, char *msg,
                     size_t msglen)
{
    uint64_t n;

    if (cfgv_parse_uint(value, max, &n, NULL) != 0 || n < 1 || n > max)
        return cfgv_fail(msg, msglen, "%s: expected an integer 1..%llu, got '%s'", key,
                         (unsigned long long)max, value);
    *out = (unsigned)n;
    return 0;
}

static int set_max_waiting_calls(struct config *cfg, const char *key, const char *value,
                                 char *msg, size_t msglen)
{
    return set_count(&cfg->max_waiting_calls, MAX_WAITING_CALLS, key, value, msg, msglen);
}

static int set_max_timers(struct config *cfg, const char *key, const char *value, char *msg,
                          size_t msglen)
{
    return set_count(&cfg->max_timers, MAX_TIMERS, key, value, msg, msglen);
}

static int set_http_max_connections(struct config *cfg, const char *key, const char *value,
                                    char *msg, size_t msglen)
{
    return set_count(&cfg->http_max_connections, MAX_HTTP_CONNECTIONS, key, value, msg, msglen);
}

static int set_lua_path(struct config *cfg, const char *key, const char *value, char *msg,
                        size_t msglen)
{
    if (*value == '\0')
        return cfgv_fail(msg, msglen, "%s: must not be empty", key);
    return replace_string(&cfg->lua_path, value, msg, msglen);
}

static int set_init_module(struct config *cfg, const char *key, const char *value, char *msg,
                           size_t msglen)
{
    struct cfg_filters list;

    if (cfgv_parse_module_list(key, value, &list, msg, msglen) != 0)
        return -1;
    for (size_t i = 0; i < cfg->init_module_count; i++)
        free(cfg->init_modules[i]);
    free(cfg->init_modules);
    cfg->init_modules = list.items;
    cfg->init_module_count = list.count;
    return 0;
}

static int set_call_timeout(struct config *cfg, const char *key, const char *value, char *msg,
                            size_t msglen)
{
    unsigned ms;

    if (cfgv_parse_duration(value, true, &ms) != 0)
        return cfgv_fail(msg, msglen,
                         "%s: expected a duration up to 1h such as 500ms, 5s or 2m (0 = no limit), "
                         "got '%s'",
                         key, value);
    cfg->call_timeout_ms = ms;
    return 0;
}

static int set_memory_limit(struct config *cfg, const char *key, const char *value, char *msg,
                            size_t msglen)
{
    size_t bytes;

    if (cfg_parse_size(value, &bytes) != 0)
        return cfgv_fail(
            msg, msglen,
            "%s: expected a size up to 64GB such as 512KB, 64MB or 1GB (0 = no limit), "
            "got '%s'",
            key, value);
    if (bytes != 0 && bytes < MIN_MEMORY_LIMIT)
        return cfgv_fail(msg, msglen, "%s: at least 1MB, or 0 for no limit, got '%s'", key, value);
    cfg->memory_limit = bytes;
    return 0;
}

static int set_sandbox(struct config *cfg, const char *key, const char *value, char *msg,
                       size_t msglen)
{
    return cfgv_parse_bool(key, value, &cfg->sandbox, msg, msglen);
}

/* A duration from 1 ms to 1 h, into `*ms`. */
static int set_duration(unsigned *ms, const char *key, const char *value, char *msg,
                        size_t msglen)
{
    if (cfg_parse_duration_ms(value, ms) != 0)
        return cfgv_fail(msg, msglen,
                         "%s: expected a duration from 1ms to 1h such as 500ms, 5s or 2m, got '%s'",
                         key, value);
    return 0;
}

static int set_shutdown_timeout(struct config *cfg, const char *key, const char *value, char *msg,
                                size_t msglen)
{
    return set_duration(&cfg->shutdown_timeout_ms, key, value, msg, msglen);
}

static int set_watchdog(struct config *cfg, const char *key, const char *value, char *msg,
                        size_t msglen)
{
    unsigned ms;

    if (cfgv_parse_duration(value, true, &ms) != 0)
        return cfgv_fail(msg, msglen,
                         "%s: expected a duration up to 1h such as 500ms, 1s or 2m (0 = off), "
                         "got '%s'",
                         key, value);
    cfg->watchdog_ms = ms;
    return 0;
}

static int set_max_message_size(struct config *cfg, const char *key, const char *value,
                                char *msg, size_t msglen)
{
    size_t bytes;

    if (cfg_parse_size(value, &bytes) != 0 || bytes < MIN_MESSAGE_SIZE || bytes > MAX_MESSAGE_SIZE)
        return cfgv_fail(msg, msglen, "%s: expected a size from 1KB to 1GB such as 4MB, got '%s'",
                         key, value);
    cfg->max_message_size = bytes;
    return 0;
}

static int set_handshake_timeout(struct config *cfg, const char *key, const char *value, char *msg,
                                 size_t msglen)
{
    return set_duration(&cfg->handshake_timeout_ms, key, value, msg, msglen);
}

static int set_memory_quota(struct config *cfg, const char *key, const char *value, char *msg,
                            size_t msglen)
{
    size_t bytes;

    if (cfg_parse_size(value, &bytes) != 0 || bytes < MIN_MEMORY_QUOTA)
        return cfgv_fail(msg, msglen,
                         "%s: expected a size from 16MB to 64GB such as 128MB or 1GB, got '%s'",
                         key, value);
    cfg->memory_quota = bytes;
    return 0;
}

/* A path of a PEM file. Only emptiness is checked here: whether the file is
 * there and holds what it should is tls_server_credentials' job, at start. */
static int set_path(char **slot, const char *key, const char *value, char *msg, size_t msglen)
{
    if (*value == '\0')
        return cfgv_fail(msg, msglen, "%s: must not be empty", key);
    return replace_string(slot, value, msg, msglen);
}

static int set_tls_cert(struct config *cfg, const char *key, const char *value, char *msg,
                        size_t msglen)
{
    return set_path(&cfg->tls.cert, key, value, msg, msglen);
}

static int set_tls_key(struct config *cfg, const char *key, const char *value, char *msg,
                       size_t msglen)
{
    return set_path(&cfg->tls.key, key, value, msg, msglen);
}

static int set_tls_ca(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen)
{
    return set_path(&cfg->tls.ca, key, value, msg, msglen);
}

static int set_tls_verify_client(struct config *cfg, const char *key, const char *value,
                                 char *msg, size_t msglen)
{
    return cfgv_parse_bool(key, value, &cfg->tls.verify_client, msg, msglen);
}

static int set_log_level(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen)
{
    enum log_level level;

    if (log_level_parse(value, &level) != 0)
        return cfgv_fail(msg, msglen, "%s: expected debug, info, warn, warning or error, got '%s'",
                         key, value);
    cfg->log_level = level;
    return 0;
}

static int set_log_format(struct config *cfg, const char *key, const char *value, char *msg,
                          size_t msglen)
{
    if (log_format_parse(value, &cfg->log_format) != 0)
        return cfgv_fail(msg, msglen, "%s: expected text or json, got '%s'", key, value);
    return 0;
}

static int set_topic_filters(struct config *cfg, enum hook_id id, const char *key,
                             const char *value, char *msg, size_t msglen)
{
    struct cfg_filters list;

    if (cfgv_parse_filter_list(key, value, &list, msg, msglen) != 0)
        return -1;
    cfg_filters_free(&cfg->topics[id]);
    cfg->topics[id] = list;
    return 0;
}

static const struct key_def {
    const char *section;
    const char *name;
    setter_fn set;
} key_defs[] = {
    {"server", "listen", set_listen},
    {"server", "workers", set_workers},
    {"server", "shutdown_timeout", set_shutdown_timeout},
    {"server", "watchdog", set_watchdog},
    {"server", "max_message_size", set_max_message_size},
    {"server", "handshake_timeout", set_handshake_timeout},
    {"server", "memory_quota", set_memory_quota},
    {"server", "max_waiting_calls", set_max_waiting_calls},
    {"lua", "path", set_lua_path},
    {"lua", "init_module", set_init_module},
    {"lua", "call_timeout", set_call_timeout},
    {"lua", "memory_limit", set_memory_limit},
    {"lua", "sandbox", set_sandbox},
    {"lua", "max_timers", set_max_timers},
    {"http", "max_connections", set_http_max_connections},
    {"log", "level", set_log_level},
    {"log", "format", set_log_format},
    {"metrics", "listen", set_metrics_listen},
    {"metrics", "histograms", set_metrics_histograms},
    {"tls", "cert", set_tls_cert},
    {"tls", "key", set_tls_key},
    {"tls", "ca", set_tls_ca},
    {"tls", "verify_client", set_tls_verify_client},
    {"webhook", "url", cfgw_set_url},
    {"webhook", "body.encoding_of_payload_field", cfgw_set_encoding},
    {"webhook", "pool_size", cfgw_set_pool_size},
    {"webhook", "request_timeout", cfgw_set_request_timeout},
    {"webhook", "ssl.cacertfile", cfgw_set_cacertfile},
    {"webhook", "ssl.certfile", cfgw_set_certfile},
    {"webhook", "ssl.keyfile", cfgw_set_keyfile},
    {"webhook", "ssl.verify", cfgw_set_verify},
    {"webhook", "queue_events", cfgw_set_queue_events},
    {"webhook", "queue_bytes", cfgw_set_queue_bytes},
    {"webhook", "max_retries", cfgw_set_max_retries},
    {"webhook", "retry_interval", cfgw_set_retry_interval},
    {"webhook", "max_retry_interval", cfgw_set_max_retry_interval},
};

#define KEY_COUNT (sizeof key_defs / sizeof key_defs[0])

/* The sections are those of the keys, and [topics], which has no fixed
 * keys: they are hook names, checked separately. */
static bool section_known(const char *name, size_t len)
{
    if (len == 6 && memcmp(name, "topics", 6) == 0)
        return true;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strlen(key_defs[i].section) == len && memcmp(key_defs[i].section, name, len) == 0)
            return true;
    }
    return false;
}

/* ---- parsing ---------------------------------------------------------- */

enum line_kind { LINE_BLANK, LINE_SECTION, LINE_KEY, LINE_CONTINUATION, LINE_BAD };

struct load_state {
    struct config *cfg;
    const char *text;
    size_t len;
    size_t pos;
    int line;            /* number of the line last handed to inih */
    enum line_kind kind; /* what inih will make of that line */
    bool have_prev_name; /* mirrors inih: an indented line continues the last key */
    bool seen[KEY_COUNT];
    bool topic_seen[HOOK_COUNT];
    int err_line; /* line of the first error, 0 while there is none */
    char err_msg[MSG_MAX];
};

static void record(struct load_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps only the first error: later ones are often consequences of it. */
static void record(struct load_state *st, const char *fmt, ...)
{
    va_list ap;

    if (st->err_line != 0)
        return;
    st->err_line = st->line;
    va_start(ap, fmt);
    vsnprintf(st->err_msg, sizeof st->err_msg, fmt, ap);
    va_end(ap);
}

/* inih's scan for a delimiter: stops at one of `chars`, at an inline comment
 * prefix that follows whitespace, or at the end of the line. */
static const char *scan_to(const char *s, const char *chars)
{
    bool was_space = false;

    while (*s != '\0' && !(chars != NULL && strchr(chars, *s) != NULL) &&
           !(INI_ALLOW_INLINE_COMMENTS && was_space &&
             strchr(INI_INLINE_COMMENT_PREFIXES, *s) != NULL)) {
        was_space = cfgv_is_space(*s);
        s++;
    }
    return s;
}

/* Sorts a line the way inih's parser will (same order of tests), so that its
 * syntax errors get a real message and a line number we know is right, and
 * so that a section header is checked even when no key follows it (inih
 * never tells the handler about sections on their own). */
static void classify(struct load_state *st, const char *buf)
{
    const char *s = buf;

    if (INI_ALLOW_BOM && st->line == 1 && (unsigned char)s[0] == 0xEF &&
        (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    while (cfgv_is_space(*s))
        s++;
    if (*s == '\0' || strchr(INI_START_COMMENT_PREFIXES, *s) != NULL) {
        st->kind = LINE_BLANK;
    } else if (INI_ALLOW_MULTILINE && st->have_prev_name && s > buf) {
        st->kind = LINE_CONTINUATION;
    } else if (*s == '[') {
        const char *end = scan_to(s + 1, "]");
        if (*end != ']') {
            st->kind = LINE_BAD;
            record(st, "expected ']' to close the section name");
            return;
        }
        st->kind = LINE_SECTION;
        st->have_prev_name = false;
        size_t len = (size_t)(end - (s + 1));
        if (!section_known(s + 1, len))
            record(st, "unknown section [%.*s]", (int)len, s + 1);
    } else {
        const char *end = scan_to(s, "=:");
        if (*end != '=' && *end != ':') {
            st->kind = LINE_BAD;
            record(st, "expected key = value");
            return;
        }
        st->kind = LINE_KEY;
        st->have_prev_name = end > s;
    }
}

/* fgets-style reader over the in-memory text, one physical line per call so
 * that our line count is inih's. */
static char *read_line(char *buf, int num, void *stream)
{
    struct load_state *st = stream;

    /* Stop at the first error: everything after it would go unreported anyway. */
    if (st->err_line != 0 || st->pos >= st->len)
        return NULL;
    const char *p = st->text + st->pos;
    size_t rest = st->len - st->pos;
    const char *nl = memchr(p, '\n', rest);
    size_t n = nl != NULL ? (size_t)(nl - p) + 1 : rest;
    size_t visible = n;
    if (visible > 0 && p[visible - 1] == '\n')
        visible--;
    if (visible > 0 && p[visible - 1] == '\r')
        visible--;

    st->line++;
    if (memchr(p, '\0', n) != NULL) {
        record(st, "NUL byte in line");
        return NULL;
    }
    /* inih's buffer holds num - 1 characters including "\r\n"; it would cut a
     * longer line into pieces and parse each piece as a line of its own. */
    if (num < 3 || visible > (size_t)num - 3) {
        record(st, "line too long (at most %d characters)", num < 3 ? 0 : num - 3);
        return NULL;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    st->pos += n;
    classify(st, buf);
    return st->err_line != 0 ? NULL : buf;
}

static int topics_entry(struct load_state *st, const char *name, const char *value)
{
    char msg[MSG_MAX];
    int id = hooks_find_by_name(name);

    if (id < 0) {
        record(st, "unknown hook '%s' in [topics] (expected one of " MESSAGE_HOOK_NAMES ")", name);
        return 0;
    }
    if (!hooks_is_message((enum hook_id)id)) {
        record(st,
               "hook '%s' takes no topic filters: only message hooks do (" MESSAGE_HOOK_NAMES ")",
               name);
        return 0;
    }
    if (st->topic_seen[id]) {
        record(st, "duplicate key '%s' in section [topics]", name);
        return 0;
    }
    st->topic_seen[id] = true;
    if (set_topic_filters(st->cfg, (enum hook_id)id, name, value, msg, sizeof msg) != 0) {
        record(st, "%s", msg);
        return 0;
    }
    return 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    char msg[MSG_MAX];

    if (st->kind == LINE_CONTINUATION) {
        record(st, "indented line continues the value of '%s'; multi-line values are not "
                   "supported, remove the indentation", name);
        return 0;
    }
    if (section[0] == '\0') {
        record(st, "key '%s' outside of any section", name);
        return 0;
    }
    if (strcmp(section, "topics") == 0)
        return topics_entry(st, name, value);
    if (strcmp(section, "webhook") == 0) {
        /* Keys pasted from the plugin's file may keep its prefix. */
        if (strncmp(name, CFGW_PLUGIN_PREFIX, strlen(CFGW_PLUGIN_PREFIX)) == 0)
            name += strlen(CFGW_PLUGIN_PREFIX);
        if (cfgw_free_form(name)) {
            if (cfgw_set_free_form(&st->cfg->webhook, name, value, msg, sizeof msg) != 0) {
                record(st, "%s", msg);
                return 0;
            }
            return 1;
        }
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct key_def *def = &key_defs[i];
        if (strcmp(def->section, section) != 0)
            continue;
        if (strcmp(def->name, name) != 0)
            continue;
        if (st->seen[i]) {
            record(st, "duplicate key '%s' in section [%s]", name, section);
            return 0;
        }
        st->seen[i] = true;
        if (def->set(st->cfg, name, value, msg, sizeof msg) != 0) {
            record(st, "%s", msg);
            return 0;
        }
        return 1;
    }
    /* classify() has already rejected unknown section headers. */
    record(st, "unknown key '%s' in section [%s]", name, section);
    return 0;
}

/* The [tls] keys that only make sense together. Checked on the whole result,
 * since the keys may come in any order; there is no single line to blame. */
const char *cfg_tls_problem(const struct config *cfg)
{
    if ((cfg->tls.cert == NULL) != (cfg->tls.key == NULL))
        return "cert and key go together: set both or neither";
    /* Before the ca check: without a certificate there is no TLS at all, so
     * adding a ca would not be the fix. */
    if (cfg->tls.cert == NULL && (cfg->tls.ca != NULL || cfg->tls.verify_client))
        return "ca and verify_client need cert and key";
    if (cfg->tls.verify_client && cfg->tls.ca == NULL)
        return "verify_client needs ca, the CA that signs the brokers' certificates";
    return NULL;
}

static int load_text(struct config *cfg, const char *text, size_t len, const char *name,
                     char *err, size_t errlen)
{
    struct load_state st = {.cfg = cfg, .text = text, .len = len};
    int rc = ini_parse_stream(read_line, &st, on_entry, &st);

    if (st.err_line != 0) {
        errbuf_set(err, errlen, "%s:%d: %s", name, st.err_line, st.err_msg);
        return -1;
    }
    /* Only reachable if inih disagrees with classify() about a line. */
    if (rc > 0) {
        errbuf_set(err, errlen, "%s:%d: syntax error", name, rc);
        return -1;
    }
    if (rc != 0) {
        errbuf_set(err, errlen, "%s: parse error %d", name, rc);
        return -1;
    }
    const char *why = cfg_tls_problem(cfg);
    if (why != NULL) {
        errbuf_set(err, errlen, "%s: [tls] %s", name, why);
        return -1;
    }
    why = cfgw_problem(&cfg->webhook);
    if (why != NULL) {
        errbuf_set(err, errlen, "%s: [webhook] %s", name, why);
        return -1;
    }
    return 0;
}

/* ---- public API ------------------------------------------------------- */

void cfg_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = xstrdup(DEFAULT_LISTEN);
    cfg->workers = 0;
    cfg->lua_path = xstrdup(DEFAULT_LUA_PATH);
    cfg->init_modules = calloc(1, sizeof *cfg->init_modules);
    if (cfg->init_modules == NULL) {
        log_error("config: out of memory");
        abort();
    }
    cfg->init_modules[0] = xstrdup(DEFAULT_INIT_MODULE);
    cfg->init_module_count = 1;
    cfg->call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
    cfg->memory_limit = DEFAULT_MEMORY_LIMIT;
    cfg->max_waiting_calls = DEFAULT_MAX_WAITING_CALLS;
    cfg->max_timers = DEFAULT_MAX_TIMERS;
    cfg->http_max_connections = DEFAULT_HTTP_CONNECTIONS;
    cfg->sandbox = true;
    cfg->shutdown_timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS;
    cfg->watchdog_ms = DEFAULT_WATCHDOG_MS;
    cfg->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    cfg->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    cfg->memory_quota = DEFAULT_MEMORY_QUOTA;
    cfg->log_level = LOG_INFO;
    cfg->metrics.histograms = true;
    cfgw_defaults(&cfg->webhook);
}

char *cfg_read_file(const char *path, size_t max_bytes, size_t *len_out, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) {
        errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            /* One byte over the cap tells "exactly at the cap" from "larger". */
            size_t grown = cap == 0 ? 8192 : cap * 2;
            if (grown > max_bytes + 1)
                grown = max_bytes + 1;
            char *p = realloc(buf, grown + 1);
            if (p == NULL) {
                errbuf_set(err, errlen, "%s: out of memory", path);
                goto error;
            }
            buf = p;
            cap = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0 || len > max_bytes)
            break;
    }
    if (ferror(f)) {
        /* e.g. EISDIR: fopen opens a directory, reading it fails */
        errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
        goto error;
    }
    if (len > max_bytes) {
        errbuf_set(err, errlen, "%s: file too large (over %zu bytes)", path, max_bytes);
        goto error;
    }
    buf[len] = '\0';
    fclose(f);
    *len_out = len;
    return buf;
error:
    free(buf);
    fclose(f);
    return NULL;
}

int cfg_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = cfg_read_file(path, MAX_FILE_SIZE, &len, err, errlen);
    if (buf == NULL)
        return -1;
    int ret = load_text(cfg, buf, len, path, err, errlen);
    free(buf);
    return ret;
}

int cfg_load_string(struct config *cfg, const char *text, const char *name, char *err,
                    size_t errlen)
{
    if (name == NULL)
        name = "<string>";
    if (text == NULL) {
        errbuf_set(err, errlen, "%s: no text", name);
        return -1;
    }
    return load_text(cfg, text, strlen(text), name, err, errlen);
}

void cfg_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->listen);
    free(cfg->lua_path);
    for (size_t i = 0; i < cfg->init_module_count; i++)
        free(cfg->init_modules[i]);
    free(cfg->init_modules);
    free(cfg->tls.cert);
    free(cfg->tls.key);
    free(cfg->tls.ca);
    free(cfg->metrics.listen);
    for (int i = 0; i < HOOK_COUNT; i++)
        cfg_filters_free(&cfg->topics[i]);
    cfg_webhook_free(&cfg->webhook);
    /* Zeroed, a freed config is harmless to free again. */
    memset(cfg, 0, sizeof *cfg);
}
