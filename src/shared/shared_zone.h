#ifndef EXHOOKD_SHARED_ZONE_H
#define EXHOOKD_SHARED_ZONE_H

/* The layout of a shared dictionary's zone, for shared_dict.c and its
 * tests (which take the lock the way a process that dies would). */

#include <pthread.h>
#include <stdint.h>

#include "shared_dict.h"

/* References to blocks are their index + 1: zero-filled memory (a fresh
 * mapping) then holds no references, so nothing needs writing at start. */
#define ZONE_NONE 0u
#define ZONE_PAYLOAD (SHARED_DICT_BLOCK - sizeof(uint32_t))

/* A block: payload first, so that an entry header at its start is 8-byte
 * aligned, then the next block of the same chain (entry or free list). */
struct zone_block {
    unsigned char data[ZONE_PAYLOAD];
    uint32_t next;
};

/* The start of an entry's first block; its key, then its value (strings
 * only), follow it through the chain. */
struct zone_entry {
    int64_t expires_ms; /* CLOCK_MONOTONIC, ms; 0 = never */
    union {
        long long integer;
        double number;
    } num;
    uint32_t hash_next; /* the next entry of the same bucket */
    uint32_t lru_prev;  /* towards the most recently used */
    uint32_t lru_next;  /* towards the least recently used */
    uint32_t hash;
    uint32_t value_len;
    uint16_t key_len;
    uint8_t type; /* enum shared_type */
    uint8_t boolean;
};

/* The zone header, at the start of the mapping, followed by the buckets
 * (uint32_t references) and then the blocks, aligned to a block. */
struct shared_dict {
    pthread_mutex_t lock; /* process-shared, robust */
    /* Set by the first change of an operation, cleared at unlock: a holder
     * that died with it set left the index half-changed. */
    int dirty;
    uint32_t seed; /* of the key hash: keys chosen by clients cannot aim at one bucket */
    size_t map_size;
    size_t blocks_offset;
    uint32_t n_blocks;
    uint32_t n_buckets; /* a power of two */
    uint32_t bump;      /* blocks from here on were never used: free, untouched */
    uint32_t free_head; /* freed blocks */
    uint32_t n_free;    /* free blocks, both kinds */
    uint32_t lru_head;  /* most recently used entry */
    uint32_t lru_tail;  /* least recently used entry */
    uint32_t n_entries;
    int64_t next_expiry_ms; /* no entry expires before this; INT64_MAX: none has a ttl */
    char name[SHARED_NAME_MAX + 1];
};

#endif
