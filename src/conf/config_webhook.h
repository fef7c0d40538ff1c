#ifndef EXHOOKD_CONFIG_WEBHOOK_H
#define EXHOOKD_CONFIG_WEBHOOK_H

/* Private to the config module: the [webhook] section. Its fixed keys are
 * rows of config.c's key table (these are their setters); headers.<name>
 * and rule.<event>.<n> have names of the operator's choosing and come here
 * whole. Setters fill `msg` with "<key>: <what>" and return -1 on error. */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The plugin's own prefix, which an operator may keep on a pasted key. */
#define CFGW_PLUGIN_PREFIX "web.hook."

void cfgw_defaults(struct cfg_webhook *wc);

int cfgw_set_url(struct config *cfg, const char *key, const char *value, char *msg, size_t msglen);
int cfgw_set_encoding(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen);
int cfgw_set_pool_size(struct config *cfg, const char *key, const char *value, char *msg,
                       size_t msglen);
int cfgw_set_request_timeout(struct config *cfg, const char *key, const char *value, char *msg,
                             size_t msglen);
int cfgw_set_cacertfile(struct config *cfg, const char *key, const char *value, char *msg,
                        size_t msglen);
int cfgw_set_certfile(struct config *cfg, const char *key, const char *value, char *msg,
                      size_t msglen);
int cfgw_set_keyfile(struct config *cfg, const char *key, const char *value, char *msg,
                     size_t msglen);
int cfgw_set_verify(struct config *cfg, const char *key, const char *value, char *msg,
                    size_t msglen);
int cfgw_set_queue_events(struct config *cfg, const char *key, const char *value, char *msg,
                          size_t msglen);
int cfgw_set_queue_bytes(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen);
int cfgw_set_max_retries(struct config *cfg, const char *key, const char *value, char *msg,
                         size_t msglen);
int cfgw_set_retry_interval(struct config *cfg, const char *key, const char *value, char *msg,
                            size_t msglen);
int cfgw_set_max_retry_interval(struct config *cfg, const char *key, const char *value, char *msg,
                                size_t msglen);

/* Whether `name` is one of the keys whose name is free: headers.<name> or
 * rule.<event>.<n>. */
bool cfgw_free_form(const char *name);

/* Sets headers.<name> or rule.<event>.<n>. A key given twice is an error. */
int cfgw_set_free_form(struct cfg_webhook *wc, const char *name, const char *value, char *msg,
                       size_t msglen);

/* What is wrong with the [webhook] keys taken together, or NULL. */
const char *cfgw_problem(const struct cfg_webhook *wc);

#endif
