/* bench_cli: exhook-bench's command line. Reads the options of one run into
 * a struct bcli_opts, with the defaults for what is not given, expands the
 * request values given as a pattern or a file into lists, and turns every
 * bad value into one line saying what is wrong, the usage and exit 2. */

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
               "                             | loaded (OnProviderLoaded; with --check none)\n"
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
               "      --deadline MS          each call's deadline, sent as grpc-timeout like\n"
               "                             the broker's request_timeout (default 10000)\n"
               "checking the replies (default: as scripts/example.lua answers):\n"
               "      --check example|none   none: count the replies by status and verdict\n"
               "      --expect HOOK=VERDICT  count, and fail a call whose HOOK (authenticate,\n"
               "                             authorize, publish) answers otherwise; VERDICT:\n"
               "                             allow, deny, ignore, continue_true, continue_false,\n"
               "                             stop_true, stop_false, modified, dropped, unchanged\n"
               "      --expect-status NAME   count, and fail a call without this status (OK)\n"
               "      --max-errors N         failed calls tolerated before exit 1 (default 0)\n"
               "request contents (VALUES: a pattern with %%d for the id, or @FILE, one a line):\n"
               "      --username VALUES      (not with --check example)\n"
               "      --topic VALUES         (not with --check example)\n"
               "      --password VALUES\n"
               "      --clientid VALUES\n"
               "      --ids FIRST-LAST       the ids of the patterns (default 0-63)\n"
               "      --payload-size BYTES   published payload (default 200)\n"
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

/* The expectations --expect takes: a word, the verdicts it accepts, and the
 * kind of hook whose replies can have them. */
#define V(x) (1u << BREQ_V_##x)
static const struct {
    const char *word;
    unsigned verdicts;
    enum hook_kind kind;
} expect_words[] = {
    {"allow", V(CONTINUE_TRUE) | V(STOP_TRUE), HOOK_KIND_VERDICT},
    {"deny", V(CONTINUE_FALSE) | V(STOP_FALSE), HOOK_KIND_VERDICT},
    {"ignore", V(IGNORE), HOOK_KIND_VERDICT},
    {"continue_true", V(CONTINUE_TRUE), HOOK_KIND_VERDICT},
    {"continue_false", V(CONTINUE_FALSE), HOOK_KIND_VERDICT},
    {"stop_true", V(STOP_TRUE), HOOK_KIND_VERDICT},
    {"stop_false", V(STOP_FALSE), HOOK_KIND_VERDICT},
    {"modified", V(MODIFIED), HOOK_KIND_PUBLISH},
    {"dropped", V(DROPPED), HOOK_KIND_PUBLISH},
    {"unchanged", V(UNCHANGED), HOOK_KIND_PUBLISH},
};
static const struct {
    const char *name;
    enum hook_id hook;
} expect_hooks[] = {
    {"authenticate", HOOK_CLIENT_AUTHENTICATE},
    {"authorize", HOOK_CLIENT_AUTHORIZE},
    {"publish", HOOK_MESSAGE_PUBLISH},
};

/* --expect HOOK=VERDICT; several for one hook accept any of theirs. */
static void parse_expect(const char *arg, struct breq_expectation *e)
{
    const char *eq = strchr(arg, '=');
    size_t hl = eq ? (size_t)(eq - arg) : 0;
    int h = -1;
    for (size_t i = 0; eq && i < sizeof expect_hooks / sizeof expect_hooks[0]; i++)
        if (strlen(expect_hooks[i].name) == hl && !strncmp(arg, expect_hooks[i].name, hl))
            h = (int)expect_hooks[i].hook;
    if (h < 0)
        bad_usage("invalid expect: '%s' (HOOK=VERDICT, HOOK authenticate, authorize or publish)",
                  arg);
    for (size_t i = 0; i < sizeof expect_words / sizeof expect_words[0]; i++)
        if (!strcmp(eq + 1, expect_words[i].word)) {
            if (expect_words[i].kind != hook_defs[h].kind)
                bad_usage("invalid expect: '%s' (a verdict that hook never gives: allow, deny, "
                          "ignore, continue_* and stop_* are for authenticate and authorize; "
                          "modified, dropped and unchanged for publish)",
                          arg);
            e->verdicts[h] |= expect_words[i].verdicts;
            return;
        }
    bad_usage("invalid expect: '%s' (unknown verdict; see the list below)", arg);
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "exhook-bench: out of memory\n");
        exit(1);
    }
    return p;
}

