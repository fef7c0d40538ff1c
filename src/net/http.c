#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errbuf.h"
#include "loop.h"

/* One multi handle per client: its connection pool and DNS cache are what
 * requests share, so connections are reused across requests. The loop
 * drives it (multi_socket): curl says which sockets and what timeout to
 * watch, the loop calls back when they are ready. */
struct http_client {
    struct loop *loop;
    CURLM *multi;
    struct loop_timer timer;
    struct http_req *reqs; /* in flight, to cancel them all on destroy */
};

struct http_req {
    struct http_client *client;
    struct http_req *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    http_done_fn *done;
    void *ctx;
    char *body; /* the response body as it arrives */
    size_t body_len, body_cap, max_body;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
};

const char *http_err_name(enum http_err e)
{
    switch (e) {
    case HTTP_OK:
        return "ok";
    case HTTP_ERR_TIMEOUT:
        return "timeout";
    case HTTP_ERR_REFUSED:
        return "cannot connect";
    case HTTP_ERR_RESET:
        return "connection reset";
    case HTTP_ERR_BAD_RESPONSE:
        return "bad response";
    case HTTP_ERR_TLS:
        return "TLS failure";
    case HTTP_ERR_TOO_LARGE:
        return "response too large";
    case HTTP_ERR_OTHER:
        break;
    }
    return "request failed";
}

/* The loop's side of multi_socket. */

static void drain_done(struct http_client *c);

