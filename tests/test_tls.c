/* The [tls] section at work: the files are checked before gRPC sees them,
 * with messages that name the file at fault, and the port then speaks TLS
 * or mutual TLS to a real gRPC client. The certificates are made at test
 * time with the openssl command, so none is committed and none expires. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhook.pb-c.h"
#include "fixtures.h"
#include "rpc_client.h"
#include "server.h"
#include "tls.h"

#define AUTH_PATH "/emqx.exhook.v3.HookProvider/OnClientAuthenticate"
#define T_STOP EMQX__EXHOOK__V3__VALUED_RESPONSE__RESPONSED_TYPE__STOP_AND_RETURN
#define ERR_LEN 512

/* The folder with every certificate and key, made once for all tests:
 *   ca.pem/ca.key             the CA that signs everything trusted
 *   server.pem/server.key     CN=localhost, DNS:localhost, IP:127.0.0.1
 *   client.pem/client.key     a broker certificate signed by ca
 *   other-ca.pem/other-ca.key another CA, trusted by no one
 *   rogue.pem/rogue.key       a broker certificate signed by other-ca
 *   expired.pem/expired.key   a broker certificate signed by ca, expired
 *   other.key                 a key that belongs to no certificate
 *   enc.key                   server.key under a password */
static struct fixture certs;

static void cert_path(char *buf, size_t len, const char *file)
{
    snprintf(buf, len, "%s/%s", certs.dir, file);
}

