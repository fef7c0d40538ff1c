#include "shared_dict.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "errbuf.h"
#include "hash.h"
#include "log.h"
#include "shared_zone.h"

/* ---- the zone's parts ---------------------------------------------------- */

static uint32_t *buckets(struct shared_dict *d)
{
    return (uint32_t *)(d + 1);
}

static struct zone_block *block(struct shared_dict *d, uint32_t ref)
{
    return (struct zone_block *)((char *)d + d->blocks_offset) + (ref - 1);
}

static struct zone_entry *entry(struct shared_dict *d, uint32_t ref)
{
    return (struct zone_entry *)block(d, ref)->data;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t blocks_for(size_t key_len, size_t value_len)
{
    return (sizeof(struct zone_entry) + key_len + value_len + ZONE_PAYLOAD - 1) / ZONE_PAYLOAD;
}

size_t shared_dict_entry_bytes(size_t key_len, size_t value_len)
{
    return blocks_for(key_len, value_len) * SHARED_DICT_BLOCK;
}

static bool expired(const struct zone_entry *e, int64_t now)
{
    return e->expires_ms != 0 && e->expires_ms <= now;
}

static int64_t expiry_of(double ttl, int64_t now)
{
    if (!(ttl > 0))
        return 0;
    /* A ttl under a millisecond still expires, after one. */
    double ms = ceil(ttl * 1000.0);
    return ms > 1e15 ? now + (int64_t)1e15 : now + (int64_t)ms;
}

/* ---- blocks -------------------------------------------------------------- */

/* A chain of `n` free blocks (the caller made sure there are). */
static uint32_t alloc_chain(struct shared_dict *d, size_t n)
{
    d->dirty = 1;
    uint32_t first = ZONE_NONE, *link = &first;
    for (size_t i = 0; i < n; i++) {
        uint32_t ref;
        if (d->free_head != ZONE_NONE) {
            ref = d->free_head;
            d->free_head = block(d, ref)->next;
        } else {
            ref = ++d->bump;
        }
        *link = ref;
        link = &block(d, ref)->next;
    }
    *link = ZONE_NONE;
    d->n_free -= (uint32_t)n;
    return first;
}

static void free_chain(struct shared_dict *d, uint32_t first, size_t n)
{
    d->dirty = 1;
    uint32_t last = first;
    for (size_t i = 1; i < n; i++)
        last = block(d, last)->next;
    block(d, last)->next = d->free_head;
    d->free_head = first;
    d->n_free += (uint32_t)n;
}

/* Copies between `buf` and the bytes of the chain at `first` from stream
 * offset `off` (the header takes the start). */
static void stream_copy(struct shared_dict *d, uint32_t first, size_t off, void *buf, size_t len,
                        bool to_zone)
{
    uint32_t ref = first;
    while (off >= ZONE_PAYLOAD) {
        ref = block(d, ref)->next;
        off -= ZONE_PAYLOAD;
    }
    unsigned char *p = buf;
    while (len > 0) {
        size_t n = ZONE_PAYLOAD - off < len ? ZONE_PAYLOAD - off : len;
        unsigned char *z = block(d, ref)->data + off;
        if (to_zone)
            memcpy(z, p, n);
        else
            memcpy(p, z, n);
        p += n;
        len -= n;
        off = 0;
        ref = block(d, ref)->next;
    }
}

static bool key_equal(struct shared_dict *d, uint32_t ref, const char *key, size_t len)
{
    uint32_t r = ref;
    size_t off = sizeof(struct zone_entry);
    while (len > 0) {
        size_t n = ZONE_PAYLOAD - off < len ? ZONE_PAYLOAD - off : len;
        if (memcmp(block(d, r)->data + off, key, n) != 0)
            return false;
        key += n;
        len -= n;
        off = 0;
        r = block(d, r)->next;
    }
    return true;
}

/* ---- the index and the LRU list ----------------------------------------- */

static uint32_t *bucket_of(struct shared_dict *d, uint32_t hash)
{
    return &buckets(d)[hash & (d->n_buckets - 1)];
}

static void lru_unlink(struct shared_dict *d, uint32_t ref)
{
    d->dirty = 1;
    struct zone_entry *e = entry(d, ref);
    if (e->lru_prev != ZONE_NONE)
        entry(d, e->lru_prev)->lru_next = e->lru_next;
    else
        d->lru_head = e->lru_next;
    if (e->lru_next != ZONE_NONE)
        entry(d, e->lru_next)->lru_prev = e->lru_prev;
    else
        d->lru_tail = e->lru_prev;
}

static void lru_push_head(struct shared_dict *d, uint32_t ref)
{
    d->dirty = 1;
    struct zone_entry *e = entry(d, ref);
    e->lru_prev = ZONE_NONE;
    e->lru_next = d->lru_head;
    if (d->lru_head != ZONE_NONE)
        entry(d, d->lru_head)->lru_prev = ref;
    else
        d->lru_tail = ref;
    d->lru_head = ref;
}

static void touch(struct shared_dict *d, uint32_t ref)
{
    if (d->lru_head != ref) {
        lru_unlink(d, ref);
        lru_push_head(d, ref);
    }
}

static void remove_entry(struct shared_dict *d, uint32_t ref)
{
    struct zone_entry *e = entry(d, ref);
    uint32_t *link = bucket_of(d, e->hash);
    d->dirty = 1;
    while (*link != ref)
        link = &entry(d, *link)->hash_next;
    *link = e->hash_next;
    lru_unlink(d, ref);
    d->n_entries--;
    free_chain(d, ref, blocks_for(e->key_len, e->value_len));
}

/* The live entry of `key`, or ZONE_NONE; an expired one found on the way
 * is freed. */
static uint32_t find(struct shared_dict *d, const char *key, size_t len, int64_t now)
{
    uint32_t hash = hash_fnv1a(d->seed, key, len);
    for (uint32_t ref = *bucket_of(d, hash); ref != ZONE_NONE; ref = entry(d, ref)->hash_next) {
        struct zone_entry *e = entry(d, ref);
        if (e->hash != hash || e->key_len != len || !key_equal(d, ref, key, len))
            continue;
        if (!expired(e, now))
            return ref;
        remove_entry(d, ref);
        return ZONE_NONE;
    }
    return ZONE_NONE;
}

static void note_expiry(struct shared_dict *d, int64_t expires_ms)
{
    if (expires_ms != 0 && expires_ms < d->next_expiry_ms)
        d->next_expiry_ms = expires_ms;
}

/* Frees expired entries from the least recently used end, at most `max`
 * (0: all), stopping early once `enough` blocks are free (0: never);
 * returns how many. A whole pass also learns the next expiry. */
static size_t reclaim_expired(struct shared_dict *d, int64_t now, size_t max, size_t enough)
{
    size_t freed = 0;
    int64_t next = INT64_MAX;
    uint32_t ref = d->lru_tail;
    while (ref != ZONE_NONE && (max == 0 || freed < max) && (enough == 0 || d->n_free < enough)) {
        struct zone_entry *e = entry(d, ref);
        uint32_t prev = e->lru_prev;
        if (expired(e, now)) {
            remove_entry(d, ref);
            freed++;
        } else if (e->expires_ms != 0 && e->expires_ms < next) {
            next = e->expires_ms;
        }
        ref = prev;
    }
    if (ref == ZONE_NONE)
        d->next_expiry_ms = next;
    return freed;
}

/* Makes `need` blocks free, counting those of `replaced` (the entry a write
 * will replace; ZONE_NONE for none) as free. Expired entries go first; then,
 * unless `safe`, the least recently used valid ones (setting *forcible). */
static int make_room(struct shared_dict *d, size_t need, uint32_t replaced, bool safe, int64_t now,
                     bool *forcible)
{
    size_t own = 0;
    if (replaced != ZONE_NONE)
        own = blocks_for(entry(d, replaced)->key_len, entry(d, replaced)->value_len);
    /* From the old end, where expired entries gather, only as far as it
     * takes: a full zone with many ttls must not cost a whole pass per write. */
    if (d->n_free + own < need && d->next_expiry_ms <= now)
        reclaim_expired(d, now, 0, need - own);
    while (d->n_free + own < need) {
        uint32_t victim = d->lru_tail;
        if (victim == replaced)
            victim = entry(d, victim)->lru_prev;
        if (safe || victim == ZONE_NONE)
            return -1;
        remove_entry(d, victim);
        *forcible = true;
    }
    return 0;
}

/* ---- operations ---------------------------------------------------------- */

static void fail(struct shared_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct shared_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    r->status = SHARED_FAILED;
}

static void read_value(struct shared_dict *d, uint32_t ref, struct shared_result *r)
{
    struct zone_entry *e = entry(d, ref);
    struct shared_value *v = &r->value;
    v->type = (enum shared_type)e->type;
    v->boolean = e->boolean;
    v->integer = e->num.integer;
    v->number = e->num.number;
    if (v->type != SHARED_STRING)
        return;
    r->owned = malloc(e->value_len ? e->value_len : 1);
    if (!r->owned) {
        fail(r, "shared dictionary '%s': out of memory copying a value of %u bytes", d->name,
             (unsigned)e->value_len);
        v->type = SHARED_NIL;
        return;
    }
    stream_copy(d, ref, sizeof(struct zone_entry) + e->key_len, r->owned, e->value_len, false);
    v->str = r->owned;
    v->len = e->value_len;
}

static void op_get(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    uint32_t ref = find(d, op->key, op->key_len, now_ms());
    if (ref == ZONE_NONE)
        return;
    touch(d, ref);
    read_value(d, ref, r);
}

/* Writes a new entry for the key of `op` with `v`, replacing `old`. */
static void put(struct shared_dict *d, const struct shared_op *op, const struct shared_value *v,
                double ttl, uint32_t old, bool safe, int64_t now, struct shared_result *r)
{
    size_t value_len = v->type == SHARED_STRING ? v->len : 0;
    size_t need = blocks_for(op->key_len, value_len);
    if (need > d->n_blocks || value_len > UINT32_MAX) {
        fail(r, "shared dictionary '%s': key and value of %zu bytes can never fit (at most %zu)",
             d->name, op->key_len + value_len,
             (size_t)d->n_blocks * ZONE_PAYLOAD - sizeof(struct zone_entry));
        return;
    }
    if (make_room(d, need, old, safe, now, &r->forcible) != 0) {
        r->status = SHARED_NO_MEMORY;
        return;
    }
    if (old != ZONE_NONE)
        remove_entry(d, old);
    uint32_t ref = alloc_chain(d, need);
    struct zone_entry *e = entry(d, ref);
    e->expires_ms = expiry_of(ttl, now);
    e->type = (uint8_t)v->type;
    e->boolean = v->boolean;
    if (v->type == SHARED_FLOAT)
        e->num.number = v->number;
    else
        e->num.integer = v->integer;
    e->hash = hash_fnv1a(d->seed, op->key, op->key_len);
    e->key_len = (uint16_t)op->key_len;
    e->value_len = (uint32_t)value_len;
    stream_copy(d, ref, sizeof *e, (void *)op->key, op->key_len, true);
    if (value_len)
        stream_copy(d, ref, sizeof *e + op->key_len, (void *)v->str, value_len, true);
    uint32_t *bucket = bucket_of(d, e->hash);
    e->hash_next = *bucket;
    *bucket = ref;
    lru_push_head(d, ref);
    d->n_entries++;
    note_expiry(d, e->expires_ms);
}

static void op_write(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    int64_t now = now_ms();
    uint32_t old = find(d, op->key, op->key_len, now);
    if (old != ZONE_NONE && (op->code == SHARED_ADD || op->code == SHARED_SAFE_ADD)) {
        touch(d, old);
        r->status = SHARED_EXISTS;
        return;
    }
    if (old == ZONE_NONE && op->code == SHARED_REPLACE) {
        r->status = SHARED_NOT_FOUND;
        return;
    }
    bool safe = op->code == SHARED_SAFE_SET || op->code == SHARED_SAFE_ADD;
    put(d, op, &op->value, op->ttl, old, safe, now, r);
}

static void op_delete(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    (void)r;
    uint32_t ref = find(d, op->key, op->key_len, now_ms());
    if (ref != ZONE_NONE)
        remove_entry(d, ref);
}

static bool is_number(enum shared_type t)
{
    return t == SHARED_INTEGER || t == SHARED_FLOAT;
}

/* a + b as Lua adds them: integers wrap around, anything else is a float. */
static struct shared_value add_numbers(const struct shared_value *a, const struct shared_value *b)
{
    struct shared_value sum = {.type = SHARED_FLOAT};
    if (a->type == SHARED_INTEGER && b->type == SHARED_INTEGER) {
        sum.type = SHARED_INTEGER;
        sum.integer = (long long)((unsigned long long)a->integer + (unsigned long long)b->integer);
        return sum;
    }
    double x = a->type == SHARED_INTEGER ? (double)a->integer : a->number;
    double y = b->type == SHARED_INTEGER ? (double)b->integer : b->number;
    sum.number = x + y;
    return sum;
}

static void op_incr(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    int64_t now = now_ms();
    uint32_t ref = find(d, op->key, op->key_len, now);
    if (ref == ZONE_NONE) {
        if (!op->has_init) {
            r->status = SHARED_NOT_FOUND;
            return;
        }
        struct shared_value sum = add_numbers(&op->init, &op->value);
        put(d, op, &sum, op->ttl, ZONE_NONE, false, now, r);
        if (r->status == SHARED_OK)
            r->value = sum;
        return;
    }
    struct zone_entry *e = entry(d, ref);
    if (!is_number((enum shared_type)e->type)) {
        r->status = SHARED_NOT_A_NUMBER;
        return;
    }
    struct shared_value old = {.type = (enum shared_type)e->type};
    old.integer = e->num.integer;
    old.number = e->num.number;
    struct shared_value sum = add_numbers(&old, &op->value);
    d->dirty = 1;
    e->type = (uint8_t)sum.type;
    if (sum.type == SHARED_FLOAT)
        e->num.number = sum.number;
    else
        e->num.integer = sum.integer;
    touch(d, ref);
    r->value = sum;
}

static void op_expire(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    int64_t now = now_ms();
    uint32_t ref = find(d, op->key, op->key_len, now);
    if (ref == ZONE_NONE) {
        r->status = SHARED_NOT_FOUND;
        return;
    }
    d->dirty = 1;
    entry(d, ref)->expires_ms = expiry_of(op->ttl, now);
    note_expiry(d, entry(d, ref)->expires_ms);
}

static void op_ttl(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    int64_t now = now_ms();
    uint32_t ref = find(d, op->key, op->key_len, now);
    if (ref == ZONE_NONE) {
        r->status = SHARED_NOT_FOUND;
        return;
    }
    int64_t at = entry(d, ref)->expires_ms;
    r->ttl = at == 0 ? 0 : (double)(at - now) / 1000.0;
}

/* The live keys, most recently used first, at most op->max (0: all). */
static void op_keys(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    int64_t now = now_ms();
    size_t n = 0, bytes = 0;
    for (uint32_t ref = d->lru_head; ref != ZONE_NONE && (op->max == 0 || n < op->max);
         ref = entry(d, ref)->lru_next) {
        if (!expired(entry(d, ref), now)) {
            n++;
            bytes += entry(d, ref)->key_len;
        }
    }
    r->keys = malloc((n ? n : 1) * sizeof *r->keys);
    r->key_lens = malloc((n ? n : 1) * sizeof *r->key_lens);
    r->owned = malloc(bytes ? bytes : 1);
    if (!r->keys || !r->key_lens || !r->owned) {
        fail(r, "shared dictionary '%s': out of memory copying %zu keys", d->name, n);
        return;
    }
    char *p = r->owned;
    for (uint32_t ref = d->lru_head; ref != ZONE_NONE && r->n_keys < n;
         ref = entry(d, ref)->lru_next) {
        struct zone_entry *e = entry(d, ref);
        if (expired(e, now))
            continue;
        stream_copy(d, ref, sizeof *e, p, e->key_len, false);
        r->keys[r->n_keys] = p;
        r->key_lens[r->n_keys++] = e->key_len;
        p += e->key_len;
    }
}

/* As OpenResty does: every entry expires now, its memory freed when needed
 * or by flush_expired. */
static void op_flush_all(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    (void)op;
    (void)r;
    int64_t now = now_ms();
    d->dirty = 1;
    for (uint32_t ref = d->lru_head; ref != ZONE_NONE; ref = entry(d, ref)->lru_next) {
        struct zone_entry *e = entry(d, ref);
        if (!expired(e, now))
            e->expires_ms = now;
    }
    if (d->n_entries)
        d->next_expiry_ms = now;
}

static void op_flush_expired(struct shared_dict *d, const struct shared_op *op,
                             struct shared_result *r)
{
    r->count = reclaim_expired(d, now_ms(), op->max, 0);
}

static void op_capacity(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    (void)op;
    r->count = d->map_size;
}

static void op_free_space(struct shared_dict *d, const struct shared_op *op,
                          struct shared_result *r)
{
    (void)op;
    r->count = (size_t)d->n_free * SHARED_DICT_BLOCK;
}

typedef void op_fn(struct shared_dict *d, const struct shared_op *op, struct shared_result *r);

static op_fn *const ops[SHARED_OPCODE_COUNT] = {
    [SHARED_GET] = op_get,
    [SHARED_SET] = op_write,
    [SHARED_SAFE_SET] = op_write,
    [SHARED_ADD] = op_write,
    [SHARED_SAFE_ADD] = op_write,
    [SHARED_REPLACE] = op_write,
    [SHARED_DELETE] = op_delete,
    [SHARED_INCR] = op_incr,
    [SHARED_EXPIRE] = op_expire,
    [SHARED_TTL] = op_ttl,
    [SHARED_KEYS] = op_keys,
    [SHARED_FLUSH_ALL] = op_flush_all,
    [SHARED_FLUSH_EXPIRED] = op_flush_expired,
    [SHARED_CAPACITY] = op_capacity,
    [SHARED_FREE_SPACE] = op_free_space,
};

/* ---- the lock ------------------------------------------------------------ */

/* An empty dictionary, over buckets that are all zero. */
static void init_empty(struct shared_dict *d)
{
    d->bump = 0;
    d->free_head = ZONE_NONE;
    d->n_free = d->n_blocks;
    d->lru_head = d->lru_tail = ZONE_NONE;
    d->n_entries = 0;
    d->next_expiry_ms = INT64_MAX;
    d->dirty = 0;
}

static int lock(struct shared_dict *d, struct shared_result *r)
{
    int rc = pthread_mutex_lock(&d->lock);
    if (rc == EOWNERDEAD) {
        if (d->dirty) {
            log_warn("shared dictionary '%s': a process died while changing it; its contents "
                     "were flushed",
                     d->name);
            /* What it left cannot be trusted: empty it all. */
            memset(buckets(d), 0, (size_t)d->n_buckets * sizeof(uint32_t));
            init_empty(d);
        } else {
            log_warn("shared dictionary '%s': a process died holding its lock while reading; "
                     "contents kept",
                     d->name);
        }
        pthread_mutex_consistent(&d->lock);
        return 0;
    }
    if (rc != 0) {
        fail(r, "shared dictionary '%s': cannot take the lock: %s", d->name, strerror(rc));
        return -1;
    }
    return 0;
}

void shared_dict_run(struct shared_dict *d, const struct shared_op *op, struct shared_result *r)
{
    if ((unsigned)op->code >= SHARED_OPCODE_COUNT) {
        fail(r, "shared dictionary '%s': unknown operation %d", d->name, (int)op->code);
        return;
    }
    if (lock(d, r) != 0)
        return;
    ops[op->code](d, op, r);
    d->dirty = 0;
    pthread_mutex_unlock(&d->lock);
}

/* ---- the zone ------------------------------------------------------------ */

static int init_lock(struct shared_dict *d)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return -1;
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&d->lock, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/* Sizes the buckets (about one per two blocks, a power of two) and the
 * blocks to fill `size`. */
static void lay_out(struct shared_dict *d, size_t size)
{
    size_t usable = size - sizeof *d;
    size_t n_buckets = 16;
    while (n_buckets * 2 <= usable / SHARED_DICT_BLOCK / 2)
        n_buckets *= 2;
    size_t offset = sizeof *d + n_buckets * sizeof(uint32_t);
    offset = (offset + SHARED_DICT_BLOCK - 1) / SHARED_DICT_BLOCK * SHARED_DICT_BLOCK;
    d->map_size = size;
    d->n_buckets = (uint32_t)n_buckets;
    d->blocks_offset = offset;
    d->n_blocks = (uint32_t)((size - offset) / SHARED_DICT_BLOCK);
}

struct shared_dict *shared_dict_create(const char *name, size_t size, char *err, size_t errlen)
{
    if (size < SHARED_DICT_MIN_SIZE || size > SHARED_DICT_MAX_SIZE) {
        errbuf_set(err, errlen, "shared dictionary '%s': size %zu out of range (64KB..64GB)", name,
                   size);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errbuf_set(err, errlen, "shared dictionary '%s': cannot map %zu bytes: %s", name, size,
                   strerror(errno));
        return NULL;
    }
    struct shared_dict *d = p;
    if (init_lock(d) != 0) {
        errbuf_set(err, errlen, "shared dictionary '%s': cannot make its lock", name);
        munmap(p, size);
        return NULL;
    }
    if (getrandom(&d->seed, sizeof d->seed, GRND_NONBLOCK) != sizeof d->seed)
        d->seed = (uint32_t)now_ms() ^ (uint32_t)(uintptr_t)p;
    snprintf(d->name, sizeof d->name, "%s", name);
    lay_out(d, size);
    /* A fresh mapping is zero: its buckets are empty without a write, and
     * its pages stay untouched until entries use them. */
    init_empty(d);
    return d;
}

void shared_dict_destroy(struct shared_dict *d)
{
    if (d)
        munmap(d, d->map_size);
}
