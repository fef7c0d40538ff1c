#include "pb2lua.h"

#include <ctype.h>
#include <stdbool.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"

/* The interface has no recursive types; the bound only protects the walker
 * from a descriptor set that someday does. */
#define PB2LUA_MAX_DEPTH 8

static void push_message(lua_State *L, const ProtobufCMessageDescriptor *desc,
                         const ProtobufCMessage *msg, int depth);

static const void *field_ptr(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
    return (const char *)msg + f->offset;
}

static void push_enum(lua_State *L, const ProtobufCEnumDescriptor *ed, int value)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, value);
    if (!ev) {
        lua_pushinteger(L, value);
        return;
    }
    char name[64];
    size_t i = 0;
    for (; ev->name[i] && i < sizeof name - 1; i++)
        name[i] = (char)tolower((unsigned char)ev->name[i]);
    lua_pushlstring(L, name, i);
}

/* One scalar or message element stored at `p`. */
static void push_element(lua_State *L, const ProtobufCFieldDescriptor *f, const void *p,
                         int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        lua_pushinteger(L, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        lua_pushinteger(L, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        lua_pushinteger(L, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        lua_pushinteger(L, (lua_Integer) * (const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        lua_pushnumber(L, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        lua_pushnumber(L, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        lua_pushboolean(L, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        push_enum(L, f->descriptor, *(const int *)p);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        lua_pushstring(L, s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        lua_pushlstring(L, b->data ? (const char *)b->data : "", b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        push_message(L, f->descriptor, *(ProtobufCMessage *const *)p, depth + 1);
        break;
    }
}

/* Default value of a singular field that is unset (absent message, or an
 * optional field without its has_ flag). */
static void push_default(lua_State *L, const ProtobufCFieldDescriptor *f, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        lua_pushboolean(L, 0);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        push_enum(L, ed, ed->n_values ? ed->values[0].value : 0);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
        lua_pushliteral(L, "");
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        push_message(L, f->descriptor, NULL, depth + 1);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        lua_pushnumber(L, 0);
        break;
    default:
        lua_pushinteger(L, 0);
        break;
    }
}

size_t pb_element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_MESSAGE:
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
    return d->n_fields == 2 && strcmp(d->fields[0].name, "key") == 0 &&
           strcmp(d->fields[1].name, "value") == 0;
}

static void push_field(lua_State *L, const ProtobufCFieldDescriptor *f,
                       const ProtobufCMessage *msg, int depth)
{
    if (depth > PB2LUA_MAX_DEPTH) {
        lua_pushnil(L);
        return;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = msg ? *(const size_t *)((const char *)msg + f->quantifier_offset) : 0;
        const ProtobufCMessageDescriptor *md =
            f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
        if (md == &emqx__exhook__v3__property__descriptor) {
            lua_createtable(L, 0, (int)n);
            pb_properties_into(L, -1, f, msg);
            return;
        }
        if (md && is_map_entry(md)) {
            lua_createtable(L, 0, (int)n);
            ProtobufCMessage **items = n ? *(ProtobufCMessage **const *)field_ptr(f, msg) : NULL;
            for (size_t i = 0; i < n; i++) {
                push_element(L, &md->fields[0], field_ptr(&md->fields[0], items[i]), depth);
                push_element(L, &md->fields[1], field_ptr(&md->fields[1], items[i]), depth);
                lua_rawset(L, -3);
            }
            return;
        }
        lua_createtable(L, (int)n, 0);
        if (n == 0)
            return;
        const char *base = *(const char *const *)field_ptr(f, msg);
        size_t size = pb_element_size(f->type);
        for (size_t i = 0; i < n; i++) {
            push_element(L, f, base + i * size, depth);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    }
    if (!msg) {
        push_default(L, f, depth);
        return;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *(const uint32_t *)((const char *)msg + f->quantifier_offset);
        if (which != f->id) {
            lua_pushnil(L);
            return;
        }
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset &&
               !*(const protobuf_c_boolean *)((const char *)msg + f->quantifier_offset)) {
        push_default(L, f, depth);
        return;
    }
    push_element(L, f, field_ptr(f, msg), depth);
}

/* Pushes the array of `desc`'s field names as Lua strings. They are made
 * once per state and kept in the registry under the descriptor's address:
 * storing a field then needs no string lookup by name. */
static void push_field_names(lua_State *L, const ProtobufCMessageDescriptor *desc)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, desc) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, (int)desc->n_fields, 0);
    for (unsigned i = 0; i < desc->n_fields; i++) {
        lua_pushstring(L, desc->fields[i].name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, desc);
}

static void push_message(lua_State *L, const ProtobufCMessageDescriptor *desc,
                         const ProtobufCMessage *msg, int depth)
{
    lua_createtable(L, 0, (int)desc->n_fields + 1);
    push_field_names(L, desc);
    int names = lua_gettop(L);
    for (unsigned i = 0; i < desc->n_fields; i++) {
        lua_rawgeti(L, names, (lua_Integer)i + 1);
        push_field(L, &desc->fields[i], msg, depth);
        lua_rawset(L, names - 1);
    }
    lua_pop(L, 1);
    /* Brokers from 5.4 send a filter's QoS inside subopts, older ones in
     * the filter itself: both places carry it, whichever broker sent it. */
    if (desc == &emqx__exhook__v3__topic_filter__descriptor && msg) {
        const Emqx__Exhook__V3__TopicFilter *tf = (const void *)msg;
        if (tf->subopts) {
            lua_pushinteger(L, tf->subopts->qos);
            lua_setfield(L, -2, "qos");
        } else {
            lua_getfield(L, -1, "subopts");
            lua_pushinteger(L, tf->qos);
            lua_setfield(L, -2, "qos");
            lua_pop(L, 1);
        }
    }
}

void pb_to_lua_table(lua_State *L, const ProtobufCMessageDescriptor *desc,
                     const ProtobufCMessage *msg)
{
    push_message(L, desc, msg, 0);
}

void pb_field_to_lua(lua_State *L, const ProtobufCFieldDescriptor *field,
                     const ProtobufCMessage *msg)
{
    push_field(L, field, msg, 0);
}

/* ---- user properties from brokers before 5.9 --------------------------
 *
 * Before EMQX 5.9 the broker sends the MQTT user properties as one property
 * "User-Property" whose value is the Erlang term printed with ~0p:
 *   [{<<"app">>,<<"demo">>},{<<"region">>,<<"eu">>}]
 * They are read into the same name -> value table that v3's user_props
 * give, so a script reads them the same way whichever broker calls. Text of
 * another form stays a string. */

struct cursor {
    const char *p;
    char *out; /* scratch for the binary being decoded */
};

static void skip_space(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\n' || *c->p == '\t')
        c->p++;
}

static bool eat(struct cursor *c, const char *token)
{
    skip_space(c);
    size_t n = strlen(token);
    if (strncmp(c->p, token, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* One escape after a backslash inside <<"...">> (Erlang's escapes). */
static bool unescape(struct cursor *c, char **o)
{
    static const char simple[] = "\"\"\\\\''n\nr\rt\ts b\bf\fv\ve\033d\177";
    char ch = *c->p++;
    for (const char *q = simple; *q; q += 2) {
        if (q[0] == ch) {
            *(*o)++ = q[1];
            return true;
        }
    }
    if (ch >= '0' && ch <= '7') {
        int v = ch - '0';
        for (int i = 0; i < 2 && *c->p >= '0' && *c->p <= '7'; i++)
            v = v * 8 + (*c->p++ - '0');
        *(*o)++ = (char)v;
        return v < 256;
    }
    if (ch == 'x' && isxdigit((unsigned char)c->p[0]) && isxdigit((unsigned char)c->p[1])) {
        char hex[3] = {c->p[0], c->p[1], 0};
        *(*o)++ = (char)strtol(hex, NULL, 16);
        c->p += 2;
        return true;
    }
    return false;
}

/* <<>>, <<"text">>, <<"text"/utf8>> or <<1,2,3>>: pushes the bytes. */
static bool push_binary(lua_State *L, struct cursor *c)
{
    if (!eat(c, "<<"))
        return false;
    char *o = c->out;
    if (*c->p == '"') {
        for (c->p++; *c->p != '"'; ) {
            if (!*c->p)
                return false;
            if (*c->p == '\\') {
                c->p++;
                if (!unescape(c, &o))
                    return false;
            } else {
                *o++ = *c->p++;
            }
        }
        c->p++;
        eat(c, "/utf8");
    } else {
        while (isdigit((unsigned char)*c->p)) {
            char *end;
            long v = strtol(c->p, &end, 10);
            if (v > 255)
                return false;
            *o++ = (char)v;
            c->p = end;
            if (!eat(c, ","))
                break;
        }
    }
    if (!eat(c, ">>"))
        return false;
    lua_pushlstring(L, c->out, (size_t)(o - c->out));
    return true;
}

static bool push_erlang_pairs(lua_State *L, const char *text)
{
    int base = lua_gettop(L);
    struct cursor c = {text, lua_newuserdatauv(L, strlen(text) + 1, 0)};
    lua_newtable(L);
    if (!eat(&c, "["))
        goto fail;
    if (!eat(&c, "]")) {
        do {
            if (!eat(&c, "{") || !push_binary(L, &c) || !eat(&c, ",") || !push_binary(L, &c) ||
                !eat(&c, "}"))
                goto fail;
            lua_rawset(L, -3);
        } while (eat(&c, ","));
        if (!eat(&c, "]"))
            goto fail;
    }
    skip_space(&c);
    if (*c.p)
        goto fail;
    lua_remove(L, base + 1); /* the scratch */
    return true;
fail:
    lua_settop(L, base);
    return false;
}

void pb_properties_into(lua_State *L, int index, const ProtobufCFieldDescriptor *field,
                        const ProtobufCMessage *msg)
{
    index = lua_absindex(L, index);
    size_t n = msg ? *(const size_t *)((const char *)msg + field->quantifier_offset) : 0;
    if (n == 0)
        return;
    Emqx__Exhook__V3__Property **props = *(Emqx__Exhook__V3__Property **const *)field_ptr(field, msg);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, props[i]->name);
        if (strcmp(props[i]->name, "User-Property") != 0 ||
            !push_erlang_pairs(L, props[i]->value))
            lua_pushstring(L, props[i]->value);
        lua_rawset(L, index);
    }
}
