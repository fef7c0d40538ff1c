/* The per-call scratch memory that decoded requests live in. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "arena.h"
#include "exhook.pb-c.h"

static void test_allocations_are_aligned_and_distinct(void **state)
{
    (void)state;
    struct arena a = {0};
    char *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = arena_alloc(&a, (size_t)i + 1);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], i, (size_t)i + 1); /* ASan: every byte is ours */
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal((unsigned char)p[i][i], i);
    arena_free(&a);
}

static void test_reset_grows_the_block_to_fit_the_next_call(void **state)
{
    (void)state;
    struct arena a = {0};
    /* No block yet: the first call spills to malloc. */
    assert_non_null(arena_alloc(&a, 10000));
    assert_int_equal(a.cap, 0);
    assert_int_equal(a.spilled, 10000);
    arena_reset(&a);
    assert_null(a.spill);
    assert_true(a.cap >= 10000);
    /* The same call now fits in the block. */
    char *p = arena_alloc(&a, 10000);
    assert_true(p >= a.block && p < a.block + a.cap);
    assert_int_equal(a.spilled, 0);
    arena_reset(&a);
    assert_int_equal(a.used, 0);
    arena_free(&a);
    assert_null(a.block);
}

static void test_block_kept_between_calls_is_capped(void **state)
{
    (void)state;
    struct arena a = {0};
    assert_non_null(arena_alloc(&a, 8 * ARENA_MAX_BLOCK));
    arena_reset(&a);
    assert_true(a.cap <= ARENA_MAX_BLOCK);
    arena_free(&a);
}

static void test_protobuf_unpacks_into_the_arena_and_reset_frees_it(void **state)
{
    (void)state;
    Emqx__Exhook__V3__ClientInfo ci = EMQX__EXHOOK__V3__CLIENT_INFO__INIT;
    ci.clientid = "c1";
    ci.username = "u";
    Emqx__Exhook__V3__ClientAuthenticateRequest r =
        EMQX__EXHOOK__V3__CLIENT_AUTHENTICATE_REQUEST__INIT;
    r.clientinfo = &ci;
    uint8_t buf[128];
    size_t len = protobuf_c_message_pack(&r.base, buf);
    struct arena a = {0};
    ProtobufCAllocator alloc = arena_protobuf_allocator(&a);
    for (int i = 0; i < 3; i++) {
        Emqx__Exhook__V3__ClientAuthenticateRequest *got =
            emqx__exhook__v3__client_authenticate_request__unpack(&alloc, len, buf);
        assert_non_null(got);
        assert_string_equal(got->clientinfo->clientid, "c1");
        assert_string_equal(got->clientinfo->username, "u");
        /* from the second call on, everything fits in the block */
        if (i > 0)
            assert_int_equal(a.spilled, 0);
        arena_reset(&a);
    }
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_are_aligned_and_distinct),
        cmocka_unit_test(test_reset_grows_the_block_to_fit_the_next_call),
        cmocka_unit_test(test_block_kept_between_calls_is_capped),
        cmocka_unit_test(test_protobuf_unpacks_into_the_arena_and_reset_frees_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
