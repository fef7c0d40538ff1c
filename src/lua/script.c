#include "script.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "log.h"
#include "lua_api.h"
#include "lua_cjson.h"
#include "lua_timer.h"
#include "sandbox.h"
#include "task.h"
#include "topic.h"
#include "webhook_body.h"

/* Instructions between two looks at the clock: a few microseconds of work,
 * so an overrun is noticed promptly and the clock costs next to nothing. */
#define HOOK_COUNT_INSTRUCTIONS 1000

int64_t script_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct script_engine *engine_of(lua_State *L)
{
    return *(struct script_engine **)lua_getextraspace(L);
}

/* Counts every byte the state holds and refuses to grow past the limit;
 * Lua then collects garbage and, failing that, raises a memory error that
 * leaves the state usable. Frees and shrinks always succeed. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct script_engine *e = ud;
    size_t old = ptr ? osize : 0; /* with ptr NULL, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        e->mem_used -= old;
        return NULL;
    }
    if (nsize > old && e->mem_limit && e->mem_used - old + nsize > e->mem_limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        e->mem_used = e->mem_used - old + nsize;
    return p;
}

/* Stops code that runs past its deadline. After the first expiry the hook
 * fires on every instruction, so a pcall in the script that catches the
 * error cannot go on running: the next instruction raises it again. */
static void time_hook(lua_State *L, lua_Debug *ar)
{
    struct script_engine *e = engine_of(L);
    if (!e->timed_out) {
        if (script_now_ns() < e->deadline_ns)
            return;
        e->timed_out = true;
        /* Both the thread that ran over (maybe a coroutine) and the main
         * one: a coroutine's caller must not run on either. */
        lua_sethook(L, time_hook, LUA_MASKCOUNT, 1);
        lua_sethook(e->L, time_hook, LUA_MASKCOUNT, 1);
        if (e->running)
            lua_sethook(e->running->co, time_hook, LUA_MASKCOUNT, 1);
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            snprintf(e->timeout_where, sizeof e->timeout_where, "%s:%d", ar->short_src,
                     ar->currentline);
        else
            snprintf(e->timeout_where, sizeof e->timeout_where, "%s", ar->short_src);
    }
    lua_pushfstring(L, "%s: timed out", e->timeout_where);
    lua_error(L);
}

void script_arm_deadline(struct script_engine *e, int64_t limit_ns)
{
    if (!e->call_timeout_ms) {
        e->deadline_ns = INT64_MAX;
        return;
    }
    int64_t d = script_now_ns() + (int64_t)e->call_timeout_ms * 1000000;
    e->deadline_ns = limit_ns < d ? limit_ns : d;
}

bool script_clear_timeout(struct script_engine *e, lua_State *L)
{
    bool was = e->timed_out;
    if (was) {
        e->timed_out = false;
        e->timeout_where[0] = '\0';
        lua_sethook(e->L, time_hook, LUA_MASKCOUNT, HOOK_COUNT_INSTRUCTIONS);
        lua_sethook(L, time_hook, LUA_MASKCOUNT, HOOK_COUNT_INSTRUCTIONS);
        if (e->running)
            lua_sethook(e->running->co, time_hook, LUA_MASKCOUNT, HOOK_COUNT_INSTRUCTIONS);
    }
    e->deadline_ns = INT64_MAX;
    return was;
}

static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

void script_push_msgh(lua_State *L) { lua_pushcfunction(L, msgh); }

/* luaL_traceback appends its text last: the last marker is its own, even
 * when the error text mentions one. */
size_t script_error_length(const char *msg)
{
    static const char marker[] = "\nstack traceback:";
    const char *last = NULL;
    for (const char *p = msg; (p = strstr(p, marker)) != NULL; p++)
        last = p;
    return last ? (size_t)(last - msg) : strlen(msg);
}

/* Lua error text up to the traceback: the "file:line: what" part. `msg` is
 * NULL when the error object was not a string (error(nil), error({})). */
static void first_line(char *err, size_t errlen, const char *prefix, const char *msg)
{
    if (!msg)
        msg = "error object is not a string";
    size_t n = strcspn(msg, "\n");
    snprintf(err, errlen, "%s%.*s", prefix, (int)n, msg);
}

