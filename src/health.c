#include "health.h"

#include <stdio.h>
#include <string.h>

#include "health.pb-c.h"
#include "hooks.h"

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
        out->status = GRPC_STATUS_INVALID_ARGUMENT;
        snprintf(out->error, sizeof out->error, "Check: malformed HealthCheckRequest");
        return;
    }
    if (!known_service(req->service)) {
        out->status = GRPC_STATUS_NOT_FOUND;
        snprintf(out->error, sizeof out->error, "unknown service '%.200s'", req->service);
    } else {
        Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        reply.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        dispatch_reply_pack(out, &reply.base);
    }
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}
