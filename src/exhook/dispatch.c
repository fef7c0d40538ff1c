#include "dispatch.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "log.h"
#include "pb2lua.h"
#include "publish.h"

typedef Emqx__Exhook__V3__Message pb_message;
typedef Emqx__Exhook__V3__ValuedResponse pb_valued;

/* Stack slots inside run_call. */
#define CTX_SLOT 1
#define MSGH_SLOT 2
#define ARGS_SLOT 3

struct call_ctx {
    struct script_engine *e;
    enum hook_id hook;
    const struct script_module *module; /* whose handler ran last */
    int version;
    const ProtobufCMessageDescriptor *desc; /* of the request */
    const struct request_fields *fields;
    int64_t deadline_ns;
    const ProtobufCMessage *req;
    struct dispatch_reply *out;
};

static void fail(struct call_ctx *c, grpc_status_code status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct call_ctx *c, grpc_status_code status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->error, sizeof c->out->error, fmt, ap);
    va_end(ap);
    c->out->status = status;
    c->out->failed_module = c->module ? c->module->name : NULL;
}

int dispatch_reply_pack(struct dispatch_reply *out, const ProtobufCMessage *msg)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > out->cap) {
        size_t cap = need < 256 ? 256 : need * 2;
        uint8_t *data = realloc(out->data, cap);
        if (!data) {
            out->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(out->error, sizeof out->error, "out of memory packing the reply");
            return -1;
        }
        out->data = data;
        out->cap = cap;
    }
    out->len = protobuf_c_message_pack(msg, out->data);
    out->status = GRPC_STATUS_OK;
    return 0;
}

static int pack_reply(struct call_ctx *c, const ProtobufCMessage *msg)
{
    return dispatch_reply_pack(c->out, msg);
}

/* The request fields dispatch reads, looked up by name once per rpc and
 * generation instead of on every call. */
struct request_fields {
    const ProtobufCFieldDescriptor *args[HOOK_MAX_ARGS];
    const ProtobufCFieldDescriptor *meta, *props, *user_props, *message;
};

static struct request_fields fields_table[HOOK_COUNT][HOOK_GENERATION_COUNT];
static pthread_once_t fields_once = PTHREAD_ONCE_INIT;

static void fields_init(void)
{
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        for (int h = 0; h < HOOK_COUNT; h++) {
            const ProtobufCMessageDescriptor *d = hooks_request(h, hook_generations[g].version);
            struct request_fields *f = &fields_table[h][g];
            for (int i = 0; i < HOOK_MAX_ARGS && hook_defs[h].args[i]; i++)
                f->args[i] =
                    protobuf_c_message_descriptor_get_field_by_name(d, hook_defs[h].args[i]);
            f->meta = protobuf_c_message_descriptor_get_field_by_name(d, "meta");
            f->props = protobuf_c_message_descriptor_get_field_by_name(d, "props");
            f->user_props = protobuf_c_message_descriptor_get_field_by_name(d, "user_props");
            f->message = protobuf_c_message_descriptor_get_field_by_name(d, "message");
        }
    }
}

static const struct request_fields *fields_of(enum hook_id hook, int version)
{
    pthread_once(&fields_once, fields_init);
    return &fields_table[hook][version - 1];
}

/* The Message inside a message.* request, or NULL. */
static const pb_message *request_message(const struct call_ctx *c)
{
    const ProtobufCFieldDescriptor *f = c->fields->message;
    return f ? *(pb_message *const *)((const char *)c->req + f->offset) : NULL;
}

/* v3 brokers send MQTT User-Property entries apart from the other
 * properties; scripts find them under props["User-Property"] either way. */
static void add_user_props(lua_State *L, const struct call_ctx *c)
{
    const ProtobufCFieldDescriptor *f = c->fields->user_props;
    if (!f || *(const size_t *)((const char *)c->req + f->quantifier_offset) == 0)
        return;
    lua_createtable(L, 0, 4);
    pb_properties_into(L, -1, f, c->req);
    lua_setfield(L, -2, "User-Property");
}

/* PUBLISH properties (v3) travel with the message they belong to: sets
 * `props` in the message table on top of the stack. */
static void add_publish_props(lua_State *L, const struct call_ctx *c)
{
    pb_field_to_lua(L, c->fields->props, c->req);
    add_user_props(L, c);
    lua_setfield(L, -2, "props");
}

