#include "lua_shared_redis.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua_shared.h"
#include "net.h"
#include "redis.h"
#include "shared_redis.h"
#include "wait.h"

/* One operation waited on. */
struct op {
    struct wait *w;
    struct shared_redis_req *req; /* until it finishes */
    enum shared_opcode code;
    struct shared_result r;
};

static void op_cancel(void *p)
{
    struct op *op = p;
    if (op->req)
        shared_redis_cancel(op->req);
    shared_result_free(&op->r);
    free(op);
}

/* In a protected call (wait.h): should pushing raise, `op` is still whole
 * for op_cancel to free. */
static int op_push(lua_State *L, void *p)
{
    struct op *op = p;
    struct shared_op shape = {.code = op->code};
    int n = lua_shared_push_result(L, &shape, &op->r);
    shared_result_free(&op->r);
    free(op);
    return n;
}

static void on_done(void *ctx, struct shared_result *r)
{
    struct op *op = ctx;
    op->req = NULL;
    op->r = *r;
    wait_complete(op->w, op_push);
}

/* Answers at once, without waiting: the URL has no pool. */
static int push_failure(lua_State *L, const struct shared_op *sop, const char *fname,
                        const char *why)
{
    struct shared_result r;
    shared_result_init(&r);
    r.status = SHARED_FAILED;
    snprintf(r.message, sizeof r.message, "%s: %.120s", fname, why);
    return lua_shared_push_result(L, sop, &r);
}

int lua_shared_redis_run(lua_State *L, const char *dict_name, const char *url,
                         const struct shared_op *sop)
{
    char fname[128];
    snprintf(fname, sizeof fname, "exhook.shared.%.64s:%s", dict_name, shared_op_name(sop->code));
    struct wait_ctx ctx;
    struct wait *w = wait_begin(L, fname, &ctx);
    char err[256];
    struct redis_pool *pool = redis_pool_get(ctx.net->redis, url, err, sizeof err);
    if (!pool)
        return push_failure(L, sop, fname, err);
    struct op *op = calloc(1, sizeof *op);
    if (!op)
        return push_failure(L, sop, fname, "out of memory");
    op->w = w;
    op->code = sop->code;
    shared_result_init(&op->r);
    /* The call's own deadline is left to the call: it cancels the wait
     * and answers with what it waited for. */
    op->req = shared_redis_start(ctx.net->loop, pool, dict_name, sop, INT64_MAX, on_done, op);
    if (!op->req) {
        free(op);
        return push_failure(L, sop, fname, "out of memory");
    }
    char what[256];
    snprintf(what, sizeof what, "%s on redis %s", fname, redis_pool_name(pool));
    return wait_yield(L, w, op, op_cancel, what);
}
