#ifndef EXHOOKD_NET_H
#define EXHOOKD_NET_H

/* The network side of one worker slot: its event loop and the clients that
 * run on it, with their connections (kept across calls and across script
 * reloads). Used by one thread at a time, the one that holds the slot. No
 * Lua here: the exhook.* bindings in src/lua/ use these. */

#include <stddef.h>

#include "loop.h"

struct http_client;
struct redis_pools;

struct net {
    struct loop *loop;
    struct http_client *http;
    struct redis_pools *redis;
};

/* NULL with a message in `err`. `http_max_connections`: see
 * http_client_create. */
struct net *net_open(unsigned http_max_connections, char *err, size_t errlen);
/* Cancels what is in progress and closes every connection. */
void net_close(struct net *n);

#endif
