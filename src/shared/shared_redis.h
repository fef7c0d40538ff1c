#ifndef EXHOOKD_SHARED_REDIS_H
#define EXHOOKD_SHARED_REDIS_H

/* The Redis backend of the shared dictionaries: one `struct shared_op` as
 * Redis commands on a worker slot's pool (redis.h), its reply as a `struct
 * shared_result`. No Lua here (src/lua/lua_shared_redis.c binds it).
 *
 * Layout in Redis, for operators who look at it:
 *
 *   key     "exhookd:<dictionary>:<key>", e.g. exhookd:sessions:user42
 *   value   an integer as its decimal digits ("42": Redis' own INCRBY
 *           keeps 64-bit counts exact), anything else tagged by its first
 *           byte: "s" + the bytes of a string, "f" + a float (%.17g, read
 *           back exactly), "b1" / "b0" for true / false
 *   ttl     Redis' own expiry (PEXPIRE: milliseconds)
 *
 * Every operation on one key is one Redis command, or one Lua script run
 * by Redis (incr, expire), so it is atomic across workers and instances.
 * keys and flush_all walk the dictionary's keys with SCAN (never KEYS),
 * flush_all removing each batch with UNLINK: keys written while it walks
 * may stay. flush_expired frees nothing (0): Redis removes expired keys by
 * itself. capacity and free_space read Redis' INFO memory: maxmemory, and
 * maxmemory - used_memory, for the whole server (every dictionary and
 * whatever else it holds); with no maxmemory set they fail. Eviction is
 * Redis' own (maxmemory-policy), so `forcible` is never set; a write that
 * Redis refuses for memory (OOM, e.g. under noeviction) is "no memory". */

#include <stdint.h>

#include "shared_op.h"

struct loop;
struct redis_pool;
struct shared_redis_req;

/* The operation finished: `r` is the callee's (moved out by copying the
 * struct, freed with shared_result_free). The request is gone after this
 * returns. */
typedef void shared_redis_done_fn(void *ctx, struct shared_result *r);

/* Starts `op` on dictionary `dict` (its name, for keys and messages) on
 * `pool`, whose slot's loop is `loop`. `done` runs later, from a loop
 * callback, failures included; past `deadline_ns` (loop_now_ns clock;
 * INT64_MAX: none) the operation fails with a timeout. `op` is copied.
 * NULL only when out of memory. */
struct shared_redis_req *shared_redis_start(struct loop *loop, struct redis_pool *pool,
                                            const char *dict, const struct shared_op *op,
                                            int64_t deadline_ns, shared_redis_done_fn *done,
                                            void *ctx);

/* The caller loses interest: `done` never runs. A command already sent
 * still runs on the server. */
void shared_redis_cancel(struct shared_redis_req *req);

#endif