static int push_args(lua_State *L, const struct call_ctx *c)
{
    const struct hook_def *d = &hook_defs[c->hook];
    int n = 0;
    for (; n < HOOK_MAX_ARGS && d->args[n]; n++) {
        pb_field_to_lua(L, c->fields->args[n], c->req);
        if (c->fields->args[n] == c->fields->props)
            add_user_props(L, c);
    }
    if (c->hook == HOOK_MESSAGE_PUBLISH)
        add_publish_props(L, c);
    pb_field_to_lua(L, c->fields->meta, c->req);
    /* For the rare script that cares which broker generation calls. */
    static const char *const interfaces[] = {"v1", "v2", "v3"};
    lua_pushstring(L, interfaces[c->version - 1]);
    lua_setfield(L, -2, "interface");
    return n + 1;
}

/* Calls module `m`'s handler with the arguments at ARGS_SLOT (the first one
 * replaced by the value at `first` when first > 0). Leaves 2 results. */
static int call_handler(lua_State *L, struct call_ctx *c, struct script_module *m, int nargs,
                        int first)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->handlers[c->hook]);
    for (int i = 0; i < nargs; i++)
        lua_pushvalue(L, i == 0 && first > 0 ? first : ARGS_SLOT + i);
    struct script_engine *e = c->e;
    e->current_module = m->name;
    e->current_hook = hook_defs[c->hook].name;
    c->module = m;
    int64_t start = script_now_ns();
    script_arm_deadline(e, c->deadline_ns);
    int st = lua_pcall(L, nargs, 2, MSGH_SLOT);
    char where[sizeof e->timeout_where];
    snprintf(where, sizeof where, "%s", e->timeout_where);
    bool timed_out = script_clear_timeout(e);
    if (st == LUA_OK)
        return 0;
    e->current_module = NULL;
    e->current_hook = NULL;
    const char *handler = hook_defs[c->hook].handler;
    struct log_fields fields = {m->name, hook_defs[c->hook].name, NULL};
    if (timed_out) {
        long ms = (long)((script_now_ns() - start) / 1000000);
        log_fields_msg(LOG_ERROR, &fields,
                       "module '%s' %s: stopped at %s after %ld ms (time limit)", m->name, handler,
                       where, ms);
        fail(c, GRPC_STATUS_DEADLINE_EXCEEDED, "module '%s' %s: stopped at %s after %ld ms",
             m->name, handler, where, ms);
    } else if (st == LUA_ERRMEM) {
        log_fields_msg(LOG_ERROR, &fields, "module '%s' %s: out of memory (memory_limit)", m->name,
                       handler);
        fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "module '%s' %s: out of memory (memory_limit)",
             m->name, handler);
    } else {
        const char *msg = lua_tostring(L, -1);
        size_t len = script_error_length(msg);
        fields.traceback = msg[len] ? msg + len + 1 : NULL;
        log_fields_msg(LOG_ERROR, &fields, "module '%s' %s failed: %.*s", m->name, handler,
                       (int)len, msg);
        fail(c, GRPC_STATUS_UNKNOWN, "module '%s' %s: %.*s", m->name, handler,
             (int)strcspn(msg, "\n"), msg);
    }
    lua_pop(L, 1);
    return -1;
}

static void bad_return(struct call_ctx *c, const struct script_module *m, const char *what)
{
    const char *handler = hook_defs[c->hook].handler;
    struct log_fields fields = {m->name, hook_defs[c->hook].name, NULL};
    log_fields_msg(LOG_ERROR, &fields, "module '%s' %s: %s", m->name, handler, what);
    fail(c, GRPC_STATUS_UNKNOWN, "module '%s' %s: %s", m->name, handler, what);
}

/* "continue"/"stop" as second return value; -1 for anything else. */
static int chain_word(lua_State *L, int idx, bool *stop)
{
    if (lua_isnil(L, idx))
        return 0;
    size_t len = 0;
    const char *w = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : "";
    if (strlen(w) != len) /* "stop\0..." is not "stop" */
        return -1;
    if (strcmp(w, "continue") == 0)
        *stop = false;
    else if (strcmp(w, "stop") == 0)
        *stop = true;
    else
        return -1;
    return 0;
}

