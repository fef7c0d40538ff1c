#ifndef EXHOOKD_HEALTH_H
#define EXHOOKD_HEALTH_H

/* grpc.health.v1.Health/Check, answered by the server itself. The overall
 * service "" and each HookProvider generation are SERVING while exhookd
 * takes calls (its scripts are loaded before the port opens) and
 * NOT_SERVING once it is shutting down; any other service name is
 * NOT_FOUND, as the protocol asks. */

#include <stdbool.h>

#include "dispatch.h"

#define HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"

void health_check(const uint8_t *request, size_t len, bool serving, struct dispatch_reply *out);

#endif
