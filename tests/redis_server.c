/* mkdtemp, nftw */
#define _XOPEN_SOURCE 700

#include "redis_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* True once something on the port answers PING (+PONG, or -NOAUTH with a
 * password). */
static int answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        ok = poll(&p, 1, 1000) == 1 && read(fd, &c, 1) == 1 && (c == '+' || c == '-');
    }
    close(fd);
    return ok;
}

static void spawn(struct redis_server *s)
{
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        /* Dies with the test, also when a crash skips the teardown. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Not the test's output: ctest waits for whoever holds it. */
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        const char *argv[20] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", s->dir, "--logfile", log,
                                "--daemonize", "no"};
        int n = 15;
        if (s->password[0]) {
            argv[n++] = "--requirepass";
            argv[n++] = s->password;
        }
        argv[n] = NULL;
        execvp("redis-server", (char **)argv);
        _exit(127);
    }
}

/* 1 when it answers, 0 when it exited (its port was taken meanwhile). */
static int wait_ready(struct redis_server *s)
{
    for (int i = 0; i < 200; i++) {
        if (answers(s->port))
            return 1;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return 0;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    fail_msg("redis-server on port %d does not answer within 10 s (see %s/redis.log)", s->port,
             s->dir);
    return 0;
}

void redis_server_start(struct redis_server *s, const char *password)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/exhookd-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(s->dir));
    if (password)
        snprintf(s->password, sizeof s->password, "%s", password);
    /* Another process may take the port between the probe and the bind. */
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = redis_free_port();
        spawn(s);
        if (wait_ready(s))
            return;
    }
    fail_msg("redis-server does not start (see %s/redis.log)", s->dir);
}

void redis_server_restart(struct redis_server *s)
{
    spawn(s);
    if (!wait_ready(s))
        fail_msg("redis-server does not start again on port %d", s->port);
}

void redis_server_kill(struct redis_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void redis_server_stop(struct redis_server *s)
{
    redis_server_kill(s);
    nftw(s->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}
