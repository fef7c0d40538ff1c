#include "dispatch.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "log.h"
#include "net.h"
#include "pb2lua.h"
#include "publish.h"
#include "task.h"

typedef Emqx__Exhook__V3__Message pb_message;
typedef Emqx__Exhook__V3__ValuedResponse pb_valued;

/* Stack slots of the call's coroutine body, run_call. */
#define CTX_SLOT 1
#define MSGH_SLOT 2
#define ARGS_SLOT 3

/* The chain's steps: go on with the next module, stop it (a verdict, or
 * "stop"), or end the call with a failure. */
enum step { STEP_NEXT, STEP_STOP, STEP_FAILED };

static void finish(struct dispatch *d);

int dispatch_reply_pack(struct dispatch_reply *out, const ProtobufCMessage *msg)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > out->cap) {
        size_t cap = need < 256 ? 256 : need * 2;
        uint8_t *data = realloc(out->data, cap);
        if (!data) {
            failure_set(&out->fail, FAIL_MEMORY, NULL, "out of memory packing the reply");
            out->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            return -1;
        }
        out->data = data;
        out->cap = cap;
    }
    out->len = protobuf_c_message_pack(msg, out->data);
    out->status = GRPC_STATUS_OK;
    return 0;
}

static int pack_reply(struct dispatch *c, const ProtobufCMessage *msg)
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
static const pb_message *request_message(const struct dispatch *c)
{
    const ProtobufCFieldDescriptor *f = c->fields->message;
    return f ? *(pb_message *const *)((const char *)c->req + f->offset) : NULL;
}

/* v3 brokers send MQTT User-Property entries apart from the other
 * properties; scripts find them under props["User-Property"] either way. */
static void add_user_props(lua_State *L, const struct dispatch *c)
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
static void add_publish_props(lua_State *L, const struct dispatch *c)
{
    pb_field_to_lua(L, c->fields->props, c->req);
    add_user_props(L, c);
    lua_setfield(L, -2, "props");
}

static int push_args(lua_State *L, const struct dispatch *c)
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

static enum step bad_return(struct dispatch *d, const struct script_module *m, const char *what)
{
    struct failure *f = &d->out->fail;
    failure_set(f, FAIL_BAD_RETURN, m->name, "module '%s' %s: %s", m->name,
                hook_defs[d->hook].handler, what);
    failure_log(f, hook_defs[d->hook].name);
    return STEP_FAILED;
}

