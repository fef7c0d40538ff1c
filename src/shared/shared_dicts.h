#ifndef EXHOOKD_SHARED_DICTS_H
#define EXHOOKD_SHARED_DICTS_H

/* The process's shared dictionaries: one per [shared] key, made once and
 * kept for the life of the process. The master makes them before it forks
 * (main.c), so every server child, a replacement too, inherits the zones
 * with their contents; a process that runs the server without a master
 * (srv_create in the tests) makes them itself. A reload keeps them: a
 * [shared] change takes a restart. */

#include <stddef.h>

#include "config.h"
#include "shared_dict.h"

struct shared_decl {
    char name[SHARED_NAME_MAX + 1];
    struct shared_dict *local; /* the local store, or NULL */
    char *url;                 /* the Redis backend's URL, or NULL */
};

/* Makes the dictionaries of cfg->shared that this process does not have
 * yet (by name); those it has are kept as they are. 0, or -1 with the
 * reason in `err`. Not for use while a server of this process runs. */
int shared_dicts_open(const struct config *cfg, char *err, size_t errlen);

/* How many there are, and the i-th, in the order they were declared. */
size_t shared_dicts_count(void);
const struct shared_decl *shared_dicts_at(size_t i);

#endif
