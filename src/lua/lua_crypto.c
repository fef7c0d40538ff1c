#include "lua_crypto.h"

#include <crypt.h>
#include <errno.h>
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"

/* The work a PBKDF2 call may ask for, in HMAC computations (iterations
 * times output blocks): about 0.2 s with SHA-1 or SHA-256 and 0.45 s with
 * SHA-512 on a 2020s x86 core, in C code that the time limit cannot stop.
 * OWASP's 2023 advice for PBKDF2-HMAC-SHA256, 600,000 iterations, fits. */
#define PBKDF2_MAX_WORK 1000000
#define PBKDF2_MAX_DKLEN 1024

/* bcrypt doubles its work per cost step: 13 is about 0.4 s on the same
 * core, 14 would be 0.8 s. EMQX creates hashes with cost 10 by default. */
#define BCRYPT_MAX_COST 13
#define BCRYPT_HASH_LEN 60

struct digest {
    const char *name;
    const EVP_MD *(*md)(void);
    bool exported; /* also exhook.crypto.<name>(data) */
};

/* "sha" is EMQX's name for SHA-1. */
static const struct digest digests[] = {
    {"md5", EVP_md5, true},       {"sha1", EVP_sha1, true},     {"sha", EVP_sha1, false},
    {"sha224", EVP_sha224, true}, {"sha256", EVP_sha256, true}, {"sha384", EVP_sha384, true},
    {"sha512", EVP_sha512, true},
};
#define DIGEST_NAMES "md5, sha1 (or sha), sha224, sha256, sha384 or sha512"

static const EVP_MD *find_digest(const char *name)
{
    for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++)
        if (strcmp(digests[i].name, name) == 0)
            return digests[i].md();
    return NULL;
}

/* The digest named by argument `arg` of exhook.crypto.<fname>. */
static const EVP_MD *check_digest(lua_State *L, int arg, const char *fname)
{
    const char *name = luaL_checkstring(L, arg);
    const EVP_MD *md = find_digest(name);
    if (md == NULL)
        luaL_error(L, "exhook.crypto.%s: unknown digest '%s' (use " DIGEST_NAMES ")", fname, name);
    return md;
}

/* nil and a message: for data that is not what it should be (a stored hash
 * from a database, text to decode), which a handler may meet at any call. */
static int push_fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

/* exhook.crypto.<digest>(data): the raw digest. Upvalue: the digests[] index. */
static int api_digest(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    const EVP_MD *md = digests[lua_tointeger(L, lua_upvalueindex(1))].md();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len;
    if (!EVP_Digest(data, len, out, &out_len, md, NULL))
        return luaL_error(L, "exhook.crypto: OpenSSL could not compute %s", EVP_MD_get0_name(md));
    lua_pushlstring(L, (const char *)out, out_len);
    return 1;
}

static int api_hmac(lua_State *L)
{
    const EVP_MD *md = check_digest(L, 1, "hmac");
    size_t key_len, len;
    const char *key = luaL_checklstring(L, 2, &key_len);
    const char *data = luaL_checklstring(L, 3, &len);
    if (key_len > INT32_MAX)
        return luaL_error(L, "exhook.crypto.hmac: key longer than 2 GiB");
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len;
    if (!HMAC(md, key, (int)key_len, (const unsigned char *)data, len, out, &out_len))
        return luaL_error(L, "exhook.crypto.hmac: OpenSSL could not compute it");
    lua_pushlstring(L, (const char *)out, out_len);
    return 1;
}