static int filters_add(struct cfg_filters *f, const char *filter)
{
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->items[i], filter) == 0)
            return 0;
    }
    char **items = realloc(f->items, (f->count + 1) * sizeof *items);
    if (!items)
        return -1;
    f->items = items;
    if (!(f->items[f->count] = strdup(filter)))
        return -1;
    f->count++;
    return 0;
}

static int filters_copy(struct cfg_filters *dst, const struct cfg_filters *src)
{
    for (size_t i = 0; i < src->count; i++) {
        if (filters_add(dst, src->items[i]) != 0)
            return -1;
    }
    return 0;
}

bool script_module_wants(const struct script_module *m, enum hook_id hook, const char *topic)
{
    if (m->handlers[hook] == LUA_NOREF)
        return false;
    const struct cfg_filters *f = &m->filters[hook];
    if (!hooks_is_message(hook) || f->count == 0)
        return true;
    /* The filters were checked at load time; the topic is checked here. */
    if (!topic || !*topic || strpbrk(topic, "+#"))
        return false;
    for (size_t i = 0; i < f->count; i++) {
        if (topic_match_checked(f->items[i], topic))
            return true;
    }
    return false;
}

/* Pushes member `name` of the module's handler table (its returned table or
 * its environment), read raw: no metamethod of the table runs, so what is
 * checked is what is kept, and an environment never falls through to _G, so
 * a global of another library is never taken for a handler. */
static void get_member(lua_State *L, int tbl, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, tbl);
}

/* The string at `idx` if it is one without NUL bytes (which C would cut
 * short), else NULL. */
static const char *plain_string(lua_State *L, int idx)
{
    size_t len;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    return s && strlen(s) == len ? s : NULL;
}

/* Reads the module's `topics` field (table at `tbl`): hook name -> filter or
 * list of filters. Validates hook names and filters. */
