/* The [webhook] section of etc/exhook.ini: the 4.x WebHook plugin's keys
 * (web.hook.* in its emqx_web_hook.conf, without the prefix), and the
 * queue and retry keys it did not have. Rules are parsed here, once, so a
 * bad one stops start-up or a reload with its line. */

#include "config_webhook.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_values.h"
#include "topic.h"

#define DEFAULT_POOL_SIZE 32u /* what the plugin's shipped file set */
#define MAX_POOL_SIZE 1024u
#define DEFAULT_REQUEST_TIMEOUT_MS 5000u /* the plugin's fixed timeout */
#define DEFAULT_QUEUE_EVENTS ((size_t)100000)
#define MAX_QUEUE_EVENTS 100000000u
#define DEFAULT_QUEUE_BYTES ((size_t)64 * 1024 * 1024)
#define MIN_QUEUE_BYTES ((size_t)64 * 1024) /* room for one large event */
#define DEFAULT_MAX_RETRIES 3u
#define MAX_RETRIES 1000u
#define DEFAULT_RETRY_INTERVAL_MS 1000u
#define DEFAULT_MAX_RETRY_INTERVAL_MS 30000u

#define EVENT_NAMES                                                                                \
    "client.connect, client.connack, client.connected, client.disconnected, client.subscribe, "    \
    "client.unsubscribe, session.subscribed, session.unsubscribed, session.terminated, "           \
    "message.publish, message.delivered, message.acked, message.dropped"

/* The events the plugin could forward: the hooks it had functions for. */
static const enum hook_id webhook_events[] = {
    HOOK_CLIENT_CONNECT,      HOOK_CLIENT_CONNACK,       HOOK_CLIENT_CONNECTED,
    HOOK_CLIENT_DISCONNECTED, HOOK_CLIENT_SUBSCRIBE,     HOOK_CLIENT_UNSUBSCRIBE,
    HOOK_SESSION_SUBSCRIBED,  HOOK_SESSION_UNSUBSCRIBED, HOOK_SESSION_TERMINATED,
    HOOK_MESSAGE_PUBLISH,     HOOK_MESSAGE_DELIVERED,    HOOK_MESSAGE_ACKED,
    HOOK_MESSAGE_DROPPED,
};

/* ---- defaults and freeing --------------------------------------------- */

void cfgw_defaults(struct cfg_webhook *wc)
{
    memset(wc, 0, sizeof *wc);
    wc->encoding = CFG_PAYLOAD_PLAIN;
    wc->pool_size = DEFAULT_POOL_SIZE;
    wc->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    wc->ssl.verify = true;
    wc->queue_events = DEFAULT_QUEUE_EVENTS;
    wc->queue_bytes = DEFAULT_QUEUE_BYTES;
    wc->max_retries = DEFAULT_MAX_RETRIES;
    wc->retry_interval_ms = DEFAULT_RETRY_INTERVAL_MS;
    wc->max_retry_interval_ms = DEFAULT_MAX_RETRY_INTERVAL_MS;
}

void cfg_webhook_free(struct cfg_webhook *wc)
{
    free(wc->url);
    for (size_t i = 0; i < wc->n_headers; i++) {
        free(wc->headers[i].name);
        free(wc->headers[i].value);
    }
    free(wc->headers);
    free(wc->ssl.cacertfile);
    free(wc->ssl.certfile);
    free(wc->ssl.keyfile);
    for (size_t i = 0; i < wc->n_rules; i++) {
        free(wc->rules[i].action);
        free(wc->rules[i].topic);
        free(wc->rules[i].name);
    }
    free(wc->rules);
    memset(wc, 0, sizeof *wc);
}

/* ---- fixed keys ------------------------------------------------------- */

static int replace(char **slot, const char *value, char *msg, size_t msglen)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return cfgv_fail(msg, msglen, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static bool has_control_or_space(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return true;
    }
    return false;
}

/* http://host[:port][/path] or https://...; what the HTTP client accepts
 * beyond that (user info, IPv6 literals) is its to check at start. */
static const char *url_problem(const char *url)
{
    size_t scheme;

    if (strncasecmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else
        return "expected an http:// or https:// URL";
    if (url[scheme] == '\0' || url[scheme] == '/' || url[scheme] == ':')
        return "the URL has no host";
    if (has_control_or_space(url))
        return "the URL contains a space or a control character";
    return NULL;
}

/* An empty value leaves the webhook off, as leaving the key out does. */
int cfgw_set_url(struct config *cfg, const char *key, const char *value, char *msg, size_t msglen)
{
    if (value[0] == '\0') {
        free(cfg->webhook.url);
        cfg->webhook.url = NULL;
        return 0;
    }
    const char *why = url_problem(value);
    if (why != NULL)
        return cfgv_fail(msg, msglen, "%s: %s, got '%s'", key, why, value);
    return replace(&cfg->webhook.url, value, msg, msglen);
}

int cfgw_set_encoding(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen)
{
    static const struct {
        const char *name;
        enum cfg_payload_encoding encoding;
    } names[] = {
        {"plain", CFG_PAYLOAD_PLAIN},
        {"base64", CFG_PAYLOAD_BASE64},
        {"base62", CFG_PAYLOAD_BASE62},
    };

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(value, names[i].name) == 0) {
            cfg->webhook.encoding = names[i].encoding;
            return 0;
        }
    }
    return cfgv_fail(msg, msglen, "%s: expected plain, base64 or base62, got '%s'", key, value);
}

