#ifndef EXHOOKD_LUA_CRYPTO_H
#define EXHOOKD_LUA_CRYPTO_H

/* exhook.crypto: what authentication against a user store needs, on
 * OpenSSL and libcrypt. Binary strings in and out; the digest names are
 * "md5", "sha1" (also "sha", EMQX's name), "sha224", "sha256", "sha384",
 * "sha512".
 *
 *   md5(s) sha1(s) sha224(s) sha256(s) sha384(s) sha512(s) -> raw digest
 *   hmac(alg, key, data)                         -> raw MAC
 *   pbkdf2(alg, password, salt, iterations [, dklen]) -> raw key (dklen
 *       defaults to the digest's size)
 *   hex(s) / unhex(s)                            -> lower-case hex / bytes
 *   base64(s) / unbase64(s)                      standard, padded
 *   base64url(s) / unbase64url(s)                URL-safe, unpadded
 *                                                (decoding takes padding too)
 *   equals(a, b)        -> whether equal, in a time independent of where
 *                          they differ
 *   bcrypt_check(password, hash)                 -> boolean
 *   check_password(password, stored_hash, opts)  -> boolean
 *
 * check_password checks as EMQX's password authentication does with its
 * password_hash_algorithm: opts.name "plain", "md5", "sha", "sha256" or
 * "sha512" with opts.salt and opts.salt_position ("prefix" by default,
 * "suffix" or "disable"), the stored hash in hex; "pbkdf2" with mac_fun,
 * iterations, dk_length (default: the digest's size) and salt, stored in
 * hex; "bcrypt", the salt inside the stored hash. Hex is compared in
 * either case.
 *
 * Errors in what the script passes (wrong types, unknown names or options,
 * limits) are raised. Data that cannot be what it should (text that is no
 * hex or base64, a stored hash of the wrong shape) gives nil and a message:
 * still false in a test. Limits, so that one call cannot hold its worker:
 * PBKDF2 at most 1,000,000 HMAC computations (iterations times output
 * blocks) and 1024 bytes of key; bcrypt cost at most 13. */

#include <lua.h>

struct script_engine;

/* Sets exhook.crypto in the table at the top of the stack. */
void lua_crypto_open(lua_State *L, struct script_engine *e);

#endif
