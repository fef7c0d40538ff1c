#ifndef EXHOOKD_HTTP_H
#define EXHOOKD_HTTP_H

/* HTTP(S) requests on a worker slot's event loop, on libcurl's multi
 * interface: any number in flight at once, connections kept alive and
 * reused across requests (HTTP/2 and its multiplexing where an https
 * server offers it), TLS verified by default. One client per slot; used by
 * the slot's thread only. No Lua here (src/lua/lua_http.c binds it). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct http_client;
struct http_req;

/* Why a request failed, for callers that map failures to their own kinds. */
enum http_err {
    HTTP_OK = 0,
    HTTP_ERR_TIMEOUT,      /* the request's timeout passed */
    HTTP_ERR_REFUSED,      /* no connection: refused, unreachable, name not resolved */
    HTTP_ERR_RESET,        /* the connection broke or closed before the response was complete */
    HTTP_ERR_BAD_RESPONSE, /* what came back is not HTTP */
    HTTP_ERR_TLS,          /* TLS handshake or certificate verification failed */
    HTTP_ERR_TOO_LARGE,    /* the body exceeds the request's max_body */
    HTTP_ERR_OTHER,
};

struct http_header {
    const char *name;
    const char *value;
};

/* The default of `max_connections` (http_client_create). */
#define HTTP_DEFAULT_MAX_CONNECTIONS 256

/* Larger bodies fail with HTTP_ERR_TOO_LARGE unless a request says otherwise. */
#define HTTP_DEFAULT_MAX_BODY (16u << 20)

/* What to send. Everything is copied by http_start. */
struct http_request {
    const char *method; /* "GET", "POST", ...: an HTTP token */
    const char *url;    /* http:// or https:// */
    const struct http_header *headers;
    size_t n_headers;
    const char *body; /* NULL: none */
    size_t body_len;
    int64_t timeout_ms;  /* the whole request, connecting included; 0: no limit */
    const char *ca_file; /* NULL: the system's CA certificates */
    /* A client certificate (PEM) and its key for servers that ask for one;
     * NULL: none. The key may be in the certificate's file. */
    const char *cert_file;
    const char *key_file;
    bool insecure;   /* true: do not verify the server's certificate and name */
    size_t max_body; /* 0: HTTP_DEFAULT_MAX_BODY */
};

/* What came back: `err` HTTP_OK with a status (any status, 404 and 500
 * included), or a failure with its text. */
struct http_response {
    enum http_err err;
    char *error; /* e.g. "connection refused: Failed to connect to ..."; NULL when err is HTTP_OK */
    long status;
    int version;                 /* 1 or 2 (HTTP/1.x or HTTP/2) */
    long new_connections;        /* connections opened for it: 0 when one was reused */
    struct http_header *headers; /* of the final response, names lower-cased, in order received */
    size_t n_headers;
    char *body;
    size_t body_len;
};

/* Called from a loop callback once the request is over, with the
 * response, which is the callee's to free with http_response_free. The
 * request's handle is gone by then. */
typedef void http_done_fn(void *ctx, struct http_response *res);

/* NULL with a message in `err`. */
/* A client on `loop`. It opens at most `max_connections` connections to
 * one server (host and port); more requests in flight to it wait for one
 * of them (their timeout running), so that thousands of waiting calls do
 * not become thousands of connections to an HTTP/1.1 service. It keeps as
 * many open for reuse, busy and idle together; past that, the one idle
 * longest closes. */
struct http_client *http_client_create(struct loop *loop, unsigned max_connections, char *err,
                                       size_t errlen);
/* Cancels what is in flight (no callbacks run) and closes every connection. */
void http_client_destroy(struct http_client *c);

/* Starts a request; `done` runs later, from a loop callback (never from
 * within http_start). NULL with a message in `err` for a request that
 * cannot be sent as given (bad method, URL or header) or out of memory. */
struct http_req *http_start(struct http_client *c, const struct http_request *spec,
                            http_done_fn *done, void *ctx, char *err, size_t errlen);

/* Stops a request in flight: when it returns, its connection is closed or
 * back in the pool, everything is freed, and `done` will never run. */
void http_cancel(struct http_req *r);

void http_response_free(struct http_response *res);

/* `url` as logs may show it: without a user name, password, query or
 * fragment, which may carry secrets ("http://auth:8080/u" for
 * "http://svc:pw@auth:8080/u?token=t"). */
void http_url_for_log(const char *url, char *out, size_t outlen);

/* A word for each kind: "timeout", "connection refused", ... */
const char *http_err_name(enum http_err e);

#endif