static int load_topics(lua_State *L, int tbl, struct script_module *m, char *err, size_t errlen)
{
    get_member(L, tbl, "topics");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        errbuf_set(err, errlen, "%s: 'topics' must be a table of hook name = filters, got a %s",
                m->file, luaL_typename(L, -1));
        return -1;
    }
    int topics = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, topics)) {
        const char *hook = plain_string(L, -2);
        int id = hook ? hooks_find_by_name(hook) : -1;
        if (id < 0 || !hooks_is_message(id)) {
            errbuf_set(err, errlen,
                    "%s: topics: '%s' is not a message hook (use message.publish, "
                    "message.delivered, message.acked or message.dropped)",
                    m->file, hook ? hook : luaL_typename(L, -2));
            return -1;
        }
        int list = lua_gettop(L);
        lua_Integer n = lua_type(L, list) == LUA_TSTRING ? 1
                        : lua_istable(L, list)         ? (lua_Integer)lua_rawlen(L, list)
                                                       : -1;
        if (n <= 0) {
            errbuf_set(err, errlen, "%s: topics[\"%s\"] must be a filter or a non-empty list of filters",
                    m->file, hook);
            return -1;
        }
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_istable(L, list))
                lua_rawgeti(L, list, i);
            else
                lua_pushvalue(L, list);
            const char *filter = plain_string(L, -1);
            const char *why = "not a string without NUL bytes";
            if (!filter || topic_filter_valid(filter, &why) != 0) {
                errbuf_set(err, errlen, "%s: topics[\"%s\"]: invalid filter '%s': %s", m->file,
                        hook, filter ? filter : "?", why);
                return -1;
            }
            if (filters_add(&m->filters[id], filter) != 0) {
                errbuf_set(err, errlen, "out of memory");
                return -1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* Looks up `name` in the handler table and keeps it as a registry ref.
 * Returns 1 if found, 0 if absent, -1 if present but not a function. */
static int take_function(lua_State *L, int tbl, const char *name, int *ref)
{
    get_member(L, tbl, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_isfunction(L, -1))
        return -1;
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* A module that defines `on_client_authenticat` would silently never run:
 * warn about every on_* name that is not a handler. */
static void warn_unknown_handlers(lua_State *L, int tbl, const struct script_module *m,
                                  int worker_id)
{
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        const char *key = lua_tostring(L, -1);
        if (strncmp(key, "on_", 3) != 0)
            continue;
        bool known = false;
        for (int h = 0; h < HOOK_COUNT && !known; h++)
            known = strcmp(key, hook_defs[h].handler) == 0 ||
                    (hook_defs[h].alias && strcmp(key, hook_defs[h].alias) == 0);
        if (!known && worker_id <= 1)
            log_warn("%s: '%s' is not a hook handler and will never be called", m->file, key);
    }
}

/* Runs the function below `nargs` arguments on the stack for module `m`
 * (its body, init or deinit) under the time limit, like lua_pcall. */
static int run_user_code(struct script_engine *e, struct script_module *m, int nargs,
                         int nresults, int msgh_index)
{
    e->current_module = m->name;
    script_arm_deadline(e, INT64_MAX);
    int st = lua_pcall(e->L, nargs, nresults, msgh_index);
    e->current_module = NULL;
    return st;
}

/* Describes a failed run_user_code in `err` and clears its timeout state;
 * the error object is left on the stack. */
static void user_code_error(struct script_engine *e, const struct script_module *m, int st,
                            char *err, size_t errlen, const char *prefix)
{
    char where[sizeof e->timeout_where];
    snprintf(where, sizeof where, "%s", e->timeout_where);
    if (script_clear_timeout(e, e->L))
        errbuf_set(err, errlen, "%s%s: timed out after %u ms (call_timeout)", prefix, where,
                e->call_timeout_ms);
    else if (st == LUA_ERRMEM)
        errbuf_set(err, errlen, "%s%s: out of memory (memory_limit)", prefix,
                m->file ? m->file : m->name);
    else if (!lua_isstring(e->L, -1))
        errbuf_set(err, errlen, "%s%s: error object is not a string", prefix,
                   m->file ? m->file : m->name);
    else
        first_line(err, errlen, prefix, lua_tostring(e->L, -1));
}

static int load_module(struct script_engine *e, const struct config *cfg,
                       struct script_module *m, char *err, size_t errlen)
{
    lua_State *L = e->L;
    int base = lua_gettop(L);
    int rc = -1;

    /* Init modules are looked up in the scripts folder only, never on the
     * system Lua path, so `init_module = json` cannot pick up a library. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, m->name);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", cfg->lua_path, cfg->lua_path);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        /* Lua lists the files tried one per line: keep them on one. */
        luaL_gsub(L, lua_tostring(L, -1), "\n\t", ", ");
        errbuf_set(err, errlen, "init module '%s' not found in '%s/': %s", m->name,
                   cfg->lua_path, lua_tostring(L, -1));
        goto out;
    }
    m->file = strdup(lua_tostring(L, -2));
    if (!m->file) {
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }

    script_push_msgh(L);
    int h = lua_gettop(L);
    /* Text only: precompiled bytecode can crash the VM. */
    if (luaL_loadfilex(L, m->file, "t") != LUA_OK) {
        first_line(err, errlen, "", lua_tostring(L, -1));
        goto out;
    }
    int chunk = lua_gettop(L);
    /* The module's own environment, falling back to the shared globals. */
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_createtable(L, 0, 1);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, env);
    lua_pushvalue(L, env);
    lua_setupvalue(L, chunk, 1); /* a main chunk's only upvalue is _ENV */
    lua_pushvalue(L, chunk);
    lua_pushstring(L, m->name);
    int st = run_user_code(e, m, 1, 1, h);
    if (st != LUA_OK) {
        user_code_error(e, m, st, err, errlen, "");
        goto out;
    }
    int tbl = lua_istable(L, -1) ? lua_gettop(L) : env;

    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        const struct hook_def *d = &hook_defs[hk];
        const char *which = d->handler;
        int found = take_function(L, tbl, which, &m->handlers[hk]);
        if (found == 0 && d->alias) {
            which = d->alias;
            found = take_function(L, tbl, which, &m->handlers[hk]);
        }
        if (found < 0) {
            errbuf_set(err, errlen, "%s: '%s' is a %s, expected a function", m->file, which,
                    luaL_typename(L, -1));
            goto out;
        }
    }
    /* Read once: the deinit() checked here is the one called at close,
     * whatever init() does to the table. */
    get_member(L, tbl, "deinit");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) {
        errbuf_set(err, errlen, "%s: 'deinit' is a %s, expected a function", m->file,
                luaL_typename(L, -1));
        goto out;
    }
    int deinit = lua_gettop(L);
    if (load_topics(L, tbl, m, err, errlen) != 0)
        goto out;
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        if (hooks_is_message(hk) && m->filters[hk].count == 0 &&
            filters_copy(&m->filters[hk], &cfg->topics[hk]) != 0) {
            errbuf_set(err, errlen, "out of memory");
            goto out;
        }
    }
    warn_unknown_handlers(L, tbl, m, e->worker_id);

    /* init() runs once the module is fully known. */
    get_member(L, tbl, "init");
    if (!lua_isnil(L, -1)) {
        if (!lua_isfunction(L, -1)) {
            errbuf_set(err, errlen, "%s: 'init' is a %s, expected a function", m->file,
                    luaL_typename(L, -1));
            goto out;
        }
        st = run_user_code(e, m, 0, 0, h);
        if (st != LUA_OK) {
            user_code_error(e, m, st, err, errlen, "init() failed: ");
            goto out;
        }
    } else {
        lua_pop(L, 1);
    }
    /* Only a module whose init() succeeded gets its deinit() called. */
    if (!lua_isnil(L, deinit)) {
        lua_pushvalue(L, deinit);
        m->deinit_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    rc = 0;
out:
    lua_settop(L, base);
    return rc;
}