static enum step out_of_memory(struct dispatch *d)
{
    failure_set(&d->out->fail, FAIL_MEMORY, d->module ? d->module->name : NULL,
                "out of memory building the reply");
    failure_log(&d->out->fail, hook_defs[d->hook].name);
    return STEP_FAILED;
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

/* authenticate / authorize: the first module with an opinion decides. */
static enum step verdict_step(lua_State *L, struct dispatch *d, const struct script_module *m)
{
    if (lua_isnil(L, -2))
        return STEP_NEXT;
    bool stop = true;
    if (!lua_isboolean(L, -2) || chain_word(L, -1, &stop) != 0) {
        char what[160];
        snprintf(what, sizeof what,
                 "returned %s, %s; expected true, false or nil, optionally followed by "
                 "\"continue\"",
                 luaL_typename(L, -2), luaL_typename(L, -1));
        return bad_return(d, m, what);
    }
    d->stop = stop;
    d->out->verdict = lua_toboolean(L, -2) ? DISPATCH_ALLOW : DISPATCH_DENY;
    return STEP_STOP;
}

/* message.publish: each module sees the message as the previous ones left
 * it; nil keeps it, a table changes it, false drops it. The message lives in
 * `pm`; what a module returns is read into it once, raw, and checked there,
 * so the reply carries exactly what was checked. */
static enum step publish_step(lua_State *L, struct dispatch *d, const struct script_module *m)
{
    int r1 = lua_gettop(L) - 1;
    if (chain_word(L, r1 + 1, &d->stop) != 0)
        return bad_return(d, m, "second return value must be \"stop\", \"continue\" or nil");
    if (lua_istable(L, r1)) {
        char why[160];
        int rc = publish_msg_read(L, r1, lua_rawequal(L, r1, d->arg ? d->arg : ARGS_SLOT), &d->pm,
                                  &d->out->arena, why, sizeof why);
        if (rc == -2)
            return out_of_memory(d);
        if (rc != 0)
            return bad_return(d, m, why);
    } else if (lua_isboolean(L, r1) && !lua_toboolean(L, r1)) {
        d->drop = d->stop = true;
    } else if (!lua_isnil(L, r1) && !lua_isboolean(L, r1)) {
        char what[160];
        snprintf(what, sizeof what, "returned a %s; expected a message table, false (drop) or nil",
                 luaL_typename(L, r1));
        return bad_return(d, m, what);
    }
    return d->stop ? STEP_STOP : STEP_NEXT;
}

/* What the handler of the current module returned (status `st`, its two
 * results or its error object on the stack) means for the chain. */
static enum step handler_done(lua_State *L, struct dispatch *d, int st)
{
    const struct script_module *m = d->module;
    enum step next;
    if (st != LUA_OK) {
        task_failure(&d->task, L, st, &d->out->fail);
        failure_log(&d->out->fail, hook_defs[d->hook].name);
        next = STEP_FAILED;
    } else {
        script_clear_timeout(d->e, L);
        switch (hook_defs[d->hook].kind) {
        case HOOK_KIND_VERDICT:
            next = verdict_step(L, d, m);
            break;
        case HOOK_KIND_PUBLISH:
            next = publish_step(L, d, m);
            break;
        default:
            next = STEP_NEXT;
            break;
        }
    }
    lua_settop(L, d->base);
    d->e->current_module = d->task.module = NULL;
    d->e->current_hook = d->task.hook = NULL;
    return next;
}

/* Sets the time limit of module `m`'s handler: call_timeout from now,
 * waiting included, cut short by the broker's deadline. */
static void handler_start(struct dispatch *d, const struct script_module *m)
{
    struct script_engine *e = d->e;
    d->module = m;
    d->task.started_ns = script_now_ns();
    script_arm_deadline(e, d->deadline_ns);
    d->task.deadline_ns = e->deadline_ns;
    e->current_module = d->task.module = m->name;
    e->current_hook = d->task.hook = hook_defs[d->hook].name;
    d->task.handler = hook_defs[d->hook].handler;
}

static int chain_next(lua_State *L, struct dispatch *d);

/* Lua resumes here after a handler waited (status LUA_YIELD), or failed
 * after waiting. */
static int chain_cont(lua_State *L, int status, lua_KContext k)
{
    struct dispatch *d = (struct dispatch *)k;
    enum step next = handler_done(L, d, status == LUA_YIELD ? LUA_OK : status);
    if (next == STEP_NEXT) {
        d->next_module++;
        return chain_next(L, d);
    }
    if (next == STEP_STOP)
        finish(d);
    return 0;
}

/* Runs the handlers from module `next_module` on, each in a yieldable
 * protected call, so that a handler that waits suspends the chain and the
 * chain goes on from chain_cont when it resumes. */
static int chain_next(lua_State *L, struct dispatch *d)
{
    struct script_engine *e = d->e;
    for (; d->next_module < e->module_count; d->next_module++) {
        struct script_module *m = &e->modules[d->next_module];
        const char *topic = hook_defs[d->hook].kind == HOOK_KIND_PUBLISH ? d->pm.topic
                            : hooks_is_message(d->hook) && request_message(d)
                                ? request_message(d)->topic
                                : "";
        if (!script_module_wants(m, d->hook, topic))
            continue;
        d->arg = 0;
        /* A publish handler edits a copy, so that its edits in place never
         * reach a later module. While nothing has changed and no later
         * module would see it, the request's table itself will do. */
        if (hook_defs[d->hook].kind == HOOK_KIND_PUBLISH &&
            (d->pm.changed || (int)d->next_module < e->specs[d->hook].last_module)) {
            publish_msg_push(L, ARGS_SLOT, &d->pm);
            d->arg = lua_gettop(L);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, m->handlers[d->hook]);
        for (int i = 0; i < d->nargs; i++)
            lua_pushvalue(L, i == 0 && d->arg ? d->arg : ARGS_SLOT + i);
        handler_start(d, m);
        int st = lua_pcallk(L, d->nargs, 2, MSGH_SLOT, (lua_KContext)d, chain_cont);
        enum step next = handler_done(L, d, st);
        if (next == STEP_FAILED)
            return 0;
        if (next == STEP_STOP)
            break;
    }
    finish(d);
    return 0;
}

/* The hooks of the scripts and of the [webhook] rules (specs hold both). */
static void pack_loaded(struct dispatch *d)
{
    Emqx__Exhook__V3__HookSpec specs[HOOK_COUNT];
    Emqx__Exhook__V3__HookSpec *ptrs[HOOK_COUNT];
    size_t n = 0;
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        const struct script_hook_spec *s = &d->e->specs[hk];
        /* Each generation gets its own names: a name the broker does not
         * know makes it refuse the whole provider. */
        const char *name = hooks_name(hk, d->version);
        if (!(s->registered || s->webhook) || !name)
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
    pack_reply(d, &reply.base);
}

static void pack_publish(struct dispatch *d)
{
    pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
    reply.type = EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE;
    pb_message msg;
    if (d->pm.changed || d->stop) {
        if (publish_msg_fill(&d->pm, d->drop, &d->out->arena, &msg) != 0) {
            out_of_memory(d);
            return;
        }
        reply.type = d->stop ? EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
                             : EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE;
        reply.value_case = EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE;
        reply.message = &msg;
    }
    pack_reply(d, &reply.base);
}

/* What a hook call without any handler gets: EmptySuccess, or a
 * ValuedResponse that lets the broker go on as it would without exhookd. */
static void pack_no_opinion(struct dispatch_reply *out, enum hook_id hook)
{
    if (hook_defs[hook].kind == HOOK_KIND_NOTIFY) {
        Emqx__Exhook__V3__EmptySuccess empty = EMQX__EXHOOK__V3__EMPTY_SUCCESS__INIT;
        dispatch_reply_pack(out, &empty.base);
        return;
    }
    pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
    reply.type = EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE;
    dispatch_reply_pack(out, &reply.base);
}

/* The chain went through: the reply. */
static void finish(struct dispatch *d)
{
    switch (hook_defs[d->hook].kind) {
    case HOOK_KIND_LOADED:
        pack_loaded(d);
        break;
    case HOOK_KIND_NOTIFY:
        pack_no_opinion(d->out, d->hook);
        break;
    case HOOK_KIND_VERDICT: {
        if (d->out->verdict == DISPATCH_NO_OPINION) {
            pack_no_opinion(d->out, d->hook);
            break;
        }
        pb_valued reply = EMQX__EXHOOK__V3__VALUED_RESPONSE__INIT;
        reply.type = d->stop ? EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
                             : EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE;
        reply.value_case = EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT;
        reply.bool_result = d->out->verdict == DISPATCH_ALLOW;
        pack_reply(d, &reply.base);
        break;
    }
    case HOOK_KIND_PUBLISH:
        pack_publish(d);
        break;
    }
}

/* The coroutine's body: the arguments, then the chain. Runs inside the
 * coroutine, so that a memory error while building the argument tables
 * ends the call like any other error. */
static int run_call(lua_State *L)
{
    struct dispatch *d = lua_touserdata(L, CTX_SLOT);
    script_push_msgh(L);
    d->nargs = push_args(L, d);
    if (hook_defs[d->hook].kind == HOOK_KIND_PUBLISH)
        publish_msg_init(L, &d->pm, request_message(d));
    d->base = lua_gettop(L);
    return chain_next(L, d);
}

/* The task ended (`st` from its resume): a failure outside any handler, if
 * any, and the coroutine back to the engine. */
static enum dispatch_state ended(struct dispatch *d, int st)
{
    lua_State *L = d->task.co;
    if (st == LUA_YIELD)
        return DISPATCH_WAITING;
    if (st != LUA_OK) {
        /* What fails outside a handler is memory, Lua refusing to go on
         * reading a table that a finalizer changed meanwhile, or a
         * coroutine.yield of the handler's own: that module's doing. */
        const char *module = d->module ? d->module->name : "?";
        const char *msg = lua_tostring(L, -1);
        if (st == LUA_ERRMEM)
            failure_set(&d->out->fail, FAIL_MEMORY, d->module ? module : NULL,
                        "%s: out of memory in the Lua state (memory_limit)",
                        hooks_rpc(d->hook, d->version));
        else
            failure_set(&d->out->fail, FAIL_RUNTIME, d->module ? module : NULL,
                        "module '%s' %s: %.*s", module, hook_defs[d->hook].handler,
                        msg ? (int)strcspn(msg, "\n") : 28,
                        msg ? msg : "error object is not a string");
        failure_log(&d->out->fail, hook_defs[d->hook].name);
        script_clear_timeout(d->e, L);
    }
    d->out->status = failure_defs[d->out->fail.kind].status;
    if (d->out->status != GRPC_STATUS_OK)
        d->out->len = 0;
    task_close(&d->task, st == LUA_OK);
    arena_reset(&d->out->arena);
    return DISPATCH_DONE;
}

static void reply_reset(struct dispatch_reply *out);

void dispatch_no_handler(struct dispatch_reply *out, enum hook_id hook)
{
    reply_reset(out);
    pack_no_opinion(out, hook);
}

void dispatch_refuse(struct dispatch_reply *out, enum failure_kind kind, const char *fmt, ...)
{
    reply_reset(out);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->fail.message, sizeof out->fail.message, fmt, ap);
    va_end(ap);
    out->fail.kind = kind;
    out->status = failure_defs[kind].status;
    log_warn("%s", out->fail.message);
}

