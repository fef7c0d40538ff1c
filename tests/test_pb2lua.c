#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exhook.pb-c.h"
#include "hooks.h"
#include "pb2lua.h"

/* ---- helpers ---------------------------------------------------------- */

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();

    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

/* Runs `chunk` (a list of assert(...) lines) and fails the test with Lua's
 * message if one of them does not hold. */
static void run_checks(lua_State *L, const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("Lua check failed: %s", lua_tostring(L, -1));
}

/* Pushes the table of `msg` and names it `global`. */
static void set_table(lua_State *L, const char *global, const ProtobufCMessage *msg)
{
    int top = lua_gettop(L);

    pb_to_lua_table(L, msg->descriptor, msg);
    assert_int_equal(lua_gettop(L), top + 1);
    assert_int_equal(lua_type(L, -1), LUA_TTABLE);
    lua_setglobal(L, global);
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);

    if (!f)
        fail_msg("%s has no field '%s'", d->name, name);
    return f;
}

/* ---- ClientInfo, ConnInfo, Message ------------------------------------- */

static void test_clientinfo_all_13_fields_become_named_values(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    lua_State *L = new_state();

    ci.node = "emqx@127.0.0.1";
    ci.clientid = "c-1";
    ci.username = "alice";
    ci.password = "secret";
    ci.peerhost = "10.0.0.7";
    ci.sockport = 1883;
    ci.protocol = "mqtt";
    ci.mountpoint = "mnt/";
    ci.is_superuser = 1;
    ci.anonymous = 0;
    ci.cn = "CN=alice";
    ci.dn = "DN=alice";
    ci.peerport = 4294967295u;
    set_table(L, "ci", &ci.base);
    run_checks(L,
               "local n = 0 for _ in pairs(ci) do n = n + 1 end\n"
               "assert(n == 13, 'fields: ' .. n)\n"
               "assert(ci.node == 'emqx@127.0.0.1')\n"
               "assert(ci.clientid == 'c-1')\n"
               "assert(ci.username == 'alice')\n"
               "assert(ci.password == 'secret')\n"
               "assert(ci.peerhost == '10.0.0.7')\n"
               "assert(math.type(ci.sockport) == 'integer' and ci.sockport == 1883)\n"
               "assert(ci.protocol == 'mqtt')\n"
               "assert(ci.mountpoint == 'mnt/')\n"
               "assert(ci.is_superuser == true)\n"
               "assert(ci.anonymous == false)\n"
               "assert(ci.cn == 'CN=alice')\n"
               "assert(ci.dn == 'DN=alice')\n"
               "assert(math.type(ci.peerport) == 'integer' and ci.peerport == 4294967295)\n");
    lua_close(L);
}

static void test_conninfo_all_9_fields_become_named_values(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ConnInfo c = EMQX__EXHOOK__V3__CONN_INFO__INIT;
    lua_State *L = new_state();

    c.node = "emqx@host";
    c.clientid = "dev-9";
    c.username = "bob";
    c.peerhost = "192.168.1.2";
    c.sockport = 8883;
    c.proto_name = "MQTT";
    c.proto_ver = "5";
    c.keepalive = 60;
    c.peerport = 50123;
    set_table(L, "c", &c.base);
    run_checks(L,
               "local n = 0 for _ in pairs(c) do n = n + 1 end\n"
               "assert(n == 9, 'fields: ' .. n)\n"
               "assert(c.node == 'emqx@host')\n"
               "assert(c.clientid == 'dev-9')\n"
               "assert(c.username == 'bob')\n"
               "assert(c.peerhost == '192.168.1.2')\n"
               "assert(math.type(c.sockport) == 'integer' and c.sockport == 8883)\n"
               "assert(c.proto_name == 'MQTT')\n"
               "assert(c.proto_ver == '5')\n"
               "assert(math.type(c.keepalive) == 'integer' and c.keepalive == 60)\n"
               "assert(math.type(c.peerport) == 'integer' and c.peerport == 50123)\n");
    lua_close(L);
}

