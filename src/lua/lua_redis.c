#include "lua_redis.h"

#include <lauxlib.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "net.h"
#include "redis.h"
#include "wait.h"

#define CLIENT_MT "exhook.redis.client"

/* The userdata behind `red`. */
struct client {
    int64_t timeout_ns; /* 0: the time left for the call */
    char name[300];     /* host:port */
    char url[];
};

/* One red:call in progress. */
struct op {
    struct wait *w;
    struct redis_cmd *cmd;   /* until it finishes */
    struct loop *loop;
    struct loop_timer timer; /* to report a failure that came at once */
    struct redis_value *v;
    struct redis_error err;
    bool failed;
};

static const char *const fail_kinds[] = {
    [REDIS_FAIL_TIMEOUT] = "timeout",
    [REDIS_FAIL_REFUSED] = "refused",
    [REDIS_FAIL_OTHER] = "failed",
};

/* Redis' own scripting converts replies the same way inside arrays: nil
 * as false, error replies as {err = text}. */
static void push_value(lua_State *L, const struct redis_value *v, bool nested)
{
    luaL_checkstack(L, 3, "reply nested too deep");
    switch (v->type) {
    case REDIS_V_NIL:
        if (nested)
            lua_pushboolean(L, 0);
        else
            lua_pushnil(L);
        break;
    case REDIS_V_INTEGER:
        lua_pushinteger(L, (lua_Integer)v->integer);
        break;
    case REDIS_V_STRING:
    case REDIS_V_STATUS:
        lua_pushlstring(L, v->str, v->len);
        break;
    case REDIS_V_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, v->str, v->len);
        lua_setfield(L, -2, "err");
        break;
    case REDIS_V_ARRAY:
        lua_createtable(L, v->n > INT32_MAX ? INT32_MAX : (int)v->n, 0);
        for (size_t i = 0; i < v->n; i++) {
            push_value(L, &v->elems[i], true);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
}

static void op_cancel(void *p)
{
    struct op *op = p;
    if (op->cmd)
        redis_cancel(op->cmd);
    loop_timer_stop(op->loop, &op->timer);
    free(op->v);
    free(op);
}

/* In a protected call (wait.h): if making the values runs out of memory,
 * `op` is still whole for op_cancel to free. */
static int op_push(lua_State *L, void *p)
{
    struct op *op = p;
    const struct redis_value *v = op->v;
    int n = 3;
    if (op->failed) {
        lua_pushnil(L);
        lua_pushstring(L, op->err.msg);
        lua_pushstring(L, fail_kinds[op->err.kind]);
    } else if (v->type == REDIS_V_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, v->str, v->len);
        lua_pushliteral(L, "reply");
    } else {
        push_value(L, v, false);
        n = 1;
    }
    free(op->v);
    free(op);
    return n;
}

static void on_done(void *ctx, struct redis_value *v, const struct redis_error *err)
{
    struct op *op = ctx;
    op->cmd = NULL;
    op->v = v;
    if (err) {
        op->err = *err;
        op->failed = true;
    }
    wait_complete(op->w, op_push);
}

static void on_failed_at_once(struct loop_timer *t)
{
    struct op *op = t->ctx;
    wait_complete(op->w, op_push);
}

/* The command's words: strings as they are, numbers as tostring makes
 * them, in a userdata (nothing to free if an error comes first). */
static int collect_args(lua_State *L, const char ***argv, size_t **lens)
{
    int argc = lua_gettop(L) - 1;
    if (argc < 1)
        return luaL_error(L, "red:call: no command (e.g. red:call(\"GET\", key))");
    for (int i = 2; i <= argc + 1; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_typeerror(L, i, "string or number");
    }
    *argv = lua_newuserdatauv(L, (size_t)argc * (sizeof **argv + sizeof **lens), 0);
    *lens = (size_t *)(*argv + argc);
    for (int i = 0; i < argc; i++)
        (*argv)[i] = lua_tolstring(L, i + 2, &(*lens)[i]);
    return argc;
}

static int l_call(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    const char **argv = NULL;
    size_t *lens = NULL;
    int argc = collect_args(L, &argv, &lens);
    struct wait_ctx ctx;
    struct wait *w = wait_begin(L, "red:call", &ctx);
    struct op *op = calloc(1, sizeof *op);
    if (!op)
        return luaL_error(L, "red:call: out of memory");
    op->w = w;
    op->loop = ctx.net->loop;
    loop_timer_init(&op->timer, on_failed_at_once, op);

    /* The call's own deadline is left to the call: it cancels the wait
     * and answers with what it waited for. */
    int64_t deadline = INT64_MAX;
    if (c->timeout_ns && loop_now_ns() + c->timeout_ns < ctx.deadline_ns)
        deadline = loop_now_ns() + c->timeout_ns;
    char err[256];
    struct redis_pool *pool = redis_pool_get(ctx.net->redis, c->url, err, sizeof err);
    if (!pool) {
        op->failed = true;
        op->err.kind = REDIS_FAIL_OTHER;
        snprintf(op->err.msg, sizeof op->err.msg, "redis %.64s: %.128s", c->name, err);
    } else {
        op->cmd = redis_command(pool, argc, argv, lens, deadline, on_done, op, &op->err);
        op->failed = !op->cmd;
    }
    /* A failure that came at once is reported from the loop, like any
     * completion. */
    if (op->failed)
        loop_timer_start(op->loop, &op->timer, loop_now_ns());

    char name[REDIS_NAME_MAX], what[400];
    redis_cmd_name(name, argv[0], lens[0]);
    snprintf(what, sizeof what, "redis %s on %s", name, c->name);
    return wait_yield(L, w, op, op_cancel, what);
}

static int l_tostring(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    lua_pushfstring(L, "exhook.redis(%s)", c->name);
    return 1;
}

static int64_t opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "timeout");
    int64_t ns = 0;
    if (!lua_isnil(L, -1)) {
        int ok;
        lua_Number s = lua_tonumberx(L, -1, &ok);
        if (!ok || !(s > 0) || s > 86400)
            luaL_error(L, "exhook.redis.connect: timeout must be seconds, more than 0 and at most "
                          "86400");
        ns = (int64_t)llround(s * 1e9);
    }
    lua_pop(L, 1);
    return ns;
}

static int l_connect(lua_State *L)
{
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    int64_t timeout_ns = opt_timeout(L, 2);
    char name[300], err[256];
    /* The URL is not repeated: it may hold a password. */
    if (strlen(url) != len || redis_url_check(url, name, sizeof name, err, sizeof err) != 0)
        return luaL_error(L, "exhook.redis.connect: %s",
                          strlen(url) != len ? "'\\0' in the URL" : err);
    struct client *c = lua_newuserdatauv(L, sizeof *c + len + 1, 0);
    c->timeout_ns = timeout_ns;
    snprintf(c->name, sizeof c->name, "%s", name);
    memcpy(c->url, url, len + 1);
    luaL_setmetatable(L, CLIENT_MT);
    return 1;
}

void lua_redis_open(lua_State *L, struct script_engine *e)
{
    (void)e; /* the pools are the running slot's, found at each call */
    if (luaL_newmetatable(L, CLIENT_MT)) {
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, l_call);
        lua_setfield(L, -2, "call");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "exhook.redis");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "connect");
    lua_setfield(L, -2, "redis");
}
