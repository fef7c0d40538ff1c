#ifndef EXHOOKD_SHARED_OP_H
#define EXHOOKD_SHARED_OP_H

/* One operation on a shared dictionary ([shared] in exhook.ini, reached
 * from Lua as exhook.shared.NAME:method(...)), whatever keeps the
 * dictionary: the local store (shared memory of this host, src/shared/) or
 * a Redis server (src/lua/lua_shared_redis.c). The Lua binding parses the
 * arguments into a `struct shared_op`, a backend fills a `struct
 * shared_result`, and lua_shared_push_result turns it into the method's
 * return values, so both backends answer alike. No Lua here. */

#include <stdbool.h>
#include <stddef.h>

/* A value held in a dictionary. */
enum shared_type { SHARED_NIL = 0, SHARED_BOOLEAN, SHARED_INTEGER, SHARED_FLOAT, SHARED_STRING };

struct shared_value {
    enum shared_type type;
    bool boolean;
    long long integer;
    double number;
    const char *str; /* SHARED_STRING: `len` bytes, any bytes (NUL included) */
    size_t len;
};

enum shared_opcode {
    SHARED_GET,           /* key -> value or nil */
    SHARED_SET,           /* key, value, ttl: evicts the least recently used to make room */
    SHARED_SAFE_SET,      /* as SET, but never evicts: "no memory" instead */
    SHARED_ADD,           /* as SET, only if the key is absent (else "exists") */
    SHARED_SAFE_ADD,      /* as ADD, never evicts */
    SHARED_REPLACE,       /* as SET, only if the key is present (else "not found") */
    SHARED_DELETE,        /* key */
    SHARED_INCR,          /* key, delta; when absent: init (if given) + delta, with init_ttl */
    SHARED_EXPIRE,        /* key, ttl (0: never expires) */
    SHARED_TTL,           /* key -> seconds left (0: never expires) */
    SHARED_KEYS,          /* max (0: all) -> the live keys */
    SHARED_FLUSH_ALL,     /* every key */
    SHARED_FLUSH_EXPIRED, /* max (0: all) -> how many expired keys were freed */
    SHARED_CAPACITY,      /* -> bytes of the dictionary */
    SHARED_FREE_SPACE,    /* -> bytes free for new keys and values */
    SHARED_OPCODE_COUNT
};

/* The method name of `code`, e.g. "safe_set". */
const char *shared_op_name(enum shared_opcode code);

struct shared_op {
    enum shared_opcode code;
    const char *key; /* `key_len` bytes, non-empty; unused by KEYS, FLUSH_*, CAPACITY, FREE_SPACE */
    size_t key_len;
    /* SET, SAFE_SET, ADD, SAFE_ADD, REPLACE: the value (not SHARED_NIL).
     * INCR: the delta (SHARED_INTEGER or SHARED_FLOAT). */
    struct shared_value value;
    /* Seconds, > 0, or 0 for "never expires": the ttl of SET..REPLACE and
     * EXPIRE; INCR: init_ttl, used only when the key is created. */
    double ttl;
    /* INCR: whether `init` is given; a missing key without it is "not found". */
    bool has_init;
    struct shared_value init; /* SHARED_INTEGER or SHARED_FLOAT */
    size_t max;               /* KEYS, FLUSH_EXPIRED: 0 = no bound */
};

enum shared_status {
    SHARED_OK = 0,
    SHARED_NOT_FOUND,    /* "not found" */
    SHARED_EXISTS,       /* "exists" */
    SHARED_NO_MEMORY,    /* "no memory": SAFE_* full, or nothing left to evict */
    SHARED_NOT_A_NUMBER, /* "not a number": INCR on a value that is not a number */
    SHARED_FAILED,       /* the backend failed: `message` says why */
};

struct shared_result {
    enum shared_status status;
    /* A write evicted other keys, still valid ones, to make room. */
    bool forcible;
    /* GET: the value (SHARED_NIL when absent or expired); INCR: the new
     * number. Strings point into `owned`. */
    struct shared_value value;
    double ttl;         /* TTL: seconds left; 0 = never expires */
    size_t count;       /* FLUSH_EXPIRED: keys freed; CAPACITY, FREE_SPACE: bytes */
    char **keys;        /* KEYS: n_keys keys, each in `owned` */
    size_t *key_lens;
    size_t n_keys;
    char *owned;        /* one allocation behind str/keys, freed by shared_result_free */
    char message[256];  /* SHARED_FAILED: e.g. "redis 127.0.0.1:6379: connection refused" */
};

void shared_result_init(struct shared_result *r);
void shared_result_free(struct shared_result *r);

#endif
