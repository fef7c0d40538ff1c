#define _GNU_SOURCE /* pipe2 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The serving child, its replacement, and old children still stopping. */
#define MAX_CHILDREN 4
/* How long past shutdown_timeout a stopping child may run before SIGKILL:
 * more than the child's own bound (server.c), which it normally keeps. */
#define KILL_SLACK_MS 4000
/* A respawn waits at least 1 s after the last start, doubled after each
 * failure in a row, up to 30 s. */
#define RESPAWN_MIN_MS 1000
#define RESPAWN_MAX_MS 30000
/* Failures in a row (a child that dies, or exits before it is ready) after
 * which, with no child serving, the master gives up. */
#define MAX_FAILURES 5
/* A child that served this long before it died ends a run of failures. */
#define STABLE_MS 10000

enum child_state { CHILD_STARTING, CHILD_SERVING, CHILD_STOPPING };

struct child {
    pid_t pid; /* 0: free slot */
    int fd;    /* read end of its report pipe; -1 once closed */
    enum child_state state;
    int64_t serving_since_ms;
    int64_t kill_at_ms; /* INT64_MAX: not (or no longer) to be killed */
    char buf[64];
    size_t len;
};

struct master {
    struct config *cfg;
    sup_child_fn *run;
    void *ctx;
    pid_t self;
    int sfd;
    struct child kids[MAX_CHILDREN];
    bool ever_ready;
    bool stopping;
    pid_t last_pid; /* at a stop: the child whose exit code the master returns */
    int exit_code;
    int failures;
    int64_t last_spawn_ms;
    int64_t respawn_at_ms; /* -1: none planned */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(int fd, const char *line)
{
    size_t len = strlen(line);
    /* One short write to a pipe is atomic: lines never interleave. */
    if (write(fd, line, len) != (ssize_t)len) {
        /* The master is gone: nothing to tell. */
    }
}

void sup_report_ready(int fd, int port)
{
    char line[32];
    snprintf(line, sizeof line, "ready %d\n", port);
    report(fd, line);
}

void sup_report_stuck(int fd)
{
    report(fd, "stuck\n");
}

/* Whether something already listens on the configured address. The
 * children bind with SO_REUSEPORT, which would not say so, hence this plain
 * bind first. A host that does not resolve is left to the child to report. */
static bool port_in_use(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || strcmp(colon + 1, "0") == 0)
        return false;
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char host[256];
    if (hl >= sizeof host)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res) != 0)
        return false;
    bool used = false;
    for (struct addrinfo *ai = res; ai && !used; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        used = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
        close(fd);
    }
    freeaddrinfo(res);
    return used;
}

/* With "host:0", a replacement must bind the port the first child got. */
static void keep_port(struct master *m, int port)
{
    const char *colon = strrchr(m->cfg->listen, ':');
    if (!colon || strcmp(colon + 1, "0") != 0 || port <= 0)
        return;
    size_t hl = (size_t)(colon - m->cfg->listen);
    char *listen = malloc(hl + 8);
    if (!listen)
        return;
    snprintf(listen, hl + 8, "%.*s:%d", (int)hl, m->cfg->listen, port);
    free(m->cfg->listen);
    m->cfg->listen = listen;
}

static struct child *find_child(struct master *m, enum child_state state)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (m->kids[i].pid && m->kids[i].state == state)
            return &m->kids[i];
    }
    return NULL;
}

/* A child stops within shutdown_timeout, or the time limit of a handler
 * still running then (call_timeout per module), plus its own bound. */
static void stop_child(struct master *m, struct child *k, int sig)
{
    int64_t limit = (int64_t)m->cfg->call_timeout_ms * (int64_t)m->cfg->init_module_count;
    if (limit < m->cfg->shutdown_timeout_ms)
        limit = m->cfg->shutdown_timeout_ms;
    k->state = CHILD_STOPPING;
    k->kill_at_ms = now_ms() + limit + KILL_SLACK_MS;
    kill(k->pid, sig);
}

