#ifndef EXHOOKD_PATTERN_H
#define EXHOOKD_PATTERN_H

/* An upper bound on the work of Lua's pattern matcher, computed before it
 * runs, so that the sandbox can refuse a match that could run for hours
 * (the matcher has no step counter, and the time limit's hook does not run
 * inside it).
 *
 * The matcher backtracks only at a repetition item ('*', '+', '-' or '?'
 * after one character class): at each position it tries each length the
 * item can take. That is at most 1 + the longest run of subject bytes the
 * class matches ('?': 2), so one start position costs at most the product
 * of these over the repetition items. A repetition item last in the pattern
 * (only ')' after it) never backtracks: its first try succeeds. %b and
 * back-references (%1..%9) scan up to the whole subject. The starts are the
 * subject's positions, 1 with a '^' anchor, or only those positions where a
 * leading plain class matches. */

#include <stdbool.h>
#include <stddef.h>

/* The bound for pattern `p` on subject `s`: matching steps, as a double
 * (it overflows any integer). 0 when it is linear in the subject (no
 * backtracking item, no %b, no back-reference), whatever the subject's
 * length. -1 for a malformed pattern, left to Lua to report. `anchors`:
 * whether a leading '^' anchors (not in gmatch). */
double pattern_cost(const char *s, size_t n, const char *p, size_t plen, bool anchors);

#endif