/* Runs an openssl command in the certificate folder; it must succeed. */
static void openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void openssl(const char *fmt, ...)
{
    char args[1024], cmd[1400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s </dev/null >/dev/null 2>&1", certs.dir, args);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("`openssl %s` failed (%d)", args, rc);
}

/* A self-signed CA named `name` (name.pem, name.key). */
static void make_ca(const char *name)
{
    openssl("req -x509 -batch -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout %s.key -out %s.pem -days 2 -subj /CN=exhookd-test-%s "
            "-addext basicConstraints=critical,CA:TRUE "
            "-addext keyUsage=critical,keyCertSign,cRLSign",
            name, name, name);
}

/* A key and a certificate for `cn` with the extensions in `ext_file`,
 * signed by the CA `ca`. */
static void make_cert(const char *name, const char *cn, const char *ca, const char *ext_file,
                      int serial)
{
    openssl("req -new -batch -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout %s.key -out %s.csr -subj /CN=%s",
            name, name, cn);
    openssl("x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -set_serial %d -days 2 "
            "-extfile %s -out %s.pem",
            name, ca, ca, serial, ext_file, name);
}

static int make_certs(void **state)
{
    (void)state;
    fx_init(&certs);
    fx_write(&certs, "server.ext",
             "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    fx_write(&certs, "client.ext", "extendedKeyUsage=clientAuth\n");
    make_ca("ca");
    make_ca("other-ca");
    make_cert("server", "localhost", "ca", "server.ext", 2);
    make_cert("client", "emqx-broker", "ca", "client.ext", 3);
    make_cert("rogue", "emqx-broker", "other-ca", "client.ext", 4);
    openssl("req -new -batch -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout expired.key -out expired.csr -subj /CN=emqx-broker");
    openssl("x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -set_serial 5 -days -1 "
            "-extfile client.ext -out expired.pem");
    openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key");
    openssl("pkey -in server.key -aes256 -passout pass:secret -out enc.key");
    grpc_init();
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    grpc_shutdown();
    fx_free(&certs);
    return 0;
}

static char *slurp(const char *file)
{
    char path[512];
    cert_path(path, sizeof path, file);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* ---- tls_server_credentials --------------------------------------------- */

/* Sets one [tls] path of `cfg` to <cert folder>/<file>, or leaves it NULL. */
static void set_file(char **slot, const char *file)
{
    char path[512];

    free(*slot);
    *slot = NULL;
    if (file == NULL)
        return;
    cert_path(path, sizeof path, file);
    *slot = strdup(path);
    assert_non_null(*slot);
}

static grpc_server_credentials *creds_for(const char *cert, const char *key, const char *ca,
                                          bool verify_client, char *err, size_t errlen)
{
    struct config cfg;

    cfg_defaults(&cfg);
    set_file(&cfg.tls.cert, cert);
    set_file(&cfg.tls.key, key);
    set_file(&cfg.tls.ca, ca);
    cfg.tls.verify_client = verify_client;
    err[0] = '\0';
    grpc_server_credentials *creds = tls_server_credentials(&cfg, err, errlen);
    cfg_free(&cfg);
    return creds;
}

static void assert_creds_ok(const char *cert, const char *key, const char *ca, bool verify_client)
{
    char err[ERR_LEN];
    grpc_server_credentials *creds = creds_for(cert, key, ca, verify_client, err, sizeof err);

    if (creds == NULL)
        fail_msg("unexpected error: %s", err);
    grpc_server_credentials_release(creds);
}

/* Expects `expected`, with every "%s" in it standing for the cert folder. */
static void assert_creds_error(const char *cert, const char *key, const char *ca,
                               bool verify_client, const char *expected)
{
    char err[ERR_LEN];
    char want[ERR_LEN * 2];
    grpc_server_credentials *creds = creds_for(cert, key, ca, verify_client, err, sizeof err);

    if (creds != NULL) {
        grpc_server_credentials_release(creds);
        fail_msg("expected an error: %s", expected);
    }
    /* at most two folders in a message: the key's and the certificate's */
    snprintf(want, sizeof want, expected, certs.dir, certs.dir);
    assert_string_equal(err, want);
}

static void test_no_cert_gives_insecure_credentials(void **state)
{
    (void)state;
    assert_creds_ok(NULL, NULL, NULL, false);
}

static void test_cert_and_key_give_tls_credentials(void **state)
{
    (void)state;
    assert_creds_ok("server.pem", "server.key", NULL, false);
    /* a ca without verify_client is accepted (and checked) too */
    assert_creds_ok("server.pem", "server.key", "ca.pem", false);
}

static void test_ca_and_verify_client_give_mtls_credentials(void **state)
{
    (void)state;
    assert_creds_ok("server.pem", "server.key", "ca.pem", true);
}

static void test_cert_chain_and_ca_bundle_are_accepted(void **state)
{
    char *leaf = slurp("server.pem");
    char *ca = slurp("ca.pem");
    char *other = slurp("other-ca.pem");
    char text[16384];

    (void)state;
    /* leaf first, then the intermediates: here the CA stands in for one */
    snprintf(text, sizeof text, "%s%s", leaf, ca);
    fx_write(&certs, "chain.pem", text);
    /* a bundle of several CAs, with comments around them as in
     * /etc/ssl/certs/ca-certificates.crt */
    snprintf(text, sizeof text, "# other\n%s\n# ours\n%s", other, ca);
    fx_write(&certs, "bundle.pem", text);
    assert_creds_ok("chain.pem", "server.key", "bundle.pem", true);
    free(leaf);
    free(ca);
    free(other);
}

static void test_missing_cert_file_is_an_error(void **state)
{
    (void)state;
    assert_creds_error("nope.pem", "server.key", NULL, false,
                       "[tls] %s/nope.pem: No such file or directory");
}

static void test_missing_key_file_is_an_error(void **state)
{
    (void)state;
    assert_creds_error("server.pem", "nope.key", NULL, false,
                       "[tls] %s/nope.key: No such file or directory");
}

static void test_missing_ca_file_is_an_error(void **state)
{
    (void)state;
    assert_creds_error("server.pem", "server.key", "nope-ca.pem", true,
                       "[tls] %s/nope-ca.pem: No such file or directory");
}

static void test_directory_as_cert_is_an_error(void **state)
{
    (void)state;
    fx_write(&certs, "sub/x", "");
    assert_creds_error("sub", "server.key", NULL, false, "[tls] %s/sub: Is a directory");
}

static void test_empty_file_is_an_error(void **state)
{
    (void)state;
    fx_write(&certs, "empty.pem", "");
    assert_creds_error("empty.pem", "server.key", NULL, false, "[tls] %s/empty.pem: empty file");
    assert_creds_error("server.pem", "empty.pem", NULL, false, "[tls] %s/empty.pem: empty file");
    assert_creds_error("server.pem", "server.key", "empty.pem", true,
                       "[tls] %s/empty.pem: empty file");
}

static void test_cert_that_is_not_pem_is_an_error(void **state)
{
    (void)state;
    fx_write(&certs, "junk.pem", "this is not a certificate\n");
    assert_creds_error("junk.pem", "server.key", NULL, false,
                       "[tls] %s/junk.pem: not a PEM certificate");
    /* the key given as the certificate, a common mix-up */
    assert_creds_error("server.key", "server.key", NULL, false,
                       "[tls] %s/server.key: not a PEM certificate");
}

static void test_broken_certificate_in_chain_is_an_error(void **state)
{
    char *leaf = slurp("server.pem");
    char text[8192];

    (void)state;
    snprintf(text, sizeof text,
             "%s-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
             "-----END CERTIFICATE-----\n",
             leaf);
    fx_write(&certs, "badchain.pem", text);
    assert_creds_error("badchain.pem", "server.key", NULL, false,
                       "[tls] %s/badchain.pem: not a PEM certificate");
    free(leaf);
}

static void test_key_that_is_not_pem_is_an_error(void **state)
{
    (void)state;
    fx_write(&certs, "junk.key", "not a key either\n");
    assert_creds_error("server.pem", "junk.key", NULL, false,
                       "[tls] %s/junk.key: not a PEM private key (or it is encrypted)");
    /* the certificate given as the key */
    assert_creds_error("server.pem", "server.pem", NULL, false,
                       "[tls] %s/server.pem: not a PEM private key (or it is encrypted)");
}

static void test_encrypted_key_is_an_error_without_prompting(void **state)
{
    (void)state;
    assert_creds_error("server.pem", "enc.key", NULL, false,
                       "[tls] %s/enc.key: not a PEM private key (or it is encrypted)");
}

static void test_key_of_another_certificate_is_an_error(void **state)
{
    (void)state;
    assert_creds_error("server.pem", "other.key", NULL, false,
                       "[tls] %s/other.key: the key does not match the certificate "
                       "%s/server.pem");
    assert_creds_error("server.pem", "client.key", NULL, false,
                       "[tls] %s/client.key: the key does not match the certificate "
                       "%s/server.pem");
}

static void test_bad_ca_is_an_error(void **state)
{
    (void)state;
    fx_write(&certs, "junk-ca.pem", "-----BEGIN NOTHING-----\n");
    assert_creds_error("server.pem", "server.key", "junk-ca.pem", true,
                       "[tls] %s/junk-ca.pem: no PEM certificate found");
    assert_creds_error("server.pem", "server.key", "ca.key", true,
                       "[tls] %s/ca.key: no PEM certificate found");
}

static void test_files_are_checked_in_order_cert_key_ca(void **state)
{
    (void)state;
    assert_creds_error("nope.pem", "nope.key", "nope-ca.pem", true,
                       "[tls] %s/nope.pem: No such file or directory");
    assert_creds_error("server.pem", "nope.key", "nope-ca.pem", true,
                       "[tls] %s/nope.key: No such file or directory");
}

/* ---- end to end --------------------------------------------------------- */

struct world {
    struct fixture fx;
    struct server *srv;
    char target[64];
};

/* A server on 127.0.0.1 with `tls` as its [tls] section; everyone who gets
 * through to the hook is let in. */
static struct world *start(const char *tls)
{
    struct world *w = calloc(1, sizeof *w);
    char extra[2048];

    assert_non_null(w);
    fx_init(&w->fx);
    fx_write(&w->fx, "m.lua", "function on_client_authenticate(ci) return true end\n");
    snprintf(extra, sizeof extra, "[server]\nworkers = 1\n[log]\nlevel = error\n[tls]\n%s", tls);
    fx_configure(&w->fx, "m", extra);
    log_set_level(LOG_ERROR);
    w->srv = fx_start_server(&w->fx.cfg, NULL, w->target, sizeof w->target);
    return w;
}

static void stop(struct world *w)
{
    srv_destroy(w->srv);
    fx_free(&w->fx);
    free(w);
}

/* One authenticate call on a fresh connection; returns its status and, when
 * it succeeded, checks the verdict of the hook (let in). */
static grpc_status_code authenticate(struct rpc_client *c)
{
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    Emqx__Exhook__V3__ClientAuthenticateRequest req =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    struct rpc_result r;

    ci.clientid = "c1";
    ci.username = "u1";
    req.clientinfo = &ci;
    /* a failing handshake must end the call soon, not after 30 s */
    rpc_client_set_timeout(c, 3000);
    assert_int_equal(rpc_call(c, AUTH_PATH, &req.base, &r), 0);
    grpc_status_code st = r.status;
    if (st == GRPC_STATUS_OK) {
        Emqx__Exhook__V3__ValuedResponse *v =
            emqx__exhook__v3__valued_response__unpack(NULL, r.reply_len, r.reply);
        assert_non_null(v);
        assert_int_equal(v->type, T_STOP);
        assert_int_equal(v->value_case, EMQX__EXHOOK__V3__VALUED_RESPONSE__VALUE_BOOL_RESULT);
        assert_true(v->bool_result);
        emqx__exhook__v3__valued_response__free_unpacked(v, NULL);
    } else {
        assert_false(r.got_message);
    }
    rpc_result_free(&r);
    rpc_client_close(c);
    return st;
}

static void test_srv_create_reports_a_bad_tls_file(void **state)
{
    struct fixture fx;
    char extra[1024], err[ERR_LEN], want[ERR_LEN * 2];

    (void)state;
    fx_init(&fx);
    fx_write(&fx, "m.lua", "function on_client_authenticate(ci) return true end\n");
    snprintf(extra, sizeof extra,
             "[log]\nlevel = error\n[tls]\ncert = %s/server.pem\n"
             "key = %s/other.key\n",
             certs.dir, certs.dir);
    fx_configure(&fx, "m", extra);
    log_set_level(LOG_ERROR);
    free(fx.cfg.listen);
    fx.cfg.listen = strdup("127.0.0.1:0");
    assert_null(srv_create(&fx.cfg, NULL, err, sizeof err));
    snprintf(want, sizeof want,
             "[tls] %s/other.key: the key does not match the certificate %s/server.pem", certs.dir,
             certs.dir);
    assert_string_equal(err, want);
    fx_free(&fx);
}

static void test_tls_port_serves_tls_clients_only(void **state)
{
    char tls[1024];

    (void)state;
    snprintf(tls, sizeof tls, "cert = %s/server.pem\nkey = %s/server.key\n", certs.dir, certs.dir);
    struct world *w = start(tls);
    char *ca = slurp("ca.pem");
    char *other_ca = slurp("other-ca.pem");

    /* the certificate carries IP:127.0.0.1, so the address itself checks out */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, NULL)),
                     GRPC_STATUS_OK);
    /* and DNS:localhost, the name a broker would rather use */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, "localhost")),
                     GRPC_STATUS_OK);
    /* no client certificate is asked for, but one offered does no harm */
    char *cert = slurp("client.pem");
    char *key = slurp("client.key");
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, cert, key, NULL)),
                     GRPC_STATUS_OK);
    /* plain HTTP/2 against the TLS port */
    assert_int_equal(authenticate(rpc_client_open(w->target)), GRPC_STATUS_UNAVAILABLE);
    /* a client that does not trust the server's CA */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, other_ca, NULL, NULL, NULL)),
                     GRPC_STATUS_UNAVAILABLE);
    /* a name the certificate does not carry */
    assert_int_equal(
        authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, "exhook.example.com")),
        GRPC_STATUS_UNAVAILABLE);
    /* the server went on serving through all of that */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, NULL)),
                     GRPC_STATUS_OK);
    free(cert);
    free(key);
    free(ca);
    free(other_ca);
    stop(w);
}

