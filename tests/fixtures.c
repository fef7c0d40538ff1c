/* nftw and mkdtemp */
#define _XOPEN_SOURCE 700

#include "fixtures.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ctype.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

void fx_init(struct fixture *fx)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/exhookd-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    cfg_defaults(&fx->cfg);
}

void fx_write(struct fixture *fx, const char *file, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fx->dir, file);
    for (char *p = path + strlen(fx->dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

void fx_configure(struct fixture *fx, const char *modules, const char *extra)
{
    char ini[4096], err[512];
    snprintf(ini, sizeof ini, "[lua]\npath = %s\ninit_module = %s\n%s", fx->dir, modules,
             extra ? extra : "");
    cfg_free(&fx->cfg);
    cfg_defaults(&fx->cfg);
    if (cfg_load_string(&fx->cfg, ini, "test.ini", err, sizeof err) != 0)
        fail_msg("fixture config does not load: %s", err);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fx_free(struct fixture *fx)
{
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    cfg_free(&fx->cfg);
}

struct efx *efx_open(const char *modules, const char *extra, ...)
{
    struct efx *t = calloc(1, sizeof *t);
    fx_init(&t->fx);
    va_list ap;
    va_start(ap, extra);
    for (const char *file; (file = va_arg(ap, const char *));)
        fx_write(&t->fx, file, va_arg(ap, const char *));
    va_end(ap);
    fx_configure(&t->fx, modules, extra);
    char err[512];
    if (script_engine_open(&t->e, &t->fx.cfg, 1, err, sizeof err) != 0)
        fail_msg("engine does not open: %s", err);
    if (!(t->net = net_open(t->fx.cfg.http_max_connections, err, sizeof err)))
        fail_msg("no event loop: %s", err);
    script_engine_attach(&t->e, t->net, &t->ready);
    return t;
}

void efx_close(struct efx *t)
{
    script_engine_close(&t->e);
    net_close(t->net);
    dispatch_reply_free(&t->out);
    fx_free(&t->fx);
    free(t);
}

void efx_call(struct efx *t, enum hook_id hook, const ProtobufCMessage *req, int64_t deadline_ns)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(req, buf);
    dispatch_call(&t->e, hook, 3, buf, len, deadline_ns, &t->out);
    free(buf);
}

void capture_begin(struct capture *c, const char *dir)
{
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", dir);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

int capture_wait(struct capture *c, const char *text, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        FILE *f = fopen(c->path, "r");
        assert_non_null(f);
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (strstr(buf, text))
            return 1;
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    return 0;
}

int is_log_timestamp(const char *line)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)line[i]) : line[i] != shape[i])
            return 0;
    }
    return 1;
}

struct server *fx_start_server(struct config *cfg, const char *config_path, char *target,
                               size_t len)
{
    char err[512];
    free(cfg->listen);
    cfg->listen = strdup("127.0.0.1:0");
    struct server *srv = srv_create(cfg, config_path, err, sizeof err);
    if (!srv)
        fail_msg("srv_create: %s", err);
    if (srv_start(srv, err, sizeof err) != 0)
        fail_msg("srv_start: %s", err);
    snprintf(target, len, "127.0.0.1:%d", srv_port(srv));
    return srv;
}
