/* exhook.crypto as a script sees it: a real engine with the exhook module
 * loaded, checked against published test vectors (FIPS 180 "abc", RFC 4231
 * HMAC, RFC 6070 PBKDF2, RFC 4648 base64), bcrypt hashes made by libcrypt at
 * test time, and password records stored the way EMQX's password
 * authentication reads them. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "script.h"

struct env {
    struct fixture fx;
    struct script_engine e;
};

static int setup(void **state)
{
    struct env *t = calloc(1, sizeof *t);
    char err[512];
    if (!t)
        return -1;
    fx_init(&t->fx);
    fx_write(&t->fx, "auth.lua", "return {}\n");
    fx_configure(&t->fx, "auth", NULL);
    if (script_engine_open(&t->e, &t->fx.cfg, 1, err, sizeof err) != 0) {
        fprintf(stderr, "script_engine_open: %s\n", err);
        return -1;
    }
    /* Every snippet can write hex(x) for exhook.crypto.hex(x), and
     * fails_with(pattern, f, ...) to assert a raised error. */
    if (luaL_dostring(t->e.L, "c = exhook.crypto\n"
                              "hex = c.hex\n"
                              "function fails_with(text, f, ...)\n"
                              "  local ok, err = pcall(f, ...)\n"
                              "  assert(not ok, 'no error, wanted: ' .. text)\n"
                              "  assert(err:find(text, 1, true), err)\n"
                              "end\n") != LUA_OK)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct env *t = *state;
    script_engine_close(&t->e);
    fx_free(&t->fx);
    free(t);
    return 0;
}

static void run(void **state, const char *code)
{
    struct env *t = *state;
    if (luaL_dostring(t->e.L, code) != LUA_OK)
        fail_msg("Lua error: %s", lua_tostring(t->e.L, -1));
    lua_settop(t->e.L, 0);
}

/* ---- digests, HMAC, PBKDF2 ----------------------------------------------- */

static void test_digests_of_abc(void **state)
{
    run(state, "assert(#c.sha256('abc') == 32)\n"
               "assert(hex(c.md5('abc')) == '900150983cd24fb0d6963f7d28e17f72')\n"
               "assert(hex(c.md5('')) == 'd41d8cd98f00b204e9800998ecf8427e')\n"
               "assert(hex(c.sha1('abc')) == 'a9993e364706816aba3e25717850c26c9cd0d89d')\n"
               "assert(hex(c.sha224('abc')) == "
               "'23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7')\n"
               "assert(hex(c.sha256('abc')) == "
               "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')\n"
               "assert(hex(c.sha384('abc')) == "
               "'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
               "8086072ba1e7cc2358baeca134c825a7')\n"
               "assert(hex(c.sha512('abc')) == "
               "'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
               "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f')\n"
               /* Binary data, NUL bytes included, is hashed whole. */
               "assert(c.sha256('a\\0b') ~= c.sha256('a'))\n"
               /* "sha" is an algorithm name for hmac and pbkdf2, not a function. */
               "assert(c.sha == nil)\n"
               "fails_with('bad argument #1 to', c.sha256, {})\n"
               "fails_with('(string expected, got table)', c.sha256, {})\n");
}

static void test_hmac_rfc4231(void **state)
{
    run(state,
        "local key1, data1 = string.rep('\\x0b', 20), 'Hi There'\n"
        "assert(hex(c.hmac('sha224', key1, data1)) == "
        "'896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22')\n"
        "assert(hex(c.hmac('sha256', key1, data1)) == "
        "'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')\n"
        "assert(hex(c.hmac('sha384', key1, data1)) == "
        "'afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6')\n"
        "assert(hex(c.hmac('sha512', 'Jefe', 'what do ya want for nothing?')) == "
        "'164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737')\n"
        "assert(c.hmac('sha', 'k', 'd') == c.hmac('sha1', 'k', 'd'))\n"
        "fails_with(\"exhook.crypto.hmac: unknown digest 'sha3' (use md5, sha1 (or sha), \"\n"
        "           .. 'sha224, sha256, sha384 or sha512)', c.hmac, 'sha3', 'k', 'd')\n");
}

