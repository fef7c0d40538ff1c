#ifndef EXHOOKD_FINGERPRINT_H
#define EXHOOKD_FINGERPRINT_H

/* What a generation of Lua states is built from, in 32 bytes: a reload
 * whose fingerprint equals the running generation's has nothing new to
 * load, and keeps the running states.
 *
 * It covers
 * - the settings that shape a state: [lua] path, init_module, call_timeout,
 *   memory_limit, sandbox, max_timers, and [topics];
 * - the scripts: every file named *.lua under [lua] path, in every
 *   subfolder (what init_module and require can load), by its path below
 *   [lua] path and its contents. Names starting with "." are skipped
 *   (require cannot name them; editors keep their temporary files so).
 * Contents, not modification times: an edit within the same second, or a
 * file replaced by an older copy, changes the fingerprint all the same.
 * Each file is read in full (SHA-256), so the cost grows with the size of
 * the tree: about 1 ms per MB (100 MB in 90 ms with the CPU's SHA
 * instructions, the files in the page cache). */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define FINGERPRINT_SIZE 32

struct fingerprint {
    unsigned char digest[FINGERPRINT_SIZE];
    size_t files; /* scripts read */
    size_t bytes; /* their total size */
};

/* The fingerprint of the states `cfg` builds. 0 on success; -1 with the
 * file that could not be read (and why) in `err`. */
int fingerprint_compute(const struct config *cfg, struct fingerprint *fp, char *err, size_t errlen);

bool fingerprint_equal(const struct fingerprint *a, const struct fingerprint *b);

#endif
