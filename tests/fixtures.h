#ifndef EXHOOKD_TEST_FIXTURES_H
#define EXHOOKD_TEST_FIXTURES_H

/* A throw-away scripts folder and a config pointing at it. */

#include "config.h"

struct fixture {
    char dir[256];
    struct config cfg;
};

/* Creates the folder (under $TMPDIR or /tmp) and default config. */
void fx_init(struct fixture *fx);

/* Writes `text` to <dir>/<file> (subfolders are created). */
void fx_write(struct fixture *fx, const char *file, const char *text);

/* Loads a config with [lua] path = <dir>, init_module = `modules`, and
 * `extra` appended verbatim (more sections, e.g. "[topics]\n..."). Fails the
 * test if the config does not load. */
void fx_configure(struct fixture *fx, const char *modules, const char *extra);

/* Removes the folder and frees the config. */
void fx_free(struct fixture *fx);

#endif