static void test_pbkdf2_rfc6070(void **state)
{
    run(state, "assert(hex(c.pbkdf2('sha1', 'password', 'salt', 1, 20)) == "
               "'0c60c80f961f0e71f3a9b524af6012062fe037a6')\n"
               "assert(hex(c.pbkdf2('sha1', 'password', 'salt', 2, 20)) == "
               "'ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957')\n"
               "assert(hex(c.pbkdf2('sha1', 'password', 'salt', 4096)) == "
               "'4b007901b765489abead49d926f721d065a429c1')\n"
               "assert(hex(c.pbkdf2('sha1', 'passwordPASSWORDpassword',\n"
               "                    'saltSALTsaltSALTsaltSALTsaltSALTsalt', 4096, 25)) == "
               "'3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038')\n"
               "assert(hex(c.pbkdf2('sha1', 'pass\\0word', 'sa\\0lt', 4096, 16)) == "
               "'56fa6aa75548099dcc37d7f03425e0c3')\n"
               "assert(#c.pbkdf2('sha512', 'p', 's', 1) == 64)\n");
}

static void test_pbkdf2_limits(void **state)
{
    run(state,
        /* RFC 6070's 16777216 iterations would hold the worker for seconds. */
        "fails_with('exhook.crypto.pbkdf2: iterations must be 1 to 1000000, not 16777216',\n"
        "           c.pbkdf2, 'sha1', 'password', 'salt', 16777216, 20)\n"
        "fails_with('iterations must be 1 to 1000000, not 0', c.pbkdf2, 'sha1', 'p', 's', 0)\n"
        "fails_with('the key length must be 1 to 1024 bytes, not 1025',\n"
        "           c.pbkdf2, 'sha1', 'p', 's', 1, 1025)\n"
        "fails_with('the key length must be 1 to 1024 bytes, not 0',\n"
        "           c.pbkdf2, 'sha1', 'p', 's', 1, 0)\n"
        "fails_with('exhook.crypto.pbkdf2: 600000 iterations for 64 bytes of SHA1 are 2400000 '\n"
        "           .. 'HMAC computations, more than the limit of 1000000',\n"
        "           c.pbkdf2, 'sha1', 'p', 's', 600000, 64)\n"
        "fails_with('number has no integer representation', c.pbkdf2, 'sha1', 'p', 's', 1.5)\n"
        "assert(#c.pbkdf2('sha256', 'p', 's', 1, 1024) == 1024)\n");
}

/* ---- hex, base64, equals ---------------------------------------------------- */

static void test_hex(void **state)
{
    run(state,
        "assert(hex('') == '')\n"
        "assert(hex('\\0\\1\\xab\\xff') == '0001abff')\n"
        "assert(c.unhex('0001abff') == '\\0\\1\\xab\\xff')\n"
        "assert(c.unhex('0001ABFF') == '\\0\\1\\xab\\xff')\n"
        "assert(c.unhex('') == '')\n"
        "local v, err = c.unhex('abc')\n"
        "assert(v == nil and err == 'exhook.crypto.unhex: odd number of hex digits (3)', err)\n"
        "v, err = c.unhex('00zz')\n"
        "assert(v == nil and err == 'exhook.crypto.unhex: not a hex digit at byte 3', err)\n"
        "v, err = c.unhex('0\\0')\n"
        "assert(v == nil and err == 'exhook.crypto.unhex: not a hex digit at byte 2', err)\n");
}

static void test_base64_rfc4648(void **state)
{
    run(state,
        "local vectors = {{'', ''}, {'f', 'Zg=='}, {'fo', 'Zm8='}, {'foo', 'Zm9v'},\n"
        "                 {'foob', 'Zm9vYg=='}, {'fooba', 'Zm9vYmE='}, {'foobar', 'Zm9vYmFy'}}\n"
        "for _, v in ipairs(vectors) do\n"
        "  assert(c.base64(v[1]) == v[2], v[1])\n"
        "  assert(c.unbase64(v[2]) == v[1], v[2])\n"
        "  local url = v[2]:gsub('=', '')\n"
        "  assert(c.base64url(v[1]) == url, v[1])\n"
        "  assert(c.unbase64url(url) == v[1], url)\n"
        "  assert(c.unbase64url(v[2]) == v[1], v[2])\n"
        "end\n"
        /* The two alphabets differ in the last two characters. */
        "assert(c.base64('\\xfb\\xff\\xbf') == '+/+/')\n"
        "assert(c.base64url('\\xfb\\xff\\xbf') == '-_-_')\n"
        "assert(c.unbase64('+/+/') == '\\xfb\\xff\\xbf')\n"
        "assert(c.unbase64url('-_-_') == '\\xfb\\xff\\xbf')\n"
        "local all = {} for i = 0, 255 do all[#all + 1] = string.char(i) end\n"
        "all = table.concat(all)\n"
        "assert(c.unbase64(c.base64(all)) == all)\n"
        "assert(c.unbase64url(c.base64url(all)) == all)\n");
}

