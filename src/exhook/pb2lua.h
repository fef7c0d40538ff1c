#ifndef EXHOOKD_PB2LUA_H
#define EXHOOKD_PB2LUA_H

/* Turns decoded protobuf-c messages into Lua values, driven only by the
 * generated descriptors, so one walker serves every request type:
 *
 *   string, bytes      -> string (bytes are binary-safe)
 *   integer types      -> integer; bool -> boolean
 *   enum               -> lower-case value name ("publish", "subscribe")
 *   message            -> table keyed by field name; an absent message gives a
 *                         table of default values, so `clientinfo.username` is
 *                         always safe to read
 *   repeated           -> array
 *   map<string,string> -> table key -> value
 *   repeated Property  -> table name -> value (MQTT properties read by name)
 *   TopicFilter        -> also carries `qos` from `subopts` when the broker
 *                         sent subopts (EMQX 5.4+), so `qos` is always there
 */

#include <lua.h>
#include <protobuf-c/protobuf-c.h>

/* Pushes a table for `msg` of type `desc`; msg NULL pushes the defaults. */
void pb_to_lua_table(lua_State *L, const ProtobufCMessageDescriptor *desc,
                     const ProtobufCMessage *msg);

/* Pushes the Lua value of one field of `msg` (which may be NULL). */
void pb_field_to_lua(lua_State *L, const ProtobufCFieldDescriptor *field,
                     const ProtobufCMessage *msg);

/* Adds the entries of repeated Property field `field` of `msg` to the table
 * at `index`, keyed by name (used to gather v3 user_props). */
void pb_properties_into(lua_State *L, int index, const ProtobufCFieldDescriptor *field,
                        const ProtobufCMessage *msg);

/* Size of one element of a repeated field of `type`, as protobuf-c lays out
 * the array. */
size_t pb_element_size(ProtobufCType type);

#endif
