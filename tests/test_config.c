#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define ERR_LEN 512

/* ---- helpers ---------------------------------------------------------- */

/* Loads `text` over the defaults and expects exactly `expected` as the error. */
static void assert_load_error(const char *text, const char *expected)
{
    struct config cfg;
    char err[ERR_LEN] = "";

    cfg_defaults(&cfg);
    if (cfg_load_string(&cfg, text, "t.ini", err, sizeof err) != -1)
        fail_msg("expected an error for:\n%s", text);
    assert_string_equal(err, expected);
    /* Whatever was applied before the error must still be freeable (ASan checks). */
    cfg_free(&cfg);
}

/* One accepted spelling of a value and the number it must give. */
struct form {
    const char *text;
    uint64_t want;
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void load_ok(struct config *cfg, const char *text);

/* Loads "[section]\nkey = <text>" for every form and checks the integer
 * field of struct config at `offset` (`size` bytes wide). */
static void assert_forms(const char *section, const char *key, size_t offset, size_t size,
                         const struct form *forms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct config cfg;
        char text[128];
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, key, forms[i].text);
        load_ok(&cfg, text);
        uint64_t got = 0;
        if (size == sizeof(unsigned)) {
            unsigned v;
            memcpy(&v, (const char *)&cfg + offset, sizeof v);
            got = v;
        } else {
            size_t v;
            memcpy(&v, (const char *)&cfg + offset, sizeof v);
            got = v;
        }
        if (got != forms[i].want)
            fail_msg("%s = %s: got %llu, expected %llu", key, forms[i].text,
                     (unsigned long long)got, (unsigned long long)forms[i].want);
        cfg_free(&cfg);
    }
}
#define ASSERT_FORMS(section, field, key, forms)                                                   \
    assert_forms(section, key, offsetof(struct config, field),                                     \
                 sizeof(((struct config *)0)->field), forms, COUNT(forms))

/* `before` then "key = <bad>" on line `line`, for every bad value: the error
 * is "t.ini:<line>: key: <why>, got '<bad>'". */
static void assert_bad_values(const char *before, int line, const char *key, const char *why,
                              const char *const *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char text[256], expected[512];
        snprintf(text, sizeof text, "%s%s = %s\n", before, key, bad[i]);
        snprintf(expected, sizeof expected, "t.ini:%d: %s: %s, got '%s'", line, key, why, bad[i]);
        assert_load_error(text, expected);
    }
}

static void load_ok(struct config *cfg, const char *text)
{
    char err[ERR_LEN] = "";

    cfg_defaults(cfg);
    if (cfg_load_string(cfg, text, "t.ini", err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
}

/* Writes `len` bytes to a fresh temporary file; its path goes to `path`. */
static void write_temp(char *path, size_t pathlen, const char *data, size_t len)
{
    snprintf(path, pathlen, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- defaults and good configs ---------------------------------------- */

static void test_defaults(void **state)
{
    struct config cfg;

    (void)state;
    cfg_defaults(&cfg);
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    assert_int_equal(cfg.workers, 0);
    assert_string_equal(cfg.lua_path, "scripts");
    assert_int_equal(cfg.init_module_count, 1);
    assert_string_equal(cfg.init_modules[0], "main");
    assert_int_equal(cfg.call_timeout_ms, 5000);
    assert_int_equal(cfg.memory_limit, 64 * 1024 * 1024);
    assert_true(cfg.sandbox);
    assert_int_equal(cfg.shutdown_timeout_ms, 5000);
    assert_int_equal(cfg.watchdog_ms, 1000);
    assert_false(cfg.reuse_port);
    assert_int_equal(cfg.max_message_size, 4 * 1024 * 1024);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.memory_quota, 128 * 1024 * 1024);
    assert_null(cfg.tls.cert);
    assert_null(cfg.tls.key);
    assert_null(cfg.tls.ca);
    assert_false(cfg.tls.verify_client);
    assert_int_equal(cfg.log_level, LOG_INFO);
    for (int i = 0; i < HOOK_COUNT; i++) {
        assert_int_equal(cfg.topics[i].count, 0);
        assert_null(cfg.topics[i].items);
    }
    cfg_free(&cfg);
}

static void test_empty_text_keeps_defaults(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "; only a comment\n\n# another\n");
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    assert_string_equal(cfg.init_modules[0], "main");
    assert_int_equal(cfg.call_timeout_ms, 5000);
    assert_int_equal(cfg.memory_limit, 64 * 1024 * 1024);
    assert_true(cfg.sandbox);
    assert_int_equal(cfg.shutdown_timeout_ms, 5000);
    cfg_free(&cfg);
}

static void test_partial_config_keeps_other_defaults(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[server]\nworkers = 4\n");
    assert_int_equal(cfg.workers, 4);
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    assert_string_equal(cfg.lua_path, "scripts");
    assert_int_equal(cfg.shutdown_timeout_ms, 5000);
    assert_int_equal(cfg.memory_limit, 64 * 1024 * 1024);
    assert_true(cfg.sandbox);
    assert_int_equal(cfg.log_level, LOG_INFO);
    cfg_free(&cfg);
}

static void test_full_config_sets_every_key(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[server]\n"
                  "listen = [::]:9100\n"
                  "workers = 256\n"
                  "shutdown_timeout = 30s\n"
                  "max_message_size = 16MB\n"
                  "handshake_timeout = 3s\n"
                  "memory_quota = 1GB\n"
                  "[lua]\n"
                  "path = /opt/hooks\n"
                  "init_module = auth , rules.acl,audit-log_2\n"
                  "call_timeout = 250ms\n"
                  "memory_limit = 128MB\n"
                  "sandbox = false\n"
                  "[log]\n"
                  "level = debug\n"
                  "[tls]\n"
                  "cert = /etc/exhookd/server.pem\n"
                  "key = /etc/exhookd/server.key\n"
                  "ca = /etc/exhookd/brokers-ca.pem\n"
                  "verify_client = true\n"
                  "[topics]\n"
                  "message.publish = sensors/#, alerts/+ ,$SYS/brokers/+\n"
                  "message.delivered = a/b\n"
                  "message.acked = +/x/#\n"
                  "message.dropped = #\n");
    assert_string_equal(cfg.listen, "[::]:9100");
    assert_int_equal(cfg.workers, 256);
    assert_int_equal(cfg.shutdown_timeout_ms, 30000);
    assert_int_equal(cfg.max_message_size, 16 * 1024 * 1024);
    assert_int_equal(cfg.handshake_timeout_ms, 3000);
    assert_int_equal(cfg.memory_quota, (size_t)1024 * 1024 * 1024);
    assert_string_equal(cfg.tls.cert, "/etc/exhookd/server.pem");
    assert_string_equal(cfg.tls.key, "/etc/exhookd/server.key");
    assert_string_equal(cfg.tls.ca, "/etc/exhookd/brokers-ca.pem");
    assert_true(cfg.tls.verify_client);
    assert_string_equal(cfg.lua_path, "/opt/hooks");
    assert_int_equal(cfg.init_module_count, 3);
    assert_string_equal(cfg.init_modules[0], "auth");
    assert_string_equal(cfg.init_modules[1], "rules.acl");
    assert_string_equal(cfg.init_modules[2], "audit-log_2");
    assert_int_equal(cfg.call_timeout_ms, 250);
    assert_int_equal(cfg.memory_limit, 128 * 1024 * 1024);
    assert_false(cfg.sandbox);
    assert_int_equal(cfg.log_level, LOG_DEBUG);

    const struct cfg_filters *pub = &cfg.topics[HOOK_MESSAGE_PUBLISH];
    assert_int_equal(pub->count, 3);
    assert_string_equal(pub->items[0], "sensors/#");
    assert_string_equal(pub->items[1], "alerts/+");
    assert_string_equal(pub->items[2], "$SYS/brokers/+");
    assert_int_equal(cfg.topics[HOOK_MESSAGE_DELIVERED].count, 1);
    assert_string_equal(cfg.topics[HOOK_MESSAGE_DELIVERED].items[0], "a/b");
    assert_int_equal(cfg.topics[HOOK_MESSAGE_ACKED].count, 1);
    assert_string_equal(cfg.topics[HOOK_MESSAGE_ACKED].items[0], "+/x/#");
    assert_int_equal(cfg.topics[HOOK_MESSAGE_DROPPED].count, 1);
    assert_string_equal(cfg.topics[HOOK_MESSAGE_DROPPED].items[0], "#");
    assert_int_equal(cfg.topics[HOOK_CLIENT_CONNECT].count, 0);
    cfg_free(&cfg);
}

static void test_comments_crlf_bom_and_inline_comments_are_accepted(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "\xEF\xBB\xBF; leading BOM\r\n"
                  "# hash comment\r\n"
                  "[log]   ; section comment\r\n"
                  "level = warning ; inline comment after whitespace\r\n"
                  "[topics]\r\n"
                  "message.publish = a;b\r\n");
    assert_int_equal(cfg.log_level, LOG_WARN);
    /* ';' right after a character is part of the value, not a comment */
    assert_string_equal(cfg.topics[HOOK_MESSAGE_PUBLISH].items[0], "a;b");
    cfg_free(&cfg);
}

static void test_indented_first_key_after_section_is_accepted(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[server]\n    workers = 2\n[lua]\n  path = x\n");
    assert_int_equal(cfg.workers, 2);
    assert_string_equal(cfg.lua_path, "x");
    cfg_free(&cfg);
}

static void test_listen_accepts_names_ipv4_ipv6_and_port_range(void **state)
{
    static const char *good[] = {"localhost:1", "127.0.0.1:65535", "[::1]:9000",
                                 "exhook.example.com:09000"};
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config cfg;
        char text[128];
        snprintf(text, sizeof text, "[server]\nlisten = %s\n", good[i]);
        load_ok(&cfg, text);
        assert_string_equal(cfg.listen, good[i]);
        cfg_free(&cfg);
    }
}

