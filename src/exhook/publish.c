#include "publish.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

enum { F_TOPIC, F_QOS, F_PAYLOAD, F_HEADERS, F_COUNT };
static const char *const field_names[F_COUNT] = {"topic", "qos", "payload", "headers"};

void publish_msg_init(lua_State *L, struct publish_msg *pm,
                      const Emqx__Exhook__V3__Message *request)
{
    memset(pm, 0, sizeof *pm);
    pm->request = request;
    pm->topic = "";
    if (request) {
        pm->topic = request->topic;
        pm->qos = request->qos;
        pm->payload = request->payload;
        pm->headers = request->headers;
        pm->n_headers = request->n_headers;
    }
    pm->anchors = lua_gettop(L) + 1;
    lua_pushnil(L);
    lua_pushnil(L);
}

static char *copy_string(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* The headers table at `h`, into n->headers: string keys, string or number
 * values (numbers written as Lua writes them), no NUL bytes, all copied into
 * the arena so that nothing the script does later changes them. */
static int read_headers(lua_State *L, int h, struct publish_msg *n, struct arena *a, char *why,
                        size_t whylen)
{
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, h)) {
        count++;
        lua_pop(L, 1);
    }
    publish_header *entries = arena_alloc(a, count * sizeof *entries);
    publish_header **ptrs = arena_alloc(a, count * sizeof *ptrs);
    if (!entries || !ptrs)
        return -2;
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, h)) {
        /* Writing a number as a string allocates, and a collection step may
         * run a finalizer that adds entries: never write past the count. */
        if (i == count) {
            snprintf(why, whylen, "message.headers changed while it was read");
            return -1;
        }
        int vt = lua_type(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
            snprintf(why, whylen, "message.headers must map strings to strings without NUL bytes");
            return -1;
        }
        size_t klen, vlen;
        const char *k = lua_tolstring(L, -2, &klen);
        /* A number is converted on a copy: lua_next needs the key as it is,
         * and the table keeps its value. */
        lua_pushvalue(L, -1);
        const char *v = lua_tolstring(L, -1, &vlen);
        if (strlen(k) != klen || strlen(v) != vlen) {
            snprintf(why, whylen, "message.headers must map strings to strings without NUL bytes");
            return -1;
        }
        emqx__exhook__v3__message__headers_entry__init(&entries[i]);
        entries[i].key = copy_string(a, k, klen);
        entries[i].value = copy_string(a, v, vlen);
        if (!entries[i].key || !entries[i].value)
            return -2;
        ptrs[i] = &entries[i];
        i++;
        lua_pop(L, 2);
    }
    n->headers = ptrs;
    n->n_headers = i;
    n->headers_changed = true;
    return 0;
}

