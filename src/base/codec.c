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