/* Refuses PBKDF2 parameters past the limits above, naming the function. */
static void check_pbkdf2_limits(lua_State *L, const char *fname, const EVP_MD *md,
                                lua_Integer iterations, lua_Integer dklen)
{
    if (iterations < 1 || iterations > PBKDF2_MAX_WORK)
        luaL_error(L, "%s: iterations must be 1 to %d, not %I", fname, PBKDF2_MAX_WORK, iterations);
    if (dklen < 1 || dklen > PBKDF2_MAX_DKLEN)
        luaL_error(L, "%s: the key length must be 1 to %d bytes, not %I", fname, PBKDF2_MAX_DKLEN,
                   dklen);
    lua_Integer blocks = (dklen + EVP_MD_get_size(md) - 1) / EVP_MD_get_size(md);
    if (iterations * blocks > PBKDF2_MAX_WORK)
        luaL_error(L,
                   "%s: %I iterations for %I bytes of %s are %I HMAC computations, more than "
                   "the limit of %d",
                   fname, iterations, dklen, EVP_MD_get0_name(md), iterations * blocks,
                   PBKDF2_MAX_WORK);
}

/* Derives `dklen` bytes to `out` (PBKDF2_MAX_DKLEN bytes); limits checked. */
static void pbkdf2(lua_State *L, const char *fname, const EVP_MD *md, const char *pw, size_t pw_len,
                   const char *salt, size_t salt_len, lua_Integer iterations, lua_Integer dklen,
                   unsigned char *out)
{
    check_pbkdf2_limits(L, fname, md, iterations, dklen);
    if (pw_len > INT32_MAX || salt_len > INT32_MAX)
        luaL_error(L, "%s: password or salt longer than 2 GiB", fname);
    if (!PKCS5_PBKDF2_HMAC(pw, (int)pw_len, (const unsigned char *)salt, (int)salt_len,
                           (int)iterations, md, (int)dklen, out))
        luaL_error(L, "%s: OpenSSL could not compute it", fname);
}

static int api_pbkdf2(lua_State *L)
{
    const EVP_MD *md = check_digest(L, 1, "pbkdf2");
    size_t pw_len, salt_len;
    const char *pw = luaL_checklstring(L, 2, &pw_len);
    const char *salt = luaL_checklstring(L, 3, &salt_len);
    lua_Integer iterations = luaL_checkinteger(L, 4);
    lua_Integer dklen = luaL_optinteger(L, 5, EVP_MD_get_size(md));
    unsigned char out[PBKDF2_MAX_DKLEN];
    pbkdf2(L, "exhook.crypto.pbkdf2", md, pw, pw_len, salt, salt_len, iterations, dklen, out);
    lua_pushlstring(L, (const char *)out, (size_t)dklen);
    return 1;
}

static int api_hex(lua_State *L)
{
    size_t len;
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * len);
    codec_hex_encode(data, len, out);
    luaL_pushresultsize(&b, 2 * len);
    return 1;
}

static int api_unhex(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, len / 2);
    char why[80];
    if (codec_hex_decode(text, len, out, why, sizeof why) != 0)
        return push_fail(L, "exhook.crypto.unhex: %s", why);
    luaL_pushresultsize(&b, len / 2);
    return 1;
}

/* exhook.crypto.base64 and base64url. Upvalue: true for URL-safe. */
static int api_base64(lua_State *L)
{
    size_t len;
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 1, &len);
    bool url = lua_toboolean(L, lua_upvalueindex(1));
    size_t out_len = codec_base64_len(len, url);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, out_len);
    codec_base64_encode(data, len, out, url);
    luaL_pushresultsize(&b, out_len);
    return 1;
}

/* exhook.crypto.unbase64 and unbase64url. Upvalue: true for URL-safe. */
static int api_unbase64(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    bool url = lua_toboolean(L, lua_upvalueindex(1));
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, len / 4 * 3 + 2);
    size_t out_len;
    char why[80];
    if (codec_base64_decode(text, len, out, &out_len, url, why, sizeof why) != 0)
        return push_fail(L, "exhook.crypto.unbase64%s: %s", url ? "url" : "", why);
    luaL_pushresultsize(&b, out_len);
    return 1;
}

/* Equal strings, compared in a time that depends on their length only. */
static bool same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}

static int api_equals(lua_State *L)
{
    size_t a_len, b_len;
    const char *a = luaL_checklstring(L, 1, &a_len);
    const char *b = luaL_checklstring(L, 2, &b_len);
    lua_pushboolean(L, same_bytes(a, a_len, b, b_len));
    return 1;
}

