#include "metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define METRICS_PATH "/metrics"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* A scraper or two, a curl by hand: a handful of connections is plenty,
 * and a client that stalls does not hold one for long. */
#define CONNECTION_LIMIT 16
#define CONNECTION_TIMEOUT_S 10

struct mxhttp {
    struct MHD_Daemon *daemon;
    mxhttp_render_fn *render;
    void *ctx;
    int port;
};

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct mxhttp *h = cls;
    if (strcmp(url, METRICS_PATH) != 0)
        return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    size_t len = 0;
    char *text = h->render(h->ctx, &len);
    if (!text)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* `listen` as an address, in `res` (freeaddrinfo); 0 or -1 with `err`. */
static int resolve(const char *listen, struct addrinfo **res, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(err, errlen, "[metrics] listen: expected host:port, got '%s'", listen);
        return -1;
    }
    char host[256];
    const char *start = listen;
    size_t hostlen = (size_t)(colon - listen);
    if (hostlen >= 2 && listen[0] == '[' && listen[hostlen - 1] == ']') {
        start++;
        hostlen -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hostlen, start);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    int rc = getaddrinfo(host, colon + 1, &hints, res);
    if (rc != 0) {
        snprintf(err, errlen, "[metrics] listen %s: %s", listen, gai_strerror(rc));
        return -1;
    }
    return 0;
}

struct mxhttp *mxhttp_start(const char *listen, bool reuse_port, mxhttp_render_fn *render,
                            void *ctx, char *err, size_t errlen)
{
    struct addrinfo *ai;
    if (resolve(listen, &ai, err, errlen) != 0)
        return NULL;
    struct mxhttp *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->render = render;
    h->ctx = ctx;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                                 (unsigned)(reuse_port ? 1 : 0), MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(ai);
    const union MHD_DaemonInfo *info =
        h->daemon ? MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        snprintf(err, errlen,
                 "cannot listen for metrics on %s: the address is in use or not an address of "
                 "this host",
                 listen);
        mxhttp_stop(h);
        return NULL;
    }
    h->port = info->port;
    return h;
}

int mxhttp_port(const struct mxhttp *h)
{
    return h ? h->port : 0;
}

void mxhttp_stop(struct mxhttp *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
}