struct load_ctx {
    struct script_engine *e;
    const struct config *cfg;
    struct script_module *m;
    char *err;
    size_t errlen;
    int rc;
};

static int load_module_cb(lua_State *L)
{
    struct load_ctx *c = lua_touserdata(L, 1);
    c->rc = load_module(c->e, c->cfg, c->m, c->err, c->errlen);
    return 0;
}

/* Loading allocates and runs the module's body and init(): any error raised
 * on the way becomes a load error instead of a panic. */
static int load_module_protected(struct script_engine *e, const struct config *cfg,
                                 struct script_module *m, char *err, size_t errlen)
{
    struct load_ctx c = {e, cfg, m, err, errlen, -1};
    lua_State *L = e->L;
    lua_pushcfunction(L, load_module_cb);
    lua_pushlightuserdata(L, &c);
    script_arm_deadline(e, INT64_MAX);
    int st = lua_pcall(L, 1, 0, 0);
    e->current_module = NULL;
    if (st != LUA_OK) {
        user_code_error(e, m, st, err, errlen, "");
        lua_pop(L, 1);
        return -1;
    }
    script_clear_timeout(e, e->L);
    return c.rc;
}

/* The [webhook] rules' side of hook `hk`: whether they forward it, and
 * their topic filters added to the spec's (or every topic). */
static int webhook_spec(struct script_hook_spec *s, const struct cfg_webhook *wc, int hk,
                        bool *every_topic)
{
    struct cfg_filters topics = {0};
    bool every = false;
    s->webhook = wc->url && webhook_wants(wc, (enum hook_id)hk, &every, &topics);
    int rc = 0;
    if (s->webhook && hooks_is_message(hk)) {
        *every_topic |= every;
        rc = filters_copy(&s->topics, &topics);
    }
    cfg_filters_free(&topics);
    return rc;
}

static int compute_specs(struct script_engine *e, const struct config *cfg)
{
    for (int hk = 0; hk < HOOK_COUNT; hk++) {
        struct script_hook_spec *s = &e->specs[hk];
        bool every_topic = false;
        s->last_module = -1;
        if (webhook_spec(s, &cfg->webhook, hk, &every_topic) != 0)
            return -1;
        for (size_t i = 0; i < e->module_count; i++) {
            const struct script_module *m = &e->modules[i];
            if (m->handlers[hk] == LUA_NOREF)
                continue;
            s->registered = true;
            s->last_module = (int)i;
            if (!hooks_is_message(hk))
                continue;
            if (m->filters[hk].count == 0)
                every_topic = true;
            else if (filters_copy(&s->topics, &m->filters[hk]) != 0)
                return -1;
        }
        if (every_topic)
            cfg_filters_free(&s->topics);
    }
    return 0;
}