/* "$2a$", "$2b$" or "$2y$", two cost digits, '$', 53 characters. */
static bool bcrypt_shaped(const char *hash, size_t len, int *cost)
{
    if (len != BCRYPT_HASH_LEN || memchr(hash, '\0', len) != NULL)
        return false;
    if (hash[0] != '$' || hash[1] != '2' || strchr("aby", hash[2]) == NULL || hash[3] != '$')
        return false;
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || hash[6] != '$')
        return false;
    *cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    return *cost >= 4 && *cost <= 31;
}

/* Pushes whether `pw` hashes to bcrypt hash `hash`, or nil and why. */
static int bcrypt_verify(lua_State *L, const char *fname, const char *pw, size_t pw_len,
                         const char *hash, size_t hash_len)
{
    int cost;
    if (!bcrypt_shaped(hash, hash_len, &cost))
        return push_fail(L,
                         "%s: the stored hash is no bcrypt hash ($2a$, $2b$ or $2y$, a cost "
                         "of 04 to 31, '$', 53 characters)",
                         fname);
    if (cost > BCRYPT_MAX_COST)
        return push_fail(L, "%s: bcrypt cost %d is above the limit of %d", fname, cost,
                         BCRYPT_MAX_COST);
    if (memchr(pw, '\0', pw_len) != NULL)
        return push_fail(L, "%s: the password contains a NUL byte, which bcrypt cannot hash",
                         fname);
    /* Some 32 KiB: a Lua object, so an error cannot leak it. */
    struct crypt_data *cd = lua_newuserdatauv(L, sizeof *cd, 0);
    memset(cd, 0, sizeof *cd);
    const char *out = crypt_rn(pw, hash, cd, sizeof *cd);
    if (out == NULL)
        return push_fail(L, "%s: libcrypt refused the stored hash: %s", fname, strerror(errno));
    lua_pushboolean(L, same_bytes(out, strlen(out), hash, hash_len));
    return 1;
}

static int api_bcrypt_check(lua_State *L)
{
    size_t pw_len, hash_len;
    const char *pw = luaL_checklstring(L, 1, &pw_len);
    const char *hash = luaL_checklstring(L, 2, &hash_len);
    return bcrypt_verify(L, "exhook.crypto.bcrypt_check", pw, pw_len, hash, hash_len);
}

/* ---- check_password: EMQX's password_hash_algorithm ------------------- */

#define CHECK_PASSWORD "exhook.crypto.check_password"

/* The options, read into fixed stack slots so their strings stay
 * referenced while they are used. */
enum option {
    OPT_NAME,
    OPT_SALT,
    OPT_SALT_POSITION,
    OPT_MAC_FUN,
    OPT_ITERATIONS,
    OPT_DK_LENGTH,
    OPT_SALT_ROUNDS,
    OPT_COUNT
};
static const char *const option_names[OPT_COUNT] = {
    "name", "salt", "salt_position", "mac_fun", "iterations", "dk_length", "salt_rounds",
};
#define OPTS_ARG 3
#define OPT_SLOT(o) (OPTS_ARG + 1 + (o))

/* Refuses a key that is no option: a misspelt salt_position would
 * otherwise silently check with the default. */
static void check_option_names(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, OPTS_ARG)) {
        lua_pop(L, 1);
        bool known = false;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int o = 0; o < OPT_COUNT && !known; o++)
                known = strcmp(lua_tostring(L, -1), option_names[o]) == 0;
        if (!known)
            luaL_error(L,
                       CHECK_PASSWORD ": unknown option '%s' (options: name, salt, "
                                      "salt_position, mac_fun, iterations, dk_length, "
                                      "salt_rounds)",
                       luaL_tolstring(L, -1, NULL));
    }
}

