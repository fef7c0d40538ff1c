#include "net.h"

#include <stdlib.h>

#include "errbuf.h"
#include "http.h"
#include "redis.h"

struct net *net_open(unsigned http_max_connections, char *err, size_t errlen)
{
    struct net *n = calloc(1, sizeof *n);
    if (!n) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    n->loop = loop_create(err, errlen);
    n->http = n->loop ? http_client_create(n->loop, http_max_connections, err, errlen) : NULL;
    if (!n->http) {
        net_close(n);
        return NULL;
    }
    n->redis = redis_pools_create(n->loop);
    if (!n->redis) {
        errbuf_set(err, errlen, "out of memory");
        net_close(n);
        return NULL;
    }
    return n;
}

void net_close(struct net *n)
{
    if (!n)
        return;
    http_client_destroy(n->http); /* before the loop its sockets are watched on */
    redis_pools_destroy(n->redis);
    loop_destroy(n->loop);
    free(n);
}
