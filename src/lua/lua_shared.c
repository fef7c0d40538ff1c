#include "lua_shared.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>

#include "lua_shared_redis.h"
#include "shared_dict.h"
#include "shared_dicts.h"

static const char *status_text(enum shared_status s)
{
    switch (s) {
    case SHARED_NOT_FOUND:
        return "not found";
    case SHARED_EXISTS:
        return "exists";
    case SHARED_NO_MEMORY:
        return "no memory";
    case SHARED_NOT_A_NUMBER:
        return "not a number";
    default:
        return "failed";
    }
}

static void push_value(lua_State *L, const struct shared_value *v)
{
    switch (v->type) {
    case SHARED_BOOLEAN:
        lua_pushboolean(L, v->boolean);
        break;
    case SHARED_INTEGER:
        lua_pushinteger(L, (lua_Integer)v->integer);
        break;
    case SHARED_FLOAT:
        lua_pushnumber(L, (lua_Number)v->number);
        break;
    case SHARED_STRING:
        lua_pushlstring(L, v->str, v->len);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

/* A failed operation: nil (false for a write), why, whether it evicted. */
static int push_failure(lua_State *L, const struct shared_op *op, const struct shared_result *r)
{
    bool write = op->code == SHARED_SET || op->code == SHARED_SAFE_SET ||
                 op->code == SHARED_ADD || op->code == SHARED_SAFE_ADD ||
                 op->code == SHARED_REPLACE;
    if (write)
        lua_pushboolean(L, 0);
    else
        lua_pushnil(L);
    lua_pushstring(L, r->status == SHARED_FAILED ? r->message : status_text(r->status));
    lua_pushboolean(L, r->forcible);
    return 3;
}

int lua_shared_push_result(lua_State *L, const struct shared_op *op, const struct shared_result *r)
{
    if (r->status != SHARED_OK)
        return push_failure(L, op, r);
    switch (op->code) {
    case SHARED_GET:
        push_value(L, &r->value);
        return 1;
    case SHARED_SET:
    case SHARED_SAFE_SET:
    case SHARED_ADD:
    case SHARED_SAFE_ADD:
    case SHARED_REPLACE:
        lua_pushboolean(L, 1);
        lua_pushnil(L);
        lua_pushboolean(L, r->forcible);
        return 3;
    case SHARED_INCR:
        push_value(L, &r->value);
        lua_pushnil(L);
        lua_pushboolean(L, r->forcible);
        return 3;
    case SHARED_TTL:
        lua_pushnumber(L, (lua_Number)r->ttl);
        return 1;
    case SHARED_KEYS:
        lua_createtable(L, (int)r->n_keys, 0);
        for (size_t i = 0; i < r->n_keys; i++) {
            lua_pushlstring(L, r->keys[i], r->key_lens[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    case SHARED_FLUSH_EXPIRED:
    case SHARED_CAPACITY:
    case SHARED_FREE_SPACE:
        lua_pushinteger(L, (lua_Integer)r->count);
        return 1;
    default: /* DELETE, EXPIRE, FLUSH_ALL */
        lua_pushboolean(L, 1);
        return 1;
    }
}

/* ---- exhook.shared.NAME:method(...) -------------------------------------- */

#define DICT_MT "exhook.shared"
#define RESULT_MT "exhook.shared result"
/* keys() without a bound returns at most this many, as OpenResty's does. */
#define DEFAULT_KEYS_MAX 1024

/* The userdata of a dictionary object. */
struct dict_ref {
    const struct shared_decl *decl;
};

static const struct shared_decl *check_dict(lua_State *L, enum shared_opcode code)
{
    struct dict_ref *ref = luaL_testudata(L, 1, DICT_MT);
    if (!ref)
        luaL_error(L, "exhook.shared: call %s with ':' (dict:%s(...)), not '.'",
                   shared_op_name(code), shared_op_name(code));
    return ref->decl;
}

/* Raises an argument error prefixed with the dictionary and method
 * (lua_pushfstring's formats). */
static int arg_error(lua_State *L, const struct shared_decl *d, enum shared_opcode code,
                     const char *fmt, ...)
{
    va_list ap;
    lua_pushfstring(L, "exhook.shared.%s:%s: ", d->name, shared_op_name(code));
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

static void parse_key(lua_State *L, const struct shared_decl *d, struct shared_op *op)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        arg_error(L, d, op->code, "key must be a string, got %s", luaL_typename(L, 2));
    op->key = lua_tolstring(L, 2, &op->key_len);
    if (op->key_len == 0)
        arg_error(L, d, op->code, "key must not be empty");
    if (op->key_len > SHARED_KEY_MAX)
        arg_error(L, d, op->code, "key too long (%I bytes, at most %d)", (lua_Integer)op->key_len,
                  SHARED_KEY_MAX);
}

/* A number argument into `v`: an integer stays one. */
static bool to_number(lua_State *L, int idx, struct shared_value *v)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return false;
    if (lua_isinteger(L, idx)) {
        v->type = SHARED_INTEGER;
        v->integer = (long long)lua_tointeger(L, idx);
    } else {
        v->type = SHARED_FLOAT;
        v->number = (double)lua_tonumber(L, idx);
    }
    return true;
}

static void parse_value(lua_State *L, const struct shared_decl *d, struct shared_op *op)
{
    struct shared_value *v = &op->value;
    switch (lua_type(L, 3)) {
    case LUA_TSTRING:
        v->type = SHARED_STRING;
        v->str = lua_tolstring(L, 3, &v->len);
        break;
    case LUA_TBOOLEAN:
        v->type = SHARED_BOOLEAN;
        v->boolean = lua_toboolean(L, 3);
        break;
    case LUA_TNUMBER:
        to_number(L, 3, v);
        break;
    case LUA_TNIL:
    case LUA_TNONE:
        /* set(key, nil) deletes the key, as in OpenResty. */
        if (op->code == SHARED_SET || op->code == SHARED_SAFE_SET) {
            op->code = SHARED_DELETE;
            break;
        }
        /* fall through */
    default:
        arg_error(L, d, op->code, "value must be a string, a number or a boolean, got %s",
                  luaL_typename(L, 3));
    }
}

/* Seconds at `idx`, >= 0; nil or none is 0 unless `required`. */
static double parse_ttl(lua_State *L, const struct shared_decl *d, enum shared_opcode code, int idx,
                        const char *what, bool required)
{
    if (!required && lua_isnoneornil(L, idx))
        return 0;
    if (lua_type(L, idx) != LUA_TNUMBER)
        arg_error(L, d, code, "%s must be a number of seconds", what);
    double ttl = (double)lua_tonumber(L, idx);
    if (!(ttl >= 0) || ttl == HUGE_VAL)
        arg_error(L, d, code, "%s must be 0 (never expires) or more seconds", what);
    return ttl;
}

static size_t parse_max(lua_State *L, const struct shared_decl *d, enum shared_opcode code,
                        size_t dflt)
{
    if (lua_isnoneornil(L, 2))
        return dflt;
    if (!lua_isinteger(L, 2) || lua_tointeger(L, 2) < 0)
        arg_error(L, d, code, "max must be an integer, 0 (all) or more");
    return (size_t)lua_tointeger(L, 2);
}

static void parse_incr(lua_State *L, const struct shared_decl *d, struct shared_op *op)
{
    if (!to_number(L, 3, &op->value))
        arg_error(L, d, op->code, "delta must be a number, got %s", luaL_typename(L, 3));
    if (lua_isnoneornil(L, 4)) {
        if (!lua_isnoneornil(L, 5))
            arg_error(L, d, op->code, "init_ttl needs init");
        return;
    }
    if (!to_number(L, 4, &op->init))
        arg_error(L, d, op->code, "init must be a number, got %s", luaL_typename(L, 4));
    op->has_init = true;
    op->ttl = parse_ttl(L, d, op->code, 5, "init_ttl", false);
}

/* The arguments of the method into `op`; raises an error on bad ones. */
static void parse(lua_State *L, const struct shared_decl *d, struct shared_op *op)
{
    switch (op->code) {
    case SHARED_SET:
    case SHARED_SAFE_SET:
    case SHARED_ADD:
    case SHARED_SAFE_ADD:
    case SHARED_REPLACE:
        parse_key(L, d, op);
        op->ttl = parse_ttl(L, d, op->code, 4, "ttl", false);
        parse_value(L, d, op);
        break;
    case SHARED_GET:
    case SHARED_DELETE:
    case SHARED_TTL:
        parse_key(L, d, op);
        break;
    case SHARED_INCR:
        parse_key(L, d, op);
        parse_incr(L, d, op);
        break;
    case SHARED_EXPIRE:
        parse_key(L, d, op);
        op->ttl = parse_ttl(L, d, op->code, 3, "ttl", true);
        break;
    case SHARED_KEYS:
        op->max = parse_max(L, d, op->code, DEFAULT_KEYS_MAX);
        break;
    case SHARED_FLUSH_EXPIRED:
        op->max = parse_max(L, d, op->code, 0);
        break;
    default: /* FLUSH_ALL, CAPACITY, FREE_SPACE: no arguments */
        break;
    }
}

static int result_gc(lua_State *L)
{
    shared_result_free(luaL_checkudata(L, 1, RESULT_MT));
    return 0;
}

/* Runs `op` on the dictionary and pushes its return values. The local
 * store holds its lock only inside shared_dict_run, so nothing raised here
 * can leave it locked. get and keys copy out of the dictionary into
 * malloc'd memory: their result sits in a userdata whose __gc frees it
 * should pushing the values raise (memory_limit); the other operations
 * copy nothing and need none. */
static int run(lua_State *L, const struct shared_decl *d, const struct shared_op *op)
{
    if (d->url)
        return lua_shared_redis_run(L, d->name, d->url, op);
    struct shared_result plain, *r = &plain;
    if (op->code == SHARED_GET || op->code == SHARED_KEYS) {
        r = lua_newuserdatauv(L, sizeof *r, 0);
        shared_result_init(r);
        luaL_setmetatable(L, RESULT_MT);
    } else {
        shared_result_init(r);
    }
    shared_dict_run(d->local, op, r);
    int n = lua_shared_push_result(L, op, r);
    shared_result_free(r);
    return n;
}

static int l_method(lua_State *L)
{
    struct shared_op op = {.code = (enum shared_opcode)lua_tointeger(L, lua_upvalueindex(1))};
    const struct shared_decl *d = check_dict(L, op.code);
    parse(L, d, &op);
    return run(L, d, &op);
}

static int l_tostring(lua_State *L)
{
    struct dict_ref *ref = luaL_checkudata(L, 1, DICT_MT);
    lua_pushfstring(L, "exhook.shared.%s", ref->decl->name);
    return 1;
}

static void open_metatables(lua_State *L)
{
    if (luaL_newmetatable(L, DICT_MT)) {
        lua_createtable(L, 0, SHARED_OPCODE_COUNT);
        for (int code = 0; code < SHARED_OPCODE_COUNT; code++) {
            lua_pushinteger(L, code);
            lua_pushcclosure(L, l_method, 1);
            lua_setfield(L, -2, shared_op_name((enum shared_opcode)code));
        }
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, DICT_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, RESULT_MT)) {
        lua_pushcfunction(L, result_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

void lua_shared_open(lua_State *L, struct script_engine *e)
{
    (void)e; /* the dictionaries are the process's */
    open_metatables(L);
    size_t n = shared_dicts_count();
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const struct shared_decl *d = shared_dicts_at(i);
        struct dict_ref *ref = lua_newuserdatauv(L, sizeof *ref, 0);
        ref->decl = d;
        luaL_setmetatable(L, DICT_MT);
        lua_setfield(L, -2, d->name);
    }
    lua_setfield(L, -2, "shared");
}
