/* The local store of shared dictionaries (src/shared/shared_dict.c), in C:
 * processes that share a zone, a lock whose holder died, the index kept
 * consistent through random operations, the bytes an entry takes. The
 * method semantics are checked through Lua in test_lua_shared.c. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "shared_dict.h"
#include "shared_zone.h"

static struct shared_dict *make(size_t size)
{
    char err[256];
    struct shared_dict *d = shared_dict_create("t", size, err, sizeof err);
    if (!d)
        fail_msg("shared_dict_create: %s", err);
    return d;
}

static struct shared_op key_op(enum shared_opcode code, const char *key)
{
    return (struct shared_op){.code = code, .key = key, .key_len = strlen(key)};
}

static enum shared_status set_str_ttl(struct shared_dict *d, const char *key, const char *value,
                                      double ttl)
{
    struct shared_op op = key_op(SHARED_SET, key);
    op.ttl = ttl;
    op.value = (struct shared_value){.type = SHARED_STRING, .str = value, .len = strlen(value)};
    struct shared_result r;
    shared_result_init(&r);
    shared_dict_run(d, &op, &r);
    shared_result_free(&r);
    return r.status;
}

static enum shared_status set_str(struct shared_dict *d, const char *key, const char *value)
{
    return set_str_ttl(d, key, value, 0);
}

/* The string value of `key` into `buf` ("" when absent). */
static void get_str(struct shared_dict *d, const char *key, char *buf, size_t len)
{
    struct shared_op op = key_op(SHARED_GET, key);
    struct shared_result r;
    shared_result_init(&r);
    shared_dict_run(d, &op, &r);
    assert_int_equal(r.status, SHARED_OK);
    buf[0] = '\0';
    if (r.value.type == SHARED_STRING) {
        assert_true(r.value.len < len);
        memcpy(buf, r.value.str, r.value.len);
        buf[r.value.len] = '\0';
    }
    shared_result_free(&r);
}

static long long incr(struct shared_dict *d, const char *key, long long delta)
{
    struct shared_op op = key_op(SHARED_INCR, key);
    op.value = (struct shared_value){.type = SHARED_INTEGER, .integer = delta};
    op.has_init = true;
    op.init = (struct shared_value){.type = SHARED_INTEGER, .integer = 0};
    struct shared_result r;
    shared_result_init(&r);
    shared_dict_run(d, &op, &r);
    assert_int_equal(r.status, SHARED_OK);
    return r.value.integer;
}

static size_t count_of(struct shared_dict *d, enum shared_opcode code)
{
    struct shared_op op = {.code = code};
    struct shared_result r;
    shared_result_init(&r);
    shared_dict_run(d, &op, &r);
    return r.count;
}