/* Option `o` as a string, or `def` where absent. */
static const char *opt_string(lua_State *L, enum option o, const char *def, size_t *len)
{
    int type = lua_type(L, OPT_SLOT(o));
    if (type == LUA_TNIL) {
        *len = def ? strlen(def) : 0;
        return def;
    }
    if (type != LUA_TSTRING)
        luaL_error(L, CHECK_PASSWORD ": option %s must be a string, not a %s", option_names[o],
                   lua_typename(L, type));
    return lua_tolstring(L, OPT_SLOT(o), len);
}

/* Option `o` as an integer; `def` where absent, an error if `def` < 0. */
static lua_Integer opt_integer(lua_State *L, enum option o, lua_Integer def)
{
    if (lua_isnil(L, OPT_SLOT(o))) {
        if (def < 0)
            luaL_error(L, CHECK_PASSWORD ": option %s is required for %s", option_names[o],
                       lua_tostring(L, OPT_SLOT(OPT_NAME)));
        return def;
    }
    if (!lua_isinteger(L, OPT_SLOT(o)))
        luaL_error(L, CHECK_PASSWORD ": option %s must be an integer", option_names[o]);
    return lua_tointeger(L, OPT_SLOT(o));
}

/* Compares a computed hash with the stored one, in hex of either case. */
static int compare_hex(lua_State *L, const unsigned char *got, size_t n, const char *stored,
                       size_t stored_len, const char *alg)
{
    unsigned char want[PBKDF2_MAX_DKLEN];
    char why[80];
    if (stored_len != 2 * n)
        return push_fail(L,
                         CHECK_PASSWORD ": the stored hash has %d characters; %s gives %d hex "
                                        "digits",
                         (int)stored_len, alg, (int)(2 * n));
    if (codec_hex_decode(stored, stored_len, want, why, sizeof why) != 0)
        return push_fail(L, CHECK_PASSWORD ": the stored hash is not hex: %s", why);
    lua_pushboolean(L, CRYPTO_memcmp(got, want, n) == 0);
    return 1;
}

static int check_pbkdf2(lua_State *L, const char *pw, size_t pw_len, const char *stored,
                        size_t stored_len)
{
    size_t len, salt_len;
    const char *mac = opt_string(L, OPT_MAC_FUN, NULL, &len);
    if (mac == NULL)
        return luaL_error(L, CHECK_PASSWORD ": option mac_fun is required for pbkdf2");
    const EVP_MD *md = find_digest(mac);
    if (md == NULL)
        return luaL_error(L, CHECK_PASSWORD ": unknown mac_fun '%s' (use " DIGEST_NAMES ")", mac);
    const char *salt = opt_string(L, OPT_SALT, "", &salt_len);
    lua_Integer iterations = opt_integer(L, OPT_ITERATIONS, -1);
    lua_Integer dklen = opt_integer(L, OPT_DK_LENGTH, EVP_MD_get_size(md));
    unsigned char out[PBKDF2_MAX_DKLEN];
    pbkdf2(L, CHECK_PASSWORD, md, pw, pw_len, salt, salt_len, iterations, dklen, out);
    return compare_hex(L, out, (size_t)dklen, stored, stored_len, "this pbkdf2");
}

/* plain: the salted password itself is stored. */
static int check_plain(lua_State *L, const char *pw, size_t pw_len, const char *salt,
                       size_t salt_len, bool prefix, const char *stored, size_t stored_len)
{
    bool same = stored_len == salt_len + pw_len;
    if (same) {
        const char *first = prefix ? salt : pw;
        size_t first_len = prefix ? salt_len : pw_len;
        const char *second = prefix ? pw : salt;
        /* Both halves compared whatever the first gives: no early exit. */
        int diff = CRYPTO_memcmp(stored, first, first_len);
        diff |= CRYPTO_memcmp(stored + first_len, second, stored_len - first_len);
        same = diff == 0;
    }
    lua_pushboolean(L, same);
    return 1;
}