static void reply_reset(struct dispatch_reply *out)
{
    out->status = GRPC_STATUS_OK;
    out->fail.kind = FAIL_NONE;
    out->fail.module = NULL;
    out->fail.message[0] = '\0';
    out->fail.traceback = NULL;
    out->verdict = DISPATCH_NO_OPINION;
    out->len = 0;
}

enum dispatch_state dispatch_start(struct dispatch *d, struct script_engine *e, enum hook_id hook,
                                   int version, const uint8_t *request, size_t len,
                                   int64_t deadline_ns, struct dispatch_reply *out,
                                   void (*ready)(struct task *))
{
    memset(d, 0, sizeof *d);
    d->e = e;
    d->hook = hook;
    d->version = version;
    d->fields = fields_of(hook, version);
    d->deadline_ns = deadline_ns;
    d->out = out;
    reply_reset(out);
    const ProtobufCMessageDescriptor *desc = hooks_request(hook, version);
    ProtobufCAllocator alloc = arena_protobuf_allocator(&out->arena);
    d->req = protobuf_c_message_unpack(desc, &alloc, len, request);
    if (!d->req) {
        failure_set(&out->fail, FAIL_MALFORMED, NULL, "%s: malformed %s (%zu bytes)",
                    hooks_rpc(hook, version), desc->short_name, len);
        log_warn("%s", out->fail.message);
        out->status = GRPC_STATUS_INVALID_ARGUMENT;
        arena_reset(&out->arena);
        return DISPATCH_DONE;
    }
    if (task_open(&d->task, e, ready) != 0) {
        failure_set(&out->fail, FAIL_MEMORY, NULL, "%s: out of memory in the Lua state",
                    hooks_rpc(hook, version));
        out->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
        arena_reset(&out->arena);
        return DISPATCH_DONE;
    }
    lua_State *L = d->task.co;
    lua_pushcfunction(L, run_call);
    lua_pushlightuserdata(L, d);
    int nres;
    return ended(d, task_resume(&d->task, 1, &nres));
}

