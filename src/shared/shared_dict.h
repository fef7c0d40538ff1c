#ifndef EXHOOKD_SHARED_DICT_H
#define EXHOOKD_SHARED_DICT_H

/* The local store of a shared dictionary: one zone of shared memory
 * (mmap MAP_SHARED | MAP_ANONYMOUS) holding its own allocator, hash index,
 * LRU list and expiry times, behind a process-shared robust mutex. A zone
 * made before fork() is the same memory in every child, so the master
 * creates them and every server child it starts (a replacement too) finds
 * the contents there. Every operation of shared_op.h runs whole under the
 * lock; results are copied out of the zone before it is released.
 *
 * Memory: the zone is cut into blocks of SHARED_DICT_BLOCK bytes; an entry
 * is a chain of blocks holding a header, its key and its value. No malloc
 * inside; only the result copied out is malloc'd. */

#include <stddef.h>

#include "shared_op.h"

/* The bounds of a dictionary's size ([shared] NAME = SIZE). */
#define SHARED_DICT_MIN_SIZE ((size_t)64 * 1024)
#define SHARED_DICT_MAX_SIZE ((size_t)64 * 1024 * 1024 * 1024)
/* Names of dictionaries are at most this many bytes. */
#define SHARED_NAME_MAX 63
/* Keys are at most this many bytes. */
#define SHARED_KEY_MAX 65535
/* Bytes of one block of the zone's allocator. */
#define SHARED_DICT_BLOCK 64

struct shared_dict;

/* Maps a new zone of `size` bytes (SHARED_DICT_MIN_SIZE..MAX), named `name`
 * in log lines. NULL with the reason in `err`. */
struct shared_dict *shared_dict_create(const char *name, size_t size, char *err, size_t errlen);

/* Unmaps the zone (in this process only: other processes keep theirs). */
void shared_dict_destroy(struct shared_dict *d);

/* Runs `op` atomically and fills `r` (shared_result_init'ed by the caller,
 * freed with shared_result_free). Never fails but for SHARED_FAILED with a
 * message (a value that can never fit, out of memory for the copy). */
void shared_dict_run(struct shared_dict *d, const struct shared_op *op, struct shared_result *r);

/* The bytes a key of `key_len` and a value of `value_len` bytes (strings;
 * 0 for numbers and booleans) take in the zone: whole blocks. */
size_t shared_dict_entry_bytes(size_t key_len, size_t value_len);

#endif
