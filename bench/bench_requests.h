#ifndef EXHOOK_BENCH_REQUESTS_H
#define EXHOOK_BENCH_REQUESTS_H

/* The load generator's scenarios: the calls each one makes, their request
 * bodies filled like an EMQX broker fills them, the reply each call must
 * get from a server running scripts/example.lua, and, for a server running
 * other scripts, what each reply was and whether it is the one expected. */

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "hooks.h"

#define BREQ_NIDS 64           /* distinct simulated client identities by default */
#define BREQ_MAX_VALUES 100000 /* most values one request field may take */

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

/* Values for one field of every request, from the command line: client
 * identity i gets v[i % n]. n == 0: the scenario's own value. */
struct breq_list {
    char **v;
    size_t n;
};

/* The payload size of a publish when none is asked for. */
#define BREQ_PAYLOAD_LEN 200

/* What the requests carry besides what the scenario fixes. */
struct breq_content {
    struct breq_list user, password, clientid, topic;
    size_t payload_len;
};

/* What a reply said, for a server running any scripts. */
enum breq_verdict {
    BREQ_V_NONE,           /* no reply message: a transport failure or a non-OK status */
    BREQ_V_EMPTY,          /* EmptySuccess, from a notification */
    BREQ_V_IGNORE,         /* authenticate, authorize: no opinion */
    BREQ_V_CONTINUE_TRUE,  /* CONTINUE bool_result=true */
    BREQ_V_CONTINUE_FALSE, /* CONTINUE bool_result=false */
    BREQ_V_STOP_TRUE,      /* STOP_AND_RETURN bool_result=true */
    BREQ_V_STOP_FALSE,     /* STOP_AND_RETURN bool_result=false */
    BREQ_V_MODIFIED,       /* publish: a message other than the one sent */
    BREQ_V_DROPPED,        /* publish: a message with allow_publish=false */
    BREQ_V_UNCHANGED,      /* publish: IGNORE, or the message as sent */
    BREQ_V_MALFORMED,      /* a reply no broker can use for this call */
    BREQ_NVERDICTS
};
extern const char *const breq_verdict_names[BREQ_NVERDICTS];

/* The index of a failed transport among the status counts, after the 17
 * gRPC status codes. */
#define BREQ_TRANSPORT 17
#define BREQ_NSTATUS 18
extern const char *const breq_status_names[BREQ_NSTATUS];

struct breq_reply {
    int status; /* a grpc_status_code, or BREQ_TRANSPORT */
    enum breq_verdict verdict;
};

/* What a counting run accepts: every reply with `status`, and for each hook
 * a verdict among the bits (1 << verdict) of verdicts[hook]; 0 takes any. */
struct breq_expectation {
    int status;
    unsigned verdicts[HOOK_COUNT];
};

/* The default scenario (authenticate). */
extern const struct breq_scenario *const breq_default;

/* The scenario called `name` ("authenticate", "mix"...), or NULL. */
const struct breq_scenario *breq_find(const char *name);

/* Packs every request of `sc` once per client identity, as a broker of
 * interface generation `version` would send it, with the values of `c`.
 * There are BREQ_NIDS identities, or as many as the longest list of `c`. */
void breq_build(const struct breq_scenario *sc, int version, const struct breq_content *c);

/* How many client identities breq_build packed for. */
unsigned breq_nids(void);

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

/* What the finished call of `st` for client `ident` got. */
void breq_classify(const struct breq_step *st, unsigned ident, bool batch_ok,
                   grpc_status_code status, grpc_byte_buffer *recv, struct breq_reply *out);

/* True when `r` is what `e` accepts for `st`: its status, a usable reply and
 * an accepted verdict; else writes why not to `why`. */
bool breq_judge(const struct breq_expectation *e, const struct breq_step *st, unsigned ident,
                const struct breq_reply *r, grpc_slice details, char *why, size_t wlen);

#endif
