#include "pattern.h"

#include <ctype.h>
#include <string.h>

/* The letters of Lua's %-classes and the byte tests they stand for; the
 * upper-case letter is the complement. */
static const struct {
    char letter;
    int (*test)(int);
} classes[] = {
    {'a', isalpha}, {'c', iscntrl}, {'d', isdigit}, {'g', isgraph}, {'l', islower},
    {'p', ispunct}, {'s', isspace}, {'u', isupper}, {'w', isalnum}, {'x', isxdigit},
};

/* Byte `c` against "%<cl>": a class, or an escaped literal. */
static bool percent_matches(unsigned char c, unsigned char cl)
{
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (classes[i].letter == tolower(cl)) {
            bool in = classes[i].test(c) != 0;
            return isupper(cl) ? !in : in;
        }
    }
    return c == cl;
}

/* Byte `c` against the set between '[' and `close` (its ']'). */
static bool set_matches(unsigned char c, const char *p, const char *close)
{
    bool negate = *p == '^', found = false;
    if (negate)
        p++;
    while (p < close && !found) {
        if (*p == '%' && p + 1 < close) {
            found = percent_matches(c, (unsigned char)p[1]);
            p += 2;
        } else if (p + 2 < close && p[1] == '-') {
            found = (unsigned char)p[0] <= c && c <= (unsigned char)p[2];
            p += 3;
        } else {
            found = c == (unsigned char)*p;
            p++;
        }
    }
    return found != negate;
}

/* End of the single character class at `p` ('.', %x, [set] or a byte), or
 * NULL if it runs past `end`. A ']' right after '[' or "[^" is a member. */
static const char *class_end(const char *p, const char *end)
{
    if (*p == '%')
        return p + 2 <= end ? p + 2 : NULL;
    if (*p != '[')
        return p + 1;
    const char *q = p + 1;
    if (q < end && *q == '^')
        q++;
    if (q < end && *q == ']')
        q++;
    while (q < end && *q != ']')
        q += *q == '%' ? 2 : 1;
    return q < end ? q + 1 : NULL;
}

static bool class_matches(unsigned char c, const char *p, const char *ep)
{
    switch (*p) {
    case '.':
        return true;
    case '%':
        return percent_matches(c, (unsigned char)p[1]);
    case '[':
        return set_matches(c, p + 1, ep - 1);
    default:
        return c == (unsigned char)*p;
    }
}

/* The longest run of subject bytes the class [p, ep) matches. */
static size_t longest_run(const char *s, size_t n, const char *p, const char *ep)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = class_matches((unsigned char)s[i], p, ep) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

static size_t count_matches(const char *s, size_t n, const char *p, const char *ep)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += class_matches((unsigned char)s[i], p, ep);
    return count;
}

/* Only capture ends from `p` to `end`. */
static bool only_closes(const char *p, const char *end)
{
    while (p < end && *p == ')')
        p++;
    return p == end;
}

double pattern_cost(const char *s, size_t n, const char *p, size_t plen, bool anchors)
{
    const char *end = p + plen;
    bool anchored = anchors && plen > 0 && *p == '^';
    double starts = anchored ? 1 : (double)n + 1, branches = 1, scans = 0;
    bool first = true;
    if (anchored)
        p++;
    while (p < end) {
        if (*p == '(' || *p == ')' || (*p == '$' && p + 1 == end)) {
            p++;
            continue;
        }
        if (*p == '%' && p + 1 < end && (p[1] == 'b' || isdigit((unsigned char)p[1]))) {
            /* %bxy scans to the balancing byte, %1 compares a capture. */
            scans++;
            p += p[1] == 'b' ? 4 : 2;
            if (p > end)
                return -1;
            first = false;
            continue;
        }
        if (*p == '%' && p + 1 < end && p[1] == 'f') {
            /* A frontier looks at two bytes and consumes none. */
            p += 2;
            if (p >= end || *p != '[' || !(p = class_end(p, end)))
                return -1;
            continue;
        }
        const char *ep = class_end(p, end);
        if (!ep)
            return -1;
        char q = ep < end ? *ep : '\0';
        if (q && strchr("*+-?", q)) {
            if (!only_closes(ep + 1, end))
                branches *= q == '?' ? 2 : (double)longest_run(s, n, p, ep) + 1;
            p = ep + 1;
        } else {
            if (first && !anchored)
                starts = (double)count_matches(s, n, p, ep);
            p = ep;
        }
        first = false;
    }
    if (branches == 1 && scans == 0)
        return 0;
    return starts * branches * (1 + scans * (double)n);
}