static void test_mtls_port_requires_a_trusted_client_certificate(void **state)
{
    char tls[2048];

    (void)state;
    snprintf(tls, sizeof tls,
             "cert = %s/server.pem\nkey = %s/server.key\nca = %s/ca.pem\nverify_client = true\n",
             certs.dir, certs.dir, certs.dir);
    struct world *w = start(tls);
    char *ca = slurp("ca.pem");
    char *cert = slurp("client.pem");
    char *key = slurp("client.key");
    char *rogue_cert = slurp("rogue.pem");
    char *rogue_key = slurp("rogue.key");

    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, cert, key, "localhost")),
                     GRPC_STATUS_OK);
    /* no certificate at all */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, "localhost")),
                     GRPC_STATUS_UNAVAILABLE);
    /* a certificate from a CA the server does not trust */
    assert_int_equal(
        authenticate(rpc_client_open_tls(w->target, ca, rogue_cert, rogue_key, "localhost")),
        GRPC_STATUS_UNAVAILABLE);
    /* plain HTTP/2 */
    assert_int_equal(authenticate(rpc_client_open(w->target)), GRPC_STATUS_UNAVAILABLE);
    /* the trusted broker still gets through afterwards */
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, cert, key, "localhost")),
                     GRPC_STATUS_OK);
    free(ca);
    free(cert);
    free(key);
    free(rogue_cert);
    free(rogue_key);
    stop(w);
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

