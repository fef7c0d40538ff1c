#include "tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "log.h"
#include "ratelimit.h"

/* A certificate, key or CA bundle is a few KB; even a full system CA bundle
 * is well under 1MB. The cap only keeps a wrong path (a device, a huge log)
 * from being read whole into memory. */
#define MAX_PEM_FILE_SIZE (16 * 1024 * 1024)

/* Reads `path` whole into a NUL-terminated buffer, as gRPC takes PEM data. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    char why[512];
    size_t len;
    char *buf = cfg_read_file(path, MAX_PEM_FILE_SIZE, &len, why, sizeof why);
    if (buf == NULL) {
        errbuf_set(err, errlen, "[tls] %s", why);
        return NULL;
    }
    if (len == 0) {
        errbuf_set(err, errlen, "[tls] %s: empty file", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* gRPC gets the text as a C string, so the checks read it the same way: a
 * NUL byte ends the PEM data for both. */
static BIO *bio_of(const char *pem)
{
    return BIO_new_mem_buf(pem, -1);
}

/* Without a callback OpenSSL would prompt on the terminal for the password
 * of an encrypted key; a server started by systemd has no one to answer, and
 * gRPC could not decrypt the key either. Returning 0 makes the read fail. */
static int no_password(char *buf, int size, int rwflag, void *user)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)user;
    return 0;
}

/* Checks that `cert_pem` (read from `cert_path`) is a PEM certificate chain
 * and `key_pem` a PEM private key belonging to its first certificate. */
static int check_pair(const char *cert_path, const char *cert_pem, const char *key_path,
                      const char *key_pem, char *err, size_t errlen)
{
    BIO *bio = NULL;
    X509 *leaf = NULL;
    X509 *next = NULL;
    EVP_PKEY *key = NULL;
    unsigned long e;
    int ret = -1;

    bio = bio_of(cert_pem);
    if (bio == NULL) {
        errbuf_set(err, errlen, "[tls] %s: out of memory", cert_path);
        goto out;
    }
    leaf = PEM_read_bio_X509(bio, NULL, no_password, NULL);
    if (leaf == NULL) {
        errbuf_set(err, errlen, "[tls] %s: not a PEM certificate", cert_path);
        goto out;
    }
    /* The rest of the chain (intermediates) must parse too: gRPC would
     * otherwise refuse the file only at the first handshake. The loop ends at
     * the end of the data, which OpenSSL reports as "no start line". */
    while ((next = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL)
        X509_free(next);
    e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        errbuf_set(err, errlen, "[tls] %s: not a PEM certificate", cert_path);
        goto out;
    }
    ERR_clear_error();
    BIO_free(bio);

    bio = bio_of(key_pem);
    if (bio == NULL) {
        errbuf_set(err, errlen, "[tls] %s: out of memory", key_path);
        goto out;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (key == NULL) {
        errbuf_set(err, errlen, "[tls] %s: not a PEM private key (or it is encrypted)", key_path);
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        errbuf_set(err, errlen, "[tls] %s: the key does not match the certificate %s", key_path,
                cert_path);
        goto out;
    }
    ret = 0;
out:
    /* Failed reads leave entries in this thread's error queue; left there,
     * they would be blamed on whatever OpenSSL call comes next. */
    ERR_clear_error();
    BIO_free(bio);
    EVP_PKEY_free(key);
    X509_free(leaf);
    return ret;
}

/* Checks that `ca_pem` holds at least one certificate. Read like gRPC reads
 * its root bundle: every certificate up to the first that does not parse,
 * "TRUSTED CERTIFICATE" blocks included. */
static int check_ca(const char *ca_path, const char *ca_pem, char *err, size_t errlen)
{
    BIO *bio = bio_of(ca_pem);
    X509 *x;
    int count = 0;

    if (bio == NULL) {
        errbuf_set(err, errlen, "[tls] %s: out of memory", ca_path);
        return -1;
    }
    while ((x = PEM_read_bio_X509_AUX(bio, NULL, no_password, NULL)) != NULL) {
        X509_free(x);
        count++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (count == 0) {
        errbuf_set(err, errlen, "[tls] %s: no PEM certificate found", ca_path);
        return -1;
    }
    return 0;
}

grpc_server_credentials *tls_server_credentials(const struct config *cfg, char *err, size_t errlen)
{
    char *cert = NULL;
    char *key = NULL;
    char *ca = NULL;
    grpc_server_credentials *creds = NULL;

    if (cfg->tls.cert == NULL)
        return grpc_insecure_server_credentials_create();
    /* cfg_load checks this already; again here, so that a config built
     * by hand cannot crash us. */
    const char *problem = cfg_tls_problem(cfg);
    if (problem) {
        errbuf_set(err, errlen, "[tls] %s", problem);
        return NULL;
    }
    cert = read_file(cfg->tls.cert, err, errlen);
    if (cert == NULL)
        goto out;
    key = read_file(cfg->tls.key, err, errlen);
    if (key == NULL)
        goto out;
    if (check_pair(cfg->tls.cert, cert, cfg->tls.key, key, err, errlen) != 0)
        goto out;
    if (cfg->tls.ca != NULL) {
        ca = read_file(cfg->tls.ca, err, errlen);
        if (ca == NULL || check_ca(cfg->tls.ca, ca, err, errlen) != 0)
            goto out;
    }

    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    creds = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        cfg->tls.verify_client ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    if (creds == NULL)
        errbuf_set(err, errlen, "[tls] gRPC refused the certificate and key");
out:
    /* gRPC keeps copies; the key should not linger in freed memory. */
    if (key != NULL)
        OPENSSL_cleanse(key, strlen(key));
    free(cert);
    free(key);
    free(ca);
    return creds;
}

/* gRPC 1.51 reports a refused handshake once, at its error severity, from
 * its OpenSSL wrapper, as "Handshake failed with fatal error SSL_ERROR_SSL:
 * error:0A0000C7:SSL routines::peer did not return a certificate." Neither
 * that message nor any other it logs (even at its debug verbosity) carries
 * the client's address, and the C API has no hook on handshakes: the line
 * says so rather than leave the operator looking for it. */
#define REFUSED_PREFIX "Handshake failed with fatal error "

static struct ratelimit refused = {
    .interval_ns = (int64_t)TLS_REFUSED_LOG_INTERVAL_S * 1000000000,
    .last_ns = INT64_MIN,
};

/* OpenSSL's reason ("peer did not return a certificate"): what follows the
 * last "::", without the final period; the whole message if it has none. */
static void refusal_reason(const char *message, char *out, size_t len)
{
    const char *from = message;
    for (const char *p = strstr(from, "::"); p; p = strstr(p + 2, "::"))
        from = p + 2;
    size_t n = strlen(from);
    if (n > 0 && from[n - 1] == '.')
        n--;
    snprintf(out, len, "%.*s", (int)n, from);
}

bool tls_log_refused_handshake(const char *grpc_message)
{
    if (strncmp(grpc_message, REFUSED_PREFIX, strlen(REFUSED_PREFIX)) != 0)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    bool first;
    uint64_t n = ratelimit_hit(&refused, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, &first);
    if (!n)
        return true;
    unsigned long long folded = n - 1;
    char reason[256], more[96] = "";
    refusal_reason(grpc_message + strlen(REFUSED_PREFIX), reason, sizeof reason);
    if (folded > 0)
        snprintf(more, sizeof more, "%llu more refused since the last such line; ", folded);
    log_warn("TLS handshake refused: %s (%sgRPC 1.51 does not report the client's address)", reason,
             more);
    return true;
}
