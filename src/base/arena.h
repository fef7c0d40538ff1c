#ifndef EXHOOKD_ARENA_H
#define EXHOOKD_ARENA_H

/* Scratch memory for one call: decoding a request with protobuf-c takes a
 * dozen small allocations, all freed together when the call ends. A bump
 * allocator over one block kept from call to call turns them into pointer
 * increments and one reset. An allocation that does not fit goes to malloc
 * and is freed at the reset, and the block grows (up to ARENA_MAX_BLOCK) so
 * that the next call of that size fits. A zeroed struct is an empty arena. */

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct arena_spill;

struct arena {
    char *block;
    size_t cap, used;
    size_t spilled;            /* bytes that went to malloc since the reset */
    struct arena_spill *spill; /* those allocations, freed at the reset */
};

/* Largest block kept between calls. */
#define ARENA_MAX_BLOCK (1024 * 1024)

void *arena_alloc(struct arena *a, size_t size);
/* Frees everything allocated since the last reset. */
void arena_reset(struct arena *a);
void arena_free(struct arena *a);

/* A protobuf-c allocator over `a` (frees are no-ops until the reset). */
ProtobufCAllocator arena_protobuf_allocator(struct arena *a);

#endif