static void run_notify(lua_State *L, struct call_ctx *c, int nargs)
{
    const pb_message *msg = hooks_is_message(c->hook) ? request_message(c) : NULL;
    const char *topic = msg ? msg->topic : "";
    for (size_t i = 0; i < c->e->module_count; i++) {
        struct script_module *m = &c->e->modules[i];
        if (!script_module_wants(m, c->hook, topic))
            continue;
        if (call_handler(L, c, m, nargs, 0) != 0)
            return;
        lua_pop(L, 2);
    }
    if (c->hook == HOOK_PROVIDER_LOADED)
        return;
    Emqx__Exhook__V3__EmptySuccess empty = EMQX__EXHOOK__V3__EMPTY_SUCCESS__INIT;
    pack_reply(c, &empty.base);
}

/* authenticate / authorize: the first module with an opinion decides. */
static void run_verdict(lua_State *L, struct call_ctx *c, int nargs)
{
    pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
    reply.type = EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE;
    for (size_t i = 0; i < c->e->module_count; i++) {
        struct script_module *m = &c->e->modules[i];
        if (!script_module_wants(m, c->hook, NULL))
            continue;
        if (call_handler(L, c, m, nargs, 0) != 0)
            return;
        if (lua_isnil(L, -2)) {
            lua_pop(L, 2);
            continue;
        }
        bool stop = true;
        if (!lua_isboolean(L, -2) || chain_word(L, -1, &stop) != 0) {
            char what[160];
            snprintf(what, sizeof what,
                     "returned %s, %s; expected true, false or nil, optionally followed by "
                     "\"continue\"",
                     luaL_typename(L, -2), luaL_typename(L, -1));
            bad_return(c, m, what);
            return;
        }
        reply.type = stop ? EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
                          : EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE;
        reply.value_case = EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT;
        reply.bool_result = lua_toboolean(L, -2);
        c->out->verdict = reply.bool_result ? DISPATCH_ALLOW : DISPATCH_DENY;
        break;
    }
    pack_reply(c, &reply.base);
}

/* message.publish: each module sees the message as the previous ones left
 * it; nil keeps it, a table changes it, false drops it. The message lives in
 * `pm`; what a module returns is read into it once, raw, and checked there,
 * so the reply carries exactly what was checked. */
static void run_publish(lua_State *L, struct call_ctx *c, int nargs)
{
    struct publish_msg pm;
    publish_msg_init(L, &pm, request_message(c));
    bool stop = false, drop = false;
    for (size_t i = 0; i < c->e->module_count && !stop; i++) {
        struct script_module *m = &c->e->modules[i];
        if (!script_module_wants(m, c->hook, pm.topic))
            continue;
        /* A module edits a copy, so that its edits in place never reach a
         * later module. While nothing has changed and no later module would
         * see it, the request's table itself will do. */
        int base = lua_gettop(L), arg = ARGS_SLOT;
        if (pm.changed || (int)i < c->e->specs[c->hook].last_module) {
            publish_msg_push(L, ARGS_SLOT, &pm);
            arg = lua_gettop(L);
        }
        if (call_handler(L, c, m, nargs, arg == ARGS_SLOT ? 0 : arg) != 0)
            return;
        int r1 = lua_gettop(L) - 1;
        if (chain_word(L, r1 + 1, &stop) != 0) {
            bad_return(c, m, "second return value must be \"stop\", \"continue\" or nil");
            return;
        }
        if (lua_istable(L, r1)) {
            char why[160];
            int rc = publish_msg_read(L, r1, lua_rawequal(L, r1, arg), &pm, &c->out->arena, why,
                                      sizeof why);
            if (rc == -2) {
                fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory building the reply");
                return;
            }
            if (rc != 0) {
                bad_return(c, m, why);
                return;
            }
        } else if (lua_isboolean(L, r1) && !lua_toboolean(L, r1)) {
            drop = stop = true;
        } else if (!lua_isnil(L, r1) && !lua_isboolean(L, r1)) {
            char what[160];
            snprintf(what, sizeof what,
                     "returned a %s; expected a message table, false (drop) or nil",
                     luaL_typename(L, r1));
            bad_return(c, m, what);
            return;
        }
        lua_settop(L, base);
    }
    pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
    reply.type = EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE;
    pb_message msg;
    if (pm.changed || stop) {
        if (publish_msg_fill(&pm, drop, &c->out->arena, &msg) != 0) {
            fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory building the reply");
            return;
        }
        reply.type = stop ? EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
                          : EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE;
        reply.value_case = EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE;
        reply.message = &msg;
    }
    pack_reply(c, &reply.base);
}