static void on_socket_ready(void *ctx, int fd, int events)
{
    struct http_client *c = ctx;
    int flags = (events & LOOP_READ ? CURL_CSELECT_IN : 0) |
                (events & LOOP_WRITE ? CURL_CSELECT_OUT : 0) |
                (events & LOOP_ERROR ? CURL_CSELECT_ERR : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    drain_done(c);
}

static void on_timer(struct loop_timer *t)
{
    struct http_client *c = t->ctx;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(c);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct http_client *c = userp;
    int events = what == CURL_POLL_IN      ? LOOP_READ
                 : what == CURL_POLL_OUT   ? LOOP_WRITE
                 : what == CURL_POLL_INOUT ? LOOP_READ | LOOP_WRITE
                                           : 0;
    /* A socket the loop cannot watch would stall its request: fail it. */
    return loop_watch(c->loop, s, events, on_socket_ready, c) == 0 ? 0 : -1;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_client *c = userp;
    if (timeout_ms < 0)
        loop_timer_stop(c->loop, &c->timer);
    else
        loop_timer_start(c->loop, &c->timer, loop_now_ns() + (int64_t)timeout_ms * 1000000);
    return 0;
}

struct http_client *http_client_create(struct loop *loop, unsigned max_connections, char *err,
                                       size_t errlen)
{
    /* Thread-safe in the libcurl this builds with (7.84 and later). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errbuf_set(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c || !(c->multi = curl_multi_init())) {
        errbuf_set(err, errlen, "out of memory");
        free(c);
        curl_global_cleanup();
        return NULL;
    }
    c->loop = loop;
    loop_timer_init(&c->timer, on_timer, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* curl's own bound follows the number of requests in flight, so a burst
     * would lose most of its connections as it ends. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_connections);
    return c;
}

static void req_free(struct http_req *r)
{
    struct http_client *c = r->client;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
}

void http_client_destroy(struct http_client *c)
{
    if (!c)
        return;
    while (c->reqs)
        req_free(c->reqs);
    curl_multi_cleanup(c->multi);
    loop_timer_stop(c->loop, &c->timer);
    free(c);
    curl_global_cleanup();
}

void http_cancel(struct http_req *r)
{
    req_free(r);
}

/* The response as it arrives. */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct http_req *r = userp;
    size_t len = size * n;
    if (len > r->max_body - r->body_len) {
        r->too_large = true;
        return 0; /* curl stops the transfer */
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + len)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return len;
}

static enum http_err classify(CURLcode code, const struct http_req *r)
{
    switch (code) {
    case CURLE_OK:
        return HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HTTP_ERR_REFUSED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2_STREAM:
        return HTTP_ERR_RESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 answer: not HTTP */
    case CURLE_HTTP2:
    case CURLE_BAD_CONTENT_ENCODING:
        return HTTP_ERR_BAD_RESPONSE;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_USE_SSL_FAILED:
        return HTTP_ERR_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTP_ERR_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return r->too_large ? HTTP_ERR_TOO_LARGE : HTTP_ERR_OTHER;
    default:
        return HTTP_ERR_OTHER;
    }
}

/* "<kind>: <what curl says>", with the system's word for the socket error
 * when curl's text leaves it out ("Couldn't connect to server"). */
static char *error_text(enum http_err kind, CURLcode code, const struct http_req *r)
{
    char text[CURL_ERROR_SIZE + 200];
    if (kind == HTTP_ERR_TOO_LARGE) {
        snprintf(text, sizeof text, "%s: the body exceeds %zu bytes", http_err_name(kind),
                 r->max_body);
        return strdup(text);
    }
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    long os_errno = 0;
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    const char *sys = os_errno ? strerror((int)os_errno) : NULL;
    if (sys && strstr(detail, sys))
        sys = NULL;
    snprintf(text, sizeof text, "%s: %s%s%s%s", http_err_name(kind), detail, sys ? " (" : "",
             sys ? sys : "", sys ? ")" : "");
    return strdup(text);
}

static char *copy_lower(char *dst, const char *src)
{
    while (*src)
        *dst++ = (char)tolower((unsigned char)*src++);
    *dst++ = '\0';
    return dst;
}

/* The final response's headers (not those of a 100 Continue or a proxy's
 * CONNECT), in one block after the response and its array. */
static struct http_response *response_with_headers(CURL *easy)
{
    size_t n = 0, bytes = 0;
    struct curl_header *h = NULL;
    while ((h = curl_easy_nextheader(easy, CURLH_HEADER, -1, h))) {
        n++;
        bytes += strlen(h->name) + strlen(h->value) + 2;
    }
    struct http_response *res = calloc(1, sizeof *res + n * sizeof(struct http_header) + bytes);
    if (!res)
        return NULL;
    res->headers = (struct http_header *)(res + 1);
    char *p = (char *)(res->headers + n);
    while (res->n_headers < n && (h = curl_easy_nextheader(easy, CURLH_HEADER, -1, h))) {
        struct http_header *out = &res->headers[res->n_headers++];
        out->name = p;
        p = copy_lower(p, h->name);
        out->value = strcpy(p, h->value);
        p += strlen(p) + 1;
    }
    return res;
}

static struct http_response *make_response(struct http_req *r, CURLcode code)
{
    enum http_err kind = classify(code, r);
    struct http_response *res =
        kind == HTTP_OK ? response_with_headers(r->easy) : calloc(1, sizeof *res);
    if (!res)
        return NULL;
    res->err = kind;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &res->new_connections);
    if (kind != HTTP_OK) {
        res->error = error_text(kind, code, r);
        return res;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
    long version = 0;
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
    res->version = version == CURL_HTTP_VERSION_2_0 ? 2 : 1;
    res->body = r->body;
    res->body_len = r->body_len;
    r->body = NULL;
    return res;
}

/* An allocation failure leaves the request's caller without an answer; it
 * gets this one, which needs none. */
static struct http_response out_of_memory = {.err = HTTP_ERR_OTHER,
                                             .error = (char *)"out of memory"};

static void drain_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;
    /* Read one at a time: a done callback may cancel another request,
     * whose message curl then drops. */
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_req *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        struct http_response *res = make_response(r, msg->data.result);
        http_done_fn *done = r->done;
        void *ctx = r->ctx;
        req_free(r);
        done(ctx, res ? res : &out_of_memory);
    }
}

void http_response_free(struct http_response *res)
{
    if (!res || res == &out_of_memory)
        return;
    free(res->error);
    free(res->body);
    free(res);
}

/* Starting a request. */

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool check_request(const struct http_request *spec, char *err, size_t errlen)
{
    if (!spec->method || !is_token(spec->method)) {
        errbuf_set(err, errlen, "bad method '%s'", spec->method ? spec->method : "");
        return false;
    }
    CURLU *u = curl_url();
    if (!u) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    char *scheme = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, spec->url ? spec->url : "", 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    bool ok = uc == CURLUE_OK && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
    if (!ok)
        errbuf_set(err, errlen, "bad url '%s': %s", spec->url ? spec->url : "",
                   uc != CURLUE_OK ? curl_url_strerror(uc) : "not http or https");
    curl_free(scheme);
    curl_url_cleanup(u);
    for (size_t i = 0; ok && i < spec->n_headers; i++) {
        const struct http_header *h = &spec->headers[i];
        if (!is_token(h->name)) {
            errbuf_set(err, errlen, "bad header name '%s'", h->name);
            ok = false;
        } else if (strpbrk(h->value, "\r\n")) {
            errbuf_set(err, errlen, "header '%s': line breaks in its value", h->name);
            ok = false;
        }
    }
    return ok;
}