#define REFUSED "TLS handshake refused: "
#define NO_ADDRESS "gRPC 1.51 does not report the client's address)"

/* An operator at the default level sees that brokers are being refused, and
 * a client that keeps trying cannot fill the log: one line, then at most one
 * per TLS_REFUSED_LOG_INTERVAL_S with the count of those in between. Runs
 * before the other tests that make handshakes fail, so that it starts with
 * no refusal in the current interval. */
static void test_refused_handshakes_are_logged_at_warn_rate_limited(void **state)
{
    char tls[2048];

    (void)state;
    snprintf(tls, sizeof tls,
             "cert = %s/server.pem\nkey = %s/server.key\nca = %s/ca.pem\nverify_client = true\n",
             certs.dir, certs.dir, certs.dir);
    struct world *w = start(tls);
    log_set_level(LOG_INFO);
    char *ca = slurp("ca.pem");
    char *rogue_cert = slurp("rogue.pem");
    char *rogue_key = slurp("rogue.key");
    char *expired_cert = slurp("expired.pem");
    char *expired_key = slurp("expired.key");
    struct capture cap;
    capture_begin(&cap, w->fx.dir);

    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, "localhost")),
                     GRPC_STATUS_UNAVAILABLE);
    assert_true(capture_wait(&cap, "\n", 10));
    /* within the interval: a certificate from another CA, a plain-text
     * client, and five more without a certificate are counted only */
    assert_int_equal(
        authenticate(rpc_client_open_tls(w->target, ca, rogue_cert, rogue_key, "localhost")),
        GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(authenticate(rpc_client_open(w->target)), GRPC_STATUS_UNAVAILABLE);
    for (int i = 0; i < 5; i++)
        assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, "localhost")),
                         GRPC_STATUS_UNAVAILABLE);
    /* after it, an expired certificate: a line, with the count */
    sleep(TLS_REFUSED_LOG_INTERVAL_S + 1);
    assert_int_equal(
        authenticate(rpc_client_open_tls(w->target, ca, expired_cert, expired_key, "localhost")),
        GRPC_STATUS_UNAVAILABLE);
    assert_true(capture_wait(&cap, "certificate verify failed", 10));
    char *text = capture_end(&cap);
    /* "<time> warn  [<thread>] TLS handshake refused: ..." twice */
    char *second = strchr(text, '\n') + 1;
    second[-1] = '\0';
    assert_true(is_log_timestamp(text) && is_log_timestamp(second));
    assert_int_equal(strncmp(text + 25, "warn  [", 7), 0);
    assert_int_equal(strncmp(second + 25, "warn  [", 7), 0);
    assert_string_equal(strstr(text, "] ") + 2,
                        REFUSED "peer did not return a certificate (" NO_ADDRESS);
    assert_string_equal(strstr(second, "] ") + 2,
                        REFUSED "certificate verify failed (7 more refused since the last such "
                                "line; " NO_ADDRESS "\n");
    second[-1] = '\n';
    log_set_level(LOG_ERROR);
    assert_int_equal(count_of(text, "\n"), 2);
    free(text);
    free(ca);
    free(rogue_cert);
    free(rogue_key);
    free(expired_cert);
    free(expired_key);
    stop(w);
}

