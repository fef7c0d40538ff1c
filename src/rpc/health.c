#include "health.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "health.pb-c.h"
#include "hooks.h"
#include "log.h"
#include "script.h"

/* One word, so that a check reads a consistent pair without a lock: the
 * generation that last spoke, shifted left, and 1 for NOT_SERVING. */
static _Atomic uint64_t said;
static _Atomic uint64_t published;
static _Atomic uint64_t last_generation;

static bool not_serving_in(uint64_t word, uint64_t generation)
{
    return (word >> 1) == generation && (word & 1);
}

bool health_scripts_serving(void)
{
    return !not_serving_in(atomic_load(&said), atomic_load(&published));
}

uint64_t health_generation_new(void)
{
    return atomic_fetch_add(&last_generation, 1) + 1;
}

/* Stores the word of `generation` unless a newer generation has spoken:
 * a replaced state finishing its last call must not overwrite what the new
 * init() said. True if that generation's state changed. */
static bool store(uint64_t generation, bool serving)
{
    uint64_t word = generation << 1 | (serving ? 0 : 1);
    uint64_t old = atomic_load(&said);
    do {
        if ((old >> 1) > generation)
            return false;
    } while (!atomic_compare_exchange_weak(&said, &old, word));
    return not_serving_in(old, generation) == serving;
}

static void log_change(bool serving, const char *module, const char *reason)
{
    if (serving)
        log_info("health: SERVING again, module '%s' says%s%s", module, reason ? ": " : "",
                 reason ? reason : "");
    else
        log_warn("health: NOT_SERVING, module '%s' says: %s", module,
                 reason ? reason : "(no reason given)");
}

void health_adopt(struct script_engine *e, uint64_t generation)
{
    e->health_generation = generation;
    if (e->init_health >= 0 && store(generation, e->init_health))
        log_change(e->init_health, e->init_health_module,
                   e->init_health_reason[0] ? e->init_health_reason : NULL);
}

void health_publish(uint64_t generation)
{
    bool was = health_scripts_serving();
    atomic_store(&published, generation);
    if (!was && health_scripts_serving())
        log_info("health: SERVING again, the reloaded scripts' init() did not say otherwise");
}

void health_script_set(struct script_engine *e, bool serving, const char *reason)
{
    const char *module = e->current_module ? e->current_module : "lua";
    if (!e->health_generation) {
        /* init(), or a state never served (exhookd -t, tests): it counts
         * once the state's generation is adopted. */
        e->init_health = serving;
        e->init_health_module = module;
        snprintf(e->init_health_reason, sizeof e->init_health_reason, "%s", reason ? reason : "");
        return;
    }
    if (store(e->health_generation, serving) && e->health_generation == atomic_load(&published))
        log_change(serving, module, reason);
}

static bool known_service(const char *name)
{
    if (!*name)
        return true;
    char service[64];
    for (int g = 0; g < HOOK_GENERATION_COUNT; g++) {
        snprintf(service, sizeof service, "%s.HookProvider", hook_generations[g].package);
        if (strcmp(name, service) == 0)
            return true;
    }
    return false;
}

void health_check(const uint8_t *request, size_t len, bool serving, struct dispatch_reply *out)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(NULL, len, request);
    if (!req) {
        failure_set(&out->fail, FAIL_MALFORMED, NULL, "Check: malformed HealthCheckRequest");
        out->status = GRPC_STATUS_INVALID_ARGUMENT;
        return;
    }
    if (!known_service(req->service)) {
        failure_set(&out->fail, FAIL_MALFORMED, NULL, "unknown service '%.200s'", req->service);
        out->status = GRPC_STATUS_NOT_FOUND;
    } else {
        Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        reply.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        dispatch_reply_pack(out, &reply.base);
    }
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}
