#ifndef EXHOOKD_HASH_H
#define EXHOOKD_HASH_H

/* FNV-1a over `len` bytes, seeded. Tables keyed by what clients choose
 * (client ids, dictionary keys) take a random seed, so that no one can aim
 * many keys at one bucket. */

#include <stddef.h>
#include <stdint.h>

static inline uint32_t hash_fnv1a(uint32_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

#endif