static void test_message_binary_payload_integer_timestamp_and_headers_table(void **state)
{
    (void)state;
    static uint8_t payload[] = {'a', 0, 'b', 0, 0xff};
    Emqx__Exhook__V3__Message m = EMQX__EXHOOK__V3__MESSAGE__INIT;
    Emqx__Exhook__V3__Message__HeadersEntry h1 = EMQX__EXHOOK__V3__MESSAGE__HEADERS_ENTRY__INIT;
    Emqx__Exhook__V3__Message__HeadersEntry h2 = EMQX__EXHOOK__V3__MESSAGE__HEADERS_ENTRY__INIT;
    Emqx__Exhook__V3__Message__HeadersEntry *headers[] = {&h1, &h2};
    lua_State *L = new_state();

    m.node = "emqx@host";
    m.id = "0005F1";
    m.qos = 2;
    m.from = "pub-1";
    m.topic = "t/1";
    m.payload.data = payload;
    m.payload.len = sizeof payload;
    m.timestamp = 1700000000123ull;
    h1.key = "username";
    h1.value = "alice";
    h2.key = "peerhost";
    h2.value = "10.0.0.1";
    m.n_headers = 2;
    m.headers = headers;
    set_table(L, "m", &m.base);
    run_checks(L,
               "assert(m.node == 'emqx@host')\n"
               "assert(m.id == '0005F1')\n"
               "assert(math.type(m.qos) == 'integer' and m.qos == 2)\n"
               "assert(m.from == 'pub-1')\n"
               "assert(m.topic == 't/1')\n"
               "assert(type(m.payload) == 'string')\n"
               "assert(#m.payload == 5, 'payload length ' .. #m.payload)\n"
               "assert(m.payload == 'a\\0b\\0\\255')\n"
               "assert(math.type(m.timestamp) == 'integer')\n"
               "assert(m.timestamp == 1700000000123)\n"
               "assert(type(m.headers) == 'table')\n"
               "local n = 0 for _ in pairs(m.headers) do n = n + 1 end\n"
               "assert(n == 2)\n"
               "assert(m.headers.username == 'alice')\n"
               "assert(m.headers.peerhost == '10.0.0.1')\n");
    lua_close(L);
}

/* ---- repeated fields ---------------------------------------------------- */

static void test_repeated_property_becomes_table_keyed_by_name(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientConnectRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECT_REQUEST__INIT;
    Emqx__Exhook__V3__Property p1 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    Emqx__Exhook__V3__Property p2 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    Emqx__Exhook__V3__Property *props[] = {&p1, &p2};
    lua_State *L = new_state();

    p1.name = "Session-Expiry-Interval";
    p1.value = "30";
    p2.name = "Receive-Maximum";
    p2.value = "10";
    r.n_props = 2;
    r.props = props;

    pb_field_to_lua(L, field_of(r.base.descriptor, "props"), &r.base);
    lua_setglobal(L, "props");
    set_table(L, "req", &r.base);
    run_checks(L,
               "local n = 0 for _ in pairs(props) do n = n + 1 end\n"
               "assert(n == 2)\n"
               "assert(props['Session-Expiry-Interval'] == '30')\n"
               "assert(props['Receive-Maximum'] == '10')\n"
               "assert(props[1] == nil)\n"
               "assert(req.props['Receive-Maximum'] == '10')\n"
               "assert(type(req.user_props) == 'table' and next(req.user_props) == nil)\n");
    lua_close(L);
}

/* The props of a v2 ClientConnectRequest with one User-Property whose value
 * is `text`, as global `props`. */
static lua_State *user_property_as_sent(const char *text)
{
    Emqx__Exhook__V3__ClientConnectRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECT_REQUEST__INIT;
    Emqx__Exhook__V3__Property p1 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    Emqx__Exhook__V3__Property *props[] = {&p1};
    p1.name = "User-Property";
    p1.value = (char *)text;
    r.n_props = 1;
    r.props = props;
    lua_State *L = new_state();
    pb_field_to_lua(L, field_of(r.base.descriptor, "props"), &r.base);
    lua_setglobal(L, "props");
    return L;
}

