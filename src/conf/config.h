#ifndef EXHOOKD_CONFIG_H
#define EXHOOKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "hooks.h"
#include "log.h"

/* etc/exhook.ini, parsed with inih. Every key is documented in the shipped
 * file. Errors name the file and line: "etc/exhook.ini:12: unknown key ...". */

struct cfg_filters {
    char **items; /* topic filters, validated */
    size_t count;
};

/* [webhook] rule.<event>.<n> = {"action": "...", "topic": "..."}: one
 * POST per event of `hook` (and, where `topic` is set, per topic it
 * matches), as each rule was a hook of its own in 4.x. */
struct cfg_webhook_rule {
    enum hook_id hook; /* the 4.x event, e.g. message.publish = HOOK_MESSAGE_PUBLISH */
    /* The rule's "action" as written: in 4.x it named the plugin's function
     * for the event ("on_message_publish"), so it is checked to be that
     * one; the body's "action" field is the event's ("message_publish"). */
    char *action;
    /* A topic filter, or NULL = every topic. Message events match it against
     * the message's topic; client.subscribe, client.unsubscribe,
     * session.subscribed and session.unsubscribed against the subscription's
     * filter (4.x did too); other events take none. */
    char *topic;
    char *name;        /* the key's <n>, for messages */
};

struct cfg_webhook_header {
    char *name;
    char *value;
};

enum cfg_payload_encoding {
    CFG_PAYLOAD_PLAIN = 0,
    CFG_PAYLOAD_BASE64,
    CFG_PAYLOAD_BASE62,
};

/* [webhook]: the 4.x WebHook built in, off unless url is set. */
struct cfg_webhook {
    char *url;                           /* NULL = off */
    struct cfg_webhook_header *headers;  /* headers.<name> = value */
    size_t n_headers;
    enum cfg_payload_encoding encoding;  /* body.encoding_of_payload_field */
    unsigned pool_size;                  /* connections to the receiver */
    unsigned request_timeout_ms;         /* one POST */
    struct {
        char *cacertfile;
        char *certfile;
        char *keyfile;
        bool verify;                     /* verify the receiver's certificate */
    } ssl;
    struct cfg_webhook_rule *rules;
    size_t n_rules;
    size_t queue_events;                 /* events waiting, at most */
    size_t queue_bytes;                  /* bytes of events waiting, at most */
    unsigned max_retries;                /* after the first POST of an event */
    unsigned retry_interval_ms;          /* first backoff, doubling */
    unsigned max_retry_interval_ms;      /* the backoff's ceiling */
};

/* Frees what `wc` holds and leaves it zeroed (webhook off). */
void cfg_webhook_free(struct cfg_webhook *wc);

struct config {
    char *listen;              /* [server] listen, default "0.0.0.0:9000" */
    /* Not a key: --listen set `listen`, so a reload ignores the file's. */
    bool listen_fixed;
    int workers;               /* [server] workers, default 0 = one per CPU; 0..256 */
    char *lua_path;            /* [lua] path, default "scripts" */
    char **init_modules;       /* [lua] init_module, default "main"; comma-separated list */
    size_t init_module_count;
    unsigned call_timeout_ms;  /* [lua] call_timeout, default 5s; 0 = no limit */
    size_t memory_limit;       /* [lua] memory_limit, bytes per Lua state, default 64MB; 0 = none */
    bool sandbox;              /* [lua] sandbox, default true */
    unsigned max_timers;       /* [lua] max_timers, pending exhook.timer per worker, default 1000 */
    /* [server] max_waiting_calls: calls in progress per worker (running or
     * waiting for I/O), default 10000 */
    unsigned max_waiting_calls;
    /* [http] max_connections: per worker, to one server, default 256 */
    unsigned http_max_connections;
    unsigned shutdown_timeout_ms; /* [server] shutdown_timeout, default 5s */
    unsigned watchdog_ms;      /* [server] watchdog, default 1s; 0 = off */
    /* Not a key: set by the master process, whose children share the port
     * (SO_REUSEPORT) after it has checked that the port is free. */
    bool reuse_port;
    size_t max_message_size;   /* [server] max_message_size, default 4MB; 1KB..1GB */
    unsigned handshake_timeout_ms; /* [server] handshake_timeout, default 10s */
    size_t memory_quota;       /* [server] memory_quota, gRPC's buffers, default 128MB */
    /* [tls]: serve over TLS when cert is set (cert and key go together);
     * with verify_client, brokers must present a certificate signed by ca. */
    struct {
        char *cert;            /* PEM certificate chain file */
        char *key;             /* PEM private key file */
        char *ca;              /* PEM CA bundle for client certificates */
        bool verify_client;    /* default false; true requires ca */
    } tls;
    enum log_level log_level;  /* [log] level, default info */
    enum log_format log_format; /* [log] format, default text */
    /* [metrics]: the Prometheus endpoint, off (NULL) unless listen is set. */
    struct {
        char *listen;          /* host:port of /metrics; NULL = off */
        bool histograms;       /* default true: call latency histograms */
    } metrics;
    /* [topics] <message hook> = filter, filter ...; only message.* hooks. */
    struct cfg_filters topics[HOOK_COUNT];
    struct cfg_webhook webhook;
};

/* Fills `cfg` with the defaults (allocating the default strings). */
void cfg_defaults(struct config *cfg);

/* Loads `path` over the defaults. 0 on success; -1 with a one-line message in
 * `err` ("<path>:<line>: <what>", or "<path>: <strerror>" when unreadable). On
 * error `cfg` still holds valid, freeable data. */
int cfg_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Same as cfg_load for an in-memory text; `name` stands for the file name in errors. */
int cfg_load_string(struct config *cfg, const char *text, const char *name, char *err,
                    size_t errlen);

void cfg_free(struct config *cfg);

/* exhookd --listen: replaces [server] listen, checked as the key is. 0 on
 * success; -1 with "--listen: <what>" in `err`. */
int cfg_override_listen(struct config *cfg, const char *value, char *err, size_t errlen);

/* Reads a whole file of at most `max_bytes` into a NUL-terminated malloc'd
 * buffer, its length in *len. NULL with "<path>: <why>" in `err` when it
 * cannot be read or is larger. */
char *cfg_read_file(const char *path, size_t max_bytes, size_t *len, char *err, size_t errlen);

/* What is wrong with the [tls] keys taken together (cert without key, ...),
 * or NULL. cfg_load checks it; tls.c again, for a config built by hand. */
const char *cfg_tls_problem(const struct config *cfg);

/* Frees the filters of `f` and leaves it empty. */
void cfg_filters_free(struct cfg_filters *f);

/* "500ms", "5s", "2m", "1500" (bare number = milliseconds) -> milliseconds.
 * 0 on success, -1 on a malformed, zero, or > 1 hour value. */
int cfg_parse_duration_ms(const char *text, unsigned *out_ms);

/* "64MB", "512KB", "1GB", "1048576" (bare number = bytes); units are powers
 * of 1024 (KB, MB, GB; also K, M, G, case-insensitive). 0 on success, -1 on a
 * malformed value or one over 64GB. "0" gives 0. */
int cfg_parse_size(const char *text, size_t *out_bytes);

#endif
