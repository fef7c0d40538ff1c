#include "shared_dicts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "shared_dict.h"

/* A fixed array: the Lua states read entries while they are built, and
 * an entry never moves. */
static struct shared_decl decls[CFG_SHARED_MAX];
static size_t n_decls;

static const struct shared_decl *find(const char *name)
{
    for (size_t i = 0; i < n_decls; i++) {
        if (strcmp(decls[i].name, name) == 0)
            return &decls[i];
    }
    return NULL;
}

static int open_one(const struct cfg_shared *c, char *err, size_t errlen)
{
    if (n_decls == CFG_SHARED_MAX) {
        errbuf_set(err, errlen, "shared dictionary '%s': at most %d in a process", c->name,
                   CFG_SHARED_MAX);
        return -1;
    }
    struct shared_decl *d = &decls[n_decls];
    snprintf(d->name, sizeof d->name, "%s", c->name);
    if (c->url) {
        d->url = strdup(c->url);
        if (!d->url) {
            errbuf_set(err, errlen, "shared dictionary '%s': out of memory", c->name);
            return -1;
        }
    } else {
        d->local = shared_dict_create(c->name, c->size, err, errlen);
        if (!d->local)
            return -1;
    }
    n_decls++;
    return 0;
}

int shared_dicts_open(const struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_shared; i++) {
        if (!find(cfg->shared[i].name) && open_one(&cfg->shared[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}

size_t shared_dicts_count(void)
{
    return n_decls;
}

const struct shared_decl *shared_dicts_at(size_t i)
{
    return i < n_decls ? &decls[i] : NULL;
}