/* The values `spec` gives: the lines of a file (@FILE), or the pattern
 * with every id of [first, last] in place of its %d. */
static void expand_values(const char *name, const char *spec, long long first, long long last,
                          struct breq_list *l)
{
    char what[160];
    if (spec[0] == '@') {
        FILE *f = fopen(spec + 1, "r");
        if (!f) {
            snprintf(what, sizeof what, "cannot read %s file '%%s': %s", name, strerror(errno));
            bad_usage(what, spec + 1);
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (len == 0)
                continue; /* a blank line, e.g. the last one */
            if (l->n == BREQ_MAX_VALUES) {
                snprintf(what, sizeof what, "%s file '%%s' has over %d values", name,
                         BREQ_MAX_VALUES);
                bad_usage(what, spec + 1);
            }
            l->v = must(realloc(l->v, (l->n + 1) * sizeof *l->v));
            l->v[l->n++] = must(strdup(line));
        }
        free(line);
        fclose(f);
        if (l->n == 0) {
            snprintf(what, sizeof what, "%s file '%%s' has no values", name);
            bad_usage(what, spec + 1);
        }
        return;
    }
    /* Only %d and %% may follow a '%': the pattern is no format string. */
    int ds = 0;
    for (const char *p = spec; *p; p++)
        if (*p == '%') {
            p++;
            if (*p == 'd')
                ds++;
            else if (*p != '%')
                ds = 2;
            if (!*p)
                break;
        }
    if (ds > 1) {
        snprintf(what, sizeof what,
                 "invalid %s pattern: '%%s' (one %%%%d for the id, %%%%%%%% for a %%%%)", name);
        bad_usage(what, spec);
    }
    if (ds == 0)
        first = last = 0; /* one value */
    l->n = (size_t)(last - first + 1);
    l->v = must(calloc(l->n, sizeof *l->v));
    for (size_t i = 0; i < l->n; i++) {
        char id[24], buf[1024];
        size_t n = 0;
        snprintf(id, sizeof id, "%lld", first + (long long)i);
        for (const char *p = spec; *p && n < sizeof buf - sizeof id; p++) {
            if (*p != '%') {
                buf[n++] = *p;
            } else if (*++p == 'd') {
                memcpy(buf + n, id, strlen(id));
                n += strlen(id);
            } else {
                buf[n++] = '%';
            }
        }
        buf[n] = 0;
        l->v[i] = must(strdup(buf));
    }
}

/* --ids FIRST-LAST */
static void parse_ids(const char *s, long long *first, long long *last)
{
    char *end, *end2;
    errno = 0;
    long long a = strtoll(s, &end, 10), b = *end == '-' ? strtoll(end + 1, &end2, 10) : -1;
    if (errno || end == s || *end != '-' || !isdigit((unsigned char)end[1]) || *end2 || a < 0 ||
        b < a || b > 2000000000 || b - a >= BREQ_MAX_VALUES) {
        char fmt[128];
        snprintf(fmt, sizeof fmt, "invalid ids: '%%s' (FIRST-LAST, 0 <= FIRST <= LAST, at most %d)",
                 BREQ_MAX_VALUES);
        bad_usage(fmt, s);
    }
    *first = a;
    *last = b;
}

enum {
    OPT_CHECK = 256,
    OPT_EXPECT,
    OPT_EXPECT_STATUS,
    OPT_MAX_ERRORS,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_CLIENTID,
    OPT_TOPIC,
    OPT_IDS,
    OPT_PAYLOAD_SIZE,
    OPT_DEADLINE,
};