static void test_user_properties_printed_by_brokers_before_5_9_become_a_table(void **state)
{
    (void)state;
    lua_State *L = user_property_as_sent(
        "[{<<\"app\">>,<<\"demo\">>},{<<\"region\">>,<<\"eu\">>}]");
    run_checks(L, "local u = props['User-Property']\n"
                  "assert(type(u) == 'table', type(u))\n"
                  "assert(u.app == 'demo' and u.region == 'eu')\n");
    lua_close(L);

    /* escapes, a UTF-8 binary, a binary of bytes, an empty binary */
    L = user_property_as_sent("[{<<\"k\\\"q\">>,<<\"a\\\\b\\n\">>},"
                              "{<<\"caf\xc3\xa9\"/utf8>>,<<1,2,255>>},{<<\"e\">>,<<>>}]");
    run_checks(L, "local u = props['User-Property']\n"
                  "assert(u['k\"q'] == 'a\\\\b\\n')\n"
                  "assert(u['caf\\195\\169'] == '\\1\\2\\255')\n"
                  "assert(u.e == '')\n");
    lua_close(L);

    L = user_property_as_sent("[]");
    run_checks(L, "assert(next(props['User-Property']) == nil)\n");
    lua_close(L);
}

static void test_user_property_text_of_another_form_stays_a_string(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "[{<<\"a\">>}]", "[{<<\"a\">>,<<\"b\">>}", "plain", "[{<<\"a\">>,<<\"b\\q\">>}]",
        "[{<<\"a\">>,<<256>>}]", "[{<<\"a\">>,<<\"b\">>}] trailing",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        lua_State *L = user_property_as_sent(texts[i]);
        lua_pushstring(L, texts[i]);
        lua_setglobal(L, "sent");
        run_checks(L, "assert(props['User-Property'] == sent, tostring(props['User-Property']))\n");
        lua_close(L);
    }
}

static void test_topic_filters_array_takes_qos_from_subopts_else_legacy_field(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientSubscribeRequest r = EMQX__EXHOOK__V3__CLIENT_SUBSCRIBE_REQUEST__INIT;
    Emqx__Exhook__V3__TopicFilter tf1 = EMQX__EXHOOK__V3__TOPIC_FILTER__INIT;
    Emqx__Exhook__V3__TopicFilter tf2 = EMQX__EXHOOK__V3__TOPIC_FILTER__INIT;
    Emqx__Exhook__V3__SubOpts so = EMQX__EXHOOK__V3__SUB_OPTS__INIT;
    Emqx__Exhook__V3__TopicFilter *tfs[] = {&tf1, &tf2};
    lua_State *L = new_state();

    /* EMQX 5.4+: the QoS is in subopts, field 2 stays 0. */
    tf1.name = "new/+";
    tf1.qos = 0;
    so.qos = 2;
    so.rh = 1;
    so.rap = 1;
    so.nl = 1;
    tf1.subopts = &so;
    /* EMQX 5.0 - 5.3: only field 2. */
    tf2.name = "old/#";
    tf2.qos = 1;
    r.n_topic_filters = 2;
    r.topic_filters = tfs;

    pb_field_to_lua(L, field_of(r.base.descriptor, "topic_filters"), &r.base);
    lua_setglobal(L, "tf");
    run_checks(L,
               "assert(#tf == 2)\n"
               "assert(tf[1].name == 'new/+')\n"
               "assert(math.type(tf[1].qos) == 'integer' and tf[1].qos == 2)\n"
               "assert(tf[1].subopts.qos == 2)\n"
               "assert(tf[1].subopts.rh == 1 and tf[1].subopts.rap == 1)\n"
               "assert(tf[1].subopts.nl == 1)\n"
               "assert(tf[2].name == 'old/#')\n"
               "assert(math.type(tf[2].qos) == 'integer' and tf[2].qos == 1)\n"
               "assert(type(tf[2].subopts) == 'table')\n"
               "assert(tf[2].subopts.qos == 1 and tf[2].subopts.share == '')\n");
    lua_close(L);
}