static void test_every_log_level_name_is_accepted(void **state)
{
    static const struct {
        const char *text;
        enum log_level level;
    } cases[] = {{"debug", LOG_DEBUG},
                 {"info", LOG_INFO},
                 {"warn", LOG_WARN},
                 {"warning", LOG_WARN},
                 {"error", LOG_ERROR}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char text[64];
        snprintf(text, sizeof text, "[log]\nlevel = %s\n", cases[i].text);
        load_ok(&cfg, text);
        assert_int_equal(cfg.log_level, cases[i].level);
        cfg_free(&cfg);
    }
}

static void test_log_format_is_text_or_json(void **state)
{
    static const struct {
        const char *text;
        enum log_format format;
    } cases[] = {{"text", LOG_FORMAT_TEXT}, {"json", LOG_FORMAT_JSON}, {"JSON", LOG_FORMAT_JSON}};
    (void)state;
    struct config cfg;
    load_ok(&cfg, "[log]\nlevel = info\n");
    assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
    cfg_free(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[log]\nformat = %s\n", cases[i].text);
        load_ok(&cfg, text);
        assert_int_equal(cfg.log_format, cases[i].format);
        cfg_free(&cfg);
    }
    assert_load_error("[log]\nformat = logfmt\n",
                      "t.ini:2: format: expected text or json, got 'logfmt'");
}

static void test_workers_bounds_are_inclusive(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[server]\nworkers = 0\n");
    assert_int_equal(cfg.workers, 0);
    cfg_free(&cfg);
    load_ok(&cfg, "[server]\nworkers = 256\n");
    assert_int_equal(cfg.workers, 256);
    cfg_free(&cfg);
}

static void test_call_timeout_zero_means_no_limit(void **state)
{
    static const char *zero[] = {"0", "0ms", "0s", "0m", "000"};
    (void)state;
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        struct config cfg;
        char text[64];
        snprintf(text, sizeof text, "[lua]\ncall_timeout = %s\n", zero[i]);
        load_ok(&cfg, text);
        assert_int_equal(cfg.call_timeout_ms, 0);
        cfg_free(&cfg);
    }
}

static void test_call_timeout_accepts_every_form(void **state)
{
    static const struct form forms[] = {{"1", 1},         {"1ms", 1},          {"1500", 1500},
                                        {"500ms", 500},   {"5s", 5000},        {"2m", 120000},
                                        {"60m", 3600000}, {"3600000", 3600000}};
    (void)state;
    ASSERT_FORMS("lua", call_timeout_ms, "call_timeout", forms);
}

static void test_memory_limit_accepts_every_form(void **state)
{
    static const struct form forms[] = {
        {"0", 0},
        {"0MB", 0},
        {"1MB", 1024 * 1024},
        {"1048576", 1024 * 1024},
        {"1024KB", 1024 * 1024},
        {"1024k", 1024 * 1024},
        {"2048Kb", 2 * 1024 * 1024},
        {"64MB", 64 * 1024 * 1024},
        {"64mb", 64 * 1024 * 1024},
        {"512M", 512 * 1024 * 1024},
        {"3m", 3 * 1024 * 1024},
        {"1GB", (size_t)1024 * 1024 * 1024},
        {"2g", (size_t)2 * 1024 * 1024 * 1024},
        {"64GB", (size_t)64 * 1024 * 1024 * 1024},
        {"68719476736", (size_t)64 * 1024 * 1024 * 1024},
    };
    (void)state;
    ASSERT_FORMS("lua", memory_limit, "memory_limit", forms);
}

static void test_every_sandbox_boolean_is_accepted(void **state)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true}, {"TRUE", true}, {"True", true}, {"yes", true},    {"Yes", true},
                 {"on", true},   {"ON", true},   {"1", true},    {"false", false}, {"FALSE", false},
                 {"no", false},  {"NO", false},  {"off", false}, {"Off", false},   {"0", false}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char text[64];
        /* start from the opposite value so that every case really sets it */
        cfg_defaults(&cfg);
        cfg.sandbox = !cases[i].value;
        snprintf(text, sizeof text, "[lua]\nsandbox = %s\n", cases[i].text);
        char err[ERR_LEN] = "";
        if (cfg_load_string(&cfg, text, "t.ini", err, sizeof err) != 0)
            fail_msg("sandbox = %s: unexpected error: %s", cases[i].text, err);
        if (cfg.sandbox != cases[i].value)
            fail_msg("sandbox = %s: got %d", cases[i].text, (int)cfg.sandbox);
        cfg_free(&cfg);
    }
}

static void test_shutdown_timeout_accepts_every_form(void **state)
{
    static const struct form forms[] = {{"1", 1},         {"1ms", 1},        {"250ms", 250},
                                        {"1500", 1500},   {"30s", 30000},    {"2m", 120000},
                                        {"60m", 3600000}, {"3600s", 3600000}};
    (void)state;
    ASSERT_FORMS("server", shutdown_timeout_ms, "shutdown_timeout", forms);
}

static void test_watchdog_accepts_every_form_and_zero(void **state)
{
    static const struct form forms[] = {{"0", 0},         {"0s", 0},         {"500ms", 500},
                                        {"1500", 1500},   {"1s", 1000},      {"2m", 120000},
                                        {"60m", 3600000}, {"3600s", 3600000}};
    (void)state;
    ASSERT_FORMS("server", watchdog_ms, "watchdog", forms);
}

static void test_bad_watchdog_is_an_error(void **state)
{
    static const char *const bad[] = {"-5s", "5x", "5 s", "s", "", "1.5s", "61m", "3600001"};
    (void)state;
    assert_bad_values("[server]\n", 2, "watchdog",
                      "expected a duration up to 1h such as 500ms, 1s or 2m (0 = off)", bad,
                      COUNT(bad));
}

static void test_max_message_size_accepts_every_form(void **state)
{
    static const struct form forms[] = {
        {"1KB", 1024},
        {"1024", 1024},
        {"1k", 1024},
        {"1025", 1025},
        {"512KB", 512 * 1024},
        {"4MB", 4 * 1024 * 1024},
        {"4m", 4 * 1024 * 1024},
        {"4194304", 4 * 1024 * 1024},
        {"100mb", 100 * 1024 * 1024},
        {"1GB", (size_t)1024 * 1024 * 1024},
        {"1g", (size_t)1024 * 1024 * 1024},
        {"1024MB", (size_t)1024 * 1024 * 1024},
        {"1073741824", (size_t)1024 * 1024 * 1024},
    };
    (void)state;
    ASSERT_FORMS("server", max_message_size, "max_message_size", forms);
}

static void test_handshake_timeout_accepts_every_form(void **state)
{
    static const struct form forms[] = {{"1", 1},         {"1ms", 1},          {"500ms", 500},
                                        {"10000", 10000}, {"10s", 10000},      {"2m", 120000},
                                        {"60m", 3600000}, {"3600s", 3600000}};
    (void)state;
    ASSERT_FORMS("server", handshake_timeout_ms, "handshake_timeout", forms);
}

static void test_memory_quota_accepts_every_form(void **state)
{
    static const struct form forms[] = {
        {"16MB", 16 * 1024 * 1024},
        {"16m", 16 * 1024 * 1024},
        {"16384KB", 16 * 1024 * 1024},
        {"16777216", 16 * 1024 * 1024},
        {"128MB", 128 * 1024 * 1024},
        {"1GB", (size_t)1024 * 1024 * 1024},
        {"64GB", (size_t)64 * 1024 * 1024 * 1024},
        {"65536MB", (size_t)64 * 1024 * 1024 * 1024},
    };
    (void)state;
    ASSERT_FORMS("server", memory_quota, "memory_quota", forms);
}

static void test_tls_cert_and_key_alone_give_tls_without_client_check(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[tls]\ncert = etc/tls/server.pem\nkey = etc/tls/server.key\n");
    assert_string_equal(cfg.tls.cert, "etc/tls/server.pem");
    assert_string_equal(cfg.tls.key, "etc/tls/server.key");
    assert_null(cfg.tls.ca);
    assert_false(cfg.tls.verify_client);
    cfg_free(&cfg);
}

static void test_tls_keys_may_come_in_any_order(void **state)
{
    struct config cfg;

    (void)state;
    /* the pairing checks look at the whole file, not at the order of lines */
    load_ok(&cfg, "[tls]\nverify_client = on\nca = ca.pem\n[log]\nlevel = info\n"
                  "[tls]\nkey = k.pem\ncert = c.pem\n");
    assert_string_equal(cfg.tls.cert, "c.pem");
    assert_string_equal(cfg.tls.key, "k.pem");
    assert_string_equal(cfg.tls.ca, "ca.pem");
    assert_true(cfg.tls.verify_client);
    cfg_free(&cfg);
}

static void test_tls_ca_without_verify_client_is_accepted(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[tls]\ncert = c.pem\nkey = k.pem\nca = ca.pem\n");
    assert_string_equal(cfg.tls.ca, "ca.pem");
    assert_false(cfg.tls.verify_client);
    cfg_free(&cfg);
}

static void test_tls_paths_are_kept_verbatim(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[tls]\ncert = /etc/My Certs/server.pem\nkey = ./k.pem\n");
    assert_string_equal(cfg.tls.cert, "/etc/My Certs/server.pem");
    assert_string_equal(cfg.tls.key, "./k.pem");
    cfg_free(&cfg);
}

static void test_empty_tls_section_is_accepted(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[tls]\n; nothing yet\n");
    assert_null(cfg.tls.cert);
    cfg_free(&cfg);
}

static void test_verify_client_false_alone_is_accepted(void **state)
{
    struct config cfg;

    (void)state;
    /* false is the default: saying so asks for nothing that needs cert */
    load_ok(&cfg, "[tls]\nverify_client = false\n");
    assert_null(cfg.tls.cert);
    assert_false(cfg.tls.verify_client);
    cfg_free(&cfg);
}

