#ifndef EXHOOKD_SCRIPT_H
#define EXHOOKD_SCRIPT_H

/* One Lua state with the user's modules loaded, owned by one worker thread.
 *
 * Each init module runs in its own global environment (a table whose misses
 * fall through to _G), so two modules never clobber each other. A module
 * either returns a table of handlers or defines global functions; handlers
 * are resolved once at load time and kept as registry references. */

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hooks.h"

struct net;
struct task;
struct task_queue;
struct timer_job;

struct script_module {
    char *name;                 /* as named in init_module, e.g. "example" */
    char *file;                 /* resolved path, e.g. "scripts/example.lua" */
    int handlers[HOOK_COUNT];   /* registry refs; LUA_NOREF where not defined */
    int deinit_ref;             /* registry ref of deinit(), or LUA_NOREF */
    /* Topic filters this module's message hooks are limited to: its own
     * `topics` field, else the config's [topics]; none = every topic. */
    struct cfg_filters filters[HOOK_COUNT];
};

/* What OnProviderLoaded advertises for one hook: the union of what the
 * modules and the [webhook] rules ask for. */
struct script_hook_spec {
    bool registered;            /* some module handles it */
    bool webhook;               /* a [webhook] rule forwards it */
    int last_module;            /* index of the last module that does, or -1 */
    struct cfg_filters topics;  /* message hooks: union of filters; empty = every topic */
};

struct script_engine {
    lua_State *L;
    int worker_id;
    /* Limits. The allocator counts every byte of the state and refuses
     * growth past mem_limit; a count hook stops code running past the
     * deadline of the handler call, module body or init() in progress. */
    size_t mem_used;
    size_t mem_limit;           /* 0 = none */
    unsigned call_timeout_ms;   /* 0 = no time limit (and no hook) */
    int64_t deadline_ns;        /* CLOCK_MONOTONIC; INT64_MAX = none */
    bool timed_out;             /* the running code passed its deadline */
    char timeout_where[160];    /* "file:line" where it was stopped */
    struct script_module *modules;
    size_t module_count;
    struct script_hook_spec specs[HOOK_COUNT];
    /* Tasks (task.h): the one running, the slot's network side and queue
     * of ready tasks (NULL outside a worker slot: nothing can wait), and
     * coroutines kept for reuse. */
    struct task *running;
    struct net *net;
    struct task_queue *ready;
    size_t live_tasks;          /* tasks open on this state */
    int pool[64];               /* registry refs of idle coroutines */
    size_t pool_len;
    struct timer_job *timers;   /* exhook.timer jobs pending or running */
    unsigned timer_count, max_timers;
    bool retired;               /* a reload replaced it (lua_timer_retire) */
    const char *current_module; /* module whose code runs now, tags exhook.log */
    const char *current_hook;   /* hook it runs for (EMQX's name), or NULL */
    /* exhook.health.set (health.h): the generation this state serves in, 0
     * until it is adopted; what init() said waits here until then (-1:
     * nothing, 0: NOT_SERVING, 1: SERVING). */
    uint64_t health_generation;
    int init_health;
    const char *init_health_module;
    char init_health_reason[200];
};

/* Creates the state in `e` (which must not move while open: the state
 * keeps a pointer to it), loads every init module of `cfg` in order, runs each
 * module's init(). 0 on success; -1 with a one-line message in `err` naming
 * the file (and line, where Lua knows it), and `e` left closed. */
int script_engine_open(struct script_engine *e, const struct config *cfg, int worker_id,
                       char *err, size_t errlen);

/* A worker slot takes the state up: waits run on `net`, and tasks whose
 * wait is over queue on `ready`. */
void script_engine_attach(struct script_engine *e, struct net *net, struct task_queue *ready);

/* Runs deinit() of every module (last loaded first) and closes the state. */
void script_engine_close(struct script_engine *e);

/* True if module `m` handles `hook` for a message on `topic` (topic is
 * ignored for hooks that are not message hooks). */
bool script_module_wants(const struct script_module *m, enum hook_id hook, const char *topic);

/* Writes the hooks OnProviderLoaded advertises, e.g.
 * "client.authenticate, message.publish [sensors/#, alerts/+]", or "(none)". */
void script_describe_hooks(const struct script_engine *e, char *buf, size_t len);

/* Monotonic clock in nanoseconds, the clock of deadline_ns. */
int64_t script_now_ns(void);

/* Sets the deadline for the code about to run: call_timeout from now, or
 * `limit_ns` (an absolute CLOCK_MONOTONIC time, e.g. the broker's deadline)
 * if that is earlier. */
void script_arm_deadline(struct script_engine *e, int64_t limit_ns);

/* After a protected call on `L` (the state's main thread or one of its
 * coroutines): clears the timeout state so the next call starts fresh.
 * Returns whether the call had timed out. */
bool script_clear_timeout(struct script_engine *e, lua_State *L);

/* Length of the error text in `msg`, a message from the handler below:
 * what comes before "\nstack traceback:" (all of it when there is none). */
size_t script_error_length(const char *msg);

/* Pushes the message handler used with lua_pcall: it turns an error into
 * "<message>\n<traceback>". */
void script_push_msgh(lua_State *L);

#endif
