/* exhookd: an EMQX ExHook server that runs every hook in Lua. */

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "script.h"
#include "server.h"
#include "shared_dicts.h"
#include "supervisor.h"

enum exit_code { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: exhookd [-c FILE] [-l HOST:PORT] [-t]\n"
            "An EMQX ExHook server that answers every broker hook with Lua scripts.\n"
            "\n"
            "  -c, --config FILE  configuration file (default: etc/exhook.ini)\n"
            "  -l, --listen HOST:PORT  serve on this address instead of [server] listen\n"
            "  -t, --test         check the configuration and the scripts, print the hooks\n"
            "                     that would be registered, and exit (0 = good, 2 = not)\n"
            "  -h, --help         show this help and exit\n"
            "  -v, --version      show the version and exit\n"
            "\n"
            "Runs in the foreground and logs to stderr: a master process that starts the\n"
            "server in a child and replaces it when a worker gets stuck or it dies.\n"
            "SIGTERM or SIGINT stops it after the calls in flight have been answered;\n"
            "SIGHUP reloads the scripts and the [lua], [topics] and [webhook] settings;\n"
            "SIGUSR1 logs the metrics.\n");
}

static int check_scripts_folder(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "exhookd: scripts folder '%s' ([lua] path): %s\n", path,
                strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "exhookd: scripts folder '%s' ([lua] path) is not a directory\n", path);
        return -1;
    }
    return 0;
}

static int test_config(const struct config *cfg, const char *path)
{
    struct script_engine e;
    char err[1024];
    if (script_engine_open(&e, cfg, 0, err, sizeof err) != 0) {
        fprintf(stderr, "exhookd: %s\n", err);
        return EXIT_CONFIG;
    }
    char hooks[4096];
    script_describe_hooks(&e, hooks, sizeof hooks);
    printf("exhookd: configuration %s and scripts are good\n", path);
    printf("listen: %s\n", cfg->listen);
    printf("modules:");
    for (size_t i = 0; i < e.module_count; i++)
        printf(" %s (%s)", e.modules[i].name, e.modules[i].file);
    printf("\nhooks: %s\n", hooks);
    script_engine_close(&e);
    return EXIT_OK;
}

/* The [shared] dictionaries, made before the fork: every child the master
 * starts, a replacement too, shares them with what they hold. */
static int open_shared(const struct config *cfg)
{
    char err[1024];
    if (shared_dicts_open(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "exhookd: %s\n", err);
        return -1;
    }
    return 0;
}

/* The watchdog found a stuck worker: the master starts a replacement. */
static void report_stuck(void *ctx)
{
    sup_report_stuck(*(int *)ctx);
}

/* The server, in the master's child. */
static int run(struct config *cfg, int report_fd, void *ctx)
{
    const char *path = ctx;
    /* Signals are taken synchronously by this thread; the workers inherit
     * the blocked mask and never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The server takes the configuration over. */
    char listen[256];
    snprintf(listen, sizeof listen, "%s", cfg->listen);
    char err[1024];
    struct server *s = srv_create(cfg, path, err, sizeof err);
    if (!s) {
        log_error("%s", err);
        return EXIT_RUNTIME;
    }
    srv_on_stuck(s, report_stuck, &report_fd);
    if (srv_start(s, err, sizeof err) != 0) {
        log_error("%s", err);
        srv_destroy(s);
        return EXIT_RUNTIME;
    }
    log_info("exhookd %s listening on %s (port %d) with %d workers", EXHOOKD_VERSION, listen,
             srv_port(s), srv_worker_count(s));
    sup_report_ready(report_fd, srv_port(s));
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info("SIGHUP: reloading the configuration and the scripts");
            srv_reload(s);
            continue;
        }
        if (sig == SIGUSR1) {
            srv_log_stats(s);
            continue;
        }
        log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    if (srv_destroy(s) != 0) {
        /* A worker never came back: no clean exit is possible with it. */
        fflush(stderr);
        _exit(EXIT_RUNTIME);
    }
    log_info("stopped");
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *path = "etc/exhook.ini";
    const char *listen_arg = NULL;
    int test_only = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"test", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:thv", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'l':
            listen_arg = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'v':
            printf("exhookd %s\n", EXHOOKD_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "exhookd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }

    struct config cfg;
    char err[1024];
    cfg_defaults(&cfg);
    if (cfg_load(&cfg, path, err, sizeof err) != 0 ||
        (listen_arg && cfg_override_listen(&cfg, listen_arg, err, sizeof err) != 0)) {
        fprintf(stderr, "exhookd: %s\n", err);
        cfg_free(&cfg);
        return EXIT_CONFIG;
    }
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    int rc;
    if (check_scripts_folder(cfg.lua_path) != 0)
        rc = EXIT_CONFIG;
    else if (open_shared(&cfg) != 0)
        rc = EXIT_RUNTIME;
    else
        rc = test_only ? test_config(&cfg, path) : sup_run(&cfg, run, (void *)path);
    cfg_free(&cfg);
    return rc;
}