/* An integer from `min` to `max`. */
static int parse_range(uint64_t *out, uint64_t min, uint64_t max, const char *key,
                       const char *value, char *msg, size_t msglen)
{
    if (cfgv_parse_uint(value, max, out, NULL) != 0 || *out < min || *out > max)
        return cfgv_fail(msg, msglen, "%s: expected an integer %llu..%llu, got '%s'", key,
                         (unsigned long long)min, (unsigned long long)max, value);
    return 0;
}

int cfgw_set_pool_size(struct config *cfg, const char *key, const char *value, char *msg,
                       size_t msglen)
{
    uint64_t n;

    if (parse_range(&n, 1, MAX_POOL_SIZE, key, value, msg, msglen) != 0)
        return -1;
    cfg->webhook.pool_size = (unsigned)n;
    return 0;
}

static int set_duration(unsigned *ms, const char *key, const char *value, char *msg, size_t msglen)
{
    if (cfg_parse_duration_ms(value, ms) != 0)
        return cfgv_fail(msg, msglen,
                         "%s: expected a duration from 1ms to 1h such as 500ms, 5s or 2m, got '%s'",
                         key, value);
    return 0;
}

int cfgw_set_request_timeout(struct config *cfg, const char *key, const char *value, char *msg,
                             size_t msglen)
{
    return set_duration(&cfg->webhook.request_timeout_ms, key, value, msg, msglen);
}

/* A PEM file: whether it is there and readable is checked when the
 * connection is set up, as for [tls]. */
static int set_pem(char **slot, const char *key, const char *value, char *msg, size_t msglen)
{
    if (value[0] == '\0')
        return cfgv_fail(msg, msglen, "%s: must not be empty", key);
    return replace(slot, value, msg, msglen);
}

int cfgw_set_cacertfile(struct config *cfg, const char *key, const char *value, char *msg,
                        size_t msglen)
{
    return set_pem(&cfg->webhook.ssl.cacertfile, key, value, msg, msglen);
}

int cfgw_set_certfile(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen)
{
    return set_pem(&cfg->webhook.ssl.certfile, key, value, msg, msglen);
}

int cfgw_set_keyfile(struct config *cfg, const char *key, const char *value, char *msg,
                     size_t msglen)
{
    return set_pem(&cfg->webhook.ssl.keyfile, key, value, msg, msglen);
}

int cfgw_set_verify(struct config *cfg, const char *key, const char *value, char *msg,
                    size_t msglen)
{
    return cfgv_parse_bool(key, value, &cfg->webhook.ssl.verify, msg, msglen);
}

int cfgw_set_queue_events(struct config *cfg, const char *key, const char *value, char *msg,
                          size_t msglen)
{
    uint64_t n;

    if (parse_range(&n, 1, MAX_QUEUE_EVENTS, key, value, msg, msglen) != 0)
        return -1;
    cfg->webhook.queue_events = (size_t)n;
    return 0;
}

int cfgw_set_queue_bytes(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen)
{
    size_t bytes;

    if (cfg_parse_size(value, &bytes) != 0 || bytes < MIN_QUEUE_BYTES)
        return cfgv_fail(msg, msglen,
                         "%s: expected a size from 64KB to 64GB such as 512KB, 64MB or 1GB, "
                         "got '%s'",
                         key, value);
    cfg->webhook.queue_bytes = bytes;
    return 0;
}

int cfgw_set_max_retries(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen)
{
    uint64_t n;

    if (parse_range(&n, 0, MAX_RETRIES, key, value, msg, msglen) != 0)
        return -1;
    cfg->webhook.max_retries = (unsigned)n;
    return 0;
}

int cfgw_set_retry_interval(struct config *cfg, const char *key, const char *value, char *msg,
                            size_t msglen)
{
    return set_duration(&cfg->webhook.retry_interval_ms, key, value, msg, msglen);
}

int cfgw_set_max_retry_interval(struct config *cfg, const char *key, const char *value, char *msg,
                                size_t msglen)
{
    return set_duration(&cfg->webhook.max_retry_interval_ms, key, value, msg, msglen);
}

/* ---- headers.<name> --------------------------------------------------- */