void bcli_parse(int argc, char **argv, struct bcli_opts *o)
{
    *o = (struct bcli_opts){.target = "127.0.0.1:9000",
                            .version = 3,
                            .sc = breq_default,
                            .connections = 8,
                            .in_flight = 16,
                            .threads = 1,
                            .duration = 10,
                            .warmup = 1,
                            .deadline_ms = 10000,
                            .expect.status = GRPC_STATUS_OK,
                            .content.payload_len = BREQ_PAYLOAD_LEN};
    /* The request values are expanded once every option is read: --ids may
     * come after the patterns. */
    const char *check = NULL, *user = NULL, *password = NULL, *clientid = NULL, *topic = NULL;
    bool expecting = false;
    long long first = 0, last = BREQ_NIDS - 1;
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'},
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
        {"check", required_argument, NULL, OPT_CHECK},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"expect-status", required_argument, NULL, OPT_EXPECT_STATUS},
        {"max-errors", required_argument, NULL, OPT_MAX_ERRORS},
        {"username", required_argument, NULL, OPT_USERNAME},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"clientid", required_argument, NULL, OPT_CLIENTID},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"ids", required_argument, NULL, OPT_IDS},
        {"payload-size", required_argument, NULL, OPT_PAYLOAD_SIZE},
        {"deadline", required_argument, NULL, OPT_DEADLINE},
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
        case OPT_CHECK:
            if (strcmp(optarg, "example") && strcmp(optarg, "none"))
                bad_usage("invalid check: '%s' (example or none)", optarg);
            check = optarg;
            break;
        case OPT_EXPECT:
            parse_expect(optarg, &o->expect);
            expecting = true;
            break;
        case OPT_EXPECT_STATUS: {
            int st = -1;
            for (int i = 0; i < BREQ_TRANSPORT; i++)
                if (!strcmp(optarg, breq_status_names[i]))
                    st = i;
            if (st < 0)
                bad_usage("invalid expect-status: '%s' (a gRPC status name: OK, UNKNOWN, "
                          "DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...)",
                          optarg);
            o->expect.status = st;
            expecting = true;
            break;
        }
        case OPT_MAX_ERRORS:
            o->max_errors = parse_int(optarg, "max-errors", 0, 1000000000000LL);
            break;
        case OPT_USERNAME:
            user = optarg;
            break;
        case OPT_PASSWORD:
            password = optarg;
            break;
        case OPT_CLIENTID:
            clientid = optarg;
            break;
        case OPT_TOPIC:
            topic = optarg;
            break;
        case OPT_IDS:
            parse_ids(optarg, &first, &last);
            break;
        case OPT_PAYLOAD_SIZE:
            o->content.payload_len = (size_t)parse_int(optarg, "payload-size", 0, 1048576);
            break;
        case OPT_DEADLINE:
            o->deadline_ms = parse_int(optarg, "deadline", 1, 3600000);
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

    bool example = check ? !strcmp(check, "example") : !expecting;
    if (example && expecting)
        bad_usage("%s", "--expect and --expect-status count the replies: not with --check example");
    /* example.lua's answers depend on the scenario's usernames and topics. */
    if (example && (user || topic))
        bad_usage("%s", "--username and --topic need --check none or --expect: "
                        "the example's answers depend on the scenario's own");
    o->check = example ? BCLI_CHECK_EXAMPLE : BCLI_CHECK_COUNT;
    struct breq_content *ct = &o->content;
    if (user)
        expand_values("username", user, first, last, &ct->user);
    if (password)
        expand_values("password", password, first, last, &ct->password);
    if (clientid)
        expand_values("clientid", clientid, first, last, &ct->clientid);
    if (topic)
        expand_values("topic", topic, first, last, &ct->topic);
}

void bcli_free(struct bcli_opts *o)
{
    struct breq_list *lists[] = {&o->content.user, &o->content.password, &o->content.clientid,
                                 &o->content.topic};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        for (size_t k = 0; k < lists[i]->n; k++)
            free(lists[i]->v[k]);
        free(lists[i]->v);
        lists[i]->v = NULL;
        lists[i]->n = 0;
    }
}
