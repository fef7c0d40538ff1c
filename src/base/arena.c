#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_FIRST_BLOCK 4096
#define ARENA_ALIGN 16

struct arena_spill {
    struct arena_spill *next;
    max_align_t data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->block && need <= a->cap - a->used) {
        void *p = a->block + a->used;
        a->used += need;
        return p;
    }
    struct arena_spill *s = malloc(sizeof *s + size);
    if (!s)
        return NULL;
    s->next = a->spill;
    a->spill = s;
    a->spilled += need;
    return s->data;
}

void arena_reset(struct arena *a)
{
    while (a->spill) {
        struct arena_spill *next = a->spill->next;
        free(a->spill);
        a->spill = next;
    }
    /* Grow to what this call needed, so the next one like it fits. */
    size_t want = a->used + a->spilled;
    if (want > a->cap && a->cap < ARENA_MAX_BLOCK) {
        size_t cap = a->cap ? a->cap : ARENA_FIRST_BLOCK;
        while (cap < want && cap < ARENA_MAX_BLOCK)
            cap *= 2;
        char *block = malloc(cap);
        if (block) {
            free(a->block);
            a->block = block;
            a->cap = cap;
        }
    }
    a->used = 0;
    a->spilled = 0;
}

void arena_free(struct arena *a)
{
    arena_reset(a);
    free(a->block);
    a->block = NULL;
    a->cap = 0;
}

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

ProtobufCAllocator arena_protobuf_allocator(struct arena *a)
{
    ProtobufCAllocator allocator = {.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
    return allocator;
}