static void test_subopts_carry_legacy_share(void **state)
{
    (void)state;
    Emqx__Exhook__V3__SessionSubscribedRequest r =
        EMQX__EXHOOK__V3__SESSION_SUBSCRIBED_REQUEST__INIT;
    Emqx__Exhook__V3__SubOpts so = EMQX__EXHOOK__V3__SUB_OPTS__INIT;
    lua_State *L = new_state();

    so.qos = 1;
    so.share = "group1";
    so.rh = 2;
    so.rap = 0;
    so.nl = 1;
    r.topic = "t/#";
    r.subopts = &so;
    set_table(L, "r", &r.base);
    run_checks(L,
               "assert(r.topic == 't/#')\n"
               "assert(r.subopts.share == 'group1')\n"
               "assert(r.subopts.qos == 1 and r.subopts.rh == 2)\n"
               "assert(r.subopts.rap == 0 and r.subopts.nl == 1)\n"
               "assert(type(r.clientinfo) == 'table' and r.clientinfo.clientid == '')\n");
    lua_close(L);
}

/* ---- enums, int64 ----------------------------------------------------- */

static void test_authorize_type_enum_becomes_publish_or_subscribe(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientAuthorizeRequest r = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__INIT;
    const ProtobufCFieldDescriptor *type = field_of(r.base.descriptor, "type");
    lua_State *L = new_state();

    r.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__PUBLISH;
    r.topic = "a/b";
    r.result = 1;
    pb_field_to_lua(L, type, &r.base);
    assert_int_equal(lua_type(L, -1), LUA_TSTRING);
    assert_string_equal(lua_tostring(L, -1), "publish");
    lua_pop(L, 1);

    r.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__SUBSCRIBE;
    pb_field_to_lua(L, type, &r.base);
    assert_int_equal(lua_type(L, -1), LUA_TSTRING);
    assert_string_equal(lua_tostring(L, -1), "subscribe");
    lua_pop(L, 1);

    set_table(L, "r", &r.base);
    run_checks(L,
               "assert(r.type == 'subscribe')\n"
               "assert(r.topic == 'a/b')\n"
               "assert(r.result == true)\n");

    /* An absent request gives the first enum value. */
    pb_field_to_lua(L, type, NULL);
    assert_string_equal(lua_tostring(L, -1), "publish");
    lua_pop(L, 1);
    assert_int_equal(lua_gettop(L), 0);
    lua_close(L);
}

static void test_broker_info_uptime_is_int64_integer(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ProviderLoadedRequest r = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    Emqx__Exhook__V3__BrokerInfo b = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    lua_State *L = new_state();

    b.version = "5.8.0";
    b.sysdescr = "EMQX";
    /* 2^53 + 1: exact only as an integer, never as a double. */
    b.uptime = 9007199254740993ll;
    b.datetime = "2024-01-02T03:04:05Z";
    r.broker = &b;
    set_table(L, "r", &r.base);
    run_checks(L,
               "assert(r.broker.version == '5.8.0')\n"
               "assert(r.broker.sysdescr == 'EMQX')\n"
               "assert(math.type(r.broker.uptime) == 'integer')\n"
               "assert(r.broker.uptime == 9007199254740993)\n"
               "assert(r.broker.datetime == '2024-01-02T03:04:05Z')\n");

    b.uptime = -5;
    pb_field_to_lua(L, field_of(r.base.descriptor, "broker"), &r.base);
    lua_getfield(L, -1, "uptime");
    assert_true(lua_isinteger(L, -1));
    assert_int_equal(lua_tointeger(L, -1), -5);
    lua_close(L);
}

/* ---- absent values ------------------------------------------------------ */