enum dispatch_state dispatch_resume(struct dispatch *d)
{
    struct task *t = &d->task;
    if (t->waiting && !t->wait.push) {
        /* Still waiting: the time ran out. */
        task_abandon(t, FAIL_WAIT_TIMEOUT, &d->out->fail);
        failure_log(&d->out->fail, hook_defs[d->hook].name);
        return ended(d, LUA_OK);
    }
    int nres;
    return ended(d, task_resume(t, 0, &nres));
}

bool dispatch_cancel(struct dispatch *d)
{
    struct task *t = &d->task;
    if (!t->e || !t->waiting || t->wait.push)
        return false;
    task_abandon(t, FAIL_CANCELLED, &d->out->fail);
    failure_log(&d->out->fail, hook_defs[d->hook].name);
    ended(d, LUA_OK);
    return true;
}

/* The synchronous form, for tests and the fuzzer: waits run on the engine's
 * own loop until the call is done. */
static void resume_now(struct task *t)
{
    (void)t; /* resumed by dispatch_call's loop below */
}

void dispatch_call(struct script_engine *e, enum hook_id hook, int version, const uint8_t *request,
                   size_t len, int64_t deadline_ns, struct dispatch_reply *out)
{
    struct dispatch d;
    if (dispatch_start(&d, e, hook, version, request, len, deadline_ns, out, resume_now) ==
        DISPATCH_DONE)
        return;
    for (;;) {
        loop_run_once(e->net->loop, -1);
        struct task *t;
        while ((t = task_queue_pop(e->ready))) {
            if (t == &d.task && dispatch_resume(&d) == DISPATCH_DONE)
                return;
        }
    }
}

void dispatch_reply_free(struct dispatch_reply *r)
{
    arena_free(&r->arena);
    free(r->data);
    r->data = NULL;
    r->cap = r->len = 0;
}
