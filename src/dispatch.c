#include "dispatch.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "log.h"
#include "pb2lua.h"

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
                f->args[i] = protobuf_c_message_descriptor_get_field_by_name(d, hook_defs[h].args[i]);
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
    c->module = m;
    int64_t start = script_now_ns();
    script_arm_deadline(e, c->deadline_ns);
    int st = lua_pcall(L, nargs, 2, MSGH_SLOT);
    char where[sizeof e->timeout_where];
    snprintf(where, sizeof where, "%s", e->timeout_where);
    bool timed_out = script_clear_timeout(e);
    if (st == LUA_OK) {
        /* What the handler returned is read next, and its metamethods are
         * the module's code too: they run under a limit of their own. */
        script_arm_deadline(e, c->deadline_ns);
        return 0;
    }
    e->current_module = NULL;
    const char *handler = hook_defs[c->hook].handler;
    if (timed_out) {
        long ms = (long)((script_now_ns() - start) / 1000000);
        log_error("module '%s' %s: stopped at %s after %ld ms (time limit)", m->name, handler,
                  where, ms);
        fail(c, GRPC_STATUS_DEADLINE_EXCEEDED, "module '%s' %s: stopped at %s after %ld ms",
             m->name, handler, where, ms);
    } else if (st == LUA_ERRMEM) {
        log_error("module '%s' %s: out of memory (memory_limit)", m->name, handler);
        fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "module '%s' %s: out of memory (memory_limit)",
             m->name, handler);
    } else {
        const char *msg = lua_tostring(L, -1);
        log_error("module '%s' %s failed: %s", m->name, handler, msg);
        fail(c, GRPC_STATUS_UNKNOWN, "module '%s' %s: %.*s", m->name, handler,
             (int)strcspn(msg, "\n"), msg);
    }
    lua_pop(L, 1);
    return -1;
}

static void bad_return(struct call_ctx *c, const struct script_module *m, const char *what)
{
    const char *handler = hook_defs[c->hook].handler;
    log_error("module '%s' %s: %s", m->name, handler, what);
    fail(c, GRPC_STATUS_UNKNOWN, "module '%s' %s: %s", m->name, handler, what);
}

/* "continue"/"stop" as second return value; -1 for anything else. */
static int chain_word(lua_State *L, int idx, bool *stop)
{
    if (lua_isnil(L, idx))
        return 0;
    const char *w = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : "";
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
        break;
    }
    pack_reply(c, &reply.base);
}

/* A copy of the table at `idx`, and of the tables in it (headers, props and
 * their User-Property), for one module, so that a handler returning nil
 * leaves the message as it was. The depth bound keeps a table a script put
 * into the message, even a cyclic one, from running away. */
static void copy_message(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 10);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_istable(L, -1) && depth < 3) {
            copy_message(L, -1, depth + 1);
            lua_replace(L, -2);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Takes topic, qos, payload and headers of the table a handler returned
 * (at `t`) into the current message (at `cur`), checking each. When `t` is
 * the message itself, every one of them must be there. */
static int merge_message(lua_State *L, int cur, int t, char *why, size_t whylen)
{
    bool whole = lua_rawequal(L, cur, t);
    static const char *const fields[] = {"topic", "qos", "payload", "headers"};
    for (int i = 0; whole && i < 4; i++) {
        if (lua_getfield(L, t, fields[i]) == LUA_TNIL) {
            snprintf(why, whylen, "message.%s is missing", fields[i]);
            return -1;
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "topic");
    if (!lua_isnil(L, -1)) {
        const char *topic = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!topic || !*topic || strpbrk(topic, "+#")) {
            snprintf(why, whylen, "message.topic must be a non-empty topic name without "
                                  "wildcards");
            return -1;
        }
        lua_setfield(L, cur, "topic");
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "qos");
    if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer q = lua_tointegerx(L, -1, &isint);
        if (!isint || q < 0 || q > 2) {
            snprintf(why, whylen, "message.qos must be 0, 1 or 2");
            return -1;
        }
        lua_pushinteger(L, q);
        lua_setfield(L, cur, "qos");
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "payload");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) {
            snprintf(why, whylen, "message.payload must be a string, got a %s",
                     luaL_typename(L, -1));
            return -1;
        }
        lua_setfield(L, cur, "payload");
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "headers");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) {
            snprintf(why, whylen, "message.headers must be a table of strings");
            return -1;
        }
        int h = lua_gettop(L);
        lua_createtable(L, 0, 4);
        lua_pushnil(L);
        while (lua_next(L, h)) {
            int kt = lua_type(L, -2), vt = lua_type(L, -1);
            if (kt != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
                snprintf(why, whylen, "message.headers must map strings to strings");
                return -1;
            }
            lua_pushvalue(L, -2);
            lua_pushstring(L, lua_tostring(L, -2));
            lua_rawset(L, -5);
            lua_pop(L, 1);
        }
        lua_setfield(L, cur, "headers");
    }
    lua_pop(L, 1);
    return 0;
}

/* The reply's headers: those of the Lua table at `h`, or of the request
 * when h is 0, and allow_publish = "false" when the message is dropped. The
 * entries live in a userdata owned by Lua, so they are freed by the
 * collector even if packing is interrupted by an error. */