static void pack_loaded(struct call_ctx *c)
{
    Emqx__Exhook__V3__HookSpec specs[HOOK_COUNT];
    Emqx__Exhook__V3__HookSpec *ptrs[HOOK_COUNT];
    size_t n = 0;
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        const struct script_hook_spec *s = &c->e->specs[hk];
        /* Each generation gets its own names: a name the broker does not
         * know makes it refuse the whole provider. */
        const char *name = hooks_name(hk, c->version);
        if (!s->registered || !name)
            continue;
        emqx__exhook__v3__hook_spec__init(&specs[n]);
        specs[n].name = (char *)name;
        specs[n].n_topics = s->topics.count;
        specs[n].topics = s->topics.items;
        ptrs[n] = &specs[n];
        n++;
    }
    Emqx__Exhook__V3__LoadedResponse reply = EMQX__EXHOOK__V3__LOADED_RESPONSE__INIT;
    reply.n_hooks = n;
    reply.hooks = ptrs;
    pack_reply(c, &reply.base);
}

/* Runs inside lua_pcall so that a memory error while building the argument
 * tables is caught like any other. */
static int run_call(lua_State *L)
{
    struct call_ctx *c = lua_touserdata(L, CTX_SLOT);
    script_push_msgh(L);
    int nargs = push_args(L, c);
    switch (hook_defs[c->hook].kind) {
    case HOOK_KIND_LOADED:
        run_notify(L, c, nargs);
        if (c->out->status == GRPC_STATUS_OK)
            pack_loaded(c);
        break;
    case HOOK_KIND_NOTIFY:
        run_notify(L, c, nargs);
        break;
    case HOOK_KIND_VERDICT:
        run_verdict(L, c, nargs);
        break;
    case HOOK_KIND_PUBLISH:
        run_publish(L, c, nargs);
        break;
    }
    return 0;
}

void dispatch_call(struct script_engine *e, enum hook_id hook, int version, const uint8_t *request,
                   size_t len, int64_t deadline_ns, struct dispatch_reply *out)
{
    const char *rpc = hooks_rpc(hook, version);
    struct call_ctx c = {.e = e,
                         .hook = hook,
                         .version = version,
                         .desc = hooks_request(hook, version),
                         .fields = fields_of(hook, version),
                         .deadline_ns = deadline_ns,
                         .out = out};
    out->status = GRPC_STATUS_OK;
    out->failed_module = NULL;
    out->verdict = DISPATCH_NO_OPINION;
    out->error[0] = '\0';
    out->len = 0;
    ProtobufCAllocator alloc = arena_protobuf_allocator(&out->arena);
    ProtobufCMessage *req = protobuf_c_message_unpack(c.desc, &alloc, len, request);
    if (!req) {
        fail(&c, GRPC_STATUS_INVALID_ARGUMENT, "%s: malformed %s (%zu bytes)", rpc,
             c.desc->short_name, len);
        log_warn("%s", out->error);
        arena_reset(&out->arena);
        return;
    }
    c.req = req;
    lua_State *L = e->L;
    lua_pushcfunction(L, run_call);
    lua_pushlightuserdata(L, &c);
    int st = lua_pcall(L, 1, 0, 0);
    e->current_module = NULL;
    e->current_hook = NULL;
    if (st != LUA_OK) {
        /* No module code runs outside a handler: what a handler returns is
         * read raw. What fails here is memory, or Lua refusing to go on
         * reading a table that a finalizer changed meanwhile: that module's
         * doing. */
        const char *module = c.module ? c.module->name : "?";
        const char *handler = hook_defs[hook].handler;
        const char *msg = lua_tostring(L, -1);
        if (st == LUA_ERRMEM)
            fail(&c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "%s: out of memory in the Lua state (memory_limit)", rpc);
        else
            fail(&c, GRPC_STATUS_UNKNOWN, "module '%s' %s: %.*s", module, handler,
                 msg ? (int)strcspn(msg, "\n") : 28, msg ? msg : "error object is not a string");
        log_error("%s", out->error);
    }
    lua_settop(L, 0);
    arena_reset(&out->arena);
}

void dispatch_reply_free(struct dispatch_reply *r)
{
    arena_free(&r->arena);
    free(r->data);
    r->data = NULL;
    r->cap = r->len = 0;
}
