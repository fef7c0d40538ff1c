/* One call from request bytes to reply bytes: argument passing, chain
 * semantics across modules, reply building and error statuses. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "exhook.pb-c.h"
#include "exhook_v1.pb-c.h"
#include "fixtures.h"

typedef Emqx__Exhook__V3__ValuedResponse valued;
#define T_CONTINUE EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__CONTINUE
#define T_IGNORE EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__IGNORE
#define T_STOP EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
#define V_BOOL EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT
#define V_MESSAGE EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_MESSAGE
#define TOPIC_RULE "message.topic must be a non-empty topic name without wildcards or NUL bytes"
#define QOS_RULE "message.qos must be 0, 1 or 2"
#define HEADERS_RULE "message.headers must map strings to strings without NUL bytes"

static void call(struct efx *t, enum hook_id hook, const ProtobufCMessage *req)
{
    efx_call(t, hook, req, INT64_MAX);
}

static valued *call_valued(struct efx *t, enum hook_id hook, const ProtobufCMessage *req)
{
    call(t, hook, req);
    if (t->out.status != GRPC_STATUS_OK)
        fail_msg("call failed with %d: %s", t->out.status, t->out.fail.message);
    valued *v = emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data);
    assert_non_null(v);
    return v;
}

/* Reads global `name` of the shared Lua globals as an integer. */
static lua_Integer global_int(struct efx *t, const char *name)
{
    lua_getglobal(t->e.L, name);
    lua_Integer v = lua_tointeger(t->e.L, -1);
    lua_pop(t->e.L, 1);
    return v;
}

static const char *global_str(struct efx *t, const char *name, char *buf, size_t len)
{
    lua_getglobal(t->e.L, name);
    snprintf(buf, len, "%s", lua_isstring(t->e.L, -1) ? lua_tostring(t->e.L, -1) : "(nil)");
    lua_pop(t->e.L, 1);
    return buf;
}

/* ---- requests ---------------------------------------------------------- */

static Emqx__Exhook__V3__ClientInfo client(const char *username)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.node = "emqx@127.0.0.1";
    ci.clientid = "c1";
    ci.username = (char *)username;
    ci.peerhost = "10.0.0.7";
    ci.protocol = "mqtt";
    ci.sockport = 1883;
    return ci;
}

static Emqx__Exhook__V3__RequestMeta meta(void)
{
    Emqx__Exhook__V3__RequestMeta m = EMQX__EXHOOK__V3__REQUEST_META__INIT;
    m.node = "emqx@127.0.0.1";
    m.version = "5.8.0";
    m.sysdescr = "EMQX";
    m.cluster_name = "emqxcl";
    return m;
}

static valued *authenticate(struct efx *t, const char *username)
{
    Emqx__Exhook__V3__ClientInfo ci = client(username);
    Emqx__Exhook__V3__RequestMeta m = meta();
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    r.meta = &m;
    return call_valued(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
}

static const uint8_t payload[] = {'h', 'i', 0, 0xff, '!'};

static Emqx__Exhook__V3__Message__HeadersEntry hdr_user = {
    PROTOBUF_C_MESSAGE_INIT(&emqx__exhook__v3__message__headers_entry__descriptor), "username",
    "u1"};
static Emqx__Exhook__V3__Message__HeadersEntry *hdrs[] = {&hdr_user};

static Emqx__Exhook__V3__Message message(const char *topic)
{
    Emqx__Exhook__V3__Message msg = EMQX__EXHOOK__V3__MESSAGE__INIT;
    msg.node = "emqx@127.0.0.1";
    msg.id = "0005F8F4C1C3A8B0F445000011FF0001";
    msg.qos = 1;
    msg.from = "c1";
    msg.topic = (char *)topic;
    msg.payload.data = (uint8_t *)payload;
    msg.payload.len = sizeof payload;
    msg.timestamp = 1700000000123ULL;
    msg.n_headers = 1;
    msg.headers = hdrs;
    return msg;
}

static valued *publish(struct efx *t, const char *topic)
{
    Emqx__Exhook__V3__Message msg = message(topic);
    Emqx__Exhook__V3__RequestMeta m = meta();
    Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    r.message = &msg;
    r.meta = &m;
    return call_valued(t, HOOK_MESSAGE_PUBLISH, &r.base);
}

static const char *header(const Emqx__Exhook__V3__Message *m, const char *key)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, key) == 0)
            return m->headers[i]->value;
    }
    return NULL;
}

/* The reply carries the whole message: fields the script did not touch are
 * those of the request. */
static void assert_untouched_fields(const Emqx__Exhook__V3__Message *m)
{
    assert_string_equal(m->id, "0005F8F4C1C3A8B0F445000011FF0001");
    assert_string_equal(m->node, "emqx@127.0.0.1");
    assert_string_equal(m->from, "c1");
    assert_int_equal(m->timestamp, 1700000000123ULL);
}

/* ---- verdict hooks ----------------------------------------------------- */

static const char *auth_module = "local M = {}\n"
                                 "function M.on_client_authenticate(ci, result, meta)\n"
                                 "  if ci.username == 'bad' then return false end\n"
                                 "  if ci.username == 'good' then return true end\n"
                                 "  if ci.username == 'soft' then return true, 'continue' end\n"
                                 "end\n"
                                 "return M\n";