static void test_every_verify_client_boolean_is_accepted(void **state)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true}, {"TRUE", true}, {"True", true}, {"yes", true},    {"Yes", true},
                 {"on", true},   {"ON", true},   {"1", true},    {"false", false}, {"FALSE", false},
                 {"no", false},  {"NO", false},  {"off", false}, {"Off", false},   {"0", false}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char text[128];
        char err[ERR_LEN] = "";
        /* start from the opposite value so that every case really sets it */
        cfg_defaults(&cfg);
        cfg.tls.verify_client = !cases[i].value;
        snprintf(text, sizeof text, "[tls]\ncert = c\nkey = k\nca = a\nverify_client = %s\n",
                 cases[i].text);
        if (cfg_load_string(&cfg, text, "t.ini", err, sizeof err) != 0)
            fail_msg("verify_client = %s: unexpected error: %s", cases[i].text, err);
        if (cfg.tls.verify_client != cases[i].value)
            fail_msg("verify_client = %s: got %d", cases[i].text, (int)cfg.tls.verify_client);
        cfg_free(&cfg);
    }
}

static void test_line_of_197_characters_is_accepted(void **state)
{
    struct config cfg;
    char *value = repeat('p', 197 - strlen("path = "));
    char text[512];

    (void)state;
    snprintf(text, sizeof text, "[lua]\npath = %s\n", value);
    load_ok(&cfg, text);
    assert_string_equal(cfg.lua_path, value);
    cfg_free(&cfg);
    free(value);
}

/* The [webhook] settings of the shipped file are all commented out, as
 * examples or defaults: uncommented, they load, and the defaults are the
 * real ones. */
static void test_shipped_webhook_examples_load(void **state)
{
    char err[ERR_LEN] = "";
    size_t len;
    struct config cfg;

    (void)state;
    char *text = cfg_read_file(EXHOOKD_SOURCE_DIR "/etc/exhook.ini", 1 << 20, &len, err,
                               sizeof err);
    assert_non_null(text);
    char *section = strstr(text, "\n[webhook]\n");
    assert_non_null(section);
    char *out = malloc(strlen(section) + 1), *o = out;
    assert_non_null(out);
    o += sprintf(o, "[webhook]\n");
    /* "; key = value" lines, the key a single word */
    for (char *line = strtok(section + 11, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        const char *eq = strstr(line, " = ");
        if (strncmp(line, "; ", 2) == 0 && eq != NULL &&
            memchr(line + 2, ' ', (size_t)(eq - line - 2)) == NULL &&
            strchr("abcdefghijklmnopqrstuvwxyz", line[2]) != NULL)
            o += sprintf(o, "%s\n", line + 2);
    }
    free(text);
    cfg_defaults(&cfg);
    if (cfg_load_string(&cfg, out, "exhook.ini", err, sizeof err) != 0)
        fail_msg("%s\n%s", err, out);
    struct config defaults;
    cfg_defaults(&defaults);
    const struct cfg_webhook *wc = &cfg.webhook, *dc = &defaults.webhook;
    assert_non_null(wc->url);
    assert_int_equal(wc->n_headers, 1);
    assert_int_equal(wc->encoding, dc->encoding);
    assert_int_equal(wc->pool_size, dc->pool_size);
    assert_int_equal(wc->request_timeout_ms, dc->request_timeout_ms);
    assert_int_equal(wc->ssl.verify, dc->ssl.verify);
    assert_int_equal(wc->queue_events, dc->queue_events);
    assert_int_equal(wc->queue_bytes, dc->queue_bytes);
    assert_int_equal(wc->max_retries, dc->max_retries);
    assert_int_equal(wc->retry_interval_ms, dc->retry_interval_ms);
    assert_int_equal(wc->max_retry_interval_ms, dc->max_retry_interval_ms);
    assert_int_equal(wc->n_rules, 4);
    cfg_free(&defaults);
    cfg_free(&cfg);
    free(out);
}

static void test_shipped_config_parses(void **state)
{
    struct config cfg;
    char err[ERR_LEN] = "";

    (void)state;
    cfg_defaults(&cfg);
    if (cfg_load(&cfg, EXHOOKD_SOURCE_DIR "/etc/exhook.ini", err, sizeof err) != 0)
        fail_msg("shipped config: %s", err);
    /* loopback: beyond the host, exhookd is exposed with mutual TLS */
    assert_string_equal(cfg.listen, "127.0.0.1:9000");
    assert_int_equal(cfg.workers, 0);
    assert_string_equal(cfg.lua_path, "scripts");
    assert_int_equal(cfg.init_module_count, 1);
    assert_string_equal(cfg.init_modules[0], "example");
    assert_int_equal(cfg.call_timeout_ms, 5000);
    assert_int_equal(cfg.memory_limit, 64 * 1024 * 1024);
    assert_true(cfg.sandbox);
    assert_int_equal(cfg.shutdown_timeout_ms, 5000);
    assert_int_equal(cfg.max_message_size, 4 * 1024 * 1024);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.memory_quota, 128 * 1024 * 1024);
    /* TLS is documented there but commented out: plain HTTP/2 by default */
    assert_null(cfg.tls.cert);
    assert_null(cfg.tls.key);
    assert_null(cfg.tls.ca);
    assert_false(cfg.tls.verify_client);
    assert_int_equal(cfg.log_level, LOG_INFO);
    for (int i = 0; i < HOOK_COUNT; i++)
        assert_int_equal(cfg.topics[i].count, 0);
    cfg_free(&cfg);
}

static void test_load_from_file_reports_path_and_line(void **state)
{
    static const char text[] = "[server]\nworkers = 1\n\nworkers = 2\n";
    char path[64];
    char err[ERR_LEN] = "";
    char expected[ERR_LEN];
    struct config cfg;

    (void)state;
    write_temp(path, sizeof path, text, sizeof text - 1);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s:4: duplicate key 'workers' in section [server]", path);
    assert_string_equal(err, expected);
    cfg_free(&cfg);
    unlink(path);
}

static void test_load_from_file_applies_values(void **state)
{
    static const char text[] = "[lua]\ncall_timeout = 2m\n";
    char path[64];
    char err[ERR_LEN] = "";
    struct config cfg;

    (void)state;
    write_temp(path, sizeof path, text, sizeof text - 1);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, path, err, sizeof err), 0);
    assert_int_equal(cfg.call_timeout_ms, 120000);
    cfg_free(&cfg);
    unlink(path);
}

static void test_error_buffer_may_be_null(void **state)
{
    struct config cfg;

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_string(&cfg, "[bar]\n", "t.ini", NULL, 0), -1);
    assert_int_equal(cfg_load(&cfg, "/nonexistent/exhook.ini", NULL, 0), -1);
    cfg_free(&cfg);
}

static void test_error_message_is_truncated_to_buffer(void **state)
{
    struct config cfg;
    char err[8];

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_string(&cfg, "[bar]\n", "t.ini", err, sizeof err), -1);
    assert_string_equal(err, "t.ini:1");
    cfg_free(&cfg);
}

/* ---- structural errors ------------------------------------------------ */

static void test_unknown_section_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[bar]\nx = 1\n", "t.ini:1: unknown section [bar]");
}

static void test_unknown_empty_section_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nworkers = 1\n\n[topic]\n", "t.ini:4: unknown section [topic]");
}

static void test_section_names_are_case_sensitive(void **state)
{
    (void)state;
    assert_load_error("[Server]\nworkers = 1\n", "t.ini:1: unknown section [Server]");
}

static void test_unterminated_section_header_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server\nworkers = 1\n", "t.ini:1: expected ']' to close the section name");
}

static void test_unknown_key_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nfoo = 1\n", "t.ini:2: unknown key 'foo' in section [server]");
}

static void test_key_in_wrong_section_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\nlisten = a:1\n", "t.ini:2: unknown key 'listen' in section [lua]");
}

static void test_key_names_are_case_sensitive(void **state)
{
    (void)state;
    assert_load_error("[log]\nLevel = info\n", "t.ini:2: unknown key 'Level' in section [log]");
}

static void test_key_before_any_section_is_an_error(void **state)
{
    (void)state;
    assert_load_error("; comment\nlisten = a:1\n", "t.ini:2: key 'listen' outside of any section");
}

static void test_line_without_equals_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nlisten\n", "t.ini:2: expected key = value");
}

static void test_duplicate_key_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nworkers = 1\nworkers = 2\n",
                      "t.ini:3: duplicate key 'workers' in section [server]");
}

static void test_duplicate_key_in_repeated_section_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\npath = a\n[log]\nlevel = info\n[lua]\npath = b\n",
                      "t.ini:6: duplicate key 'path' in section [lua]");
}

static void test_duplicate_topics_key_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[topics]\nmessage.publish = a\nmessage.publish = b\n",
                      "t.ini:3: duplicate key 'message.publish' in section [topics]");
}

static void test_indented_continuation_line_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module = a\n    b\n",
                      "t.ini:3: indented line continues the value of 'init_module'; multi-line "
                      "values are not supported, remove the indentation");
}

static void test_first_error_is_the_one_reported(void **state)
{
    (void)state;
    assert_load_error("[server]\nworkers = many\nnonsense\n[bar]\n",
                      "t.ini:2: workers: expected an integer 0..256, got 'many'");
    assert_load_error("[server]\nnonsense\nworkers = many\n", "t.ini:2: expected key = value");
}

static void test_line_over_197_characters_is_an_error(void **state)
{
    char *value = repeat('p', 198 - strlen("path = "));
    char text[512];

    (void)state;
    snprintf(text, sizeof text, "[lua]\npath = %s\n[log]\nlevel = info\n", value);
    assert_load_error(text, "t.ini:2: line too long (at most 197 characters)");
    free(value);
}

