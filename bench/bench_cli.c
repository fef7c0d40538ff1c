/* bench_cli: exhook-bench's command line. Reads the options of one run into
 * a struct bcli_opts, with the defaults for what is not given, and turns
 * every bad value into one line saying what is wrong, the usage and exit 2. */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: exhook-bench [options]\n"
               "  -t, --target HOST:PORT     server (default 127.0.0.1:9000)\n"
               "  -i, --interface v1|v2|v3   interface generation (default v3); another vN sends\n"
               "                             v3 bodies to emqx.exhook.vN, to see errors counted\n"
               "  -r, --rpc NAME             authenticate | authorize | publish | connected | mix\n"
               "                             (default authenticate)\n"
               "  -c, --connections N        HTTP/2 connections, like pool_size (default 8)\n"
               "  -m, --in-flight N          calls in flight per connection (default 16)\n"
               "  -d, --duration SECONDS     measured duration (default 10); ignored with -n\n"
               "  -n, --calls N              stop after N measured calls\n"
               "  -w, --warmup SECONDS       unmeasured warm-up first (default 1; 0 = none)\n"
               "  -R, --rate N               offered calls/s in total, open loop; 0 = closed\n"
               "                             loop, as fast as the server answers (default 0)\n"
               "  -T, --threads N            client threads, each with its own completion\n"
               "                             queue and share of the connections (default 1)\n"
               "  -S, --split-frames         send each call's headers and message in separate\n"
               "                             TCP writes, the way EMQX does (default: one write)\n"
               "  -q, --quiet                print only the result line\n"
               "  -h, --help\n");
}

static void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "exhook-bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

static long long parse_int(const char *s, const char *name, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        char fmt[128];
        snprintf(fmt, sizeof fmt, "invalid %s: '%%s' (an integer from %lld to %lld)", name, min,
                 max);
        bad_usage(fmt, s);
    }
    return v;
}

static double parse_num(const char *s, const char *name, bool zero_ok)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || (!zero_ok && v == 0) || v > 1e7) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "invalid %s: '%%s' (a number%s)", name,
                 zero_ok ? " >= 0" : " > 0");
        bad_usage(fmt, s);
    }
    return v;
}

void bcli_parse(int argc, char **argv, struct bcli_opts *o)
{
    *o = (struct bcli_opts){.target = "127.0.0.1:9000",
                            .version = 3,
                            .sc = breq_default,
                            .connections = 8,
                            .in_flight = 16,
                            .threads = 1,
                            .duration = 10,
                            .warmup = 1};
    static const struct option longopts[] = {{"target", required_argument, NULL, 't'},
                                             {"interface", required_argument, NULL, 'i'},
                                             {"rpc", required_argument, NULL, 'r'},
                                             {"connections", required_argument, NULL, 'c'},
                                             {"in-flight", required_argument, NULL, 'm'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"calls", required_argument, NULL, 'n'},
                                             {"warmup", required_argument, NULL, 'w'},
                                             {"rate", required_argument, NULL, 'R'},
                                             {"threads", required_argument, NULL, 'T'},
                                             {"split-frames", no_argument, NULL, 'S'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "t:i:r:c:m:d:n:w:R:T:Sqh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!*optarg)
                bad_usage("invalid target: '%s' (HOST:PORT)", optarg);
            o->target = optarg;
            break;
        case 'i': {
            char *end;
            long v = optarg[0] == 'v' ? strtol(optarg + 1, &end, 10) : 0;
            if (v < 1 || v > 999 || *end || !isdigit((unsigned char)optarg[1]))
                bad_usage("invalid interface: '%s' (v1, v2 or v3)", optarg);
            o->version = (int)v;
            break;
        }
        case 'r':
            o->sc = breq_find(optarg);
            if (!o->sc)
                bad_usage("invalid rpc: '%s' (authenticate, authorize, publish, connected "
                          "or mix)",
                          optarg);
            break;
        case 'c':
            o->connections = (int)parse_int(optarg, "connections", 1, 1024);
            break;
        case 'm':
            o->in_flight = (int)parse_int(optarg, "in-flight", 1, 100000);
            break;
        case 'd':
            o->duration = parse_num(optarg, "duration", false);
            break;
        case 'n':
            o->calls = parse_int(optarg, "calls", 1, 1000000000000LL);
            break;
        case 'w':
            o->warmup = parse_num(optarg, "warmup", true);
            break;
        case 'R':
            o->rate = parse_num(optarg, "rate", true);
            break;
        case 'T':
            o->threads = (int)parse_int(optarg, "threads", 1, 1024);
            break;
        case 'S':
            o->split_frames = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2); /* getopt said what was wrong */
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument: '%s'", argv[optind]);
    if (o->threads > o->connections)
        bad_usage("%s", "--threads must not exceed --connections: each thread needs its own");
    if ((long long)o->connections * o->in_flight > 1000000)
        bad_usage("%s", "--connections x --in-flight is over 1000000");
}
