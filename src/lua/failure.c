#include "failure.h"

#include <stdio.h>

#include "log.h"

const struct failure_def failure_defs[FAIL_KIND_COUNT] = {
#define FAILURE_DEF(kind, status, reason, text) [kind] = {status, reason, text},
    FAILURE_KINDS(FAILURE_DEF)
#undef FAILURE_DEF
};

void failure_set(struct failure *f, enum failure_kind kind, const char *module, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    f->kind = kind;
    f->module = module;
    f->traceback = NULL;
}

void failure_log(const struct failure *f, const char *hook)
{
    struct log_fields fields = {f->module, hook, f->traceback};
    const char *text = failure_defs[f->kind].text;
    if (*text)
        log_fields_msg(LOG_ERROR, &fields, "%s (%s)", f->message, text);
    else
        log_fields_msg(LOG_ERROR, &fields, "%s", f->message);
}