static void test_long_comment_line_is_an_error(void **state)
{
    /* inih would parse the tail of a cut comment as a line of its own */
    char *tail = repeat('x', 250);
    char text[512];

    (void)state;
    snprintf(text, sizeof text, "[lua]\n; %s = 1\n", tail);
    assert_load_error(text, "t.ini:2: line too long (at most 197 characters)");
    free(tail);
}

static void test_nul_byte_is_an_error(void **state)
{
    static const char text[] = "[log]\nlevel = info\0junk\n";
    char path[64];
    char err[ERR_LEN] = "";
    char expected[ERR_LEN];
    struct config cfg;

    (void)state;
    write_temp(path, sizeof path, text, sizeof text - 1);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s:2: NUL byte in line", path);
    assert_string_equal(err, expected);
    cfg_free(&cfg);
    unlink(path);
}

static void test_missing_file_is_an_error(void **state)
{
    struct config cfg;
    char err[ERR_LEN] = "";

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, "/nonexistent/exhook.ini", err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/exhook.ini: No such file or directory");
    /* the defaults are untouched */
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    cfg_free(&cfg);
}

static void test_directory_path_is_an_error(void **state)
{
    struct config cfg;
    char err[ERR_LEN] = "";

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, "/tmp", err, sizeof err), -1);
    assert_string_equal(err, "/tmp: Is a directory");
    cfg_free(&cfg);
}

static void test_unreadable_file_is_an_error(void **state)
{
    static const char text[] = "[log]\nlevel = info\n";
    char path[64];
    char err[ERR_LEN] = "";
    char expected[ERR_LEN];
    struct config cfg;

    (void)state;
    if (geteuid() == 0)
        skip(); /* root reads files whatever their mode */
    write_temp(path, sizeof path, text, sizeof text - 1);
    assert_int_equal(chmod(path, 0), 0);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s: Permission denied", path);
    assert_string_equal(err, expected);
    cfg_free(&cfg);
    unlink(path);
}

/* ---- value errors ----------------------------------------------------- */

static void test_listen_without_port_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nlisten = xyz\n", "t.ini:2: listen: expected host:port, got 'xyz'");
    assert_load_error("[server]\nlisten = xyz:\n",
                      "t.ini:2: listen: expected host:port, got 'xyz:'");
    assert_load_error("[server]\nlisten =\n", "t.ini:2: listen: expected host:port, got ''");
}

static void test_listen_without_host_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nlisten = :9000\n",
                      "t.ini:2: listen: expected host:port, got ':9000'");
    assert_load_error("[server]\nlisten = []:9000\n",
                      "t.ini:2: listen: expected host:port, got '[]:9000'");
}

static void test_listen_with_bad_host_is_an_error(void **state)
{
    (void)state;
    /* an IPv6 address needs brackets to be told from its port */
    assert_load_error("[server]\nlisten = ::1:9000\n",
                      "t.ini:2: listen: expected host:port, got '::1:9000'");
    assert_load_error("[server]\nlisten = [::1:9000\n",
                      "t.ini:2: listen: expected host:port, got '[::1:9000'");
    assert_load_error("[server]\nlisten = my host:9000\n",
                      "t.ini:2: listen: expected host:port, got 'my host:9000'");
}

static void test_listen_with_non_numeric_port_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nlisten = host:http\n",
                      "t.ini:2: listen: expected host:port, got 'host:http'");
    assert_load_error("[server]\nlisten = host:-1\n",
                      "t.ini:2: listen: expected host:port, got 'host:-1'");
    assert_load_error("[server]\nlisten = host:80x\n",
                      "t.ini:2: listen: expected host:port, got 'host:80x'");
}

static void test_listen_port_out_of_range_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[server]\nlisten = host:0\n",
                      "t.ini:2: listen: port must be 1..65535, got 'host:0'");
    assert_load_error("[server]\nlisten = host:65536\n",
                      "t.ini:2: listen: port must be 1..65535, got 'host:65536'");
    assert_load_error("[server]\nlisten = host:99999999999999999999999\n",
                      "t.ini:2: listen: port must be 1..65535, got 'host:99999999999999999999999'");
}

static void test_workers_out_of_range_or_not_integer_is_an_error(void **state)
{
    static const char *bad[] = {"257",       "-1", "abc", "1.5",
                                "4 workers", "",   "+3",  "99999999999999999999999"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        char expected[256];
        snprintf(text, sizeof text, "[server]\nworkers = %s\n", bad[i]);
        snprintf(expected, sizeof expected,
                 "t.ini:2: workers: expected an integer 0..256, got '%s'", bad[i]);
        assert_load_error(text, expected);
    }
}

/* The counts of waiting: defaults, bounds, and a clear error past them. */
static void test_waiting_counts_default_bound_and_refuse(void **state)
{
    static const struct {
        const char *section, *key;
        unsigned max;
    } counts[] = {{"server", "max_waiting_calls", 1000000},
                  {"lua", "max_timers", 1000000},
                  {"http", "max_connections", 100000}};
    (void)state;
    struct config cfg;
    load_ok(&cfg, "");
    assert_int_equal(cfg.max_waiting_calls, 10000);
    assert_int_equal(cfg.max_timers, 1000);
    assert_int_equal(cfg.http_max_connections, 256);
    cfg_free(&cfg);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char text[128], expected[256];
        snprintf(text, sizeof text, "[%s]\n%s = %u\n", counts[i].section, counts[i].key,
                 counts[i].max);
        load_ok(&cfg, text);
        cfg_free(&cfg);
        static const char *bad[] = {"0", "-1", "many", "1.5", "2000000"};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            snprintf(text, sizeof text, "[%s]\n%s = %s\n", counts[i].section, counts[i].key,
                     bad[b]);
            snprintf(expected, sizeof expected, "t.ini:2: %s: expected an integer 1..%u, got '%s'",
                     counts[i].key, counts[i].max, bad[b]);
            assert_load_error(text, expected);
        }
    }
}

static void test_empty_lua_path_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\npath =\n", "t.ini:2: path: must not be empty");
}

static void test_empty_init_module_list_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module =\n", "t.ini:2: init_module: empty list");
}

static void test_empty_init_module_element_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module = a, ,b\n",
                      "t.ini:2: init_module: empty element in list 'a, ,b'");
    assert_load_error("[lua]\ninit_module = a,\n",
                      "t.ini:2: init_module: empty element in list 'a,'");
    assert_load_error("[lua]\ninit_module = ,a\n",
                      "t.ini:2: init_module: empty element in list ',a'");
}

static void test_init_module_with_bad_characters_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module = main, my module\n",
                      "t.ini:2: init_module: invalid module name 'my module' (allowed "
                      "characters: letters, digits, '_', '.', '-')");
    assert_load_error("[lua]\ninit_module = ../etc/passwd\n",
                      "t.ini:2: init_module: invalid module name '../etc/passwd' (allowed "
                      "characters: letters, digits, '_', '.', '-')");
    assert_load_error("[lua]\ninit_module = main.lua?\n",
                      "t.ini:2: init_module: invalid module name 'main.lua?' (allowed "
                      "characters: letters, digits, '_', '.', '-')");
}

static void test_init_module_with_empty_dotted_part_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module = .hidden\n",
                      "t.ini:2: init_module: invalid module name '.hidden' (dots must separate "
                      "non-empty names)");
    assert_load_error("[lua]\ninit_module = a..b\n",
                      "t.ini:2: init_module: invalid module name 'a..b' (dots must separate "
                      "non-empty names)");
    assert_load_error("[lua]\ninit_module = a.\n",
                      "t.ini:2: init_module: invalid module name 'a.' (dots must separate "
                      "non-empty names)");
}

static void test_init_module_listed_twice_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[lua]\ninit_module = a, b, a\n",
                      "t.ini:2: init_module: module 'a' listed twice");
}

static void test_bad_call_timeout_is_an_error(void **state)
{
    static const char *const bad[] = {
        "-5s",  "5x", "5 s", "s",  "",   "1.5s", "61m", "3600001", "5S",
        "5sec", "1h", "-0",  "+0", "0x", "0 s",  "0S",  "0h",      "99999999999999999999999"};
    (void)state;
    assert_bad_values("[lua]\n", 2, "call_timeout",
                      "expected a duration up to 1h such as 500ms, 5s or 2m (0 = no limit)", bad,
                      COUNT(bad));
}

static void test_bad_memory_limit_is_an_error(void **state)
{
    static const char *const bad[] = {"64 MB",
                                      "-1",
                                      "-64MB",
                                      "+64MB",
                                      "",
                                      "MB",
                                      "1.5GB",
                                      "65GB",
                                      "65537MB",
                                      "68719476737",
                                      "64MiB",
                                      "64B",
                                      "1TB",
                                      "64MBB",
                                      "64KBM",
                                      "abc",
                                      "99999999999999999999999"};
    (void)state;
    assert_bad_values("[lua]\n", 2, "memory_limit",
                      "expected a size up to 64GB such as 512KB, 64MB or 1GB (0 = no limit)", bad,
                      COUNT(bad));
}

static void test_memory_limit_below_1mb_is_an_error(void **state)
{
    static const char *const small[] = {"1", "1023", "1048575", "512KB", "1023k", "1023KB"};
    (void)state;
    assert_bad_values("[server]\nworkers = 1\n[lua]\n", 4, "memory_limit",
                      "at least 1MB, or 0 for no limit", small, COUNT(small));
}

static void test_bad_sandbox_is_an_error(void **state)
{
    static const char *const bad[] = {"",    "2",       "-1",       "y",          "n",  "t",   "f",
                                      "tru", "enabled", "disabled", "true false", "00", "none"};
    (void)state;
    assert_bad_values("[lua]\npath = x\n", 3, "sandbox", "expected true or false", bad, COUNT(bad));
}

