#include "codec.h"

#include <stdio.h>

static const char hex_digits[] = "0123456789abcdef";
static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void codec_hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0xf];
    }
}

int codec_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int codec_hex_decode(const char *in, size_t n, unsigned char *out, char *why, size_t whylen)
{
    if (n % 2 != 0) {
        snprintf(why, whylen, "odd number of hex digits (%zu)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = codec_hex_value(in[i]);
        int lo = codec_hex_value(in[i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(why, whylen, "not a hex digit at byte %zu", hi < 0 ? i + 1 : i + 2);
            return -1;
        }
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

size_t codec_base64_len(size_t n, bool url)
{
    if (!url)
        return (n + 2) / 3 * 4;
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void codec_base64_encode(const unsigned char *in, size_t n, char *out, bool url)
{
    const char *alphabet = url ? b64_url : b64_std;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    size_t rest = n - i;
    if (rest == 0)
        return;
    unsigned long v = (unsigned long)in[i] << 16 | (rest == 2 ? (unsigned long)in[i + 1] << 8 : 0);
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    if (rest == 2)
        out[o++] = alphabet[v >> 6 & 63];
    if (!url) {
        if (rest == 1)
            out[o++] = '=';
        out[o++] = '=';
    }
}

static int b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int codec_base64_decode(const char *in, size_t n, unsigned char *out, size_t *out_len, bool url,
                        char *why, size_t whylen)
{
    size_t data = n;
    while (data > 0 && n - data < 2 && in[data - 1] == '=')
        data--;
    /* Padding, where there is any, completes the last group of four. */
    if ((!url || data < n) && n % 4 != 0) {
        snprintf(why, whylen, "length %zu is not a multiple of 4", n);
        return -1;
    }
    if (data % 4 == 1) {
        snprintf(why, whylen, "length %zu is not a base64 length", n);
        return -1;
    }
    size_t o = 0;
    unsigned long acc = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64_value(in[i], url);
        if (v < 0) {
            snprintf(why, whylen, "not a %sbase64 character at byte %zu", url ? "URL-safe " : "",
                     i + 1);
            return -1;
        }
        acc = acc << 6 | (unsigned long)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* A last group of 2 or 3 characters holds 1 or 2 bytes. */
    if (data % 4 == 2) {
        out[o++] = (unsigned char)(acc >> 4);
    } else if (data % 4 == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return 0;
}

/* ---- base62 ----------------------------------------------------------- */

/* How many characters a 6-bit value takes in base62. */
static size_t b62_width(unsigned v)
{
    return v < 61 ? 1 : 2;
}

static char *b62_put(char *out, unsigned v)
{
    if (v < 26) {
        *out++ = (char)('A' + v);
    } else if (v < 52) {
        *out++ = (char)('a' + v - 26);
    } else if (v < 61) {
        *out++ = (char)('0' + v - 52);
    } else {
        *out++ = '9';
        *out++ = (char)('A' + v - 61);
    }
    return out;
}

/* The values the bytes at `in` (1 to 3 of them) give: 4 for 3 bytes, 3
 * (the last of 4 bits) for 2, 2 (the last of 2 bits) for 1. */
static size_t b62_group(const unsigned char *in, size_t n, unsigned v[4])
{
    if (n >= 3) {
        v[0] = in[0] >> 2;
        v[1] = ((in[0] & 0x03u) << 4) | (in[1] >> 4);
        v[2] = ((in[1] & 0x0fu) << 2) | (in[2] >> 6);
        v[3] = in[2] & 0x3fu;
        return 4;
    }
    v[0] = in[0] >> 2;
    if (n == 2) {
        v[1] = ((in[0] & 0x03u) << 4) | (in[1] >> 4);
        v[2] = in[1] & 0x0fu;
        return 3;
    }
    v[1] = in[0] & 0x03u;
    return 2;
}

size_t codec_base62_len(const unsigned char *in, size_t n)
{
    size_t len = 0;
    unsigned v[4];

    for (size_t i = 0; i < n; i += 3) {
        size_t count = b62_group(in + i, n - i, v);
        for (size_t j = 0; j < count; j++)
            len += b62_width(v[j]);
    }
    return len;
}

void codec_base62_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned v[4];

    for (size_t i = 0; i < n; i += 3) {
        size_t count = b62_group(in + i, n - i, v);
        for (size_t j = 0; j < count; j++)
            out = b62_put(out, v[j]);
    }
}

/* ---- UTF-8 ------------------------------------------------------------ */

size_t codec_utf8_sequence(const unsigned char *p, size_t avail)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;

    if (avail == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > avail)
        return 0;
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}