static void test_absent_submessage_gives_table_of_defaults(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientConnectedRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    Emqx__Exhook__V3__MessagePublishRequest p = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    lua_State *L = new_state();

    assert_null(r.clientinfo);
    set_table(L, "r", &r.base);
    pb_field_to_lua(L, field_of(r.base.descriptor, "clientinfo"), &r.base);
    lua_setglobal(L, "ci");
    set_table(L, "p", &p.base);
    pb_to_lua_table(L, &emqx__exhook__v3__client_subscribe_request__descriptor, NULL);
    lua_setglobal(L, "sub");
    run_checks(L,
               "for _, c in ipairs({r.clientinfo, ci}) do\n"
               "  local n = 0 for _ in pairs(c) do n = n + 1 end\n"
               "  assert(n == 13, 'fields: ' .. n)\n"
               "  for _, k in ipairs({'node', 'clientid', 'username', 'password', 'peerhost',\n"
               "                      'protocol', 'mountpoint', 'cn', 'dn'}) do\n"
               "    assert(c[k] == '', k)\n"
               "  end\n"
               "  assert(math.type(c.sockport) == 'integer' and c.sockport == 0)\n"
               "  assert(math.type(c.peerport) == 'integer' and c.peerport == 0)\n"
               "  assert(c.is_superuser == false and c.anonymous == false)\n"
               "end\n"
               "assert(r.meta.node == '' and r.meta.cluster_name == '')\n"
               "local m = p.message\n"
               "assert(m.topic == '' and m.payload == '')\n"
               "assert(math.type(m.timestamp) == 'integer' and m.timestamp == 0)\n"
               "assert(type(m.headers) == 'table' and next(m.headers) == nil)\n"
               "assert(next(p.props) == nil and next(p.user_props) == nil)\n"
               "assert(type(sub.topic_filters) == 'table' and #sub.topic_filters == 0)\n"
               "assert(next(sub.topic_filters) == nil and next(sub.props) == nil)\n"
               "assert(sub.clientinfo.username == '')\n");
    lua_close(L);
}

static void test_properties_into_adds_entries_to_existing_table(void **state)
{
    (void)state;
    Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    Emqx__Exhook__V3__Property p1 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    Emqx__Exhook__V3__Property p2 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    Emqx__Exhook__V3__Property *props[] = {&p1, &p2};
    const ProtobufCFieldDescriptor *f = field_of(r.base.descriptor, "user_props");
    lua_State *L = new_state();

    p1.name = "k1";
    p1.value = "v1";
    p2.name = "existing";
    p2.value = "replaced";
    r.n_user_props = 2;
    r.user_props = props;

    lua_newtable(L);
    lua_pushliteral(L, "kept");
    lua_setfield(L, -2, "old");
    lua_pushliteral(L, "before");
    lua_setfield(L, -2, "existing");
    lua_pushinteger(L, 99); /* the table is not at the top: relative index */
    pb_properties_into(L, -2, f, &r.base);
    assert_int_equal(lua_gettop(L), 2);
    lua_pop(L, 1);
    /* An absent message adds nothing. */
    pb_properties_into(L, -1, f, NULL);
    assert_int_equal(lua_gettop(L), 1);
    lua_setglobal(L, "t");
    run_checks(L,
               "local n = 0 for _ in pairs(t) do n = n + 1 end\n"
               "assert(n == 3, 'entries: ' .. n)\n"
               "assert(t.old == 'kept')\n"
               "assert(t.k1 == 'v1')\n"
               "assert(t.existing == 'replaced')\n");
    lua_close(L);
}

/* ---- every request type -------------------------------------------------- */

/* A generic filler: strings = field name, integers = field id, bools = true,
 * bytes = "b\0b", enums = their last value, nested messages to depth 3,
 * repeated fields with 2 elements. */
#define FILL_DEPTH 3
static const uint8_t BYTES_VALUE[3] = {'b', 0, 'b'};

static ProtobufCMessage *new_filled(const ProtobufCMessageDescriptor *d, int depth);

/* `repeated` message elements are always created; singular ones only while
 * depth < FILL_DEPTH (depth is that of the message holding the field). */
static void fill_value(const ProtobufCFieldDescriptor *f, void *p, int depth, int repeated)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)p = (int32_t)f->id;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)p = f->id;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)p = f->id;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = f->id;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)p = (float)f->id;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)p = f->id;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)p = ed->values[ed->n_values - 1].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = strdup(f->name);
        assert_non_null(*(char **)p);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->data = malloc(sizeof BYTES_VALUE);
        assert_non_null(b->data);
        memcpy(b->data, BYTES_VALUE, sizeof BYTES_VALUE);
        b->len = sizeof BYTES_VALUE;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p =
            repeated || depth < FILL_DEPTH ? new_filled(f->descriptor, depth + 1) : NULL;
        break;
    }
}