static void test_bad_shutdown_timeout_is_an_error(void **state)
{
    static const char *const bad[] = {
        "0", "0s",   "0ms", "-5s",     "5x", "5 s", "s",
        "",  "1.5s", "61m", "3600001", "5S", "1h",  "99999999999999999999999"};
    (void)state;
    assert_bad_values("[server]\n", 2, "shutdown_timeout",
                      "expected a duration from 1ms to 1h such as 500ms, 5s or 2m", bad,
                      COUNT(bad));
}

static void test_new_keys_are_in_their_own_sections_only(void **state)
{
    (void)state;
    assert_load_error("[server]\nmemory_limit = 64MB\n",
                      "t.ini:2: unknown key 'memory_limit' in section [server]");
    assert_load_error("[server]\nsandbox = true\n",
                      "t.ini:2: unknown key 'sandbox' in section [server]");
    assert_load_error("[lua]\nshutdown_timeout = 5s\n",
                      "t.ini:2: unknown key 'shutdown_timeout' in section [lua]");
}

static void test_duplicate_new_keys_are_errors(void **state)
{
    (void)state;
    assert_load_error("[lua]\nsandbox = on\nsandbox = off\n",
                      "t.ini:3: duplicate key 'sandbox' in section [lua]");
    assert_load_error("[lua]\nmemory_limit = 1MB\nmemory_limit = 2MB\n",
                      "t.ini:3: duplicate key 'memory_limit' in section [lua]");
    assert_load_error("[server]\nshutdown_timeout = 1s\nshutdown_timeout = 2s\n",
                      "t.ini:3: duplicate key 'shutdown_timeout' in section [server]");
}

static void test_bad_max_message_size_is_an_error(void **state)
{
    static const char *const bad[] = {
        "0",      "1",    "1023",  "1023B", "0m",   "0KB",  "1073741825",
        "1025MB", "2GB",  "64GB",  "65GB",  "",     "4 MB", "-4MB",
        "+4MB",   "4MiB", "4.5MB", "MB",    "4MBB", "abc",  "99999999999999999999999"};
    (void)state;
    assert_bad_values("[server]\n", 2, "max_message_size",
                      "expected a size from 1KB to 1GB such as 4MB", bad, COUNT(bad));
}

static void test_bad_handshake_timeout_is_an_error(void **state)
{
    static const char *const bad[] = {"0",    "0s", "-10s",    "10x", "10 s", "",
                                      "1.5s", "61m", "3600001", "10S", "1h",   "99999999999999999999999"};
    (void)state;
    assert_bad_values("[server]\n", 2, "handshake_timeout",
                      "expected a duration from 1ms to 1h such as 500ms, 5s or 2m", bad,
                      COUNT(bad));
}

static void test_bad_memory_quota_is_an_error(void **state)
{
    /* below 16MB gRPC would start closing the brokers' connections */
    static const char *const bad[] = {"0",     "1",    "16777215", "16383KB", "15MB", "15m",
                                      "65GB",  "65537MB", "",     "128 MB",  "-128MB", "1.5GB",
                                      "128MiB", "MB",   "abc",      "99999999999999999999999"};
    (void)state;
    assert_bad_values("[server]\n", 2, "memory_quota",
                      "expected a size from 16MB to 64GB such as 128MB or 1GB", bad, COUNT(bad));
}

static void test_empty_tls_path_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[tls]\ncert =\nkey = k\n", "t.ini:2: cert: must not be empty");
    assert_load_error("[tls]\ncert = c\nkey =\n", "t.ini:3: key: must not be empty");
    assert_load_error("[tls]\ncert = c\nkey = k\nca = \n", "t.ini:4: ca: must not be empty");
}

static void test_bad_verify_client_is_an_error(void **state)
{
    static const char *bad[] = {"",    "2",        "-1",       "y",          "n",  "t",   "f",
                                "tru", "required", "optional", "true false", "00", "none"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        char expected[256];
        snprintf(text, sizeof text, "[tls]\nca = a\nverify_client = %s\n", bad[i]);
        snprintf(expected, sizeof expected,
                 "t.ini:3: verify_client: expected true or false, got '%s'", bad[i]);
        assert_load_error(text, expected);
    }
}

static void test_tls_cert_and_key_go_together(void **state)
{
    static const char *texts[] = {
        "[tls]\ncert = c.pem\n",
        "[tls]\nkey = k.pem\n",
        "[tls]\ncert = c.pem\nca = ca.pem\nverify_client = true\n",
        /* the missing half is named before what needs it */
        "[tls]\nkey = k.pem\nca = ca.pem\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_load_error(texts[i], "t.ini: [tls] cert and key go together: set both or neither");
}

static void test_tls_verify_client_needs_ca(void **state)
{
    (void)state;
    assert_load_error("[tls]\ncert = c.pem\nkey = k.pem\nverify_client = true\n",
                      "t.ini: [tls] verify_client needs ca, the CA that signs the brokers' "
                      "certificates");
    assert_load_error("[tls]\ncert = c.pem\nkey = k.pem\nverify_client = yes\n",
                      "t.ini: [tls] verify_client needs ca, the CA that signs the brokers' "
                      "certificates");
}

static void test_tls_ca_and_verify_client_need_cert(void **state)
{
    static const char *texts[] = {
        "[tls]\nca = ca.pem\n",
        "[tls]\nverify_client = true\n",
        "[tls]\nca = ca.pem\nverify_client = on\n",
        "[tls]\nca = ca.pem\nverify_client = false\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_load_error(texts[i], "t.ini: [tls] ca and verify_client need cert and key");
}

static void test_tls_line_errors_come_before_whole_file_checks(void **state)
{
    (void)state;
    /* cert without key too, but the bad line is the first thing to fix */
    assert_load_error("[tls]\ncert = c.pem\ncrt = x\n",
                      "t.ini:3: unknown key 'crt' in section [tls]");
    assert_load_error("[tls]\ncert = c.pem\nverify_client = maybe\n",
                      "t.ini:3: verify_client: expected true or false, got 'maybe'");
}

static void test_tls_check_from_file_names_the_file(void **state)
{
    static const char text[] = "[tls]\ncert = c.pem\n";
    char path[64];
    char err[ERR_LEN] = "";
    char expected[ERR_LEN];
    struct config cfg;

    (void)state;
    write_temp(path, sizeof path, text, sizeof text - 1);
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s: [tls] cert and key go together: set both or neither",
             path);
    assert_string_equal(err, expected);
    /* what was read stays freeable (ASan checks) */
    assert_string_equal(cfg.tls.cert, "c.pem");
    cfg_free(&cfg);
    unlink(path);
}

static void test_tls_keys_are_in_their_own_section_only(void **state)
{
    (void)state;
    assert_load_error("[server]\ncert = c.pem\n",
                      "t.ini:2: unknown key 'cert' in section [server]");
    assert_load_error("[server]\nverify_client = true\n",
                      "t.ini:2: unknown key 'verify_client' in section [server]");
    assert_load_error("[tls]\nlisten = a:1\n", "t.ini:2: unknown key 'listen' in section [tls]");
    assert_load_error("[tls]\nmax_message_size = 4MB\n",
                      "t.ini:2: unknown key 'max_message_size' in section [tls]");
    assert_load_error("[lua]\nmax_message_size = 4MB\n",
                      "t.ini:2: unknown key 'max_message_size' in section [lua]");
    assert_load_error("[tls]\nhandshake_timeout = 5s\n",
                      "t.ini:2: unknown key 'handshake_timeout' in section [tls]");
    assert_load_error("[lua]\nmemory_quota = 128MB\n",
                      "t.ini:2: unknown key 'memory_quota' in section [lua]");
    assert_load_error("[TLS]\ncert = c.pem\n", "t.ini:1: unknown section [TLS]");
}

static void test_duplicate_tls_keys_are_errors(void **state)
{
    (void)state;
    assert_load_error("[tls]\ncert = a\ncert = b\n",
                      "t.ini:3: duplicate key 'cert' in section [tls]");
    assert_load_error("[tls]\nkey = a\n[log]\nlevel = info\n[tls]\nkey = b\n",
                      "t.ini:6: duplicate key 'key' in section [tls]");
    assert_load_error("[tls]\nca = a\nca = b\n", "t.ini:3: duplicate key 'ca' in section [tls]");
    assert_load_error("[tls]\nverify_client = 1\nverify_client = 0\n",
                      "t.ini:3: duplicate key 'verify_client' in section [tls]");
    assert_load_error("[server]\nmax_message_size = 1MB\nmax_message_size = 2MB\n",
                      "t.ini:3: duplicate key 'max_message_size' in section [server]");
}

static void test_bad_log_level_is_an_error(void **state)
{
    (void)state;
    assert_load_error(
        "[log]\nlevel = verbose\n",
        "t.ini:2: level: expected debug, info, warn, warning or error, got 'verbose'");
    assert_load_error("[log]\nlevel =\n",
                      "t.ini:2: level: expected debug, info, warn, warning or error, got ''");
}

static void test_unknown_topics_hook_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[topics]\nmessage.foo = a\n",
                      "t.ini:2: unknown hook 'message.foo' in [topics] (expected one of "
                      "message.publish, message.delivered, message.acked, message.dropped)");
    assert_load_error("[topics]\nMessage.Publish = a\n",
                      "t.ini:2: unknown hook 'Message.Publish' in [topics] (expected one of "
                      "message.publish, message.delivered, message.acked, message.dropped)");
}

static void test_non_message_topics_hook_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[topics]\nclient.connect = a/b\n",
                      "t.ini:2: hook 'client.connect' takes no topic filters: only message hooks "
                      "do (message.publish, message.delivered, message.acked, message.dropped)");
    assert_load_error("[topics]\nsession.subscribed = a/b\n",
                      "t.ini:2: hook 'session.subscribed' takes no topic filters: only message "
                      "hooks do (message.publish, message.delivered, message.acked, "
                      "message.dropped)");
}