int script_engine_open(struct script_engine *e, const struct config *cfg, int worker_id,
                       char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->worker_id = worker_id;
    e->init_health = -1;
    e->call_timeout_ms = cfg->call_timeout_ms;
    e->max_timers = cfg->max_timers;
    e->deadline_ns = INT64_MAX;
    e->L = lua_newstate(limited_alloc, e);
    if (!e->L) {
        errbuf_set(err, errlen, "cannot create a Lua state: out of memory");
        return -1;
    }
    lua_State *L = e->L;
    *(struct script_engine **)lua_getextraspace(L) = e;
    luaL_openlibs(L);
    if (cfg->sandbox)
        sandbox_apply(L);
    lua_cjson_guard(L);
    lua_gc(L, LUA_GCGEN, 0, 0);
    /* Installed on the main thread before any user code, so that every
     * coroutine a script creates inherits it. */
    if (e->call_timeout_ms)
        lua_sethook(L, time_hook, LUA_MASKCOUNT, HOOK_COUNT_INSTRUCTIONS);
    /* The standard libraries are in; the limit applies to the user's code. */
    e->mem_limit = cfg->memory_limit;

    /* `require` finds modules in the scripts folder first. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", cfg->lua_path, cfg->lua_path,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    lua_api_open(L, e);

    e->modules = calloc(cfg->init_module_count, sizeof *e->modules);
    if (!e->modules) {
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->init_module_count; i++) {
        struct script_module *m = &e->modules[i];
        e->module_count++;
        m->deinit_ref = LUA_NOREF;
        for (int hk = 0; hk < HOOK_COUNT; hk++)
            m->handlers[hk] = LUA_NOREF;
        if (!(m->name = strdup(cfg->init_modules[i]))) {
            errbuf_set(err, errlen, "out of memory");
            goto fail;
        }
        if (load_module_protected(e, cfg, m, err, errlen) != 0)
            goto fail;
    }
    if (compute_specs(e, cfg) != 0) {
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    return 0;
fail:
    script_engine_close(e);
    return -1;
}

void script_engine_attach(struct script_engine *e, struct net *net, struct task_queue *ready)
{
    e->net = net;
    e->ready = ready;
    lua_timer_attach(e);
}

void script_engine_close(struct script_engine *e)
{
    if (!e->L)
        return;
    lua_State *L = e->L;
    /* Timers first, while the module names their messages use are there;
     * deinit() cannot start new ones. */
    lua_timer_retire(e);
    lua_timer_close_all(e);
    for (size_t i = e->module_count; i-- > 0;) {
        struct script_module *m = &e->modules[i];
        if (m->deinit_ref != LUA_NOREF) {
            script_push_msgh(L);
            lua_rawgeti(L, LUA_REGISTRYINDEX, m->deinit_ref);
            int st = run_user_code(e, m, 0, 0, -2);
            if (st != LUA_OK) {
                char err[512];
                user_code_error(e, m, st, err, sizeof err, "");
                log_error("module '%s': deinit() failed: %s", m->name, err);
            }
            lua_settop(L, 0);
        }
        for (int hk = 0; hk < HOOK_COUNT; hk++)
            cfg_filters_free(&m->filters[hk]);
        free(m->name);
        free(m->file);
    }
    for (int hk = 0; hk < HOOK_COUNT; hk++)
        cfg_filters_free(&e->specs[hk].topics);
    free(e->modules);
    /* Finalizers (__gc) run now: under the time limit like any script code
     * (an error there only becomes a warning). */
    script_arm_deadline(e, INT64_MAX);
    lua_close(L);
    memset(e, 0, sizeof *e);
}

void script_describe_hooks(const struct script_engine *e, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int hk = 0; hk < HOOK_COUNT && n < len; hk++) {
        const struct script_hook_spec *s = &e->specs[hk];
        if (!(s->registered || s->webhook) || !hook_defs[hk].name)
            continue;
        n += (size_t)snprintf(buf + n, len - n, "%s%s%s", n ? ", " : "", hook_defs[hk].name,
                              s->registered ? "" : " (webhook)");
        for (size_t i = 0; i < s->topics.count && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s%s", i ? ", " : " [",
                                  s->topics.items[i], i + 1 == s->topics.count ? "]" : "");
    }
    if (n == 0)
        snprintf(buf, len, "(none)");
}