static void test_plain_port_serves_plain_clients_only(void **state)
{
    (void)state;
    struct world *w = start("");
    char *ca = slurp("ca.pem");

    assert_int_equal(authenticate(rpc_client_open(w->target)), GRPC_STATUS_OK);
    assert_int_equal(authenticate(rpc_client_open_tls(w->target, ca, NULL, NULL, NULL)),
                     GRPC_STATUS_UNAVAILABLE);
    free(ca);
    stop(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_cert_gives_insecure_credentials),
        cmocka_unit_test(test_cert_and_key_give_tls_credentials),
        cmocka_unit_test(test_ca_and_verify_client_give_mtls_credentials),
        cmocka_unit_test(test_cert_chain_and_ca_bundle_are_accepted),
        cmocka_unit_test(test_missing_cert_file_is_an_error),
        cmocka_unit_test(test_missing_key_file_is_an_error),
        cmocka_unit_test(test_missing_ca_file_is_an_error),
        cmocka_unit_test(test_directory_as_cert_is_an_error),
        cmocka_unit_test(test_empty_file_is_an_error),
        cmocka_unit_test(test_cert_that_is_not_pem_is_an_error),
        cmocka_unit_test(test_broken_certificate_in_chain_is_an_error),
        cmocka_unit_test(test_key_that_is_not_pem_is_an_error),
        cmocka_unit_test(test_encrypted_key_is_an_error_without_prompting),
        cmocka_unit_test(test_key_of_another_certificate_is_an_error),
        cmocka_unit_test(test_bad_ca_is_an_error),
        cmocka_unit_test(test_files_are_checked_in_order_cert_key_ca),
        cmocka_unit_test(test_srv_create_reports_a_bad_tls_file),
        cmocka_unit_test(test_refused_handshakes_are_logged_at_warn_rate_limited),
        cmocka_unit_test(test_tls_port_serves_tls_clients_only),
        cmocka_unit_test(test_mtls_port_requires_a_trusted_client_certificate),
        cmocka_unit_test(test_plain_port_serves_plain_clients_only),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
