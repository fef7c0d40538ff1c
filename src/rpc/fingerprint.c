#include "fingerprint.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Deepest nesting of folders followed under [lua] path. */
#define MAX_DEPTH 32

struct walk {
    EVP_MD_CTX *md;      /* the fingerprint */
    EVP_MD_CTX *file_md; /* one file's contents */
    struct fingerprint *fp;
    char *err;
    size_t errlen;
    char path[4096]; /* the folder or file at hand */
    size_t root_len; /* path + root_len + 1: its name below [lua] path */
    /* The folders being walked, outermost first: a symbolic link to one of
     * them would lead round in a circle. */
    dev_t dev[MAX_DEPTH];
    ino_t ino[MAX_DEPTH];
};

/* One field: a tag, the length, the bytes; two different lists of fields
 * never feed the same bytes. */
static void feed(EVP_MD_CTX *md, char tag, const void *data, size_t len)
{
    uint64_t n = len;
    EVP_DigestUpdate(md, &tag, 1);
    EVP_DigestUpdate(md, &n, sizeof n);
    EVP_DigestUpdate(md, data, len);
}

/* NULL and "" differ: the terminating NUL is fed too. */
static void feed_text(EVP_MD_CTX *md, char tag, const char *s)
{
    feed(md, tag, s ? s : "", s ? strlen(s) + 1 : 0);
}

static void feed_number(EVP_MD_CTX *md, char tag, uint64_t v)
{
    feed(md, tag, &v, sizeof v);
}

/* [webhook]: its rules decide hooks OnProviderLoaded lists, and the rest
 * of the section is taken up by a reload that loads, so every key counts. */
static void feed_webhook(EVP_MD_CTX *md, const struct cfg_webhook *wc)
{
    feed_text(md, 'U', wc->url);
    for (size_t i = 0; i < wc->n_headers; i++) {
        feed_text(md, 'H', wc->headers[i].name);
        feed_text(md, 'V', wc->headers[i].value);
    }
    feed_number(md, 'E', wc->encoding);
    feed_number(md, 'P', wc->pool_size);
    feed_number(md, 'T', wc->request_timeout_ms);
    feed_text(md, 'A', wc->ssl.cacertfile);
    feed_text(md, 'C', wc->ssl.certfile);
    feed_text(md, 'K', wc->ssl.keyfile);
    feed_number(md, 'Y', wc->ssl.verify);
    for (size_t i = 0; i < wc->n_rules; i++) {
        feed_number(md, 'R', wc->rules[i].hook);
        feed_text(md, 'N', wc->rules[i].name);
        feed_text(md, 'a', wc->rules[i].action);
        feed_text(md, 'o', wc->rules[i].topic);
    }
    feed_number(md, 'Q', wc->queue_events);
    feed_number(md, 'B', wc->queue_bytes);
    feed_number(md, 'M', wc->max_retries);
    feed_number(md, 'I', wc->retry_interval_ms);
    feed_number(md, 'J', wc->max_retry_interval_ms);
}

/* The settings a state is built with, and those that decide the hooks
 * OnProviderLoaded lists. A section that does either (a [webhook] rule that
 * registers a hook, say) feeds its keys here, each under a tag of its own. */
static void feed_settings(EVP_MD_CTX *md, const struct config *cfg)
{
    /* [lua] */
    feed_text(md, 'p', cfg->lua_path);
    feed_number(md, 'n', cfg->init_module_count);
    for (size_t i = 0; i < cfg->init_module_count; i++)
        feed_text(md, 'm', cfg->init_modules[i]);
    feed_number(md, 't', cfg->call_timeout_ms);
    feed_number(md, 'l', cfg->memory_limit);
    feed_number(md, 's', cfg->sandbox);
    feed_number(md, 'x', cfg->max_timers);
    /* [topics] */
    for (int h = 0; h < HOOK_COUNT; h++) {
        feed_number(md, 'h', cfg->topics[h].count);
        for (size_t i = 0; i < cfg->topics[h].count; i++)
            feed_text(md, 'f', cfg->topics[h].items[i]);
    }
    feed_webhook(md, &cfg->webhook);
}

