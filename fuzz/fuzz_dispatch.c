/* fuzz_dispatch: a libFuzzer target for one hook call, from request bytes to
 * reply bytes, through dispatch_call on a Lua engine: what a server worker
 * does with every call (src/server.c, serve). Two modules are loaded:
 * scripts/example.lua, and fuzz/scripts/odd.lua, whose handlers return odd
 * values chosen by the input. After every call it checks what the broker
 * would get and the state the worker keeps, and aborts if either is wrong.
 *
 * Input: [0] rpc, [1] generation and flags, [2..5] odd.lua's recipe (see
 * there), [6..] the request body. */

#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "log.h"
#include "topic.h"

#define IN_RPC 0
#define IN_FLAGS 1
#define IN_RECIPE 2
#define RECIPE_LEN 4
#define IN_BODY (IN_RECIPE + RECIPE_LEN)

#define FLAG_GENERATION 0x03 /* modulo 3: v1, v2, v3 */
#define FLAG_ODD_FIRST 0x10  /* odd.lua runs before example.lua */
#define FLAG_DEADLINE 0x20   /* the broker's deadline is 1 ms away */

/* Small limits, so that loops and memory bombs end fast. */
static const char limits[] = "call_timeout = 20ms\nmemory_limit = 8MB\n";

/* What libFuzzer cannot see: it counts edges in C, not which recipe ran in
 * Lua nor how the call ended. These extra counters (a section libFuzzer
 * reads after every input) count one feature per kind of rpc (the reply it
 * gets), recipe, module order and status, so an input that reaches a new
 * combination is kept. */
#define RECIPE_FEATURES 64
#define STATUS_FEATURES 5
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t
    outcomes[HOOK_KIND_PUBLISH + 1][RECIPE_FEATURES][2][STATUS_FEATURES];

static int status_feature(grpc_status_code status)
{
    static const grpc_status_code statuses[STATUS_FEATURES] = {
        GRPC_STATUS_OK, GRPC_STATUS_INVALID_ARGUMENT, GRPC_STATUS_UNKNOWN,
        GRPC_STATUS_DEADLINE_EXCEEDED, GRPC_STATUS_RESOURCE_EXHAUSTED};
    for (int i = 0; i < STATUS_FEATURES; i++) {
        if (statuses[i] == status)
            return i;
    }
    return -1;
}

/* Module orders: example first, odd first. */
static struct efx *engines[2];
/* Where failures are written: stderr as it was at start, since the fuzzer
 * is run with -close_fd_mask=2 to keep exhookd's log out of its output. */
static FILE *report;

typedef Emqx__Exhook__V3__ValuedResponse valued;
typedef Emqx__Exhook__V3__Message message;
#define T(x) EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__##x
#define V(x) EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_##x

struct call {
    enum hook_id hook;
    int version;
    const uint8_t *body;
    size_t len;
    const struct dispatch_reply *out;
};

