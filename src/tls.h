#ifndef EXHOOKD_TLS_H
#define EXHOOKD_TLS_H

/* Transport security of the listening port, from the [tls] section. */

#include <grpc/grpc_security.h>
#include <stddef.h>

#include "config.h"

/* Credentials for grpc_server_add_http2_port: insecure when no certificate
 * is configured, TLS with one, mutual TLS with verify_client. Before gRPC
 * sees them, the files are read and checked (readable, PEM, the key matches
 * the certificate, the CA parses), so that a mistake is reported at start
 * with its path instead of at the first handshake. NULL with a one-line
 * message in `err` on failure. */
grpc_server_credentials *tls_server_credentials(const struct config *cfg, char *err,
                                                size_t errlen);

#endif
