/* fuzz_seeds DIR: writes fuzz_dispatch's seed corpus to DIR, from the
 * request builder the bench uses: every rpc of every generation with the
 * request a broker sends (recipe 0: odd.lua returns nil, so example.lua's
 * own answers are covered), and message.publish once per odd.lua recipe. */

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
                       uint8_t recipe)
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
    grpc_slice body = breq_request(hook, version);
    fwrite(head, 1, sizeof head, f);
    fwrite(GRPC_SLICE_START_PTR(body), 1, GRPC_SLICE_LENGTH(body), f);
    grpc_slice_unref(body);
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
            write_seed(dir, name, h, v, 0);
        }
    }
    for (int r = 1; r < RECIPES; r++) {
        snprintf(name, sizeof name, "%s-v3-recipe%d", hook_defs[HOOK_MESSAGE_PUBLISH].rpc, r);
        write_seed(dir, name, HOOK_MESSAGE_PUBLISH, 3, (uint8_t)r);
    }
    return 0;
}
