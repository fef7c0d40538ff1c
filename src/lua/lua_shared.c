#include "lua_shared.h"

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
