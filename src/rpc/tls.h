#ifndef EXHOOKD_TLS_H
#define EXHOOKD_TLS_H

/* Transport security of the listening port, from the [tls] section. */

#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Credentials for grpc_server_add_http2_port: insecure when no certificate
 * is configured, TLS with one, mutual TLS with verify_client. Before gRPC
 * sees them, the files are read and checked (readable, PEM, the key matches
 * the certificate, the CA parses), so that a mistake is reported at start
 * with its path instead of at the first handshake. NULL with a one-line
 * message in `err` on failure. */
grpc_server_credentials *tls_server_credentials(const struct config *cfg, char *err, size_t errlen);

/* Called with each message gRPC logs: when it reports a refused TLS
 * handshake (no client certificate, one from another CA or expired, a
 * plain-text client on the TLS port), writes a warning, at most one per
 * TLS_REFUSED_LOG_INTERVAL_S seconds with the count of the refusals folded
 * into it, and returns true. False for any other message. */
#define TLS_REFUSED_LOG_INTERVAL_S 10
bool tls_log_refused_handshake(const char *grpc_message);

#endif
