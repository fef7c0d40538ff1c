#include "lua_http.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "loop.h"
#include "net.h"
#include "wait.h"

/* The timeout of a request made where no deadline applies. */
#define NO_DEADLINE_TIMEOUT_MS 60000
/* The longest timeout a script may ask for: a day. */
#define MAX_TIMEOUT_S 86400.0

#define OP_META "exhook.http request"

/* A request in flight or its response not yet handed to the script. It is
 * a userdata on the waiting function's own stack frame, so Lua keeps it
 * while the coroutine waits, and its finalizer frees what is left if the
 * coroutine goes away by a road where neither push nor cancel runs. */
struct http_op {
    struct wait *w;
    struct http_req *req;      /* in flight, or NULL */
    struct http_response *res; /* arrived, not yet pushed, or NULL */
};

static void op_release(struct http_op *op)
{
    if (op->req)
        http_cancel(op->req);
    op->req = NULL;
    http_response_free(op->res);
    op->res = NULL;
}

static int op_gc(lua_State *L)
{
    op_release(luaL_checkudata(L, 1, OP_META));
    return 0;
}

static void op_cancel(void *p)
{
    op_release(p);
}

/* Same-named headers (Set-Cookie, Vary) join with ", " as HTTP allows. */
static void push_headers(lua_State *L, const struct http_response *res)
{
    lua_createtable(L, 0, (int)res->n_headers);
    for (size_t i = 0; i < res->n_headers; i++) {
        const struct http_header *h = &res->headers[i];
        if (lua_getfield(L, -1, h->name) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushstring(L, h->value);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, h->value);
        }
        lua_setfield(L, -2, h->name);
    }
}

/* The script's results: the response table, or nil and the error. Runs in
 * a protected call (task.c): a body past memory_limit gives nil and a
 * message there, and op_cancel then frees what is left. */
static int op_push(lua_State *L, void *p)
{
    struct http_op *op = p;
    const struct http_response *res = op->res;
    int n = 1;
    if (res->err != HTTP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, res->error ? res->error : http_err_name(res->err));
        n = 2;
    } else {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, res->status);
        lua_setfield(L, -2, "status");
        push_headers(L, res);
        lua_setfield(L, -2, "headers");
        lua_pushlstring(L, res->body ? res->body : "", res->body_len);
        lua_setfield(L, -2, "body");
    }
    op_release(op);
    return n;
}

static void op_done(void *ctx, struct http_response *res)
{
    struct http_op *op = ctx;
    op->req = NULL;
    op->res = res;
    wait_complete(op->w, op_push);
}

/* Reading the script's options. */

static const char *const target_keys[] = {"method", "url", "body", NULL};
static const char *const option_keys[] = {"headers", "timeout",  "ca_file",
                                          "verify",  "max_body", NULL};

static bool listed(const char *const *keys, const char *k)
{
    for (; *keys; keys++)
        if (!strcmp(*keys, k))
            return true;
    return false;
}

/* Unknown keys are errors: a misspelt "timout" would otherwise be ignored. */
static void check_keys(lua_State *L, int idx, const char *fname, bool with_target)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!k || !(listed(option_keys, k) || (with_target && listed(target_keys, k)))) {
            lua_pushfstring(L, "%s: unknown option '%s'", fname, luaL_tolstring(L, -1, NULL));
            lua_error(L);
        }
    }
}

/* A string field, or `def` when absent. */
static const char *opt_string(lua_State *L, int idx, const char *key, const char *def, size_t *len,
                              const char *fname)
{
    int t = lua_getfield(L, idx, key);
    const char *s = def;
    if (len)
        *len = def ? strlen(def) : 0;
    if (t == LUA_TSTRING)
        s = lua_tolstring(L, -1, len); /* the table keeps it alive */
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: '%s' must be a string, got %s", fname, key, luaL_typename(L, -1));
    lua_pop(L, 1);
    return s;
}

static struct http_header *read_headers(lua_State *L, int idx, size_t *n, const char *fname)
{
    *n = 0;
    int t = lua_getfield(L, idx, "headers");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "%s: 'headers' must be a table, got %s", fname, luaL_typename(L, -1));
    int tbl = lua_gettop(L);
    size_t count = 0;
    for (lua_pushnil(L); lua_next(L, tbl); lua_pop(L, 1))
        count++;
    /* On the stack until the function returns; http_start copies it all. */
    struct http_header *hs = lua_newuserdatauv(L, (count ? count : 1) * sizeof *hs, 0);
    lua_insert(L, tbl); /* below the headers table, which stays on top */
    tbl = lua_gettop(L);
    for (lua_pushnil(L); lua_next(L, tbl); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: header names must be strings, got %s", fname, luaL_typename(L, -2));
        const char *name = lua_tostring(L, -2);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: header '%s' must be a string, got %s", fname, name,
                       luaL_typename(L, -1));
        size_t len;
        const char *value = lua_tolstring(L, -1, &len);
        if (strlen(value) != len)
            luaL_error(L, "%s: header '%s' contains a zero byte", fname, name);
        hs[*n].name = name;
        hs[*n].value = value;
        (*n)++;
    }
    return hs;
}