static void test_invalid_topic_filter_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[topics]\nmessage.publish = ok/#, a/#/b\n",
                      "t.ini:2: message.publish: invalid topic filter 'a/#/b': '#' must be the "
                      "whole last level");
    assert_load_error("[topics]\nmessage.dropped = a/b+\n",
                      "t.ini:2: message.dropped: invalid topic filter 'a/b+': '+' must be a "
                      "whole level");
}

static void test_empty_topic_filter_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[topics]\nmessage.acked = a,,b\n",
                      "t.ini:2: message.acked: empty element in list 'a,,b'");
    assert_load_error("[topics]\nmessage.delivered =\n", "t.ini:2: message.delivered: empty list");
}

/* ---- cfg_parse_duration_ms -------------------------------------------- */

static void assert_duration(const char *text, unsigned expected)
{
    unsigned ms = 0;

    if (cfg_parse_duration_ms(text, &ms) != 0)
        fail_msg("'%s' should parse", text);
    assert_int_equal(ms, expected);
}

static void test_duration_units(void **state)
{
    (void)state;
    assert_duration("500ms", 500);
    assert_duration("5s", 5000);
    assert_duration("2m", 120000);
    assert_duration("1500", 1500);
    assert_duration("007s", 7000);
}

static void test_duration_bounds_are_1ms_to_1h(void **state)
{
    unsigned ms = 42;

    (void)state;
    assert_duration("1", 1);
    assert_duration("1ms", 1);
    assert_duration("3600000", 3600000);
    assert_duration("3600s", 3600000);
    assert_duration("60m", 3600000);
    assert_int_equal(cfg_parse_duration_ms("3600001ms", &ms), -1);
    assert_int_equal(cfg_parse_duration_ms("3601s", &ms), -1);
    assert_int_equal(cfg_parse_duration_ms("61m", &ms), -1);
    assert_int_equal(cfg_parse_duration_ms("0", &ms), -1);
    assert_int_equal(cfg_parse_duration_ms("0ms", &ms), -1);
    assert_int_equal(cfg_parse_duration_ms("0m", &ms), -1);
    assert_int_equal(ms, 42); /* untouched on error */
}

static void test_duration_rejects_malformed_text(void **state)
{
    static const char *bad[] = {"",    "ms",  "-1",   "+1",  " 5s",
                                "5s ", "5 s", "1.5s", "5x",  "5mss",
                                "5S",  "5MS", "1h",   "1e3", "99999999999999999999999m"};
    unsigned ms;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cfg_parse_duration_ms(bad[i], &ms) != -1)
            fail_msg("'%s' should be rejected", bad[i]);
    }
    assert_int_equal(cfg_parse_duration_ms(NULL, &ms), -1);
}

/* ---- cfg_parse_size -------------------------------------------------- */

static void assert_size(const char *text, size_t expected)
{
    size_t bytes = 42;

    if (cfg_parse_size(text, &bytes) != 0)
        fail_msg("'%s' should parse", text);
    if (bytes != expected)
        fail_msg("'%s': got %zu, expected %zu", text, bytes, expected);
}

static void test_size_units(void **state)
{
    (void)state;
    assert_size("1048576", 1048576);
    assert_size("1", 1);
    assert_size("007", 7);
    assert_size("512KB", 512 * 1024);
    assert_size("512K", 512 * 1024);
    assert_size("64MB", 64 * 1024 * 1024);
    assert_size("64M", 64 * 1024 * 1024);
    assert_size("1GB", (size_t)1024 * 1024 * 1024);
    assert_size("1G", (size_t)1024 * 1024 * 1024);
}

static void test_size_units_are_case_insensitive(void **state)
{
    (void)state;
    assert_size("2kb", 2 * 1024);
    assert_size("2kB", 2 * 1024);
    assert_size("2Kb", 2 * 1024);
    assert_size("2k", 2 * 1024);
    assert_size("3mb", 3 * 1024 * 1024);
    assert_size("3mB", 3 * 1024 * 1024);
    assert_size("3m", 3 * 1024 * 1024);
    assert_size("4gb", (size_t)4 * 1024 * 1024 * 1024);
    assert_size("4Gb", (size_t)4 * 1024 * 1024 * 1024);
    assert_size("4g", (size_t)4 * 1024 * 1024 * 1024);
}

static void test_size_zero_is_zero(void **state)
{
    (void)state;
    assert_size("0", 0);
    assert_size("000", 0);
    assert_size("0KB", 0);
    assert_size("0M", 0);
    assert_size("0gb", 0);
}

static void test_size_upper_bound_is_64gb(void **state)
{
    size_t bytes = 42;

    (void)state;
    assert_size("64GB", (size_t)64 * 1024 * 1024 * 1024);
    assert_size("65536MB", (size_t)64 * 1024 * 1024 * 1024);
    assert_size("67108864K", (size_t)64 * 1024 * 1024 * 1024);
    assert_size("68719476736", (size_t)64 * 1024 * 1024 * 1024);
    assert_int_equal(cfg_parse_size("65GB", &bytes), -1);
    assert_int_equal(cfg_parse_size("65537MB", &bytes), -1);
    assert_int_equal(cfg_parse_size("67108865K", &bytes), -1);
    assert_int_equal(cfg_parse_size("68719476737", &bytes), -1);
    /* large enough to overflow 64 bits once multiplied by the unit */
    assert_int_equal(cfg_parse_size("17179869184G", &bytes), -1);
    assert_int_equal(cfg_parse_size("18446744073709551616", &bytes), -1);
    assert_int_equal(cfg_parse_size("99999999999999999999999GB", &bytes), -1);
    assert_int_equal(bytes, 42); /* untouched on error */
}

static void test_size_rejects_malformed_text(void **state)
{
    static const char *bad[] = {"",      "KB",    "M",     "-1",    "-64MB",     "+64MB",
                                " 64MB", "64MB ", "64 MB", "64 M",  "1.5GB",     "1e6",
                                "64B",   "64b",   "64MiB", "64MBB", "64KM",      "1T",
                                "1TB",   "64x",   "0x10",  "64MB;", "sixty-four"};
    size_t bytes = 42;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cfg_parse_size(bad[i], &bytes) != -1)
            fail_msg("'%s' should be rejected", bad[i]);
    }
    assert_int_equal(bytes, 42);
    assert_int_equal(cfg_parse_size(NULL, &bytes), -1);
    assert_int_equal(cfg_parse_size("1MB", NULL), -1);
}

/* ---- [webhook] --------------------------------------------------------- */

static void test_webhook_defaults(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[webhook]\n");
    const struct cfg_webhook *wc = &cfg.webhook;
    assert_null(wc->url);
    assert_int_equal(wc->n_headers, 0);
    assert_int_equal(wc->encoding, CFG_PAYLOAD_PLAIN);
    assert_int_equal(wc->pool_size, 32);
    assert_int_equal(wc->request_timeout_ms, 5000);
    assert_null(wc->ssl.cacertfile);
    assert_null(wc->ssl.certfile);
    assert_null(wc->ssl.keyfile);
    assert_true(wc->ssl.verify);
    assert_int_equal(wc->n_rules, 0);
    assert_int_equal(wc->queue_events, 100000);
    assert_int_equal(wc->queue_bytes, 64 * 1024 * 1024);
    assert_int_equal(wc->max_retries, 3);
    assert_int_equal(wc->retry_interval_ms, 1000);
    assert_int_equal(wc->max_retry_interval_ms, 30000);
    cfg_free(&cfg);
}

static void test_webhook_every_key(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[webhook]\n"
                  "url = https://hooks.example.com:8443/emqx?x=1\n"
                  "headers.content-type = application/json\n"
                  "headers.Authorization = Bearer abc def\n"
                  "headers.Cookie = a=1; b=2 ;c=3\n"
                  "body.encoding_of_payload_field = base62\n"
                  "pool_size = 8\n"
                  "request_timeout = 2s\n"
                  "ssl.cacertfile = /etc/ssl/ca.pem\n"
                  "ssl.certfile = /etc/ssl/c.pem\n"
                  "ssl.keyfile = /etc/ssl/k.pem\n"
                  "ssl.verify = false\n"
                  "queue_events = 500\n"
                  "queue_bytes = 1MB\n"
                  "max_retries = 0\n"
                  "retry_interval = 200ms\n"
                  "max_retry_interval = 1m\n"
                  "rule.client.connect.1 = {\"action\": \"on_client_connect\"}\n"
                  "rule.message.publish.1 = {\"action\": \"on_message_publish\", \"topic\": \"a/b/c\"}\n"
                  "rule.message.publish.2 = {\"topic\": \"foo/#\", \"action\": \"on_message_publish\"}\n");
    const struct cfg_webhook *wc = &cfg.webhook;
    assert_string_equal(wc->url, "https://hooks.example.com:8443/emqx?x=1");
    assert_int_equal(wc->n_headers, 3);
    assert_string_equal(wc->headers[0].name, "content-type");
    assert_string_equal(wc->headers[0].value, "application/json");
    assert_string_equal(wc->headers[1].name, "Authorization");
    assert_string_equal(wc->headers[1].value, "Bearer abc def");
    /* A ';' after a space starts a comment, as everywhere in the file. */
    assert_string_equal(wc->headers[2].value, "a=1; b=2");
    assert_int_equal(wc->encoding, CFG_PAYLOAD_BASE62);
    assert_int_equal(wc->pool_size, 8);
    assert_int_equal(wc->request_timeout_ms, 2000);
    assert_string_equal(wc->ssl.cacertfile, "/etc/ssl/ca.pem");
    assert_string_equal(wc->ssl.certfile, "/etc/ssl/c.pem");
    assert_string_equal(wc->ssl.keyfile, "/etc/ssl/k.pem");
    assert_false(wc->ssl.verify);
    assert_int_equal(wc->queue_events, 500);
    assert_int_equal(wc->queue_bytes, 1024 * 1024);
    assert_int_equal(wc->max_retries, 0);
    assert_int_equal(wc->retry_interval_ms, 200);
    assert_int_equal(wc->max_retry_interval_ms, 60000);
    assert_int_equal(wc->n_rules, 3);
    assert_int_equal(wc->rules[0].hook, HOOK_CLIENT_CONNECT);
    assert_string_equal(wc->rules[0].action, "on_client_connect");
    assert_null(wc->rules[0].topic);
    assert_string_equal(wc->rules[0].name, "1");
    assert_int_equal(wc->rules[1].hook, HOOK_MESSAGE_PUBLISH);
    assert_string_equal(wc->rules[1].topic, "a/b/c");
    assert_int_equal(wc->rules[2].hook, HOOK_MESSAGE_PUBLISH);
    assert_string_equal(wc->rules[2].topic, "foo/#");
    assert_string_equal(wc->rules[2].name, "2");
    cfg_free(&cfg);
}