static void set_headers(lua_State *L, pb_message *msg, const pb_message *orig, int h, bool drop)
{
    typedef Emqx__Exhook__V3__Message__HeadersEntry entry;
    size_t n = drop;
    if (h) {
        lua_pushnil(L);
        while (lua_next(L, h)) {
            n++;
            lua_pop(L, 1);
        }
    } else if (orig) {
        n += orig->n_headers;
    }
    entry *entries = lua_newuserdatauv(L, n * (sizeof *entries + sizeof(void *)) + 1, 0);
    entry **ptrs = (void *)(entries + n);
    size_t i = 0;
    if (h) {
        lua_pushnil(L);
        while (lua_next(L, h)) {
            const char *key = lua_tostring(L, -2);
            if (!drop || strcmp(key, "allow_publish") != 0) {
                emqx__exhook__v3__message__headers_entry__init(&entries[i]);
                entries[i].key = (char *)key;
                entries[i].value = (char *)lua_tostring(L, -1);
                i++;
            }
            lua_pop(L, 1);
        }
    } else if (orig) {
        for (size_t k = 0; k < orig->n_headers; k++) {
            if (!drop || strcmp(orig->headers[k]->key, "allow_publish") != 0)
                entries[i++] = *orig->headers[k];
        }
    }
    if (drop) {
        emqx__exhook__v3__message__headers_entry__init(&entries[i]);
        entries[i].key = "allow_publish";
        entries[i].value = "false";
        i++;
    }
    for (size_t k = 0; k < i; k++)
        ptrs[k] = &entries[k];
    msg->n_headers = i;
    msg->headers = ptrs;
}

/* Packs the reply of message.publish: the request's message, with topic,
 * qos, payload and headers from the table at `cur` when the scripts changed
 * it (cur 0: unchanged). The broker copies topic, qos and payload
 * unconditionally, so all of them are always sent. */
static void pack_publish(lua_State *L, struct call_ctx *c, int cur, int type, bool drop)
{
    const pb_message *orig = request_message(c);
    pb_message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    if (orig)
        msg = *orig;
    int h = 0;
    if (cur) {
        lua_getfield(L, cur, "topic");
        msg.topic = (char *)lua_tostring(L, -1);
        lua_getfield(L, cur, "qos");
        msg.qos = (uint32_t)lua_tointeger(L, -1);
        lua_getfield(L, cur, "payload");
        msg.payload.data = (uint8_t *)lua_tolstring(L, -1, &msg.payload.len);
        lua_getfield(L, cur, "headers");
        h = lua_gettop(L);
    }
    set_headers(L, &msg, orig, h, drop);

    pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
    reply.type = type;
    reply.value_case = EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE;
    reply.message = &msg;
    pack_reply(c, &reply.base);
}

/* message.publish: each module sees the message as the previous ones left
 * it; nil keeps it, a table changes it, false drops it. */
static void run_publish(lua_State *L, struct call_ctx *c, int nargs)
{
    int cur = ARGS_SLOT; /* the message table: the first argument */
    bool changed = false, stop = false, drop = false;
    for (size_t i = 0; i < c->e->module_count && !stop; i++) {
        struct script_module *m = &c->e->modules[i];
        if (m->handlers[c->hook] == LUA_NOREF)
            continue;
        if (m->filters[c->hook].count) {
            lua_getfield(L, cur, "topic");
            bool wants = script_module_wants(m, c->hook, lua_tostring(L, -1));
            lua_pop(L, 1);
            if (!wants)
                continue;
        }
        /* A module edits a copy, so that returning nil leaves the message
         * as it was. While nothing has changed and no later module would
         * see it, the table itself will do: a nil or false answer is then
         * built from the request, not from the table. */
        int base = lua_gettop(L), arg = 0;
        if (changed || (int)i < c->e->specs[c->hook].last_module) {
            copy_message(L, cur, 0);
            arg = lua_gettop(L);
        }
        if (call_handler(L, c, m, nargs, arg) != 0)
            return;
        int r1 = lua_gettop(L) - 1;
        if (chain_word(L, r1 + 1, &stop) != 0) {
            bad_return(c, m, "second return value must be \"stop\", \"continue\" or nil");
            return;
        }
        if (lua_istable(L, r1)) {
            if (!arg && !lua_rawequal(L, r1, cur)) {
                /* It had the message itself but returned another table:
                 * start again from the request, so that edits it made in
                 * place, and did not return, do not count. */
                pb_field_to_lua(L, c->fields->args[0], c->req);
                add_publish_props(L, c);
                lua_replace(L, cur);
            }
            char why[160];
            if (merge_message(L, cur, r1, why, sizeof why) != 0) {
                bad_return(c, m, why);
                return;
            }
            changed = true;
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
    if (!changed && !stop) {
        pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
        reply.type = EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE;
        pack_reply(c, &reply.base);
        return;
    }
    pack_publish(L, c, changed ? cur : 0,
                 stop ? EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
                      : EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE,
                 drop);
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

void dispatch_call(struct script_engine *e, enum hook_id hook, int version,
                   const uint8_t *request, size_t len, int64_t deadline_ns,
                   struct dispatch_reply *out)
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
    char where[sizeof e->timeout_where];
    snprintf(where, sizeof where, "%s", e->timeout_where);
    bool timed_out = script_clear_timeout(e);
    if (st != LUA_OK) {
        /* Outside a handler, Lua code runs only as metamethods of what a
         * handler returned: that module's doing. */
        const char *module = c.module ? c.module->name : "?";
        const char *handler = hook_defs[hook].handler;
        const char *msg = lua_tostring(L, -1);
        if (timed_out)
            fail(&c, GRPC_STATUS_DEADLINE_EXCEEDED,
                 "module '%s' %s: stopped at %s in what it returned", module, handler, where);
        else if (st == LUA_ERRMEM)
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