static void test_base64_refuses_what_no_encoder_produces(void **state)
{
    run(state,
        "local function refused(f, text, why)\n"
        "  local v, err = f(text)\n"
        "  assert(v == nil and err == why, tostring(err))\n"
        "end\n"
        "refused(c.unbase64, 'Zg', 'exhook.crypto.unbase64: length 2 is not a multiple of 4')\n"
        "refused(c.unbase64, 'Zm9v\\n', 'exhook.crypto.unbase64: length 5 is not a multiple of "
        "4')\n"
        "refused(c.unbase64, '-_-_', 'exhook.crypto.unbase64: not a base64 character at byte 1')\n"
        "refused(c.unbase64, 'Zg=a', 'exhook.crypto.unbase64: not a base64 character at byte 3')\n"
        "refused(c.unbase64, 'Z===', 'exhook.crypto.unbase64: not a base64 character at byte 2')\n"
        "refused(c.unbase64url, '+/+/', "
        "'exhook.crypto.unbase64url: not a URL-safe base64 character at byte 1')\n"
        "refused(c.unbase64url, 'Zg=', "
        "'exhook.crypto.unbase64url: length 3 is not a multiple of 4')\n"
        "refused(c.unbase64url, 'Zm9vY', "
        "'exhook.crypto.unbase64url: length 5 is not a base64 length')\n");
}

static void test_equals(void **state)
{
    run(state, "assert(c.equals('', '') == true)\n"
               "assert(c.equals('secret', 'secret') == true)\n"
               "assert(c.equals('secret', 'secreT') == false)\n"
               "assert(c.equals('secret', 'secret2') == false)\n"
               "assert(c.equals('a\\0b', 'a\\0c') == false)\n"
               "fails_with('bad argument #2 to', c.equals, 'a')\n");
}

/* ---- bcrypt -------------------------------------------------------------------- */

/* A bcrypt hash of `password` made by libcrypt with `prefix` ("$2b$"...)
 * and cost 4, the fastest. */
static void make_bcrypt(const char *prefix, const char *password, char *out, size_t len)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    assert_non_null(crypt_gensalt_rn(prefix, 4, NULL, 0, setting, sizeof setting));
    const char *hash = crypt_rn(password, setting, &cd, sizeof cd);
    assert_non_null(hash);
    assert_int_equal(strlen(hash), 60);
    snprintf(out, len, "%s", hash);
}

static void test_bcrypt_check_with_hashes_made_now(void **state)
{
    struct env *t = *state;
    static const char *const prefixes[] = {"$2b$", "$2y$", "$2a$"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char hash[64];
        make_bcrypt(prefixes[i], "s3cret pass", hash, sizeof hash);
        assert_memory_equal(hash, prefixes[i], 4);
        lua_pushstring(t->e.L, hash);
        lua_setglobal(t->e.L, "HASH");
        run(state, "assert(c.bcrypt_check('s3cret pass', HASH) == true)\n"
                   "assert(c.bcrypt_check('s3cret pasS', HASH) == false)\n"
                   "assert(c.bcrypt_check('', HASH) == false)\n"
                   "assert(c.check_password('s3cret pass', HASH, {name = 'bcrypt'}) == true)\n"
                   "assert(c.check_password('wrong', HASH, {name = 'bcrypt'}) == false)\n"
                   /* The salt is in the hash: an option salt changes nothing. */
                   "assert(c.check_password('s3cret pass', HASH,\n"
                   "                        {name = 'bcrypt', salt = 'x', salt_rounds = 10}))\n");
    }
}

static void test_bcrypt_known_vectors(void **state)
{
    /* crypt_blowfish's own test vectors. */
    run(state, "assert(c.bcrypt_check('U*U', "
               "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))\n"
               "assert(c.bcrypt_check('U*U*', "
               "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'))\n"
               "assert(not c.bcrypt_check('U*U*', "
               "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))\n");
}