static void wait_children(int n)
{
    for (int i = 0; i < n; i++) {
        int status;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

static void test_processes_forked_after_creation_share_it(void **state)
{
    (void)state;
    struct shared_dict *d = make(1024 * 1024);
    set_str(d, "before", "fork");
    enum { PROCS = 4, EACH = 20000 };
    for (int p = 0; p < PROCS; p++) {
        if (fork() == 0) {
            char key[32];
            for (int i = 0; i < EACH; i++) {
                incr(d, "hot", 1);
                snprintf(key, sizeof key, "p%d", p);
                incr(d, key, 2);
            }
            set_str(d, key, "done");
            _exit(0);
        }
    }
    wait_children(PROCS);
    assert_int_equal(incr(d, "hot", 0), PROCS * EACH);
    char buf[64];
    get_str(d, "before", buf, sizeof buf);
    assert_string_equal(buf, "fork");
    get_str(d, "p3", buf, sizeof buf);
    assert_string_equal(buf, "done");
    shared_dict_destroy(d);
}

/* A child takes the lock as an operation would and dies holding it. */
static void die_holding_lock(struct shared_dict *d, int mid_change)
{
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&d->lock);
        if (mid_change)
            d->dirty = 1;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_holder_dead_mid_change_flushes_and_logs(void **state)
{
    (void)state;
    struct fixture fx;
    fx_init(&fx);
    struct shared_dict *d = make(SHARED_DICT_MIN_SIZE);
    size_t free_before = count_of(d, SHARED_FREE_SPACE);
    set_str(d, "k", "v");
    die_holding_lock(d, 1);
    struct capture cap;
    capture_begin(&cap, fx.dir);
    char buf[16];
    get_str(d, "k", buf, sizeof buf);
    char *log = capture_end(&cap);
    assert_string_equal(buf, "");
    assert_non_null(strstr(log, "shared dictionary 't': a process died while changing it; its "
                                "contents were flushed"));
    free(log);
    assert_int_equal(count_of(d, SHARED_FREE_SPACE), free_before);
    /* and it works on, the lock made consistent */
    assert_int_equal(set_str(d, "k", "again"), SHARED_OK);
    get_str(d, "k", buf, sizeof buf);
    assert_string_equal(buf, "again");
    shared_dict_destroy(d);
    fx_free(&fx);
}

static void test_holder_dead_while_reading_keeps_contents(void **state)
{
    (void)state;
    struct fixture fx;
    fx_init(&fx);
    struct shared_dict *d = make(SHARED_DICT_MIN_SIZE);
    set_str(d, "k", "v");
    die_holding_lock(d, 0);
    struct capture cap;
    capture_begin(&cap, fx.dir);
    char buf[16];
    get_str(d, "k", buf, sizeof buf);
    char *log = capture_end(&cap);
    assert_string_equal(buf, "v");
    assert_non_null(strstr(log, "died holding its lock while reading; contents kept"));
    free(log);
    shared_dict_destroy(d);
    fx_free(&fx);
}

/* Random writes of random sizes in a small zone, a quarter of them with a
 * ttl of a few ms, deletes and partial flush_expired, against a model of
 * what each key last held: a key reads back as that value or, evicted or
 * expired, as nothing; emptied, the zone has all its blocks back. */
static void test_random_operations_keep_the_index_consistent(void **state)
{
    (void)state;
    enum { KEYS = 300, ROUNDS = 200000 };
    static char model[KEYS][400];
    struct shared_dict *d = make(SHARED_DICT_MIN_SIZE);
    size_t free_empty = count_of(d, SHARED_FREE_SPACE);
    srand(12345);
    char key[16], value[400], buf[400];
    for (int i = 0; i < ROUNDS; i++) {
        int k = rand() % KEYS;
        snprintf(key, sizeof key, "key%d", k);
        int action = rand() % 10;
        if (action < 5) {
            size_t len = (size_t)(rand() % 390);
            for (size_t j = 0; j < len; j++)
                value[j] = (char)('a' + (i + j) % 26);
            value[len] = '\0';
            double ttl = rand() % 4 == 0 ? 0.001 * (1 + rand() % 5) : 0;
            assert_int_equal(set_str_ttl(d, key, value, ttl), SHARED_OK);
            memcpy(model[k], value, len + 1);
        } else if (action == 5) {
            struct shared_op op = {.code = SHARED_FLUSH_EXPIRED, .max = 3};
            struct shared_result r;
            shared_result_init(&r);
            shared_dict_run(d, &op, &r);
            assert_true(r.count <= 3);
        } else if (action == 6) {
            struct shared_op op = key_op(SHARED_DELETE, key);
            struct shared_result r;
            shared_result_init(&r);
            shared_dict_run(d, &op, &r);
            model[k][0] = '\0';
        } else {
            get_str(d, key, buf, sizeof buf);
            if (buf[0] != '\0')
                assert_string_equal(buf, model[k]);
        }
    }
    struct shared_op flush = {.code = SHARED_FLUSH_ALL};
    struct shared_result r;
    shared_result_init(&r);
    shared_dict_run(d, &flush, &r);
    count_of(d, SHARED_FLUSH_EXPIRED);
    assert_int_equal(count_of(d, SHARED_FREE_SPACE), free_empty);
    shared_dict_destroy(d);
}

/* The bytes per entry that the README's sizing advice gives. */
static void test_entry_sizes(void **state)
{
    (void)state;
    assert_int_equal(shared_dict_entry_bytes(20, 0), 64); /* a counter */
    assert_int_equal(shared_dict_entry_bytes(1, 19), 64); /* 40 + 20 bytes fit in one block */
    assert_int_equal(shared_dict_entry_bytes(1, 20), 128);
    assert_int_equal(shared_dict_entry_bytes(12, 64), 128); /* a user and a password hash */
    /* A 1MB zone holds this many 20-byte-keyed counters. */
    struct shared_dict *d = make(1024 * 1024);
    size_t n = 0;
    char key[32];
    for (;; n++) {
        snprintf(key, sizeof key, "client:%013zu", n);
        struct shared_op op = key_op(SHARED_SAFE_ADD, key);
        op.value = (struct shared_value){.type = SHARED_INTEGER, .integer = 1};
        struct shared_result r;
        shared_result_init(&r);
        shared_dict_run(d, &op, &r);
        if (r.status != SHARED_OK) {
            assert_int_equal(r.status, SHARED_NO_MEMORY);
            break;
        }
    }
    print_message("1MB holds %zu counters of 20-byte keys\n", n);
    assert_true(n > 15000 && n <= 16384);
    shared_dict_destroy(d);
}

static void test_sizes_out_of_range_are_refused(void **state)
{
    (void)state;
    char err[256];
    assert_null(shared_dict_create("small", SHARED_DICT_MIN_SIZE - 1, err, sizeof err));
    assert_string_equal(err, "shared dictionary 'small': size 65535 out of range (64KB..64GB)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes_forked_after_creation_share_it),
        cmocka_unit_test(test_holder_dead_mid_change_flushes_and_logs),
        cmocka_unit_test(test_holder_dead_while_reading_keeps_contents),
        cmocka_unit_test(test_random_operations_keep_the_index_consistent),
        cmocka_unit_test(test_entry_sizes),
        cmocka_unit_test(test_sizes_out_of_range_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
