#ifndef EXHOOKD_CODEC_H
#define EXHOOKD_CODEC_H

/* Hex and base64 (RFC 4648) for binary strings that travel as text: stored
 * password hashes, salts, tokens; EMQX's base62 for the WebHook's payloads;
 * and the UTF-8 check of text that goes into JSON.
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

/* Length of EMQX's base62 text (emqx_base62:encode, as 4.x's WebHook
 * used it) for `n` bytes. The input is read 6 bits at a time like base64,
 * the last group holding the 2 or 4 bits left over as they are; the 6-bit
 * values 0..60 are one character (A-Z, a-z, 0-8), 61, 62 and 63 two
 * ("9A", "9B", "9C"). No padding. */
size_t codec_base62_len(const unsigned char *in, size_t n);

/* Writes codec_base62_len(in, n) characters (no NUL) to `out`. */
void codec_base62_encode(const unsigned char *in, size_t n, char *out);

/* Length of the valid UTF-8 sequence at `p` (1..4), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not) or it
 * would pass the `avail` bytes there are. An ASCII byte, NUL included, is
 * a sequence of 1. On NUL-terminated text `avail` may be SIZE_MAX: a NUL
 * ends any sequence before it is read past. */
size_t codec_utf8_sequence(const unsigned char *p, size_t avail);

#endif