/* The time left for the call. Its deadline ends the wait, with what it
 * waited for in the call's error; curl's own timeout, set a little later,
 * is only a backstop: curl counts in whole milliseconds and may fire one
 * early, which would hand the script a timeout just before its deadline. */
#define DEADLINE_BACKSTOP_MS 1000
static int64_t default_timeout_ms(const struct wait_ctx *ctx)
{
    if (ctx->deadline_ns == INT64_MAX)
        return NO_DEADLINE_TIMEOUT_MS;
    int64_t ms = (ctx->deadline_ns - loop_now_ns()) / 1000000;
    return (ms > 0 ? ms : 0) + DEADLINE_BACKSTOP_MS;
}

static int64_t read_timeout_ms(lua_State *L, int idx, const struct wait_ctx *ctx, const char *fname)
{
    int t = lua_getfield(L, idx, "timeout");
    int64_t ms;
    if (t == LUA_TNIL) {
        ms = default_timeout_ms(ctx);
    } else {
        lua_Number s = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || !(s > 0 && s <= MAX_TIMEOUT_S))
            luaL_error(L, "%s: 'timeout' must be seconds above 0 and up to %d", fname,
                       (int)MAX_TIMEOUT_S);
        ms = (int64_t)ceil(s * 1000);
    }
    lua_pop(L, 1);
    return ms;
}

static void read_options(lua_State *L, int idx, struct http_request *spec,
                         const struct wait_ctx *ctx, const char *fname)
{
    spec->headers = read_headers(L, idx, &spec->n_headers, fname);
    spec->timeout_ms = read_timeout_ms(L, idx, ctx, fname);
    spec->ca_file = opt_string(L, idx, "ca_file", NULL, NULL, fname);
    int t = lua_getfield(L, idx, "verify");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "%s: 'verify' must be a boolean, got %s", fname, luaL_typename(L, -1));
    spec->insecure = t == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    t = lua_getfield(L, idx, "max_body");
    if (t != LUA_TNIL) {
        lua_Integer n = lua_tointeger(L, -1);
        if (!lua_isinteger(L, -1) || n < 1)
            luaL_error(L, "%s: 'max_body' must be a whole number of bytes above 0", fname);
        spec->max_body = (size_t)n;
    }
    lua_pop(L, 1);
}

/* Starts `spec` (its options read from the table at `opts`, 0 if none) and
 * waits for the response. */
static int start(lua_State *L, const char *fname, int opts, struct http_request *spec,
                 bool with_target)
{
    struct wait_ctx ctx;
    struct wait *w = wait_begin(L, fname, &ctx);
    if (opts) {
        check_keys(L, opts, fname, with_target);
        read_options(L, opts, spec, &ctx, fname);
    } else {
        spec->timeout_ms = default_timeout_ms(&ctx);
    }
    struct http_op *op = lua_newuserdatauv(L, sizeof *op, 0);
    *op = (struct http_op){.w = w};
    luaL_setmetatable(L, OP_META);
    char err[300];
    op->req = http_start(ctx.net->http, spec, op_done, op, err, sizeof err);
    if (!op->req)
        return luaL_error(L, "%s: %s", fname, err);
    /* For the call's error if it runs out of time: no secrets from the URL. */
    char url[256], what[300];
    http_url_for_log(spec->url, url, sizeof url);
    snprintf(what, sizeof what, "%s %s", spec->method, url);
    return wait_yield(L, w, op, op_cancel, what);
}

static int opt_table(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    return idx;
}

static int api_request(lua_State *L)
{
    const char *fname = "exhook.http.request";
    luaL_checktype(L, 1, LUA_TTABLE);
    struct http_request spec = {0};
    spec.method = opt_string(L, 1, "method", "GET", NULL, fname);
    spec.url = opt_string(L, 1, "url", NULL, NULL, fname);
    if (!spec.url)
        return luaL_error(L, "%s: 'url' is missing", fname);
    spec.body = opt_string(L, 1, "body", NULL, &spec.body_len, fname);
    return start(L, fname, 1, &spec, true);
}

static int api_get(lua_State *L)
{
    struct http_request spec = {.method = "GET", .url = luaL_checkstring(L, 1)};
    return start(L, "exhook.http.get", opt_table(L, 2), &spec, false);
}

static int api_post(lua_State *L)
{
    struct http_request spec = {.method = "POST", .url = luaL_checkstring(L, 1)};
    spec.body = luaL_checklstring(L, 2, &spec.body_len);
    return start(L, "exhook.http.post", opt_table(L, 3), &spec, false);
}

void lua_http_open(lua_State *L, struct script_engine *e)
{
    (void)e;
    luaL_newmetatable(L, OP_META);
    lua_pushcfunction(L, op_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"request", api_request}, {"get", api_get}, {"post", api_post}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "http");
}
