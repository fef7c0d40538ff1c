#ifndef EXHOOKD_CODEC_H
#define EXHOOKD_CODEC_H

/* Hex and base64 (RFC 4648) for binary strings that travel as text: stored
 * password hashes, salts, tokens.
 *
 * Encoders never fail. Decoders check all of their input and return 0, or
 * -1 with a short reason in `why` (`whylen` bytes) naming the offending
 * byte's position (from 1). */

#include <stdbool.h>
#include <stddef.h>

/* Writes 2 * n lower-case hex digits (no NUL) to `out`. */
void codec_hex_encode(const unsigned char *in, size_t n, char *out);

/* The value of hex digit `c` (either case), or -1. */
int codec_hex_value(char c);

/* Decodes `n` hex digits, either case, to n / 2 bytes at `out`. An odd
 * count or any other character is refused. */
int codec_hex_decode(const char *in, size_t n, unsigned char *out, char *why, size_t whylen);

/* Length of the base64 text for `n` bytes: padded to a multiple of 4 with
 * '=' (the standard alphabet), or unpadded (the URL-safe one). */
size_t codec_base64_len(size_t n, bool url);

/* Writes codec_base64_len(n, url) characters (no NUL) to `out`: the
 * standard alphabet (+/) padded, or the URL-safe one (-_) unpadded, as JWT
 * and most URL uses want it. */
void codec_base64_encode(const unsigned char *in, size_t n, char *out, bool url);

/* Decodes base64 text to at most n / 4 * 3 + 2 bytes at `out`, their count
 * in *out_len. Standard: the (+/) alphabet, padded to a multiple of 4.
 * URL-safe: the (-_) alphabet, padding optional (but complete if present).
 * Whitespace, a character of the other alphabet, '=' other than as the
 * final padding, or a length no encoder produces is refused. */
int codec_base64_decode(const char *in, size_t n, unsigned char *out, size_t *out_len, bool url,
                        char *why, size_t whylen);

#endif
