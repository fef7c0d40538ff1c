#ifndef EXHOOKD_HEALTH_H
#define EXHOOKD_HEALTH_H

/* grpc.health.v1.Health/Check, answered by the server itself. The overall
 * service "" and each HookProvider generation are SERVING while exhookd
 * takes calls (its scripts are loaded before the port opens) and the
 * scripts have not said otherwise (exhook.health.set), and NOT_SERVING once
 * it is shutting down; any other service name is NOT_FOUND, as the
 * protocol asks. */

#include <stdbool.h>
#include <stdint.h>

#include "dispatch.h"

#define HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"

struct script_engine;

/* What the scripts say, for the whole process: every worker's Lua state
 * writes it, every check reads it. It belongs to one generation of scripts
 * (the Lua states of one start or reload): a reload starts SERVING unless
 * the new init() says otherwise, and a state being replaced cannot undo
 * what the new scripts said. */

/* A new generation number, for the states about to be built. */
uint64_t health_generation_new(void);
/* Ties the built state `e` to `generation`, taking what its init() said. */
void health_adopt(struct script_engine *e, uint64_t generation);
/* The generation whose word counts from now on (its states are serving). */
void health_publish(uint64_t generation);
/* exhook.health.set from the code running in `e` (its current module);
 * `reason` may be NULL. Logged when the state the checks see changes. */
void health_script_set(struct script_engine *e, bool serving, const char *reason);
/* False while the published generation's scripts say NOT_SERVING. */
bool health_scripts_serving(void);

void health_check(const uint8_t *request, size_t len, bool serving, struct dispatch_reply *out);

#endif