#define HEADERS_PREFIX "headers."
#define RULE_PREFIX "rule."

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cfgw_free_form(const char *name)
{
    return starts_with(name, HEADERS_PREFIX) || starts_with(name, RULE_PREFIX);
}

/* RFC 9110's token characters, the only ones a field name may have. */
static bool header_name_valid(const char *name)
{
    if (name[0] == '\0')
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p) != NULL))
            return false;
    }
    return true;
}

/* Headers that describe the request's framing or connection, which the
 * HTTP client sets itself: another value would corrupt the request. */
static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection"};

    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    }
    return false;
}

static int set_header(struct cfg_webhook *wc, const char *key, const char *value, char *msg,
                      size_t msglen)
{
    const char *name = key + strlen(HEADERS_PREFIX);

    if (!header_name_valid(name))
        return cfgv_fail(msg, msglen,
                         "%s: '%s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~)",
                         key, name);
    if (header_reserved(name))
        return cfgv_fail(msg, msglen, "%s: %s is set by the HTTP client and cannot be changed", key,
                         name);
    for (const char *p = value; *p != '\0'; p++) {
        if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
            return cfgv_fail(msg, msglen, "%s: the value contains a control character", key);
    }
    for (size_t i = 0; i < wc->n_headers; i++) {
        if (strcasecmp(wc->headers[i].name, name) == 0)
            return cfgv_fail(msg, msglen,
                             "%s: header %s is already set (header names are case-insensitive)",
                             key, wc->headers[i].name);
    }
    struct cfg_webhook_header *grown =
        realloc(wc->headers, (wc->n_headers + 1) * sizeof *wc->headers);
    if (grown == NULL)
        return cfgv_fail(msg, msglen, "out of memory");
    wc->headers = grown;
    struct cfg_webhook_header h = {strdup(name), strdup(value)};
    if (h.name == NULL || h.value == NULL) {
        free(h.name);
        free(h.value);
        return cfgv_fail(msg, msglen, "out of memory");
    }
    wc->headers[wc->n_headers++] = h;
    return 0;
}

/* ---- rule.<event>.<n> ------------------------------------------------- */

/* The events whose rules may name a topic: the message events, and those
 * about subscriptions, where 4.x matched it against the subscription. */
static bool takes_topic(enum hook_id hook)
{
    return hooks_is_message(hook) || hook == HOOK_CLIENT_SUBSCRIBE ||
           hook == HOOK_CLIENT_UNSUBSCRIBE || hook == HOOK_SESSION_SUBSCRIBED ||
           hook == HOOK_SESSION_UNSUBSCRIBED;
}

static int find_event(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof webhook_events / sizeof webhook_events[0]; i++) {
        const char *event = hook_defs[webhook_events[i]].name;
        if (strlen(event) == len && memcmp(event, name, len) == 0)
            return (int)webhook_events[i];
    }
    return -1;
}

/* "on_" and the event with '_' for '.': the plugin function the 4.x rule
 * had to name. */
static void expected_action(enum hook_id hook, char *buf, size_t len)
{
    snprintf(buf, len, "on_%s", hook_defs[hook].name);
    for (char *p = buf; *p != '\0'; p++) {
        if (*p == '.')
            *p = '_';
    }
}

/* Splits "rule.<event>.<n>"; the <n> goes to *n. -1 when malformed. */
static int parse_rule_key(const char *key, int *hook, const char **n, char *msg, size_t msglen)
{
    const char *event = key + strlen(RULE_PREFIX);
    const char *dot = strrchr(event, '.');

    if (dot == NULL || dot == event || dot[1] == '\0')
        return cfgv_fail(msg, msglen, "%s: expected rule.<event>.<n>, e.g. rule.message.publish.1",
                         key);
    for (const char *p = dot + 1; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return cfgv_fail(msg, msglen,
                             "%s: the rule's name '%s' may hold only letters, digits, '_' and '-'",
                             key, dot + 1);
    }
    *hook = find_event(event, (size_t)(dot - event));
    if (*hook < 0)
        return cfgv_fail(msg, msglen, "%s: unknown event '%.*s' (expected one of " EVENT_NAMES ")",
                         key, (int)(dot - event), event);
    *n = dot + 1;
    return 0;
}

