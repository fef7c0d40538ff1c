#ifndef EXHOOK_BENCH_REQUESTS_H
#define EXHOOK_BENCH_REQUESTS_H

/* The load generator's scenarios: the calls each one makes, their request
 * bodies filled like an EMQX broker fills them, and the reply each call must
 * get from a server running scripts/example.lua. */

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "hooks.h"

#define BREQ_NIDS 64 /* distinct simulated client identities */

/* The reply a call must get from a server running scripts/example.lua. */
enum breq_expect {
    BREQ_EMPTY,   /* EmptySuccess */
    BREQ_IGNORE,  /* IGNORE, no value: the handler returned nil */
    BREQ_ALLOW,   /* STOP_AND_RETURN bool_result=true */
    BREQ_DENY,    /* STOP_AND_RETURN bool_result=false */
    BREQ_ADMIT,   /* CONTINUE bool_result=true; IGNORE when the generation is v1
                     (an ordinary client let in: IGNORE would refuse it on EMQX 5) */
    BREQ_REWRITE, /* CONTINUE with demo/in moved to demo/out */
    BREQ_DROP,    /* STOP_AND_RETURN with allow_publish=false */
};

struct breq_step {
    enum hook_id hook;
    const char *user;
    int action; /* authorize: PUBLISH or SUBSCRIBE */
    const char *topic;
    enum breq_expect expect;
    const char *label;
};

struct breq_scenario {
    const char *name;
    bool sequential; /* one simulated client per slot, its calls in order */
    size_t n;
    const struct breq_step *steps;
};

/* The default scenario (authenticate). */
extern const struct breq_scenario *const breq_default;

/* The scenario called `name` ("authenticate", "mix"...), or NULL. */
const struct breq_scenario *breq_find(const char *name);

/* Packs every request of `sc` once per client identity, as a broker of
 * interface generation `version` would send it. */
void breq_build(const struct breq_scenario *sc, int version);

/* The packed request of step number `step` for the client `ident`. */
grpc_slice *breq_body(size_t step, unsigned ident);

/* The request of `hook` (any of the rpcs, also those no scenario calls) as a
 * broker of generation `version` sends it for one client, user normaluser,
 * topic demo/in; the caller unrefs it. The fuzzer's seeds. */
grpc_slice breq_request(enum hook_id hook, int version);

/* Frees what breq_build packed. */
void breq_free(void);

/* True when a finished call of `st` got exactly the reply it must get; else
 * writes why not to `why`. `batch_ok`, `status`, `details` and `recv` are what
 * the call's batch returned. */
bool breq_check_reply(const struct breq_step *st, bool batch_ok, grpc_status_code status,
                      grpc_slice details, grpc_byte_buffer *recv, char *why, size_t wlen);

#endif
