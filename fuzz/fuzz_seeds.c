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
        }
    }
    const struct breq_scenario *sc = breq_find("publish");
    breq_build(sc, 3);
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