static void broken(const struct call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void broken(const struct call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(report, "fuzz_dispatch: %s (v%d): ", hooks_rpc(c->hook, c->version), c->version);
    vfprintf(report, fmt, ap);
    fputc('\n', report);
    va_end(ap);
    fflush(report);
    abort();
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(report, "fuzz_dispatch: cannot read %s\n", path);
        abort();
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
        fwrite(buf, 1, n, mem);
    fclose(mem);
    fclose(f);
    return text;
}

static void close_engines(void)
{
    for (int i = 0; i < 2; i++)
        efx_close(engines[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    report = fdopen(dup(2), "w");
    /* Every log line is formatted, so that its code runs too. */
    log_set_level(LOG_DEBUG);
    char *example = read_text(EXHOOKD_SOURCE_DIR "/scripts/example.lua");
    char *odd = read_text(EXHOOKD_SOURCE_DIR "/fuzz/scripts/odd.lua");
    static const char *const orders[] = {"example, odd", "odd, example"};
    for (int i = 0; i < 2; i++)
        engines[i] = efx_open(orders[i], limits, "example.lua", example, "odd.lua", odd, NULL);
    free(example);
    free(odd);
    /* odd.lua must answer every rpc: a handler the engine did not take up
     * would leave that rpc fuzzed with example.lua's answers alone. */
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < engines[i]->e.module_count; k++) {
            const struct script_module *m = &engines[i]->e.modules[k];
            for (int h = 0; strcmp(m->name, "odd") == 0 && h < HOOK_COUNT; h++) {
                if (m->handlers[h] == LUA_NOREF) {
                    fprintf(report, "fuzz_dispatch: odd.lua has no handler for %s\n",
                            hook_defs[h].rpc);
                    fflush(report);
                    abort();
                }
            }
        }
    }
    /* The states are closed at exit, so LeakSanitizer checks them too. */
    atexit(close_engines);
    return 0;
}

/* An EmptySuccess has no fields: anything else in it is a wrong reply. */
static void check_empty(const struct call *c)
{
    if (c->out->len != 0)
        broken(c, "EmptySuccess of %zu bytes", c->out->len);
}

/* Every hook named is a hook of the broker's generation, and every topic
 * filter a valid one. */
static void check_loaded(const struct call *c)
{
    Emqx__Exhook__V3__LoadedResponse *r =
        emqx__exhook__v3__loaded_response__unpack(NULL, c->out->len, c->out->data);
    if (!r)
        broken(c, "the reply does not decode as a LoadedResponse");
    for (size_t i = 0; i < r->n_hooks; i++) {
        const Emqx__Exhook__V3__HookSpec *s = r->hooks[i];
        int known = 0;
        for (int h = 0; h < HOOK_COUNT && !known; h++)
            known = hooks_name(h, c->version) && strcmp(hooks_name(h, c->version), s->name) == 0;
        if (!known)
            broken(c, "LoadedResponse names hook '%s'", s->name);
        for (size_t k = 0; k < s->n_topics; k++) {
            const char *why;
            if (topic_filter_valid(s->topics[k], &why) != 0)
                broken(c, "LoadedResponse filter '%s': %s", s->topics[k], why);
        }
    }
    emqx__exhook__v3__loaded_response__free_unpacked(r, NULL);
}

static valued *unpack_valued(const struct call *c)
{
    valued *r = emqx__exhook__v3__valued_response__unpack(NULL, c->out->len, c->out->data);
    if (!r)
        broken(c, "the reply does not decode as a ValuedResponse");
    if (r->type != T(CONTINUE) && r->type != T(IGNORE) && r->type != T(STOP_AND_RETURN))
        broken(c, "ValuedResponse type %d", (int)r->type);
    if ((r->type == T(IGNORE)) != (r->value_case == V(_NOT_SET)))
        broken(c, "ValuedResponse type %d with value case %d", (int)r->type, (int)r->value_case);
    return r;
}

static void check_verdict(const struct call *c)
{
    valued *r = unpack_valued(c);
    if (r->value_case != V(_NOT_SET) && r->value_case != V(BOOL_RESULT))
        broken(c, "a verdict with value case %d", (int)r->value_case);
    emqx__exhook__v3__valued_response__free_unpacked(r, NULL);
}

/* A message the scripts changed must pass the checks: a topic name (not
 * empty, no wildcards) and a QoS of 0, 1 or 2. What the broker sent may
 * come back as it came ("stop" or a drop without a change echoes it; a
 * request without a message is an empty one). */
static void check_publish(const struct call *c)
{
    valued *r = unpack_valued(c);
    if (r->value_case != V(_NOT_SET) && r->value_case != V(MESSAGE))
        broken(c, "a message.publish reply with value case %d", (int)r->value_case);
    const message *m = r->value_case == V(MESSAGE) ? r->message : NULL;
    if (!m) {
        emqx__exhook__v3__valued_response__free_unpacked(r, NULL);
        return;
    }
    Emqx__Exhook__V3__MessagePublishRequest *req =
        emqx__exhook__v3__message_publish_request__unpack(NULL, c->len, c->body);
    if (!req)
        broken(c, "a reply to a request that does not decode");
    static const message empty = EMQX__EXHOOK__V3__MESSAGE__INIT;
    const message *sent = req->message ? req->message : &empty;
    if (strcmp(m->topic, sent->topic) != 0 && (!*m->topic || strpbrk(m->topic, "+#")))
        broken(c, "reply message with topic '%s'", m->topic);
    if (m->qos != sent->qos && m->qos > 2)
        broken(c, "reply message with qos %u", m->qos);
    emqx__exhook__v3__message_publish_request__free_unpacked(req, NULL);
    emqx__exhook__v3__valued_response__free_unpacked(r, NULL);
}

static void (*const check_reply[])(const struct call *) = {
    [HOOK_KIND_LOADED] = check_loaded,
    [HOOK_KIND_NOTIFY] = check_empty,
    [HOOK_KIND_VERDICT] = check_verdict,
    [HOOK_KIND_PUBLISH] = check_publish,
};

/* Sets the global odd.lua reads its recipe from, inside a protected call:
 * the state may be at its memory limit. */
static int set_recipe(lua_State *L)
{
    lua_pushlstring(L, lua_touserdata(L, 1), RECIPE_LEN);
    lua_setglobal(L, "fuzz_recipe");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < IN_BODY)
        return -1; /* not kept in the corpus */
    struct call c = {.hook = data[IN_RPC] % HOOK_COUNT,
                     .version = (data[IN_FLAGS] & FLAG_GENERATION) % HOOK_GENERATION_COUNT + 1,
                     .body = data + IN_BODY,
                     .len = size - IN_BODY};
    struct efx *t = engines[data[IN_FLAGS] & FLAG_ODD_FIRST ? 1 : 0];
    struct script_engine *e = &t->e;
    c.out = &t->out;

    lua_pushcfunction(e->L, set_recipe);
    lua_pushlightuserdata(e->L, (void *)(data + IN_RECIPE));
    if (lua_pcall(e->L, 1, 0, 0) != LUA_OK)
        lua_pop(e->L, 1);
    int64_t deadline = data[IN_FLAGS] & FLAG_DEADLINE ? script_now_ns() + 1000000 : INT64_MAX;

    int top = lua_gettop(e->L);
    dispatch_call(e, c.hook, c.version, c.body, c.len, deadline, &t->out);

    /* What the call left behind is collected, and its finalizers run, now
     * rather than during a later input: a crash is then reproduced by the
     * one input that caused it, and libFuzzer's per-input leak check sees
     * the frees that match the input's allocations. */
    lua_gc(e->L, LUA_GCCOLLECT);

    /* The worker serves its next call on the same state. */
    if (lua_gettop(e->L) != top)
        broken(&c, "Lua stack of %d slots after the call, %d before", lua_gettop(e->L), top);
    if (e->timed_out || e->deadline_ns != INT64_MAX || e->current_module)
        broken(&c, "the call left its time limit or module behind");
    if (e->mem_limit && e->mem_used > e->mem_limit)
        broken(&c, "the state holds %zu bytes, over its limit", e->mem_used);

    /* Only the statuses dispatch.h promises, an error always explained. */
    int status = status_feature(t->out.status);
    if (status < 0)
        broken(&c, "status %d", (int)t->out.status);
    if (t->out.status != GRPC_STATUS_OK && !t->out.fail.message[0])
        broken(&c, "status %d without a message", (int)t->out.status);
    if (t->out.status == GRPC_STATUS_OK)
        check_reply[hook_defs[c.hook].kind](&c);
    outcomes[hook_defs[c.hook].kind][data[IN_RECIPE] % RECIPE_FEATURES][t == engines[1]][status]++;
    return 0;
}