static void test_bcrypt_refuses_bad_hashes_and_costs_past_the_limit(void **state)
{
    run(state,
        "local shape = 'exhook.crypto.bcrypt_check: the stored hash is no bcrypt hash ($2a$, '\n"
        "              .. '$2b$ or $2y$, a cost of 04 to 31, \\'$\\', 53 characters)'\n"
        "local tail = string.rep('C', 22) .. string.rep('D', 31)\n"
        "for _, bad in ipairs{'', 'plain', '$2x$05$' .. tail, '$2b$5$' .. tail .. 'C',\n"
        "                     '$2b$03$' .. tail, '$2b$32$' .. tail, '$2b$05$' .. tail .. 'x',\n"
        "                     '$1$abc', '$2b$05$' .. tail:sub(2) .. '\\0'} do\n"
        "  local v, err = c.bcrypt_check('pw', bad)\n"
        "  assert(v == nil and err == shape, bad)\n"
        "end\n"
        "local v, err = c.bcrypt_check('pw', '$2b$14$' .. tail)\n"
        "assert(v == nil and err == 'exhook.crypto.bcrypt_check: bcrypt cost 14 is above the '\n"
        "       .. 'limit of 13', err)\n"
        "v, err = c.bcrypt_check('pw', '$2b$05$' .. string.rep('!', 53))\n"
        "assert(v == nil and err:find('^exhook.crypto.bcrypt_check: libcrypt refused the stored "
        "hash: '), err)\n"
        "v, err = c.bcrypt_check('p\\0w', "
        "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')\n"
        "assert(v == nil and err == 'exhook.crypto.bcrypt_check: the password contains a NUL '\n"
        "       .. 'byte, which bcrypt cannot hash', err)\n");
}

/* ---- check_password: records as EMQX stores them ------------------------------ */

static void test_check_password_salted_sha256_as_in_emqx_docs(void **state)
{
    /* The record EMQX's MySQL authentication guide inserts:
     * SHA2(concat('public', 'slat_foo123'), 256), salt 'slat_foo123'. */
    run(state,
        "local stored = '44edc2d57cde8d79c98145003e105b90a14f1460b79186ea9cfe83942fc5abb5'\n"
        "local opts = {name = 'sha256', salt = 'slat_foo123', salt_position = 'suffix'}\n"
        "assert(c.check_password('public', stored, opts) == true)\n"
        "assert(c.check_password('public', stored:upper(), opts) == true)\n"
        "assert(c.check_password('Public', stored, opts) == false)\n"
        "assert(c.check_password('public', stored, {name = 'sha256', salt = 'slat_foo123'}) == "
        "false)\n"
        "assert(c.check_password('public', stored, {name = 'sha256'}) == false)\n"
        "assert(c.check_password('publicslat_foo123', stored, {name = 'sha256'}) == true)\n"
        "assert(c.check_password('publicslat_foo123', stored,\n"
        "                        {name = 'sha256', salt = 'ignored', salt_position = "
        "'disable'}))\n");
}

static void test_check_password_other_simple_algorithms(void **state)
{
    run(state,
        "assert(c.check_password('public', '4c9184f37cff01bcdc32dc486ec36961', {name = 'md5'}))\n"
        "assert(c.check_password('public', 'ad3e71b880eff219e3c5cac896daf8282d0a1032',\n"
        "                        {name = 'sha', salt = 'ab'}))\n"
        "assert(c.check_password('public', '9c8cc02459f798c617202c96a1d80bdbc13ca1c1556c44df'\n"
        "                        .. 'f5aede1b567b12aa33b9fab5ed1fb5536420852d0567d06e'\n"
        "                        .. '64772660339bd0f3cc1234db102d8ec8',\n"
        "                        {name = 'sha512', salt = 'slat', salt_position = 'prefix'}))\n"
        "assert(c.check_password('public', 'public', {name = 'plain'}))\n"
        "assert(c.check_password('public', 'saltpublic', {name = 'plain', salt = 'salt'}))\n"
        "assert(c.check_password('public', 'publicsalt',\n"
        "                        {name = 'plain', salt = 'salt', salt_position = 'suffix'}))\n"
        "assert(not c.check_password('public', 'publicsalt', {name = 'plain', salt = 'salt'}))\n"
        "assert(not c.check_password('public', 'publi', {name = 'plain'}))\n"
        "assert(not c.check_password('', '', {name = 'plain', salt = 'x'}))\n");
}