/* The child's side of a fork: the server, as exhookd runs without a master. */
static void child_main(struct master *m, int report_fd)
{
    close(m->sfd);
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (m->kids[i].pid && m->kids[i].fd >= 0)
            close(m->kids[i].fd);
    }
    /* A master that dies (even by SIGKILL) takes its children along. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != m->self)
        _exit(1);
    /* The stop signals stay blocked: the server takes them with sigwait. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    log_set_thread_name(NULL);
    exit(m->run(m->cfg, report_fd, m->ctx));
}

static int spawn(struct master *m)
{
    struct child *k = NULL;
    for (int i = 0; i < MAX_CHILDREN && !k; i++) {
        if (!m->kids[i].pid)
            k = &m->kids[i];
    }
    int p[2];
    if (!k || pipe2(p, O_CLOEXEC) != 0) {
        log_error("cannot start a child: %s", k ? strerror(errno) : "too many children");
        return -1;
    }
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_main(m, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        log_error("cannot start a child: %s", strerror(errno));
        close(p[0]);
        return -1;
    }
    *k = (struct child){.pid = pid, .fd = p[0], .state = CHILD_STARTING, .kill_at_ms = INT64_MAX};
    m->last_spawn_ms = now_ms();
    log_info("started child %d", (int)pid);
    return 0;
}

/* Plans the start of a replacement, no sooner than the backoff allows. */
static void plan_respawn(struct master *m)
{
    if (m->respawn_at_ms >= 0 || find_child(m, CHILD_STARTING))
        return;
    int64_t delay = RESPAWN_MIN_MS;
    for (int i = 1; i < m->failures && delay < RESPAWN_MAX_MS; i++)
        delay *= 2;
    if (delay > RESPAWN_MAX_MS)
        delay = RESPAWN_MAX_MS;
    int64_t at = m->last_spawn_ms + delay;
    int64_t now = now_ms();
    m->respawn_at_ms = at > now ? at : now;
}

static void on_line(struct master *m, struct child *k, const char *line)
{
    int port;
    if (sscanf(line, "ready %d", &port) == 1 && k->state == CHILD_STARTING) {
        k->state = CHILD_SERVING;
        k->serving_since_ms = now_ms();
        if (!m->ever_ready) {
            m->ever_ready = true;
            keep_port(m, port);
            /* Under systemd (Type=notify) the master is the main pid: the
             * service is up once its first child serves. Without
             * NOTIFY_SOCKET this does nothing; a failure only means systemd
             * times the start out, which its log then says. */
            sd_notify(0, "READY=1");
            return;
        }
        log_info("child %d serves on port %d", (int)k->pid, port);
        for (int i = 0; i < MAX_CHILDREN; i++) {
            struct child *old = &m->kids[i];
            if (old != k && old->pid && old->state == CHILD_SERVING) {
                log_info("stopping child %d, replaced", (int)old->pid);
                stop_child(m, old, SIGTERM);
            }
        }
    } else if (strcmp(line, "stuck") == 0 && k->state == CHILD_SERVING) {
        log_warn("child %d has a stuck worker: starting a replacement", (int)k->pid);
        plan_respawn(m);
    }
}

static void read_reports(struct master *m, struct child *k)
{
    ssize_t n = read(k->fd, k->buf + k->len, sizeof k->buf - 1 - k->len);
    if (n <= 0) {
        close(k->fd);
        k->fd = -1;
        return;
    }
    k->len += (size_t)n;
    char *nl;
    while ((nl = memchr(k->buf, '\n', k->len))) {
        *nl = '\0';
        on_line(m, k, k->buf);
        size_t used = (size_t)(nl + 1 - k->buf);
        memmove(k->buf, nl + 1, k->len - used);
        k->len -= used;
    }
    if (k->len == sizeof k->buf - 1)
        k->len = 0; /* not a line of ours */
}

static bool any_child(const struct master *m)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (m->kids[i].pid)
            return true;
    }
    return false;
}

static void stop_all(struct master *m, int sig)
{
    m->stopping = true;
    sd_notify(0, "STOPPING=1");
    m->respawn_at_ms = -1;
    struct child *last = find_child(m, CHILD_SERVING);
    if (!last)
        last = find_child(m, CHILD_STARTING);
    m->last_pid = last ? last->pid : 0;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (m->kids[i].pid)
            stop_child(m, &m->kids[i], sig);
    }
}