static int fail(struct walk *w, const char *why)
{
    snprintf(w->err, w->errlen, "%s: %s", w->path, why);
    return -1;
}

/* The file at w->path: its name below [lua] path, and the digest of its
 * contents. */
static int feed_file(struct walk *w)
{
    FILE *f = fopen(w->path, "rb");
    if (!f)
        return fail(w, strerror(errno));
    EVP_DigestInit_ex(w->file_md, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(w->file_md, buf, n);
        w->fp->bytes += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return fail(w, "read error");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(w->file_md, digest, &len);
    feed_text(w->md, 'F', w->path + w->root_len + 1);
    feed(w->md, 'C', digest, len);
    w->fp->files++;
    return 0;
}

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Byte order, not the locale's: the same tree always feeds the same way. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool is_script(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

static int walk_folder(struct walk *w, int depth);

/* Entry `name` of the folder at w->path (`len` bytes long). */
static int walk_entry(struct walk *w, size_t len, const char *name, int depth)
{
    if (len + 1 + strlen(name) >= sizeof w->path)
        return fail(w, "path too long");
    w->path[len] = '/';
    strcpy(w->path + len + 1, name);
    struct stat st;
    int rc = 0;
    if (stat(w->path, &st) != 0) {
        /* A dangling link is no file to load, as for require. */
        if (errno != ENOENT)
            rc = fail(w, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        bool circle = false;
        for (int i = 0; i < depth; i++)
            circle |= w->dev[i] == st.st_dev && w->ino[i] == st.st_ino;
        if (circle) {
            /* A link back up: everything below it is walked already. */
        } else if (depth == MAX_DEPTH) {
            rc = fail(w, "folders nested too deep (32 levels at most)");
        } else {
            w->dev[depth] = st.st_dev;
            w->ino[depth] = st.st_ino;
            rc = walk_folder(w, depth + 1);
        }
    } else if (S_ISREG(st.st_mode) && is_script(name)) {
        rc = feed_file(w);
    }
    w->path[len] = '\0';
    return rc;
}

/* Every visible entry of the folder at w->path, in byte order. */
static int walk_folder(struct walk *w, int depth)
{
    struct dirent **names;
    int n = scandir(w->path, &names, visible, by_name);
    if (n < 0)
        return fail(w, strerror(errno));
    size_t len = strlen(w->path);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = walk_entry(w, len, names[i]->d_name, depth);
        free(names[i]);
    }
    free(names);
    return rc;
}

int fingerprint_compute(const struct config *cfg, struct fingerprint *fp, char *err, size_t errlen)
{
    struct walk w = {.fp = fp, .err = err, .errlen = errlen};
    memset(fp, 0, sizeof *fp);
    snprintf(w.path, sizeof w.path, "%s", cfg->lua_path);
    w.root_len = strlen(w.path);
    struct stat st;
    w.md = EVP_MD_CTX_new();
    w.file_md = EVP_MD_CTX_new();
    int rc = -1;
    if (!w.md || !w.file_md)
        snprintf(err, errlen, "out of memory");
    else if (stat(w.path, &st) != 0)
        fail(&w, strerror(errno));
    else {
        w.dev[0] = st.st_dev;
        w.ino[0] = st.st_ino;
        EVP_DigestInit_ex(w.md, EVP_sha256(), NULL);
        feed_settings(w.md, cfg);
        rc = walk_folder(&w, 1);
        unsigned len = 0;
        EVP_DigestFinal_ex(w.md, fp->digest, &len);
    }
    EVP_MD_CTX_free(w.md);
    EVP_MD_CTX_free(w.file_md);
    return rc;
}

bool fingerprint_equal(const struct fingerprint *a, const struct fingerprint *b)
{
    return memcmp(a->digest, b->digest, sizeof a->digest) == 0;
}
