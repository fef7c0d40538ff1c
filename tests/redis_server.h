#ifndef EXHOOKD_TEST_REDIS_SERVER_H
#define EXHOOKD_TEST_REDIS_SERVER_H

/* A real redis-server for a test: on a free loopback port, in a folder of
 * its own, persisting nothing. */

#include <sys/types.h>

struct redis_server {
    pid_t pid;
    int port;
    char dir[256];
    char password[64]; /* --requirepass when set */
};

/* Picks a free port and starts it; fails the test if it does not answer
 * within 10 s. `password` may be NULL. */
void redis_server_start(struct redis_server *s, const char *password);
/* Starts it again on the same port, after redis_server_kill. */
void redis_server_restart(struct redis_server *s);
/* SIGKILL: clients see their connections reset. */
void redis_server_kill(struct redis_server *s);
/* Kills it if it runs and removes its folder. */
void redis_server_stop(struct redis_server *s);

/* A loopback port nothing listens on (as far as anyone can tell). */
int redis_free_port(void);

#endif