static ProtobufCMessage *new_filled(const ProtobufCMessageDescriptor *d, int depth)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);

    assert_non_null(m);
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *p = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t size = pb_element_size(f->type);
            char *arr = calloc(2, size);
            assert_non_null(arr);
            for (int k = 0; k < 2; k++)
                fill_value(f, arr + k * size, depth, 1);
            *(size_t *)((char *)m + f->quantifier_offset) = 2;
            *(void **)p = arr;
        } else {
            fill_value(f, p, depth, 0);
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        }
    }
    return m;
}

static void check_message(lua_State *L, const ProtobufCMessageDescriptor *d, int depth,
                          const char *path);

/* Checks one element of field `f` (held by a message at `depth`) at the top. */
static void check_element(lua_State *L, const ProtobufCFieldDescriptor *f, int depth,
                          int repeated, const char *path)
{
    int t = lua_type(L, -1);

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!lua_isinteger(L, -1))
            fail_msg("%s: expected an integer, got a %s", path, lua_typename(L, t));
        /* TopicFilter.qos is overridden by subopts.qos (SubOpts field 1). */
        if (f->descriptor == NULL && strcmp(path + strlen(path) - 4, ".qos") == 0 &&
            strstr(path, "topic_filters") && !strstr(path, "subopts"))
            assert_int_equal(lua_tointeger(L, -1), 1);
        else
            assert_int_equal(lua_tointeger(L, -1), f->id);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (t != LUA_TNUMBER)
            fail_msg("%s: expected a number, got a %s", path, lua_typename(L, t));
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (t != LUA_TBOOLEAN)
            fail_msg("%s: expected a boolean, got a %s", path, lua_typename(L, t));
        assert_true(lua_toboolean(L, -1));
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        char want[64];
        size_t i = 0;
        for (const char *s = ed->values[ed->n_values - 1].name; *s && i < sizeof want - 1; s++)
            want[i++] = (char)tolower((unsigned char)*s);
        want[i] = '\0';
        if (t != LUA_TSTRING)
            fail_msg("%s: expected a string, got a %s", path, lua_typename(L, t));
        assert_string_equal(lua_tostring(L, -1), want);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (t != LUA_TSTRING)
            fail_msg("%s: expected a string, got a %s", path, lua_typename(L, t));
        assert_string_equal(lua_tostring(L, -1), f->name);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        size_t len = 0;
        if (t != LUA_TSTRING)
            fail_msg("%s: expected a string, got a %s", path, lua_typename(L, t));
        const char *s = lua_tolstring(L, -1, &len);
        assert_int_equal(len, sizeof BYTES_VALUE);
        assert_memory_equal(s, BYTES_VALUE, sizeof BYTES_VALUE);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (t != LUA_TTABLE)
            fail_msg("%s: expected a table, got a %s", path, lua_typename(L, t));
        if (repeated || depth < FILL_DEPTH)
            check_message(L, f->descriptor, depth + 1, path);
        break;
    }
}

static size_t count_entries(lua_State *L, int index)
{
    size_t n = 0;

    index = lua_absindex(L, index);
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* Checks the value of field `f` (held by a message at `depth`) at the top. */
static void check_field(lua_State *L, const ProtobufCFieldDescriptor *f, int depth,
                        const char *path)
{
    char sub[512];

    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        check_element(L, f, depth, 0, path);
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        fail_msg("%s: expected a table, got a %s", path, luaL_typename(L, -1));
    if (f->descriptor == &emqx__exhook__v3__property__descriptor) {
        /* Both elements are {name = "name", value = "value"}. */
        assert_int_equal(count_entries(L, -1), 1);
        lua_getfield(L, -1, "name");
        assert_string_equal(lua_tostring(L, -1), "value");
        lua_pop(L, 1);
        return;
    }
    if (f->descriptor == &emqx__exhook__v3__message__headers_entry__descriptor) {
        assert_int_equal(count_entries(L, -1), 1);
        lua_getfield(L, -1, "key");
        assert_string_equal(lua_tostring(L, -1), "value");
        lua_pop(L, 1);
        return;
    }
    assert_int_equal(lua_rawlen(L, -1), 2);
    assert_int_equal(count_entries(L, -1), 2);
    for (int k = 1; k <= 2; k++) {
        /* A cut path would name the wrong field in a failure message. */
        if (snprintf(sub, sizeof sub, "%s[%d]", path, k) >= (int)sizeof sub)
            fail_msg("field path too long: %s", path);
        lua_rawgeti(L, -1, k);
        check_element(L, f, depth, 1, sub);
        lua_pop(L, 1);
    }
}

static void check_message(lua_State *L, const ProtobufCMessageDescriptor *d, int depth,
                          const char *path)
{
    char sub[512];

    assert_int_equal(count_entries(L, -1), d->n_fields);
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (snprintf(sub, sizeof sub, "%s.%s", path, d->fields[i].name) >= (int)sizeof sub)
            fail_msg("field path too long: %s", path);
        lua_getfield(L, -1, d->fields[i].name);
        check_field(L, &d->fields[i], depth, sub);
        lua_pop(L, 1);
    }
}

