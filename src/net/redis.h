#ifndef EXHOOKD_REDIS_H
#define EXHOOKD_REDIS_H

/* A Redis client for one worker slot, on hiredis' asynchronous API and the
 * slot's event loop. No Lua here (src/lua/lua_redis.c binds it).
 *
 * A slot keeps one pool per Redis URL; a pool keeps a few connections,
 * opened at its first command, authenticated and switched to the URL's
 * database before anything else runs on them, and reopened after a
 * failure with a growing delay. Commands go to the connection with the
 * fewest commands in flight.
 *
 *   redis://[[user]:password@]host[:port][/db][?pool=N&connect_timeout=MS]
 *
 *   host             a name, an IPv4 address or an IPv6 one in brackets
 *   port             6379 by default
 *   user, password   AUTH [user] password on every connection
 *                    (percent-encoded when they hold ':', '@', '/' or '%')
 *   db               SELECT db on every connection; 0 by default
 *   pool             connections per worker slot, 1 to 64; 2 by default
 *   connect_timeout  milliseconds, 1 to 600000; 2000 by default
 *
 * Not thread-safe: the thread that holds the slot uses it. hiredis writes
 * with write(): the process must ignore SIGPIPE (exhookd does). */

#include <stddef.h>
#include <stdint.h>

struct loop;
struct redis_pools;
struct redis_pool;
struct redis_cmd;

/* Why a command got no reply. */
enum redis_fail {
    REDIS_FAIL_TIMEOUT = 1, /* its deadline passed, or the connection could not be opened in time */
    REDIS_FAIL_REFUSED,     /* nothing listens at the address */
    REDIS_FAIL_OTHER,       /* the connection broke, AUTH or SELECT failed, bad use, ... */
};

struct redis_error {
    enum redis_fail kind;
    char msg[256]; /* e.g. "redis 127.0.0.1:6379: connection refused" */
};

/* A reply, in one allocation (free it with free()). Error replies
 * ("-ERR ...") are replies, not failures: type REDIS_V_ERROR. */
enum redis_vtype {
    REDIS_V_NIL,
    REDIS_V_INTEGER,
    REDIS_V_STRING,
    REDIS_V_STATUS,
    REDIS_V_ERROR,
    REDIS_V_ARRAY,
};

struct redis_value {
    enum redis_vtype type;
    long long integer;          /* REDIS_V_INTEGER */
    const char *str;            /* STRING, STATUS, ERROR: `len` bytes and a '\0' */
    size_t len;
    struct redis_value *elems;  /* ARRAY: `n` values */
    size_t n;
};

/* A command finished: exactly one of `reply` (owned by the callee now)
 * and `err` (valid during the call) is set. May start and cancel other
 * commands; must not destroy the pools. */
typedef void redis_done_fn(void *ctx, struct redis_value *reply, const struct redis_error *err);

struct redis_pools *redis_pools_create(struct loop *loop);
/* Cancels what is in progress (no `done` runs) and closes every
 * connection. */
void redis_pools_destroy(struct redis_pools *p);

/* Checks a URL without opening anything: 0 with "host:port" (no
 * password) in `name`, or -1 with the reason in `err`. */
int redis_url_check(const char *url, char *name, size_t namelen, char *err, size_t errlen);

/* The pool of `url` on this slot, created (without I/O) at the first ask;
 * NULL with the reason in `err` for a bad URL or past 64 URLs. Pools live
 * as long as the slot. */
struct redis_pool *redis_pool_get(struct redis_pools *p, const char *url, char *err, size_t errlen);

/* "host:port", for messages (no password). */
const char *redis_pool_name(const struct redis_pool *pool);

/* A command's name as messages show it: at most 31 bytes of it, anything
 * unprintable (a script's text may hold a newline) as '?'. */
enum { REDIS_NAME_MAX = 32 };
void redis_cmd_name(char out[REDIS_NAME_MAX], const char *name, size_t len);

/* Sends a command (argv[0] is its name; `lens` may be NULL for C strings)
 * and returns a handle, `done` running later with its outcome, from a loop
 * callback. Past `deadline_ns` (loop_now_ns clock; INT64_MAX: none) it
 * finishes with REDIS_FAIL_TIMEOUT, and its late reply is dropped.
 *
 * Returns NULL, with `err` filled and `done` never run, when it fails at
 * once: no connection up (the last connection error), a deadline already
 * past, a command that would change a shared connection's state
 * (SUBSCRIBE, MULTI, SELECT, ...), the pools closing. */
struct redis_cmd *redis_command(struct redis_pool *pool, int argc, const char **argv,
                                const size_t *lens, int64_t deadline_ns, redis_done_fn *done,
                                void *ctx, struct redis_error *err);

/* The caller loses interest in a command whose `done` has not run: it
 * never runs. The command stays sent; its reply is dropped when it comes,
 * and its connection takes no new commands until then (it may be stuck on
 * a blocking command). */
void redis_cancel(struct redis_cmd *c);

#endif