/* Lines pasted from the plugin's emqx_web_hook.conf work as they are. */
static void test_webhook_keys_may_keep_the_plugin_prefix(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[webhook]\n"
                  "web.hook.url = http://127.0.0.1:80\n"
                  "web.hook.headers.content-type = application/json\n"
                  "web.hook.body.encoding_of_payload_field = plain\n"
                  "web.hook.pool_size = 32\n"
                  "web.hook.rule.client.connected.1     = {\"action\": \"on_client_connected\"}\n"
                  "web.hook.rule.message.acked.1        = {\"action\": \"on_message_acked\"}\n");
    assert_string_equal(cfg.webhook.url, "http://127.0.0.1:80");
    assert_int_equal(cfg.webhook.n_headers, 1);
    assert_int_equal(cfg.webhook.n_rules, 2);
    assert_int_equal(cfg.webhook.rules[1].hook, HOOK_MESSAGE_ACKED);
    cfg_free(&cfg);
    assert_load_error("[webhook]\nurl = http://a\nweb.hook.url = http://b\n",
                      "t.ini:3: duplicate key 'url' in section [webhook]");
}

static void test_webhook_every_event_takes_a_rule(void **state)
{
    static const char *const events[] = {
        "client.connect",     "client.connack",       "client.connected",
        "client.disconnected", "client.subscribe",    "client.unsubscribe",
        "session.subscribed", "session.unsubscribed", "session.terminated",
        "message.publish",    "message.delivered",    "message.acked",
        "message.dropped"};

    (void)state;
    for (size_t i = 0; i < COUNT(events); i++) {
        struct config cfg;
        char text[256], action[64];
        snprintf(action, sizeof action, "on_%s", events[i]);
        for (char *p = action; *p != '\0'; p++)
            *p = *p == '.' ? '_' : *p;
        snprintf(text, sizeof text, "[webhook]\nrule.%s.1 = {\"action\": \"%s\"}\n", events[i],
                 action);
        load_ok(&cfg, text);
        assert_int_equal(cfg.webhook.n_rules, 1);
        assert_int_equal(cfg.webhook.rules[0].hook, hooks_find_by_name(events[i]));
        cfg_free(&cfg);
    }
}

static void test_webhook_empty_url_is_off(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "[webhook]\nurl =\n");
    assert_null(cfg.webhook.url);
    cfg_free(&cfg);
}

static void test_webhook_bad_values_are_errors(void **state)
{
    static const char *const urls[] = {"127.0.0.1:80", "ftp://a/", "http://", "http:///x",
                                       "http://a b"};
    static const char *const encodings[] = {"base32", "Plain", "hex"};
    static const char *const pools[] = {"0", "1025", "-1", "8x"};
    static const char *const retries[] = {"1001", "x", "-1"};
    static const char *const events[] = {"0", "100000001", "1k"};
    static const char *const durations[] = {"0", "2h", "5 s"};
    static const char *const sizes[] = {"1KB", "63KB", "65GB", "big"};

    (void)state;
    assert_bad_values("[webhook]\n", 2, "url", "expected an http:// or https:// URL", urls, 2);
    assert_bad_values("[webhook]\n", 2, "url", "the URL has no host", urls + 2, 2);
    assert_load_error("[webhook]\nurl = http://a b\n",
                      "t.ini:2: url: the URL contains a space or a control character, got "
                      "'http://a b'");
    assert_bad_values("[webhook]\n", 2, "body.encoding_of_payload_field",
                      "expected plain, base64 or base62", encodings, COUNT(encodings));
    assert_bad_values("[webhook]\n", 2, "pool_size", "expected an integer 1..1024", pools,
                      COUNT(pools));
    assert_bad_values("[webhook]\n", 2, "max_retries", "expected an integer 0..1000", retries,
                      COUNT(retries));
    assert_bad_values("[webhook]\n", 2, "queue_events", "expected an integer 1..100000000",
                      events, COUNT(events));
    assert_bad_values("[webhook]\n", 2, "request_timeout",
                      "expected a duration from 1ms to 1h such as 500ms, 5s or 2m", durations,
                      COUNT(durations));
    assert_bad_values("[webhook]\n", 2, "retry_interval",
                      "expected a duration from 1ms to 1h such as 500ms, 5s or 2m", durations,
                      COUNT(durations));
    assert_bad_values("[webhook]\n", 2, "queue_bytes",
                      "expected a size from 64KB to 64GB such as 512KB, 64MB or 1GB", sizes,
                      COUNT(sizes));
    assert_load_error("[webhook]\nssl.verify = maybe\n",
                      "t.ini:2: ssl.verify: expected true or false, got "
                      "'maybe'");
    assert_load_error("[webhook]\nssl.cacertfile =\n", "t.ini:2: ssl.cacertfile: must not be empty");
    assert_load_error("[webhook]\nqueue = 1\n", "t.ini:2: unknown key 'queue' in section [webhook]");
}

static void test_webhook_header_errors(void **state)
{
    (void)state;
    assert_load_error("[webhook]\nheaders.x-a = 1\nheaders.X-A = 2\n",
                      "t.ini:3: headers.X-A: header x-a is already set (header names are "
                      "case-insensitive)");
    assert_load_error("[webhook]\nheaders.a(b = 1\n",
                      "t.ini:2: headers.a(b: 'a(b' is not a header name (letters, digits and "
                      "!#$%&'*+-.^_`|~)");
    assert_load_error("[webhook]\nheaders. = 1\n",
                      "t.ini:2: headers.: '' is not a header name (letters, digits and "
                      "!#$%&'*+-.^_`|~)");
    assert_load_error("[webhook]\nheaders.Content-Length = 1\n",
                      "t.ini:2: headers.Content-Length: Content-Length is set by the HTTP client "
                      "and cannot be changed");
    assert_load_error("[webhook]\nheaders.x = a\x01" "b\n",
                      "t.ini:2: headers.x: the value contains a control character");
}

/* Every way a rule can be wrong names the line and the key. */
static void test_webhook_rule_errors(void **state)
{
    static const struct {
        const char *line;
        const char *error;
    } cases[] = {
        {"rule.client.created.1 = {\"action\": \"on_client_created\"}",
         "rule.client.created.1: unknown event 'client.created' (expected one of client.connect, "
         "client.connack, client.connected, client.disconnected, client.subscribe, "
         "client.unsubscribe, session.subscribed, session.unsubscribed, session.terminated, "
         "message.publish, message.delivered, message.acked, message.dropped)"},
        {"rule.message.publish = {\"action\": \"on_message_publish\"}",
         "rule.message.publish: unknown event 'message' (expected one of client.connect, "
         "client.connack, client.connected, client.disconnected, client.subscribe, "
         "client.unsubscribe, session.subscribed, session.unsubscribed, session.terminated, "
         "message.publish, message.delivered, message.acked, message.dropped)"},
        {"rule.message.publish. = {\"action\": \"on_message_publish\"}",
         "rule.message.publish.: expected rule.<event>.<n>, e.g. rule.message.publish.1"},
        {"rule.message.publish.a b = {\"action\": \"on_message_publish\"}",
         "rule.message.publish.a b: the rule's name 'a b' may hold only letters, digits, '_' and "
         "'-'"},
        {"rule.message.publish.1 = {\"action\": \"on_message_publish\"",
         "rule.message.publish.1: bad JSON at column 31: '}' expected near end of file"},
        {"rule.message.publish.1 = on_message_publish",
         "rule.message.publish.1: bad JSON at column 2: '[' or '{' expected near 'on'"},
        {"rule.message.publish.1 = [\"on_message_publish\"]",
         "rule.message.publish.1: expected a JSON object such as {\"action\": \"...\"}"},
        {"rule.message.publish.1 = {\"topic\": \"a\"}", "rule.message.publish.1: missing \"action\""},
        {"rule.message.publish.1 = {\"action\": 1}",
         "rule.message.publish.1: \"action\" must be a string"},
        {"rule.message.publish.1 = {\"action\": \"on_message_publish\", \"qos\": \"1\"}",
         "rule.message.publish.1: unknown field \"qos\" (expected action and topic)"},
        {"rule.message.publish.1 = {\"action\": \"on_message_publish\", \"action\": \"x\"}",
         "rule.message.publish.1: bad JSON at column 41: duplicate object key near '\"action\"'"},
        {"rule.message.publish.1 = {\"action\": \"on_message_delivered\"}",
         "rule.message.publish.1: \"action\" of a message.publish rule must be "
         "\"on_message_publish\", got \"on_message_delivered\""},
        {"rule.message.publish.1 = {\"action\": \"on_message_publish\", \"topic\": \"a/#/b\"}",
         "rule.message.publish.1: \"topic\": '#' must be the whole last level, got 'a/#/b'"},
        {"rule.message.publish.1 = {\"action\": \"on_message_publish\", \"topic\": \"\"}",
         "rule.message.publish.1: \"topic\": empty filter, got ''"},
        {"rule.client.connect.1 = {\"action\": \"on_client_connect\", \"topic\": \"a\"}",
         "rule.client.connect.1: client.connect takes no \"topic\": only message events and "
         "client.subscribe, client.unsubscribe, session.subscribed, session.unsubscribed do"},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        char text[512], expected[1024];
        snprintf(text, sizeof text, "[webhook]\nurl = http://h\n%s\n", cases[i].line);
        snprintf(expected, sizeof expected, "t.ini:3: %s", cases[i].error);
        assert_load_error(text, expected);
    }
}