static int expected_lua_type(const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return LUA_TTABLE;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_ENUM:
        return LUA_TSTRING;
    case PROTOBUF_C_TYPE_BOOL:
        return LUA_TBOOLEAN;
    default:
        return LUA_TNUMBER;
    }
}

static void test_every_request_type_converts_each_handler_argument(void **state)
{
    (void)state;
    lua_State *L = new_state();
    int checked = 0;

    for (int h = 0; h < HOOK_COUNT; h++) {
        const struct hook_def *d = &hook_defs[h];
        ProtobufCMessage *filled = new_filled(d->request, 1);
        size_t len = protobuf_c_message_get_packed_size(filled);
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(filled, buf), len);
        ProtobufCMessage *msg = protobuf_c_message_unpack(d->request, NULL, len, buf);
        free(buf);
        protobuf_c_message_free_unpacked(filled, NULL);
        if (!msg)
            fail_msg("%s: the filled request does not unpack", d->rpc);

        const char *names[HOOK_MAX_ARGS + 1];
        int n = 0;
        for (int a = 0; a < HOOK_MAX_ARGS && d->args[a]; a++)
            names[n++] = d->args[a];
        names[n++] = "meta";
        for (int a = 0; a < n; a++) {
            char path[256];
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field_by_name(d->request, names[a]);
            if (!f)
                fail_msg("%s: request %s has no field '%s'", d->rpc, d->request->name, names[a]);
            snprintf(path, sizeof path, "%s.%s", d->rpc, names[a]);
            pb_field_to_lua(L, f, msg);
            assert_int_equal(lua_gettop(L), 1);
            int want = expected_lua_type(f);
            if (lua_type(L, -1) != want)
                fail_msg("%s: expected a %s, got a %s", path, lua_typename(L, want),
                         luaL_typename(L, -1));
            if (want == LUA_TNUMBER && !lua_isinteger(L, -1))
                fail_msg("%s: expected an integer", path);
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                assert_string_equal(lua_tostring(L, -1), f->name);
            }
            check_field(L, f, 1, path);
            lua_pop(L, 1);
            checked++;
        }

        /* The whole request converts the same way. */
        pb_to_lua_table(L, d->request, msg);
        check_message(L, d->request, 1, d->rpc);
        lua_pop(L, 1);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    /* 21 metas plus the 39 argument names listed in hook_defs. */
    assert_int_equal(checked, 60);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clientinfo_all_13_fields_become_named_values),
        cmocka_unit_test(test_conninfo_all_9_fields_become_named_values),
        cmocka_unit_test(test_message_binary_payload_integer_timestamp_and_headers_table),
        cmocka_unit_test(test_repeated_property_becomes_table_keyed_by_name),
        cmocka_unit_test(test_user_properties_printed_by_brokers_before_5_9_become_a_table),
        cmocka_unit_test(test_user_property_text_of_another_form_stays_a_string),
        cmocka_unit_test(test_topic_filters_array_takes_qos_from_subopts_else_legacy_field),
        cmocka_unit_test(test_subopts_carry_legacy_share),
        cmocka_unit_test(test_authorize_type_enum_becomes_publish_or_subscribe),
        cmocka_unit_test(test_broker_info_uptime_is_int64_integer),
        cmocka_unit_test(test_absent_submessage_gives_table_of_defaults),
        cmocka_unit_test(test_properties_into_adds_entries_to_existing_table),
        cmocka_unit_test(test_every_request_type_converts_each_handler_argument),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