static int check_simple(lua_State *L, const char *name, const char *pw, size_t pw_len,
                        const char *stored, size_t stored_len)
{
    static const char *const simple[] = {"plain", "md5", "sha", "sha256", "sha512"};
    bool known = false;
    for (size_t i = 0; i < sizeof simple / sizeof simple[0] && !known; i++)
        known = strcmp(simple[i], name) == 0;
    if (!known)
        return luaL_error(L,
                          CHECK_PASSWORD ": unknown algorithm '%s' (use plain, md5, sha, "
                                         "sha256, sha512, pbkdf2 or bcrypt)",
                          name);
    size_t salt_len, pos_len;
    const char *salt = opt_string(L, OPT_SALT, "", &salt_len);
    const char *position = opt_string(L, OPT_SALT_POSITION, "prefix", &pos_len);
    bool prefix = strcmp(position, "prefix") == 0;
    if (strcmp(position, "disable") == 0)
        salt_len = 0;
    else if (!prefix && strcmp(position, "suffix") != 0)
        return luaL_error(L,
                          CHECK_PASSWORD ": salt_position must be prefix, suffix or disable, "
                                         "not '%s'",
                          position);
    if (strcmp(name, "plain") == 0)
        return check_plain(L, pw, pw_len, salt, salt_len, prefix, stored, stored_len);

    const EVP_MD *md = find_digest(name);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) &&
              EVP_DigestUpdate(ctx, prefix ? salt : pw, prefix ? salt_len : pw_len) &&
              EVP_DigestUpdate(ctx, prefix ? pw : salt, prefix ? pw_len : salt_len) &&
              EVP_DigestFinal_ex(ctx, out, &out_len);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return luaL_error(L, CHECK_PASSWORD ": OpenSSL could not compute %s", name);
    return compare_hex(L, out, out_len, stored, stored_len, name);
}

static int api_check_password(lua_State *L)
{
    size_t pw_len, stored_len, name_len;
    const char *pw = luaL_checklstring(L, 1, &pw_len);
    const char *stored = luaL_checklstring(L, 2, &stored_len);
    luaL_checktype(L, OPTS_ARG, LUA_TTABLE);
    check_option_names(L);
    lua_settop(L, OPTS_ARG);
    luaL_checkstack(L, OPT_COUNT, NULL);
    for (int o = 0; o < OPT_COUNT; o++)
        lua_getfield(L, OPTS_ARG, option_names[o]);
    const char *name = opt_string(L, OPT_NAME, NULL, &name_len);
    if (name == NULL)
        return luaL_error(L, CHECK_PASSWORD ": option name is required (plain, md5, sha, sha256, "
                                            "sha512, pbkdf2 or bcrypt)");
    if (strcmp(name, "bcrypt") == 0)
        return bcrypt_verify(L, CHECK_PASSWORD, pw, pw_len, stored, stored_len);
    if (strcmp(name, "pbkdf2") == 0)
        return check_pbkdf2(L, pw, pw_len, stored, stored_len);
    return check_simple(L, name, pw, pw_len, stored, stored_len);
}

void lua_crypto_open(lua_State *L, struct script_engine *e)
{
    static const luaL_Reg functions[] = {
        {"hmac", api_hmac},
        {"pbkdf2", api_pbkdf2},
        {"hex", api_hex},
        {"unhex", api_unhex},
        {"equals", api_equals},
        {"bcrypt_check", api_bcrypt_check},
        {"check_password", api_check_password},
        {NULL, NULL},
    };
    (void)e;
    luaL_newlib(L, functions);
    for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++) {
        if (!digests[i].exported)
            continue;
        lua_pushinteger(L, (lua_Integer)i);
        lua_pushcclosure(L, api_digest, 1);
        lua_setfield(L, -2, digests[i].name);
    }
    for (int url = 0; url <= 1; url++) {
        lua_pushboolean(L, url);
        lua_pushcclosure(L, api_base64, 1);
        lua_setfield(L, -2, url ? "base64url" : "base64");
        lua_pushboolean(L, url);
        lua_pushcclosure(L, api_unbase64, 1);
        lua_setfield(L, -2, url ? "unbase64url" : "unbase64");
    }
    lua_setfield(L, -2, "crypto");
}