/* Reads the JSON of a rule into `rule` (action and topic). */
static int parse_rule_json(const char *key, const char *value, struct cfg_webhook_rule *rule,
                           char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *root = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
    int ret = -1;

    if (root == NULL)
        return cfgv_fail(msg, msglen, "%s: bad JSON at column %d: %s", key, jerr.column, jerr.text);
    const char *field;
    json_t *v;
    if (!json_is_object(root)) {
        cfgv_fail(msg, msglen, "%s: expected a JSON object such as {\"action\": \"...\"}", key);
        goto out;
    }
    json_object_foreach(root, field, v)
    {
        if (strcmp(field, "action") != 0 && strcmp(field, "topic") != 0) {
            cfgv_fail(msg, msglen, "%s: unknown field \"%s\" (expected action and topic)", key,
                      field);
            goto out;
        }
        if (!json_is_string(v)) {
            cfgv_fail(msg, msglen, "%s: \"%s\" must be a string", key, field);
            goto out;
        }
    }
    v = json_object_get(root, "action");
    if (v == NULL) {
        cfgv_fail(msg, msglen, "%s: missing \"action\"", key);
        goto out;
    }
    rule->action = strdup(json_string_value(v));
    v = json_object_get(root, "topic");
    if (v != NULL)
        rule->topic = strdup(json_string_value(v));
    if (rule->action == NULL || (v != NULL && rule->topic == NULL)) {
        cfgv_fail(msg, msglen, "out of memory");
        goto out;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

/* The checks of a parsed rule against its event. */
static int check_rule(const char *key, const struct cfg_webhook_rule *rule, char *msg,
                      size_t msglen)
{
    char want[64];
    const char *why;

    expected_action(rule->hook, want, sizeof want);
    if (strcmp(rule->action, want) != 0)
        return cfgv_fail(msg, msglen, "%s: \"action\" of a %s rule must be \"%s\", got \"%s\"", key,
                         hook_defs[rule->hook].name, want, rule->action);
    if (rule->topic == NULL)
        return 0;
    if (!takes_topic(rule->hook))
        return cfgv_fail(msg, msglen,
                         "%s: %s takes no \"topic\": only message events and client.subscribe, "
                         "client.unsubscribe, session.subscribed, session.unsubscribed do",
                         key, hook_defs[rule->hook].name);
    if (topic_filter_valid(rule->topic, &why) != 0)
        return cfgv_fail(msg, msglen, "%s: \"topic\": %s, got '%s'", key, why, rule->topic);
    return 0;
}

static bool same_topic(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* 4.x registered a rule once per event and topic, so a repeat never
 * posted twice: here it is named as the mistake it almost always is. */
static int check_repeat(const struct cfg_webhook *wc, const char *key,
                        const struct cfg_webhook_rule *rule, char *msg, size_t msglen)
{
    for (size_t i = 0; i < wc->n_rules; i++) {
        const struct cfg_webhook_rule *r = &wc->rules[i];
        if (r->hook != rule->hook)
            continue;
        if (strcmp(r->name, rule->name) == 0)
            return cfgv_fail(msg, msglen, "duplicate key '%s' in section [webhook]", key);
        if (same_topic(r->topic, rule->topic))
            return cfgv_fail(msg, msglen, "%s: repeats rule.%s.%s (same event and topic)", key,
                             hook_defs[r->hook].name, r->name);
    }
    return 0;
}

static void rule_free(struct cfg_webhook_rule *rule)
{
    free(rule->action);
    free(rule->topic);
    free(rule->name);
}

static int set_rule(struct cfg_webhook *wc, const char *key, const char *value, char *msg,
                    size_t msglen)
{
    struct cfg_webhook_rule rule = {0};
    const char *n = NULL;
    int hook = -1;

    if (parse_rule_key(key, &hook, &n, msg, msglen) != 0)
        return -1;
    rule.hook = (enum hook_id)hook;
    rule.name = strdup(n);
    if (rule.name == NULL)
        return cfgv_fail(msg, msglen, "out of memory");
    if (parse_rule_json(key, value, &rule, msg, msglen) != 0 ||
        check_rule(key, &rule, msg, msglen) != 0 || check_repeat(wc, key, &rule, msg, msglen) != 0)
        goto error;
    struct cfg_webhook_rule *grown = realloc(wc->rules, (wc->n_rules + 1) * sizeof *wc->rules);
    if (grown == NULL) {
        cfgv_fail(msg, msglen, "out of memory");
        goto error;
    }
    wc->rules = grown;
    wc->rules[wc->n_rules++] = rule;
    return 0;
error:
    rule_free(&rule);
    return -1;
}

int cfgw_set_free_form(struct cfg_webhook *wc, const char *name, const char *value, char *msg,
                       size_t msglen)
{
    if (starts_with(name, HEADERS_PREFIX))
        return set_header(wc, name, value, msg, msglen);
    return set_rule(wc, name, value, msg, msglen);
}

/* ---- the section as a whole ------------------------------------------- */

const char *cfgw_problem(const struct cfg_webhook *wc)
{
    if ((wc->ssl.certfile == NULL) != (wc->ssl.keyfile == NULL))
        return "ssl.certfile and ssl.keyfile go together: set both or neither";
    if (wc->max_retry_interval_ms < wc->retry_interval_ms)
        return "max_retry_interval must be at least retry_interval";
    return NULL;
}
