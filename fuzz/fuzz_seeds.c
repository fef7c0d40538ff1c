/* fuzz_seeds DIR: writes fuzz_dispatch's seed corpus to DIR, from the
 * request builder the bench uses: every rpc of every generation with the
 * request a broker sends (recipe 0: odd.lua returns nil, so example.lua's
 * own answers are covered), and each message.publish of the bench's publish
 * scenario (a topic example.lua rewrites, one it drops, one it leaves
 * alone) once per odd.lua recipe. */

#include <errno.h>
#include <grpc/slice.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_requests.h"
#include "exhook.pb-c.h"

/* The odd.lua recipes a seed is written for; more than odd.lua has, so
 * every one is reached whatever the count (the index is taken modulo). */
#define RECIPES 64

static void write_seed(const char *dir, const char *name, enum hook_id hook, int version,
                       uint8_t recipe, grpc_slice body)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    /* fuzz_dispatch's input: rpc, generation, recipe (n = 3), body. */
    const uint8_t head[] = {(uint8_t)hook, (uint8_t)(version - 1), recipe, recipe, 0, 3};
    fwrite(head, 1, sizeof head, f);
    fwrite(GRPC_SLICE_START_PTR(body), 1, GRPC_SLICE_LENGTH(body), f);
    if (fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* The bench's requests carry no MQTT properties (MQTT 3.1.1), but brokers
 * before 5.9 send user properties as an Erlang term that pb2lua parses:
 * the request of `hook` with such a property, for an rpc that has props. */
static void write_props_seed(const char *dir, enum hook_id hook, int version)
{
    const ProtobufCMessageDescriptor *d = hooks_request(hook, version);
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, "props");
    if (!f)
        return;
    grpc_slice body = breq_request(hook, version);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(body), GRPC_SLICE_START_PTR(body));
    grpc_slice_unref(body);
    Emqx__Exhook__V3__Property props[2] = {EMQX__EXHOOK__V3__PROPERTY__INIT,
                                           EMQX__EXHOOK__V3__PROPERTY__INIT};
    props[0].name = "User-Property";
    props[0].value = "[{<<\"app\">>,<<\"demo\">>},{<<\"bin\">>,<<1,2,255>>},"
                     "{<<\"u\"/utf8>>,<<\"\\101\\n\">>}]";
    props[1].name = "Content-Type";
    props[1].value = "text/plain";
    Emqx__Exhook__V3__Property *ptrs[2] = {&props[0], &props[1]};
    size_t *count = (size_t *)((char *)m + f->quantifier_offset);
    void **items = (void **)((char *)m + f->offset);
    size_t saved_count = *count;
    void *saved_items = *items;
    *count = 2;
    *items = ptrs;
    size_t len = protobuf_c_message_get_packed_size(m);
    grpc_slice with = grpc_slice_malloc(len);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(with));
    *count = saved_count;
    *items = saved_items;
    protobuf_c_message_free_unpacked(m, NULL);
    char name[64];
    snprintf(name, sizeof name, "%s-v%d-props", hook_defs[hook].rpc, version);
    write_seed(dir, name, hook, version, 0, with);
    grpc_slice_unref(with);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_seeds: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char name[64];
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        int v = hook_generations[g].version;
        for (int h = 0; h < HOOK_COUNT; h++) {
            snprintf(name, sizeof name, "%s-v%d", hook_defs[h].rpc, v);
            grpc_slice body = breq_request(h, v);
            write_seed(dir, name, h, v, 0, body);
            grpc_slice_unref(body);
            write_props_seed(dir, h, v);
        }
    }
    const struct breq_scenario *sc = breq_find("publish");
    const struct breq_content content = {.payload_len = BREQ_PAYLOAD_LEN};
    breq_build(sc, 3, &content);
    for (size_t i = 0; i < sc->n; i++) {
        for (int r = 1; r < RECIPES; r++) {
            snprintf(name, sizeof name, "%s-v3-%s-recipe%d", hook_defs[sc->steps[i].hook].rpc,
                     sc->steps[i].label, r);
            for (char *p = name; *p; p++)
                *p = *p == '/' ? '_' : *p;
            write_seed(dir, name, sc->steps[i].hook, 3, (uint8_t)r, *breq_body(i, 0));
        }
    }
    breq_free();
    return 0;
}