static void test_authenticate_true_false_nil_map_to_stop_and_ignore(void **state)
{
    (void)state;
    struct efx *t = efx_open("auth", NULL, "auth.lua", auth_module, NULL);
    valued *v = authenticate(t, "bad");
    assert_int_equal(v->type, T_STOP);
    assert_int_equal(v->value_case, V_BOOL);
    assert_false(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);

    v = authenticate(t, "good");
    assert_int_equal(v->type, T_STOP);
    assert_int_equal(v->value_case, V_BOOL);
    assert_true(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);

    v = authenticate(t, "someone");
    assert_int_equal(v->type, T_IGNORE);
    assert_int_equal(v->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE__NOT_SET);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_authenticate_continue_word_gives_continue(void **state)
{
    (void)state;
    struct efx *t = efx_open("auth", NULL, "auth.lua", auth_module, NULL);
    valued *v = authenticate(t, "soft");
    assert_int_equal(v->type, T_CONTINUE);
    assert_int_equal(v->value_case, V_BOOL);
    assert_true(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_verdict_first_module_with_an_opinion_decides(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b, c", NULL, "a.lua",
        "calls = 0\nfunction on_client_authenticate(ci) _G.order = 'a' end\n", "b.lua",
        "function on_client_authenticate(ci) _G.order = _G.order .. 'b'; return false end\n",
        "c.lua", "function on_client_authenticate(ci) error('c must not be asked') end\n", NULL);
    valued *v = authenticate(t, "x");
    assert_int_equal(v->type, T_STOP);
    assert_false(v->bool_result);
    char buf[64];
    assert_string_equal(global_str(t, "order", buf, sizeof buf), "ab");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_verdict_bad_return_value_is_an_error_naming_the_module(void **state)
{
    (void)state;
    struct efx *t = efx_open("odd", NULL, "odd.lua",
                             "function on_client_authenticate() return 'yes' end\n", NULL);
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    call(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    assert_string_equal(t->out.fail.message,
                        "module 'odd' on_client_authenticate: returned string, nil; expected "
                        "true, false or nil, optionally followed by \"continue\"");
    efx_close(t);
}

static void test_authorize_gets_action_topic_result_and_meta(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "acl", NULL, "acl.lua",
        "function on_client_check_acl(ci, action, topic, result, meta)\n"
        "  _G.seen = table.concat({ci.username, action, topic, tostring(result), meta.node,\n"
        "                          meta.cluster_name}, ' ')\n"
        "  return action == 'subscribe'\n"
        "end\n",
        NULL);
    Emqx__Exhook__V3__ClientInfo ci = client("u1");
    Emqx__Exhook__V3__RequestMeta m = meta();
    Emqx__Exhook__V3__ClientAuthorizeRequest r = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__INIT;
    r.clientinfo = &ci;
    r.meta = &m;
    r.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__SUBSCRIBE;
    r.topic = "t/1";
    r.result = 1;
    valued *v = call_valued(t, HOOK_CLIENT_AUTHORIZE, &r.base);
    assert_int_equal(v->type, T_STOP);
    assert_true(v->bool_result);
    char buf[128];
    assert_string_equal(global_str(t, "seen", buf, sizeof buf),
                        "u1 subscribe t/1 true emqx@127.0.0.1 emqxcl");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);

    r.type = EMQX__EXHOOK__V3__CLIENT_AUTHORIZE_REQUEST__AUTHORIZE_REQ_TYPE__PUBLISH;
    v = call_valued(t, HOOK_CLIENT_AUTHORIZE, &r.base);
    assert_false(v->bool_result);
    assert_string_equal(global_str(t, "seen", buf, sizeof buf),
                        "u1 publish t/1 true emqx@127.0.0.1 emqxcl");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

/* ---- errors ------------------------------------------------------------ */

static void test_runtime_error_answers_unknown_with_module_and_line_then_recovers(void **state)
{
    (void)state;
    struct efx *t = efx_open("boom", NULL, "boom.lua",
                             "function on_client_authenticate(ci)\n"
                             "  if ci.username == 'x' then error('boom') end\n"
                             "  return true\n"
                             "end\n",
                             NULL);
    Emqx__Exhook__V3__ClientInfo ci = client("x");
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    call(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    char expected[512];
    snprintf(expected, sizeof expected, "module 'boom' on_client_authenticate: %s/boom.lua:2: boom",
             t->fx.dir);
    assert_string_equal(t->out.fail.message, expected);
    assert_int_equal(lua_gettop(t->e.L), 0);

    valued *v = authenticate(t, "fine");
    assert_int_equal(v->type, T_STOP);
    assert_true(v->bool_result);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_malformed_request_bytes_answer_invalid_argument(void **state)
{
    (void)state;
    struct efx *t = efx_open("auth", NULL, "auth.lua", auth_module, NULL);
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    dispatch_call(&t->e, HOOK_CLIENT_AUTHENTICATE, 3, junk, sizeof junk, INT64_MAX, &t->out);
    assert_int_equal(t->out.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(t->out.fail.message,
                        "OnClientAuthenticate: malformed ClientAuthenticateRequest (3 bytes)");
    efx_close(t);
}

static void test_empty_request_is_all_defaults(void **state)
{
    (void)state;
    struct efx *t = efx_open("auth", NULL, "auth.lua", auth_module, NULL);
    dispatch_call(&t->e, HOOK_CLIENT_AUTHENTICATE, 3, (const uint8_t *)"", 0, INT64_MAX, &t->out);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    valued *v = emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data);
    assert_int_equal(v->type, T_IGNORE);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

/* ---- message.publish --------------------------------------------------- */

static void test_publish_nil_everywhere_answers_ignore(void **state)
{
    (void)state;
    struct efx *t = efx_open("p", NULL, "p.lua",
                             "function on_message_publish(m) m.topic = 'changed' end\n", NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_IGNORE);
    assert_int_equal(v->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE__NOT_SET);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_table_answers_continue_with_whole_message(void **state)
{
    (void)state;
    struct efx *t = efx_open("p", NULL, "p.lua",
                             "function on_message_publish(m)\n"
                             "  m.topic = 'new/' .. m.topic\n"
                             "  m.headers.stamp = 'yes'\n"
                             "  return m\n"
                             "end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_int_equal(v->value_case, V_MESSAGE);
    const Emqx__Exhook__V3__Message *m = v->message;
    assert_string_equal(m->topic, "new/a/b");
    assert_int_equal(m->qos, 1);
    assert_int_equal(m->payload.len, sizeof payload);
    assert_memory_equal(m->payload.data, payload, sizeof payload);
    assert_string_equal(header(m, "stamp"), "yes");
    assert_string_equal(header(m, "username"), "u1");
    assert_null(header(m, "allow_publish"));
    assert_untouched_fields(m);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_partial_table_keeps_other_fields(void **state)
{
    (void)state;
    struct efx *t = efx_open("p", NULL, "p.lua",
                             "function on_message_publish(m) return {qos = 2, payload = 'x'} end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(v->message->topic, "a/b");
    assert_int_equal(v->message->qos, 2);
    assert_int_equal(v->message->payload.len, 1);
    assert_memory_equal(v->message->payload.data, "x", 1);
    assert_string_equal(header(v->message, "username"), "u1");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_false_drops_with_allow_publish_false(void **state)
{
    (void)state;
    struct efx *t = efx_open("a, b", NULL, "a.lua",
                             "function on_message_publish(m) return false end\n", "b.lua",
                             "function on_message_publish(m) error('not after a drop') end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_STOP);
    assert_int_equal(v->value_case, V_MESSAGE);
    assert_string_equal(v->message->topic, "a/b");
    assert_int_equal(v->message->qos, 1);
    assert_memory_equal(v->message->payload.data, payload, sizeof payload);
    assert_string_equal(header(v->message, "allow_publish"), "false");
    assert_untouched_fields(v->message);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

/* The README's answer to "an error status lets the message through": a
 * handler that catches its check's error and returns false drops it. */
static void test_publish_error_caught_with_pcall_can_drop_the_message(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua",
                             "local function check(m) error('backend down') end\n"
                             "function on_message_publish(message, meta)\n"
                             "  local ok, verdict = pcall(check, message)\n"
                             "  if not ok then return false end\n"
                             "  return verdict\n"
                             "end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    assert_int_equal(v->type, T_STOP);
    assert_string_equal(v->message->topic, "a/b");
    assert_string_equal(header(v->message, "allow_publish"), "false");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_stop_word_stops_the_chain(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b", NULL, "a.lua",
        "function on_message_publish(m) m.payload = 'A'; return m, 'stop' end\n", "b.lua",
        "function on_message_publish(m) error('not after stop') end\n", NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_STOP);
    assert_int_equal(v->message->payload.len, 1);
    assert_memory_equal(v->message->payload.data, "A", 1);
    assert_null(header(v->message, "allow_publish"));
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_chain_passes_changes_on_and_nil_keeps_message(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b, c", NULL, "a.lua",
        "function on_message_publish(m) m.topic = 'x/y'; return m end\n", "b.lua",
        /* changes its copy in place but returns nil: nothing of it stays */
        "function on_message_publish(m) m.payload = 'lost'; m.headers.lost = '1' end\n",
        "c.lua",
        "function on_message_publish(m)\n"
        "  assert(m.topic == 'x/y' and m.payload ~= 'lost' and m.headers.lost == nil)\n"
        "  m.payload = m.topic; return m\n"
        "end\n",
        NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(v->message->topic, "x/y");
    assert_int_equal(v->message->payload.len, 3);
    assert_memory_equal(v->message->payload.data, "x/y", 3);
    assert_null(header(v->message, "lost"));
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

/* The same chain with every handler waiting first: each module goes on
 * from where it was suspended, with the message as the ones before left
 * it, and the verdict chain goes on to the module after a nil. */
static void test_chains_go_on_across_waits(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b, c", NULL, "a.lua",
        "function on_message_publish(m) exhook.sleep(0); m.topic = 'x/y'; return m end\n"
        "function on_client_authenticate() exhook.sleep(0) end\n",
        "b.lua",
        "function on_message_publish(m) exhook.sleep(0.01); m.payload = 'lost' end\n"
        "function on_client_authenticate() exhook.sleep(0.01); return true end\n",
        "c.lua",
        "function on_message_publish(m)\n"
        "  exhook.sleep(0)\n"
        "  assert(m.topic == 'x/y' and m.payload ~= 'lost')\n"
        "  m.payload = m.topic; return m\n"
        "end\n"
        "function on_client_authenticate() error('never reached') end\n",
        NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(v->message->topic, "x/y");
    assert_memory_equal(v->message->payload.data, "x/y", 3);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    v = authenticate(t, "anyone");
    assert_int_equal(v->type, EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN);
    assert_true(v->bool_result);
    assert_int_equal(t->out.verdict, DISPATCH_ALLOW);
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    assert_int_equal(lua_gettop(t->e.L), 0);
    efx_close(t);
}

static size_t header_count(const Emqx__Exhook__V3__Message *m, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_headers; i++)
        n += strcmp(m->headers[i]->key, key) == 0;
    return n;
}

static void test_publish_in_place_edits_without_a_returned_table_never_reach_the_reply(void **state)
{
    (void)state;
    /* A single module gets the message table itself (no copy is needed):
     * its edits must still count only when it returns the table. */
    static const char *const bodies[] = {
        "m.topic = 'leak'; m.payload = 'leak'; m.headers.leak = '1'; return nil, 'stop'",
        "m.topic = 'leak'; m.payload = 'leak'; m.headers.leak = '1'; return false",
    };
    for (size_t i = 0; i < 2; i++) {
        char body[256];
        snprintf(body, sizeof body, "function on_message_publish(m) %s end\n", bodies[i]);
        struct efx *t = efx_open("p", NULL, "p.lua", body, NULL);
        valued *v = publish(t, "a/b");
        assert_int_equal(v->type, T_STOP);
        assert_string_equal(v->message->topic, "a/b");
        assert_int_equal(v->message->payload.len, sizeof payload);
        assert_memory_equal(v->message->payload.data, payload, sizeof payload);
        assert_null(header(v->message, "leak"));
        assert_string_equal(header(v->message, "username"), "u1");
        assert_int_equal(header_count(v->message, "allow_publish"), i == 1);
        assert_untouched_fields(v->message);
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
        efx_close(t);
    }
}

/* The call's status and error after publishing on `topic` with module
 * text `body`; *v is the reply when it succeeded. */
static struct efx *publish_with(const char *body, const char *extra, valued **v)
{
    struct efx *t = efx_open("m", extra, "m.lua", body, NULL);
    Emqx__Exhook__V3__Message msg = message("a/b");
    Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    r.message = &msg;
    call(t, HOOK_MESSAGE_PUBLISH, &r.base);
    *v = t->out.status == GRPC_STATUS_OK
             ? emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data)
             : NULL;
    return t;
}

static void test_publish_in_place_edits_are_checked_or_dropped_like_returned_ones(void **state)
{
    (void)state;
    valued *v;
    /* the message itself returned, with a field removed */
    struct efx *t = publish_with("function on_message_publish(m) m.headers = nil; return m end\n",
                                 NULL, &v);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    assert_string_equal(t->out.fail.message,
                        "module 'm' on_message_publish: message.headers is missing");
    efx_close(t);
    /* the message itself returned, with a header that is not a string */
    t = publish_with("function on_message_publish(m) m.headers[1] = 'v'; return m end\n", NULL,
                     &v);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    assert_string_equal(t->out.fail.message,
                        "module 'm' on_message_publish: message.headers must map strings to "
                        "strings without NUL bytes");
    efx_close(t);
    /* edited in place, another table returned: only the returned fields count */
    t = publish_with("function on_message_publish(m)\n"
                     "  m.qos = 7; m.topic = 'x/#'; m.headers = nil\n"
                     "  return {payload = 'p'}\n"
                     "end\n",
                     NULL, &v);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(v->message->topic, "a/b");
    assert_int_equal(v->message->qos, 1);
    assert_int_equal(v->message->payload.len, 1);
    assert_string_equal(header(v->message, "username"), "u1");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_drop_replaces_an_allow_publish_header(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "p", NULL, "p.lua",
        "function on_message_publish(m)\n"
        "  if m.headers.allow_publish then return false end\n"
        "  m.headers.allow_publish = 'true'; return m, 'continue'\n"
        "end\n",
        NULL);
    /* first the module sets allow_publish = true ... */
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(header(v->message, "allow_publish"), "true");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
    /* ... and a chain where one module sets it and the next drops */
    t = efx_open("a, b", NULL, "a.lua",
                 "function on_message_publish(m) m.headers.allow_publish = 'true'; return m end\n",
                 "b.lua", "function on_message_publish(m) return false end\n", NULL);
    v = publish(t, "a/b");
    assert_int_equal(v->type, T_STOP);
    assert_int_equal(header_count(v->message, "allow_publish"), 1);
    assert_string_equal(header(v->message, "allow_publish"), "false");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_in_place_edits_of_props_do_not_reach_the_next_module(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b", NULL, "a.lua",
        "function on_message_publish(m) m.props.x = 'leak'; m.props['User-Property'].y = 'leak' end\n",
        "b.lua",
        "function on_message_publish(m)\n"
        "  _G.seen = tostring(m.props.x) .. ' ' .. tostring(m.props['User-Property'].y)\n"
        "end\n",
        NULL);
    Emqx__Exhook__V3__Message msg = message("a/b");
    Emqx__Exhook__V3__Property u = EMQX__EXHOOK__V3__PROPERTY__INIT;
    u.name = "k";
    u.value = "v";
    Emqx__Exhook__V3__Property *uprops[] = {&u};
    Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
    r.message = &msg;
    r.n_user_props = 1;
    r.user_props = uprops;
    call(t, HOOK_MESSAGE_PUBLISH, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    char buf[64];
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "nil nil");
    efx_close(t);
}

static void test_publish_invalid_changes_are_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *why;
    } cases[] = {
        {"return {qos = 3}", "message.qos must be 0, 1 or 2"},
        {"return {topic = 'a/#'}", TOPIC_RULE},
        {"return {topic = ''}", TOPIC_RULE},
        {"return {payload = {}}", "message.payload must be a string, got a table"},
        {"return {headers = {x = {}}}", HEADERS_RULE},
        {"return 42", "returned a number; expected a message table, false (drop) or nil"},
        {"return nil, 'later'", "second return value must be \"stop\", \"continue\" or nil"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "function on_message_publish(m) %s end\n", cases[i].body);
        struct efx *t = efx_open("bad", NULL, "bad.lua", body, NULL);
        Emqx__Exhook__V3__Message msg = message("a/b");
        Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
        r.message = &msg;
        call(t, HOOK_MESSAGE_PUBLISH, &r.base);
        char expected[300];
        snprintf(expected, sizeof expected, "module 'bad' on_message_publish: %s", cases[i].why);
        assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
        assert_string_equal(t->out.fail.message, expected);
        efx_close(t);
    }
}

/* ---- what a handler returns, however it is built ------------------------ */

/* Each case is named by the topic it is published on; "fine" is answered
 * with a new payload, to show the state goes on working after each case. */
static const char *odd_module =
    "local cases = {}\n"
    /* The old code read a field three times through __index (checks, merge,
     * packer) and wrote it back through __newindex: the third read differs. */
    "local function third_read(field, early, late)\n"
    "  return function(m)\n"
    "    local reads = 0\n"
    "    m[field] = nil\n"
    "    return setmetatable(m, {\n"
    "      __index = function(_, k)\n"
    "        if k ~= field then return nil end\n"
    "        reads = reads + 1; if reads < 3 then return early end; return late\n"
    "      end,\n"
    "      __newindex = function() end})\n"
    "  end\n"
    "end\n"
    "cases['headers-third-read'] = third_read('headers', {}, 42)\n"
    "cases['qos-third-read'] = third_read('qos', 1, 42)\n"
    "cases['topic-third-read'] = third_read('topic', 'x/y', '')\n"
    "cases['lying-index'] = function(m)\n"
    "  return setmetatable({qos = 2}, {__index = function(_, k)\n"
    "    if k == 'topic' then return '' end; return 42 end})\n"
    "end\n"
    "cases['looping-index'] = function(m)\n"
    "  return setmetatable({}, {__index = function() while true do end end,\n"
    "    __pairs = function() error('never') end, __len = function() error('never') end})\n"
    "end\n"
    "cases['proxy-headers'] = function(m)\n"
    "  return {headers = setmetatable({}, {__index = function() return 'v' end,\n"
    "    __pairs = function() return next, {a = 'b'}, nil end, __len = function() return 9 end})}\n"
    "end\n"
    "cases['userdata-headers'] = function(m) return {headers = io.stdout} end\n"
    "cases['thread'] = function(m) return coroutine.create(print) end\n"
    "cases['userdata'] = function(m) return io.stdout end\n"
    "cases['thread-topic'] = function(m) return {topic = coroutine.create(print)} end\n"
    "cases['cyclic-message'] = function(m) m.self = m; m.props.loop = m; return m end\n"
    "cases['cyclic-headers'] = function(m) local h = {}; h.h = h; return {headers = h} end\n"
    "cases['huge-array'] = function(m)\n"
    "  local t = {qos = 0}; for i = 1, 100000 do t[i] = i end; return t\n"
    "end\n"
    "cases['nul-topic'] = function(m) return {topic = 'a\\0b'} end\n"
    "cases['nul-header-key'] = function(m) return {headers = {['k\\0x'] = 'v'}} end\n"
    "cases['nul-header-value'] = function(m) return {headers = {k = 'v\\0x'}} end\n"
    "cases['nul-payload'] = function(m) return {payload = 'a\\0b'} end\n"
    "cases['nul-chain-word'] = function(m) return m, 'stop\\0x' end\n"
    "cases['non-string-keys'] = function(m)\n"
    "  return {[1] = 'x', [true] = 'y', [2.5] = 'z', qos = 0}\n"
    "end\n"
    "cases['number-header-key'] = function(m) return {headers = {[7] = 'v'}} end\n"
    "cases['number-topic'] = function(m) return {topic = 12} end\n"
    "cases['number-payload'] = function(m) return {payload = 12} end\n"
    "cases['number-headers'] = function(m) return {headers = {i = 7, f = 1.5, e = 2^63}} end\n"
    "cases['qos-fraction'] = function(m) return {qos = 1.5} end\n"
    "cases['qos-negative'] = function(m) return {qos = -1} end\n"
    "cases['qos-42'] = function(m) return {qos = 42} end\n"
    "cases['qos-nan'] = function(m) return {qos = 0/0} end\n"
    "cases['qos-string'] = function(m) return {qos = '1'} end\n"
    "cases['qos-huge'] = function(m) return {qos = math.huge} end\n"
    "cases['qos-mininteger'] = function(m) return {qos = math.mininteger} end\n"
    "cases['qos-integral-float'] = function(m) return {qos = 2.0} end\n"
    "cases['gc'] = function(m)\n"
    "  return setmetatable({payload = 'gc'}, {__gc = function(o)\n"
    "    o.qos = 42; o.topic = ''; _G.collected = true end})\n"
    "end\n"
    "function on_message_publish(m)\n"
    "  local f = cases[m.topic]\n"
    "  if f then return f(m) end\n"
    "  collectgarbage()\n"
    "  return {payload = 'fine'}\n"
    "end\n";

/* The reply's headers as "key=value;" in key order. */
static const char *headers_text(const Emqx__Exhook__V3__Message *m, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    const char *last = "";
    for (size_t k = 0; k < m->n_headers; k++) {
        const Emqx__Exhook__V3__Message__HeadersEntry *next = NULL;
        for (size_t i = 0; i < m->n_headers; i++) {
            const char *key = m->headers[i]->key;
            if (strcmp(key, last) > 0 && (!next || strcmp(key, next->key) < 0))
                next = m->headers[i];
        }
        if (!next)
            break;
        n += (size_t)snprintf(buf + n, len - n, "%s=%s;", next->key, next->value);
        last = next->key;
    }
    return buf;
}

/* The reply to the last call as one line: "<status>: <grpc-message>" for an
 * error, else "<type> topic=<t> qos=<q> payload=<p> headers=<k=v;...>" with
 * bytes outside printable ASCII as \xNN (the fields no script can change
 * are checked to be the request's). */
static const char *describe_reply(struct efx *t, char *buf, size_t len)
{
    if (t->out.status != GRPC_STATUS_OK) {
        snprintf(buf, len, "%d: %.400s", t->out.status, t->out.fail.message);
        return buf;
    }
    valued *v = emqx__exhook__v3__valued_response__unpack(NULL, t->out.len, t->out.data);
    assert_non_null(v);
    static const char *const types[] = {"CONTINUE", "IGNORE", "STOP"};
    size_t n = (size_t)snprintf(buf, len, "%s", types[v->type]);
    if (v->value_case == V_MESSAGE) {
        const Emqx__Exhook__V3__Message *m = v->message;
        assert_untouched_fields(m);
        n += (size_t)snprintf(buf + n, len - n, " topic=%s qos=%u payload=", m->topic, m->qos);
        for (size_t i = 0; i < m->payload.len && n < len; i++) {
            uint8_t c = m->payload.data[i];
            n += (size_t)snprintf(buf + n, len - n, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
        }
        char h[256];
        snprintf(buf + n, len - n, " headers=%s", headers_text(m, h, sizeof h));
    }
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    return buf;
}

static void test_publish_returns_are_read_once_raw_and_sent_as_checked(void **state)
{
    (void)state;
#define BAD "2: module 'm' on_message_publish: "
#define SENT(topic, rest) "CONTINUE topic=" topic " " rest
#define REQUEST_REST "payload=hi\\x00\\xff! headers=username=u1;"
    static const struct {
        const char *topic; /* names the case */
        const char *reply;
    } cases[] = {
        /* the old code sent qos 42, sent an empty topic (and crashed on
         * headers-third-read, the last case) */
        {"qos-third-read", BAD "message.qos is missing"},
        {"topic-third-read", BAD "message.topic is missing"},
        {"lying-index", SENT("lying-index", "qos=2 " REQUEST_REST)},
        {"looping-index", SENT("looping-index", "qos=1 " REQUEST_REST)},
        {"proxy-headers", SENT("proxy-headers", "qos=1 payload=hi\\x00\\xff! headers=")},
        {"userdata-headers", BAD "message.headers must be a table of strings"},
        {"thread", BAD "returned a thread; expected a message table, false (drop) or nil"},
        {"userdata", BAD "returned a userdata; expected a message table, false (drop) or nil"},
        {"thread-topic", BAD TOPIC_RULE},
        {"cyclic-message", SENT("cyclic-message", "qos=1 " REQUEST_REST)},
        {"cyclic-headers", BAD HEADERS_RULE},
        {"huge-array", SENT("huge-array", "qos=0 " REQUEST_REST)},
        {"nul-topic", BAD TOPIC_RULE},
        {"nul-header-key", BAD HEADERS_RULE},
        {"nul-header-value", BAD HEADERS_RULE},
        {"nul-payload", SENT("nul-payload", "qos=1 payload=a\\x00b headers=username=u1;")},
        {"nul-chain-word", BAD "second return value must be \"stop\", \"continue\" or nil"},
        {"non-string-keys", SENT("non-string-keys", "qos=0 " REQUEST_REST)},
        {"number-header-key", BAD HEADERS_RULE},
        {"number-topic", BAD TOPIC_RULE},
        {"number-payload", BAD "message.payload must be a string, got a number"},
        {"number-headers", SENT("number-headers", "qos=1 payload=hi\\x00\\xff! "
                                                  "headers=e=9.2233720368548e+18;f=1.5;i=7;")},
        {"qos-fraction", BAD QOS_RULE},
        {"qos-negative", BAD QOS_RULE},
        {"qos-42", BAD QOS_RULE},
        {"qos-nan", BAD QOS_RULE},
        {"qos-string", BAD QOS_RULE},
        {"qos-huge", BAD QOS_RULE},
        {"qos-mininteger", BAD QOS_RULE},
        {"qos-integral-float", SENT("qos-integral-float", "qos=2 " REQUEST_REST)},
        {"gc", SENT("gc", "qos=1 payload=gc headers=username=u1;")},
        {"headers-third-read", BAD "message.headers is missing"},
    };
#undef BAD
#undef SENT
#undef REQUEST_REST
    /* Off, so that the "gc" case can set a finalizer: scripts' C modules
     * can hand out objects that have one with the sandbox on too. */
    struct efx *t = efx_open("m", "sandbox = false\n", "m.lua", odd_module, NULL);
    int wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Emqx__Exhook__V3__Message msg = message(cases[i].topic);
        Emqx__Exhook__V3__MessagePublishRequest r = EMQX__EXHOOK__V3__MESSAGE_PUBLISH_REQUEST__INIT;
        r.message = &msg;
        call(t, HOOK_MESSAGE_PUBLISH, &r.base);
        char got[512];
        if (strcmp(describe_reply(t, got, sizeof got), cases[i].reply) != 0) {
            print_error("case %s: got\n  %s\nwant\n  %s\n", cases[i].topic, got, cases[i].reply);
            wrong++;
        }
        assert_int_equal(lua_gettop(t->e.L), 0);
        /* the state goes on serving */
        valued *v = publish(t, "fine");
        assert_int_equal(v->type, T_CONTINUE);
        assert_string_equal(v->message->topic, "fine");
        assert_int_equal(v->message->payload.len, 4);
        assert_memory_equal(v->message->payload.data, "fine", 4);
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    }
    assert_int_equal(wrong, 0);
    /* the finalizer of the "gc" case ran, after its table was read */
    lua_getglobal(t->e.L, "collected");
    assert_true(lua_toboolean(t->e.L, -1));
    lua_pop(t->e.L, 1);
    efx_close(t);
}

static void test_publish_huge_headers_table_is_sent_whole(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua",
                             "function on_message_publish(m)\n"
                             "  local h = {}\n"
                             "  for i = 1, 100000 do h['k' .. i] = tostring(i) end\n"
                             "  return {headers = h}\n"
                             "end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_int_equal(v->message->n_headers, 100000);
    assert_string_equal(header(v->message, "k1"), "1");
    assert_string_equal(header(v->message, "k100000"), "100000");
    assert_null(header(v->message, "username"));
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_publish_next_module_sees_what_was_read_not_the_returned_table(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b", NULL, "a.lua",
        "function on_message_publish(m)\n"
        "  return setmetatable({qos = 2, headers = {h = 'v'}},\n"
        "                      {__index = function() return 'x/#' end})\n"
        "end\n",
        "b.lua",
        "function on_message_publish(m)\n"
        "  _G.seen = table.concat({m.topic, m.qos, m.headers.h, tostring(m.headers.username),\n"
        "                          tostring(getmetatable(m))}, ' ')\n"
        "end\n",
        NULL);
    valued *v = publish(t, "a/b");
    assert_int_equal(v->type, T_CONTINUE);
    assert_string_equal(v->message->topic, "a/b");
    assert_int_equal(v->message->qos, 2);
    char buf[64];
    assert_string_equal(headers_text(v->message, buf, sizeof buf), "h=v;");
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "a/b 2 v nil nil");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_verdict_chain_word_with_a_nul_byte_is_refused(void **state)
{
    (void)state;
    struct efx *t = efx_open("v", NULL, "v.lua",
                             "function on_client_authenticate() return true, 'continue\\0x' end\n",
                             NULL);
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    call(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_UNKNOWN);
    assert_string_equal(t->out.fail.message,
                        "module 'v' on_client_authenticate: returned boolean, string; expected "
                        "true, false or nil, optionally followed by \"continue\"");
    efx_close(t);
}

static void test_publish_headers_numbers_become_strings(void **state)
{
    (void)state;
    struct efx *t = efx_open("p", NULL, "p.lua",
                             "function on_message_publish(m) m.headers.n = 7; return m end\n",
                             NULL);
    valued *v = publish(t, "a/b");
    assert_string_equal(header(v->message, "n"), "7");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    efx_close(t);
}

static void test_module_topic_filters_decide_who_sees_a_message(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "only_a, cfg, every", "[topics]\nmessage.publish = cfg/#\n", "only_a.lua",
        "topics = {['message.publish'] = {'a/#'}}\n"
        "function on_message_publish(m) _G.seen = (_G.seen or '') .. 'A' end\n",
        "cfg.lua", "function on_message_publish(m) _G.seen = (_G.seen or '') .. 'C' end\n",
        "every.lua",
        "topics = {['message.publish'] = {'#'}}\n"
        "function on_message_publish(m) _G.seen = (_G.seen or '') .. 'E' end\n",
        NULL);
    char buf[32];
    valued *v = publish(t, "a/1");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "AE");
    lua_pushnil(t->e.L);
    lua_setglobal(t->e.L, "seen");
    v = publish(t, "cfg/1");
    emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "CE");
    efx_close(t);
}

/* ---- notifications and provider hooks ----------------------------------- */

static void test_notify_runs_every_module_and_answers_empty(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b", NULL, "a.lua",
        "function on_client_connected(ci, meta) _G.n = (_G.n or 0) + 1; return false end\n",
        "b.lua",
        "function on_client_connected(ci, meta) _G.n = (_G.n or 0) + 10; _G.who = ci.clientid "
        "end\n",
        NULL);
    Emqx__Exhook__V3__ClientInfo ci = client("u");
    Emqx__Exhook__V3__ClientConnectedRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    r.clientinfo = &ci;
    call(t, HOOK_CLIENT_CONNECTED, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    assert_int_equal(t->out.len, 0); /* EmptySuccess packs to nothing */
    assert_int_equal(global_int(t, "n"), 11);
    char buf[16];
    assert_string_equal(global_str(t, "who", buf, sizeof buf), "c1");
    efx_close(t);
}

static void test_properties_and_user_properties_are_read_by_name(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "props", NULL, "props.lua",
        "function on_client_connect(conninfo, props, meta)\n"
        "  _G.seen = conninfo.clientid .. ' ' .. props['Session-Expiry-Interval'] .. ' ' ..\n"
        "            props['User-Property'].region .. ' ' .. meta.version\n"
        "end\n",
        NULL);
    Emqx__Exhook__V3__ConnInfo ci = EMQX__EXHOOK__V3__CONN_INFO__INIT;
    ci.clientid = "c9";
    Emqx__Exhook__V3__Property p1 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    p1.name = "Session-Expiry-Interval";
    p1.value = "30";
    Emqx__Exhook__V3__Property u1 = EMQX__EXHOOK__V3__PROPERTY__INIT;
    u1.name = "region";
    u1.value = "eu";
    Emqx__Exhook__V3__Property *props[] = {&p1}, *uprops[] = {&u1};
    Emqx__Exhook__V3__RequestMeta m = meta();
    Emqx__Exhook__V3__ClientConnectRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECT_REQUEST__INIT;
    r.conninfo = &ci;
    r.n_props = 1;
    r.props = props;
    r.n_user_props = 1;
    r.user_props = uprops;
    r.meta = &m;
    call(t, HOOK_CLIENT_CONNECT, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    char buf[64];
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "c9 30 eu 5.8.0");
    efx_close(t);
}

static void test_provider_loaded_calls_handler_and_lists_hooks(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "a, b", NULL, "a.lua",
        "topics = {['message.publish'] = {'a/#', 'shared/+'}}\n"
        "function on_provider_loaded(broker, meta) _G.seen = broker.version .. ' ' .. "
        "broker.uptime .. ' ' .. meta.node end\n"
        "function on_message_publish(m) end\n"
        "function on_session_takeovered(ci) end\n",
        "b.lua",
        "return { topics = {['message.publish'] = 'shared/+'},\n"
        "         on_message_publish = function(m) end,\n"
        "         on_client_authenticate = function(ci) end }\n",
        NULL);
    Emqx__Exhook__V3__BrokerInfo b = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    b.version = "5.8.0";
    b.uptime = 123456;
    Emqx__Exhook__V3__RequestMeta m = meta();
    Emqx__Exhook__V3__ProviderLoadedRequest r = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    r.broker = &b;
    r.meta = &m;
    call(t, HOOK_PROVIDER_LOADED, &r.base);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    char buf[64];
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "5.8.0 123456 emqx@127.0.0.1");
    Emqx__Exhook__V3__LoadedResponse *lr =
        emqx__exhook__v3__loaded_response__unpack(NULL, t->out.len, t->out.data);
    assert_non_null(lr);
    assert_int_equal(lr->n_hooks, 3);
    assert_string_equal(lr->hooks[0]->name, "client.authenticate");
    assert_int_equal(lr->hooks[0]->n_topics, 0);
    assert_string_equal(lr->hooks[1]->name, "session.takenover");
    assert_string_equal(lr->hooks[2]->name, "message.publish");
    assert_int_equal(lr->hooks[2]->n_topics, 2);
    assert_string_equal(lr->hooks[2]->topics[0], "a/#");
    assert_string_equal(lr->hooks[2]->topics[1], "shared/+");
    emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);
    efx_close(t);
}

static void test_exhook_log_joins_arguments_and_names_the_module(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua",
                             "function on_client_connected(ci)\n"
                             "  exhook.log('warn', 'hello', 1, true, nil, ci.clientid)\n"
                             "  exhook.log('debug', 'below the level: not written')\n"
                             "end\n",
                             NULL);
    struct capture cap;
    capture_begin(&cap, t->fx.dir);
    Emqx__Exhook__V3__ClientInfo ci = client("u");
    Emqx__Exhook__V3__ClientConnectedRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    r.clientinfo = &ci;
    call(t, HOOK_CLIENT_CONNECTED, &r.base);
    char *text = capture_end(&cap);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    /* one line: "<time> warn  [main] [m] hello 1 true nil c1" */
    assert_true(is_log_timestamp(text));
    assert_string_equal(text + 25, "warn  [main] [m] hello 1 true nil c1\n");
    free(text);
    efx_close(t);
}

static void test_failures_are_logged_with_module_hook_line_and_traceback(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", "call_timeout = 100ms\n", "m.lua",
                             "local function inner() error('boom') end\n"
                             "function on_client_authenticate(ci)\n"
                             "  if ci.username == 'loop' then while true do end end\n"
                             "  inner()\n"
                             "end\n",
                             NULL);
    struct capture cap;
    capture_begin(&cap, t->fx.dir);
    Emqx__Exhook__V3__ClientInfo ci = client("x");
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    call(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
    ci.username = "loop";
    call(t, HOOK_CLIENT_AUTHENTICATE, &r.base);
    char *text = capture_end(&cap);
    char want[512];
    /* the runtime error: module, hook, file:line, then Lua's traceback, its
     * line breaks escaped so that the event stays one log line */
    snprintf(want, sizeof want,
             "error [main] module 'm' on_client_authenticate: %s/m.lua:1: boom (script error)\\n"
             "stack traceback:\\n\\t",
             t->fx.dir);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "%s/m.lua:4: in function", t->fx.dir);
    assert_non_null(strstr(text, want));
    /* the timeout: module, hook and the line where it was stopped */
    snprintf(want, sizeof want,
             "error [main] module 'm' on_client_authenticate: stopped at %s/m.lua:3 after ",
             t->fx.dir);
    assert_non_null(strstr(text, want));
    free(text);
    efx_close(t);
}

static void test_meta_interface_is_v3_for_v3_calls(void **state)
{
    (void)state;
    struct efx *t = efx_open("m", NULL, "m.lua",
                             "function on_client_connected(ci, meta) _G.seen = meta.interface end\n",
                             NULL);
    Emqx__Exhook__V3__ClientConnectedRequest r = EMQX__EXHOOK__V3__CLIENT_CONNECTED_REQUEST__INIT;
    call(t, HOOK_CLIENT_CONNECTED, &r.base);
    char buf[16];
    assert_string_equal(global_str(t, "seen", buf, sizeof buf), "v3");
    efx_close(t);
}

static void test_v1_and_v2_provider_loaded_use_their_generations_names(void **state)
{
    (void)state;
    struct efx *t = efx_open(
        "acl", NULL, "acl.lua",
        "function on_provider_loaded(broker, meta)\n"
        "  _G.seen = tostring(broker.uptime) .. ' ' .. meta.interface\n"
        "end\n"
        "function on_client_check_acl(ci, action, topic) return true end\n"
        "function on_session_takenover(ci) end\n",
        NULL);
    /* EMQX 4.x: uptime is text, and the hooks have their 4.x names. */
    Emqx__Exhook__V1__BrokerInfo b1 = EMQX__EXHOOK__V1__BROKER_INFO__INIT;
    b1.uptime = "3 hours";
    Emqx__Exhook__V1__ProviderLoadedRequest r1 = EMQX__EXHOOK__V1__PROVIDER_LOADED_REQUEST__INIT;
    r1.broker = &b1;
    uint8_t buf[128];
    size_t len = protobuf_c_message_pack(&r1.base, buf);
    dispatch_call(&t->e, HOOK_PROVIDER_LOADED, 1, buf, len, INT64_MAX, &t->out);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    char seen[64];
    assert_string_equal(global_str(t, "seen", seen, sizeof seen), "3 hours v1");
    Emqx__Exhook__V3__LoadedResponse *lr =
        emqx__exhook__v3__loaded_response__unpack(NULL, t->out.len, t->out.data);
    assert_int_equal(lr->n_hooks, 2);
    assert_string_equal(lr->hooks[0]->name, "client.check_acl");
    assert_string_equal(lr->hooks[1]->name, "session.takeovered");
    emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);

    /* EMQX 5.x: uptime in milliseconds, 5.x names. */
    Emqx__Exhook__V3__BrokerInfo b2 = EMQX__EXHOOK__V3__BROKER_INFO__INIT;
    b2.uptime = 5000;
    Emqx__Exhook__V3__ProviderLoadedRequest r2 = EMQX__EXHOOK__V3__PROVIDER_LOADED_REQUEST__INIT;
    r2.broker = &b2;
    len = protobuf_c_message_pack(&r2.base, buf);
    dispatch_call(&t->e, HOOK_PROVIDER_LOADED, 2, buf, len, INT64_MAX, &t->out);
    assert_int_equal(t->out.status, GRPC_STATUS_OK);
    assert_string_equal(global_str(t, "seen", seen, sizeof seen), "5000 v2");
    lr = emqx__exhook__v3__loaded_response__unpack(NULL, t->out.len, t->out.data);
    assert_int_equal(lr->n_hooks, 2);
    assert_string_equal(lr->hooks[0]->name, "client.authorize");
    assert_string_equal(lr->hooks[1]->name, "session.takenover");
    emqx__exhook__v3__loaded_response__free_unpacked(lr, NULL);

    /* A v1 uptime sent to a v2 method does not decode: the types differ. */
    len = protobuf_c_message_pack(&r1.base, buf);
    dispatch_call(&t->e, HOOK_PROVIDER_LOADED, 2, buf, len, INT64_MAX, &t->out);
    assert_int_equal(t->out.status, GRPC_STATUS_INVALID_ARGUMENT);
    efx_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticate_true_false_nil_map_to_stop_and_ignore),
        cmocka_unit_test(test_authenticate_continue_word_gives_continue),
        cmocka_unit_test(test_verdict_first_module_with_an_opinion_decides),
        cmocka_unit_test(test_verdict_bad_return_value_is_an_error_naming_the_module),
        cmocka_unit_test(test_authorize_gets_action_topic_result_and_meta),
        cmocka_unit_test(test_runtime_error_answers_unknown_with_module_and_line_then_recovers),
        cmocka_unit_test(test_malformed_request_bytes_answer_invalid_argument),
        cmocka_unit_test(test_empty_request_is_all_defaults),
        cmocka_unit_test(test_publish_nil_everywhere_answers_ignore),
        cmocka_unit_test(test_publish_table_answers_continue_with_whole_message),
        cmocka_unit_test(test_publish_partial_table_keeps_other_fields),
        cmocka_unit_test(test_publish_false_drops_with_allow_publish_false),
        cmocka_unit_test(test_publish_error_caught_with_pcall_can_drop_the_message),
        cmocka_unit_test(test_publish_stop_word_stops_the_chain),
        cmocka_unit_test(test_publish_chain_passes_changes_on_and_nil_keeps_message),
        cmocka_unit_test(test_chains_go_on_across_waits),
        cmocka_unit_test(test_publish_in_place_edits_without_a_returned_table_never_reach_the_reply),
        cmocka_unit_test(test_publish_drop_replaces_an_allow_publish_header),
        cmocka_unit_test(test_publish_in_place_edits_are_checked_or_dropped_like_returned_ones),
        cmocka_unit_test(test_publish_in_place_edits_of_props_do_not_reach_the_next_module),
        cmocka_unit_test(test_publish_invalid_changes_are_errors),
        cmocka_unit_test(test_publish_headers_numbers_become_strings),
        cmocka_unit_test(test_publish_returns_are_read_once_raw_and_sent_as_checked),
        cmocka_unit_test(test_publish_huge_headers_table_is_sent_whole),
        cmocka_unit_test(test_publish_next_module_sees_what_was_read_not_the_returned_table),
        cmocka_unit_test(test_verdict_chain_word_with_a_nul_byte_is_refused),
        cmocka_unit_test(test_module_topic_filters_decide_who_sees_a_message),
        cmocka_unit_test(test_notify_runs_every_module_and_answers_empty),
        cmocka_unit_test(test_properties_and_user_properties_are_read_by_name),
        cmocka_unit_test(test_provider_loaded_calls_handler_and_lists_hooks),
        cmocka_unit_test(test_exhook_log_joins_arguments_and_names_the_module),
        cmocka_unit_test(test_v1_and_v2_provider_loaded_use_their_generations_names),
        cmocka_unit_test(test_failures_are_logged_with_module_hook_line_and_traceback),
        cmocka_unit_test(test_meta_interface_is_v3_for_v3_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