/* curl sends "Name;" as a header with an empty value ("Name:" would remove
 * one of its own). */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (!line)
        return false;
    snprintf(line, len, *value ? "%s: %s" : "%s;", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l)
        return false;
    *list = l;
    return true;
}

static bool build_headers(struct http_req *r, const struct http_request *spec)
{
    bool expect = false;
    for (size_t i = 0; i < spec->n_headers; i++) {
        if (!add_header(&r->headers, spec->headers[i].name, spec->headers[i].value))
            return false;
        expect |= strcasecmp(spec->headers[i].name, "expect") == 0;
    }
    /* curl would otherwise ask for 100 Continue before a larger body and
     * wait up to a second for a server that does not answer it. */
    if (!expect) {
        struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
        if (!l)
            return false;
        r->headers = l;
    }
    return true;
}

/* The method and body: curl's own ways for GET, HEAD and POST, its custom
 * request line for the others. */
static bool set_method(CURL *e, const struct http_request *spec)
{
    const char *m = spec->method;
    bool ok = true;
    if (!strcmp(m, "HEAD"))
        ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    if (spec->body || !strcmp(m, "POST")) {
        ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)(spec->body ? spec->body_len : 0)) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, spec->body ? spec->body : "") == CURLE_OK;
    }
    bool curl_names_it =
        !strcmp(m, "HEAD") || !strcmp(m, "POST") || (!strcmp(m, "GET") && !spec->body);
    if (!curl_names_it)
        ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m) == CURLE_OK;
    return ok;
}

static bool set_options(struct http_req *r, const struct http_request *spec)
{
    bool https = strncasecmp(spec->url, "https:", 6) == 0;
    CURL *e = r->easy;
    long verify = spec->insecure ? 0L : 1L;
    bool ok = curl_easy_setopt(e, CURLOPT_PRIVATE, r) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_URL, spec->url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)spec->timeout_ms) == CURLE_OK;
    /* HTTP/2 where an https server offers it (ALPN); an https request
     * waits for a connection being opened to the same server, to share it
     * if it turns out to be HTTP/2, instead of opening its own. Not plain
     * http: curl would learn that only from the first response, so
     * requests would queue behind it. */
    ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PIPEWAIT, https ? 1L : 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L) == CURLE_OK;
    if (spec->ca_file)
        ok &= curl_easy_setopt(e, CURLOPT_CAINFO, spec->ca_file) == CURLE_OK;
    if (spec->cert_file)
        ok &= curl_easy_setopt(e, CURLOPT_SSLCERT, spec->cert_file) == CURLE_OK;
    if (spec->key_file)
        ok &= curl_easy_setopt(e, CURLOPT_SSLKEY, spec->key_file) == CURLE_OK;
    return ok && set_method(e, spec);
}

struct http_req *http_start(struct http_client *c, const struct http_request *spec,
                            http_done_fn *done, void *ctx, char *err, size_t errlen)
{
    if (!check_request(spec, err, errlen))
        return NULL;
    struct http_req *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        free(r);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    r->client = c;
    r->done = done;
    r->ctx = ctx;
    r->max_body = spec->max_body ? spec->max_body : HTTP_DEFAULT_MAX_BODY;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    /* curl_multi_add_handle only sets the timer: the transfer starts from
     * the loop, so `done` never runs inside http_start. */
    if (!build_headers(r, spec) || !set_options(r, spec) ||
        curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        req_free(r);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    return r;
}

/* By hand rather than with curl's URL parser, which took a tenth of a
 * request's instructions: the URL was checked by http_start already. */
void http_url_for_log(const char *url, char *out, size_t outlen)
{
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    size_t authority = strcspn(host, "/?#");
    const char *at = memchr(host, '@', authority);
    /* The last '@' of the authority ends the user information. */
    while (at) {
        const char *next = memchr(at + 1, '@', authority - (size_t)(at + 1 - host));
        if (!next)
            break;
        at = next;
    }
    const char *rest = at ? at + 1 : host;
    size_t keep = strcspn(rest, "?#");
    snprintf(out, outlen, "%.*s%.*s", (int)(host - url), url, (int)keep, rest);
}