int publish_msg_read(lua_State *L, int idx, bool whole, struct publish_msg *pm, struct arena *a,
                     char *why, size_t whylen)
{
    luaL_checkstack(L, F_COUNT + 4, "message table");
    idx = lua_absindex(L, idx);
    /* Each field read once, raw, and kept on the stack from here on. */
    int v = lua_gettop(L) + 1;
    for (int f = 0; f < F_COUNT; f++) {
        lua_pushstring(L, field_names[f]);
        if (lua_rawget(L, idx) == LUA_TNIL && whole) {
            snprintf(why, whylen, "message.%s is missing", field_names[f]);
            return -1;
        }
    }
    struct publish_msg n = *pm;
    if (!lua_isnil(L, v + F_TOPIC)) {
        size_t len = 0;
        const char *t =
            lua_type(L, v + F_TOPIC) == LUA_TSTRING ? lua_tolstring(L, v + F_TOPIC, &len) : NULL;
        if (!t || len == 0 || strlen(t) != len || strpbrk(t, "+#")) {
            snprintf(why, whylen,
                     "message.topic must be a non-empty topic name without wildcards or NUL "
                     "bytes");
            return -1;
        }
        n.topic = t;
    }
    if (!lua_isnil(L, v + F_QOS)) {
        int isint = 0;
        lua_Integer q =
            lua_type(L, v + F_QOS) == LUA_TNUMBER ? lua_tointegerx(L, v + F_QOS, &isint) : -1;
        if (!isint || q < 0 || q > 2) {
            snprintf(why, whylen, "message.qos must be 0, 1 or 2");
            return -1;
        }
        n.qos = (uint32_t)q;
    }
    if (!lua_isnil(L, v + F_PAYLOAD)) {
        if (lua_type(L, v + F_PAYLOAD) != LUA_TSTRING) {
            snprintf(why, whylen, "message.payload must be a string, got a %s",
                     luaL_typename(L, v + F_PAYLOAD));
            return -1;
        }
        n.payload.data = (uint8_t *)lua_tolstring(L, v + F_PAYLOAD, &n.payload.len);
    }
    if (!lua_isnil(L, v + F_HEADERS)) {
        if (!lua_istable(L, v + F_HEADERS)) {
            snprintf(why, whylen, "message.headers must be a table of strings");
            return -1;
        }
        int rc = read_headers(L, v + F_HEADERS, &n, a, why, whylen);
        if (rc != 0)
            return rc;
    }
    /* All checked: keep the new topic and payload strings alive. */
    if (!lua_isnil(L, v + F_TOPIC)) {
        lua_pushvalue(L, v + F_TOPIC);
        lua_replace(L, pm->anchors);
    }
    if (!lua_isnil(L, v + F_PAYLOAD)) {
        lua_pushvalue(L, v + F_PAYLOAD);
        lua_replace(L, pm->anchors + 1);
    }
    lua_settop(L, v - 1);
    n.changed = true;
    *pm = n;
    return 0;
}

/* A copy of the table at `idx` and of the tables in it (headers, props and
 * their User-Property). The depth bound keeps a cyclic table from running
 * away. */
static void copy_table(lua_State *L, int idx, int depth)
{
    luaL_checkstack(L, 4, "message table");
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 10);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_istable(L, -1) && depth < 3) {
            copy_table(L, -1, depth + 1);
            lua_replace(L, -2);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

void publish_msg_push(lua_State *L, int base, const struct publish_msg *pm)
{
    copy_table(L, base, 0);
    if (!pm->changed)
        return;
    /* The copy is a table of ours without a metatable: plain sets. */
    int t = lua_gettop(L);
    if (!lua_isnil(L, pm->anchors)) {
        lua_pushvalue(L, pm->anchors);
        lua_setfield(L, t, "topic");
    }
    lua_pushinteger(L, pm->qos);
    lua_setfield(L, t, "qos");
    if (!lua_isnil(L, pm->anchors + 1)) {
        lua_pushvalue(L, pm->anchors + 1);
        lua_setfield(L, t, "payload");
    }
    if (pm->headers_changed) {
        lua_createtable(L, 0, pm->n_headers < 64 ? (int)pm->n_headers : 64);
        for (size_t i = 0; i < pm->n_headers; i++) {
            lua_pushstring(L, pm->headers[i]->value);
            lua_setfield(L, -2, pm->headers[i]->key);
        }
        lua_setfield(L, t, "headers");
    }
}

int publish_msg_fill(const struct publish_msg *pm, bool drop, struct arena *a,
                     Emqx__Exhook__V3__Message *out)
{
    if (pm->request)
        *out = *pm->request;
    else
        emqx__exhook__v3__message__init(out);
    /* The broker copies topic, qos and payload unconditionally: all are sent. */
    out->topic = (char *)pm->topic;
    out->qos = pm->qos;
    out->payload = pm->payload;
    out->headers = pm->headers;
    out->n_headers = pm->n_headers;
    if (!drop)
        return 0;
    publish_header **ptrs = arena_alloc(a, (pm->n_headers + 1) * sizeof *ptrs);
    publish_header *deny = arena_alloc(a, sizeof *deny);
    if (!ptrs || !deny)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < pm->n_headers; i++) {
        if (strcmp(pm->headers[i]->key, "allow_publish") != 0)
            ptrs[n++] = pm->headers[i];
    }
    emqx__exhook__v3__message__headers_entry__init(deny);
    deny->key = "allow_publish";
    deny->value = "false";
    ptrs[n++] = deny;
    out->headers = ptrs;
    out->n_headers = n;
    return 0;
}
