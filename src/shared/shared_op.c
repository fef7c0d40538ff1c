#include "shared_op.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[SHARED_OPCODE_COUNT] = {
    [SHARED_GET] = "get",
    [SHARED_SET] = "set",
    [SHARED_SAFE_SET] = "safe_set",
    [SHARED_ADD] = "add",
    [SHARED_SAFE_ADD] = "safe_add",
    [SHARED_REPLACE] = "replace",
    [SHARED_DELETE] = "delete",
    [SHARED_INCR] = "incr",
    [SHARED_EXPIRE] = "expire",
    [SHARED_TTL] = "ttl",
    [SHARED_KEYS] = "keys",
    [SHARED_FLUSH_ALL] = "flush_all",
    [SHARED_FLUSH_EXPIRED] = "flush_expired",
    [SHARED_CAPACITY] = "capacity",
    [SHARED_FREE_SPACE] = "free_space",
};

const char *shared_op_name(enum shared_opcode code)
{
    return (unsigned)code < SHARED_OPCODE_COUNT ? names[code] : "?";
}

void shared_result_init(struct shared_result *r)
{
    memset(r, 0, sizeof *r);
}

void shared_result_free(struct shared_result *r)
{
    free(r->keys);
    free(r->key_lens);
    free(r->owned);
    shared_result_init(r);
}