static void test_check_password_pbkdf2(void **state)
{
    run(state,
        "local stored = 'a42f5d057f64634a1fa35ef32922d3cece99d9fcda9339839d810ad146991ce4'\n"
        "local opts = {name = 'pbkdf2', mac_fun = 'sha256', iterations = 4096, dk_length = 32,\n"
        "              salt = 'emqx-salt'}\n"
        "assert(c.check_password('public', stored, opts) == true)\n"
        "assert(c.check_password('public', stored:upper(), opts) == true)\n"
        "assert(c.check_password('publik', stored, opts) == false)\n"
        /* dk_length defaults to the digest's size, 32 for sha256. */
        "opts.dk_length = nil\n"
        "assert(c.check_password('public', stored, opts) == true)\n"
        "opts.iterations = 4095\n"
        "assert(c.check_password('public', stored, opts) == false)\n"
        "opts.iterations = 2000000\n"
        "fails_with('exhook.crypto.check_password: iterations must be 1 to 1000000, not 2000000',\n"
        "           c.check_password, 'public', stored, opts)\n"
        "fails_with('option iterations is required for pbkdf2', c.check_password, 'p', stored,\n"
        "           {name = 'pbkdf2', mac_fun = 'sha256'})\n"
        "fails_with('option mac_fun is required for pbkdf2', c.check_password, 'p', stored,\n"
        "           {name = 'pbkdf2', iterations = 1})\n"
        "fails_with(\"unknown mac_fun 'md4' (use md5, sha1 (or sha), sha224, sha256, sha384 or \"\n"
        "           .. 'sha512)', c.check_password, 'p', stored,\n"
        "           {name = 'pbkdf2', mac_fun = 'md4', iterations = 1})\n");
}

static void test_check_password_stored_hash_of_the_wrong_shape(void **state)
{
    run(state,
        "local v, err = c.check_password('public', '4c9184f37cff01bc', {name = 'sha256'})\n"
        "assert(v == nil and err == 'exhook.crypto.check_password: the stored hash has 16 '\n"
        "       .. 'characters; sha256 gives 64 hex digits', err)\n"
        "v, err = c.check_password('public', string.rep('g', 32), {name = 'md5'})\n"
        "assert(v == nil and err == 'exhook.crypto.check_password: the stored hash is not hex: '\n"
        "       .. 'not a hex digit at byte 1', err)\n"
        "v, err = c.check_password('public', 'public', {name = 'bcrypt'})\n"
        "assert(v == nil and err:find('the stored hash is no bcrypt hash', 1, true), err)\n");
}

static void test_check_password_option_errors(void **state)
{
    run(state,
        "local h = string.rep('0', 64)\n"
        "fails_with(\"exhook.crypto.check_password: unknown algorithm 'sha1' (use plain, md5, \"\n"
        "           .. 'sha, sha256, sha512, pbkdf2 or bcrypt)', c.check_password, 'p', h,\n"
        "           {name = 'sha1'})\n"
        "fails_with('option name is required', c.check_password, 'p', h, {})\n"
        "fails_with(\"unknown option 'salt_postion'\", c.check_password, 'p', h,\n"
        "           {name = 'sha256', salt_postion = 'suffix'})\n"
        "fails_with(\"unknown option '1'\", c.check_password, 'p', h, {'sha256'})\n"
        "fails_with(\"salt_position must be prefix, suffix or disable, not 'end'\",\n"
        "           c.check_password, 'p', h, {name = 'sha256', salt_position = 'end'})\n"
        "fails_with('option salt must be a string, not a number', c.check_password, 'p', h,\n"
        "           {name = 'sha256', salt = 5})\n"
        "fails_with('option iterations must be an integer', c.check_password, 'p', h,\n"
        "           {name = 'pbkdf2', mac_fun = 'sha256', iterations = '4096'})\n"
        "fails_with('(table expected, got no value)',\n"
        "           c.check_password, 'p', h)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_digests_of_abc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmac_rfc4231, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pbkdf2_rfc6070, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pbkdf2_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base64_rfc4648, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base64_refuses_what_no_encoder_produces, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_equals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcrypt_check_with_hashes_made_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcrypt_known_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcrypt_refuses_bad_hashes_and_costs_past_the_limit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_password_salted_sha256_as_in_emqx_docs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_password_other_simple_algorithms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_password_pbkdf2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_password_stored_hash_of_the_wrong_shape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_password_option_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