/* 4.x hooked a rule once per event and topic: a second one is a mistake. */
static void test_webhook_repeated_rule_is_an_error(void **state)
{
    (void)state;
    assert_load_error("[webhook]\n"
                      "rule.message.acked.1 = {\"action\": \"on_message_acked\", \"topic\": \"a\"}\n"
                      "rule.message.acked.2 = {\"action\": \"on_message_acked\", \"topic\": \"b\"}\n"
                      "rule.message.acked.3 = {\"action\": \"on_message_acked\", \"topic\": \"a\"}\n",
                      "t.ini:4: rule.message.acked.3: repeats rule.message.acked.1 (same event and "
                      "topic)");
    assert_load_error("[webhook]\n"
                      "rule.client.connect.1 = {\"action\": \"on_client_connect\"}\n"
                      "rule.client.connect.2 = {\"action\": \"on_client_connect\"}\n",
                      "t.ini:3: rule.client.connect.2: repeats rule.client.connect.1 (same event "
                      "and topic)");
    assert_load_error("[webhook]\n"
                      "rule.message.acked.1 = {\"action\": \"on_message_acked\", \"topic\": \"a\"}\n"
                      "rule.message.acked.1 = {\"action\": \"on_message_acked\", \"topic\": \"b\"}\n",
                      "t.ini:3: duplicate key 'rule.message.acked.1' in section [webhook]");
}

static void test_webhook_section_problems(void **state)
{
    (void)state;
    assert_load_error("[webhook]\nssl.certfile = c.pem\n",
                      "t.ini: [webhook] ssl.certfile and ssl.keyfile go together: set both or "
                      "neither");
    assert_load_error("[webhook]\nretry_interval = 10s\nmax_retry_interval = 5s\n",
                      "t.ini: [webhook] max_retry_interval must be at least retry_interval");
    assert_load_error("[webhook]\nretry_interval = 1m\n",
                      "t.ini: [webhook] max_retry_interval must be at least retry_interval");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_text_keeps_defaults),
        cmocka_unit_test(test_partial_config_keeps_other_defaults),
        cmocka_unit_test(test_full_config_sets_every_key),
        cmocka_unit_test(test_comments_crlf_bom_and_inline_comments_are_accepted),
        cmocka_unit_test(test_indented_first_key_after_section_is_accepted),
        cmocka_unit_test(test_listen_accepts_names_ipv4_ipv6_and_port_range),
        cmocka_unit_test(test_every_log_level_name_is_accepted),
        cmocka_unit_test(test_workers_bounds_are_inclusive),
        cmocka_unit_test(test_call_timeout_zero_means_no_limit),
        cmocka_unit_test(test_call_timeout_accepts_every_form),
        cmocka_unit_test(test_memory_limit_accepts_every_form),
        cmocka_unit_test(test_every_sandbox_boolean_is_accepted),
        cmocka_unit_test(test_max_message_size_accepts_every_form),
        cmocka_unit_test(test_handshake_timeout_accepts_every_form),
        cmocka_unit_test(test_memory_quota_accepts_every_form),
        cmocka_unit_test(test_tls_cert_and_key_alone_give_tls_without_client_check),
        cmocka_unit_test(test_tls_keys_may_come_in_any_order),
        cmocka_unit_test(test_tls_ca_without_verify_client_is_accepted),
        cmocka_unit_test(test_tls_paths_are_kept_verbatim),
        cmocka_unit_test(test_empty_tls_section_is_accepted),
        cmocka_unit_test(test_verify_client_false_alone_is_accepted),
        cmocka_unit_test(test_every_verify_client_boolean_is_accepted),
        cmocka_unit_test(test_shutdown_timeout_accepts_every_form),
        cmocka_unit_test(test_watchdog_accepts_every_form_and_zero),
        cmocka_unit_test(test_bad_watchdog_is_an_error),
        cmocka_unit_test(test_line_of_197_characters_is_accepted),
        cmocka_unit_test(test_shipped_config_parses),
        cmocka_unit_test(test_load_from_file_reports_path_and_line),
        cmocka_unit_test(test_load_from_file_applies_values),
        cmocka_unit_test(test_error_buffer_may_be_null),
        cmocka_unit_test(test_error_message_is_truncated_to_buffer),
        cmocka_unit_test(test_unknown_section_is_an_error),
        cmocka_unit_test(test_unknown_empty_section_is_an_error),
        cmocka_unit_test(test_section_names_are_case_sensitive),
        cmocka_unit_test(test_unterminated_section_header_is_an_error),
        cmocka_unit_test(test_unknown_key_is_an_error),
        cmocka_unit_test(test_key_in_wrong_section_is_an_error),
        cmocka_unit_test(test_key_names_are_case_sensitive),
        cmocka_unit_test(test_key_before_any_section_is_an_error),
        cmocka_unit_test(test_line_without_equals_is_an_error),
        cmocka_unit_test(test_duplicate_key_is_an_error),
        cmocka_unit_test(test_duplicate_key_in_repeated_section_is_an_error),
        cmocka_unit_test(test_duplicate_topics_key_is_an_error),
        cmocka_unit_test(test_indented_continuation_line_is_an_error),
        cmocka_unit_test(test_first_error_is_the_one_reported),
        cmocka_unit_test(test_line_over_197_characters_is_an_error),
        cmocka_unit_test(test_long_comment_line_is_an_error),
        cmocka_unit_test(test_nul_byte_is_an_error),
        cmocka_unit_test(test_missing_file_is_an_error),
        cmocka_unit_test(test_directory_path_is_an_error),
        cmocka_unit_test(test_unreadable_file_is_an_error),
        cmocka_unit_test(test_listen_without_port_is_an_error),
        cmocka_unit_test(test_listen_without_host_is_an_error),
        cmocka_unit_test(test_listen_with_bad_host_is_an_error),
        cmocka_unit_test(test_listen_with_non_numeric_port_is_an_error),
        cmocka_unit_test(test_listen_port_out_of_range_is_an_error),
        cmocka_unit_test(test_workers_out_of_range_or_not_integer_is_an_error),
        cmocka_unit_test(test_empty_lua_path_is_an_error),
        cmocka_unit_test(test_waiting_counts_default_bound_and_refuse),
        cmocka_unit_test(test_empty_init_module_list_is_an_error),
        cmocka_unit_test(test_empty_init_module_element_is_an_error),
        cmocka_unit_test(test_init_module_with_bad_characters_is_an_error),
        cmocka_unit_test(test_init_module_with_empty_dotted_part_is_an_error),
        cmocka_unit_test(test_init_module_listed_twice_is_an_error),
        cmocka_unit_test(test_bad_call_timeout_is_an_error),
        cmocka_unit_test(test_bad_memory_limit_is_an_error),
        cmocka_unit_test(test_memory_limit_below_1mb_is_an_error),
        cmocka_unit_test(test_bad_sandbox_is_an_error),
        cmocka_unit_test(test_bad_shutdown_timeout_is_an_error),
        cmocka_unit_test(test_new_keys_are_in_their_own_sections_only),
        cmocka_unit_test(test_duplicate_new_keys_are_errors),
        cmocka_unit_test(test_bad_max_message_size_is_an_error),
        cmocka_unit_test(test_bad_handshake_timeout_is_an_error),
        cmocka_unit_test(test_bad_memory_quota_is_an_error),
        cmocka_unit_test(test_empty_tls_path_is_an_error),
        cmocka_unit_test(test_bad_verify_client_is_an_error),
        cmocka_unit_test(test_tls_cert_and_key_go_together),
        cmocka_unit_test(test_tls_verify_client_needs_ca),
        cmocka_unit_test(test_tls_ca_and_verify_client_need_cert),
        cmocka_unit_test(test_tls_line_errors_come_before_whole_file_checks),
        cmocka_unit_test(test_tls_check_from_file_names_the_file),
        cmocka_unit_test(test_tls_keys_are_in_their_own_section_only),
        cmocka_unit_test(test_duplicate_tls_keys_are_errors),
        cmocka_unit_test(test_bad_log_level_is_an_error),
        cmocka_unit_test(test_log_format_is_text_or_json),
        cmocka_unit_test(test_unknown_topics_hook_is_an_error),
        cmocka_unit_test(test_non_message_topics_hook_is_an_error),
        cmocka_unit_test(test_invalid_topic_filter_is_an_error),
        cmocka_unit_test(test_empty_topic_filter_is_an_error),
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_bounds_are_1ms_to_1h),
        cmocka_unit_test(test_duration_rejects_malformed_text),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_units_are_case_insensitive),
        cmocka_unit_test(test_size_zero_is_zero),
        cmocka_unit_test(test_size_upper_bound_is_64gb),
        cmocka_unit_test(test_size_rejects_malformed_text),
        cmocka_unit_test(test_webhook_defaults),
        cmocka_unit_test(test_shipped_webhook_examples_load),
        cmocka_unit_test(test_webhook_every_key),
        cmocka_unit_test(test_webhook_keys_may_keep_the_plugin_prefix),
        cmocka_unit_test(test_webhook_every_event_takes_a_rule),
        cmocka_unit_test(test_webhook_empty_url_is_off),
        cmocka_unit_test(test_webhook_bad_values_are_errors),
        cmocka_unit_test(test_webhook_header_errors),
        cmocka_unit_test(test_webhook_rule_errors),
        cmocka_unit_test(test_webhook_repeated_rule_is_an_error),
        cmocka_unit_test(test_webhook_section_problems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
