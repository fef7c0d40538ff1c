#ifndef EXHOOKD_TEST_FIXTURES_H
#define EXHOOKD_TEST_FIXTURES_H

/* A throw-away scripts folder and a config pointing at it. */

#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "net.h"
#include "task.h"
#include "script.h"
#include "server.h"

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

/* Starts a server for `cfg` (taken over, as srv_create does) on 127.0.0.1
 * with a port the system picks (the config file refuses port 0, so it is
 * set here); `config_path` as for srv_create. Writes "127.0.0.1:<port>" to
 * `target`. Fails the test if it does not start. */
struct server *fx_start_server(struct config *cfg, const char *config_path, char *target,
                               size_t len);

/* Sends stderr (the log) to <dir>/stderr.txt from capture_begin until
 * capture_end, which returns what was written (malloc'd). */
struct capture {
    char path[300];
    int saved;
};
void capture_begin(struct capture *c, const char *dir);
char *capture_end(struct capture *c);
/* Waits (at most `seconds`) until the captured log contains `text`, for a
 * line another thread writes; true when it does. */
int capture_wait(struct capture *c, const char *text, int seconds);

/* True if `line` starts like a log line: "YYYY-MM-DDTHH:MM:SS.mmmZ ". */
int is_log_timestamp(const char *line);

/* A Lua engine over a throw-away scripts folder, and the reply of its last
 * call. */
struct efx {
    struct fixture fx;
    struct script_engine e;
    struct dispatch_reply out;
    /* An event loop of its own, so that handlers can wait (dispatch_call
     * runs it until the call is done). */
    struct net *net;
    struct task_queue ready;
};

/* Writes the (file name, text) pairs that follow `extra` (NULL-terminated),
 * configures init_module = `modules` with `extra` appended to the ini, and
 * opens the engine as worker 1. Fails the test if it does not open. */
struct efx *efx_open(const char *modules, const char *extra, ...);
void efx_close(struct efx *t);

/* Packs `req` and serves it as a v3 call of `hook` with the broker deadline
 * `deadline_ns` (INT64_MAX: none); the reply is in t->out. */
void efx_call(struct efx *t, enum hook_id hook, const ProtobufCMessage *req, int64_t deadline_ns);

#endif