static void on_exit_of(struct master *m, struct child *k, int status)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    char how[48];
    if (WIFEXITED(status))
        snprintf(how, sizeof how, "exit code %d", code);
    else
        snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
    struct child gone = *k;
    if (k->fd >= 0)
        close(k->fd);
    *k = (struct child){.fd = -1};
    if (m->stopping) {
        if (gone.pid == m->last_pid)
            m->exit_code = code;
        return;
    }
    if (gone.state == CHILD_STOPPING) {
        log_info("child %d has stopped (%s)", (int)gone.pid, how);
        return;
    }
    if (!m->ever_ready) {
        /* The first child could not start: exit as exhookd always has. */
        m->exit_code = code;
        m->stopping = true;
        return;
    }
    if (gone.state == CHILD_SERVING && now_ms() - gone.serving_since_ms >= STABLE_MS)
        m->failures = 0;
    m->failures++;
    bool serving = find_child(m, CHILD_SERVING) != NULL;
    log_error("child %d %s (%s)", (int)gone.pid,
              gone.state == CHILD_STARTING ? "exited before it was ready" : "died", how);
    if (!serving && m->failures >= MAX_FAILURES) {
        log_error("giving up after %d failures in a row", m->failures);
        m->exit_code = 1;
        stop_all(m, SIGTERM);
        return;
    }
    if (!serving)
        log_warn("starting a replacement");
    plan_respawn(m);
}

static void reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < MAX_CHILDREN; i++) {
            if (m->kids[i].pid == pid) {
                on_exit_of(m, &m->kids[i], status);
                break;
            }
        }
    }
}

static void on_signal(struct master *m)
{
    struct signalfd_siginfo si;
    if (read(m->sfd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    int sig = (int)si.ssi_signo;
    if (sig == SIGCHLD) {
        reap(m);
    } else if (sig == SIGTERM || sig == SIGINT) {
        if (!m->stopping) {
            log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            stop_all(m, sig);
        }
    } else {
        struct child *k = find_child(m, CHILD_SERVING);
        if (k)
            kill(k->pid, sig);
    }
}

/* SIGKILL for stopping children past their time; the respawn when due.
 * Returns the poll timeout until the next of these, or -1. */
static int run_timers(struct master *m)
{
    int64_t now = now_ms(), next = INT64_MAX;
    if (m->respawn_at_ms >= 0 && now >= m->respawn_at_ms) {
        m->respawn_at_ms = -1;
        if (spawn(m) != 0) {
            m->failures++;
            plan_respawn(m);
        }
    }
    if (m->respawn_at_ms >= 0)
        next = m->respawn_at_ms;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        struct child *k = &m->kids[i];
        if (!k->pid || k->kill_at_ms == INT64_MAX)
            continue;
        if (now >= k->kill_at_ms) {
            log_error("child %d did not stop within shutdown_timeout (or call_timeout) + %d ms: "
                      "killing it",
                      (int)k->pid, KILL_SLACK_MS);
            kill(k->pid, SIGKILL);
            k->kill_at_ms = INT64_MAX;
        } else if (k->kill_at_ms < next) {
            next = k->kill_at_ms;
        }
    }
    return next == INT64_MAX ? -1 : (int)(next - now);
}

int sup_run(struct config *cfg, sup_child_fn *child, void *ctx)
{
    log_set_thread_name("master");
    struct master m = {.cfg = cfg, .run = child, .ctx = ctx, .self = getpid(), .respawn_at_ms = -1};
    for (int i = 0; i < MAX_CHILDREN; i++)
        m.kids[i].fd = -1;
    if (port_in_use(cfg->listen)) {
        log_error("cannot listen on %s: the address is in use", cfg->listen);
        return 1;
    }
    cfg->reuse_port = true;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m.sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (m.sfd < 0 || spawn(&m) != 0) {
        log_error("cannot start: %s", strerror(errno));
        return 1;
    }
    while (!m.stopping || any_child(&m)) {
        int timeout = run_timers(&m);
        struct pollfd pfd[MAX_CHILDREN + 1];
        struct child *owner[MAX_CHILDREN + 1];
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = m.sfd, .events = POLLIN};
        owner[n++] = NULL;
        for (int i = 0; i < MAX_CHILDREN; i++) {
            if (m.kids[i].pid && m.kids[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = m.kids[i].fd, .events = POLLIN};
                owner[n++] = &m.kids[i];
            }
        }
        if (poll(pfd, n, timeout) <= 0)
            continue;
        /* Reports first: a child that said "ready" and then died is seen
         * in that order. */
        for (nfds_t i = 1; i < n; i++) {
            if (pfd[i].revents)
                read_reports(&m, owner[i]);
        }
        if (pfd[0].revents)
            on_signal(&m);
    }
    close(m.sfd);
    return m.exit_code;
}
