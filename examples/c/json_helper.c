/* json_helper.c — see json_helper.h. One pass, no recursion: a state machine (value, key, after a
 * value) over the tokens, with the open brackets on a small stack. Nothing is copied token by
 * token: the text goes to out in spans, cut only where there is whitespace to drop. */
#include "json_helper.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef const unsigned char *cursor;

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Skips whitespace; text before it not yet copied (from *copied) goes to *o first. Called only
 * where *p <= ' ': the usual token boundary has none, and costs no call. */
static cursor skip_ws(cursor p, cursor end, cursor *copied, char **o) {
    cursor ws = p;
    while (p < end && is_ws(*p)) p++;
    if (p != ws) {
        memmove(*o, *copied, (size_t)(ws - *copied));
        *o += ws - *copied, *copied = p;
    }
    return p;
}

static cursor skip_digits(cursor p, cursor end) {
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (*p >= 0x80), or 0. */
static size_t utf8_sequence(cursor p, cursor end) {
    unsigned char c = *p, lo = 0x80, hi = 0xBF;
    size_t len, i;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    for (i = 1; i < len; i++, lo = 0x80, hi = 0xBF)
        if ((size_t)(end - p) <= i || p[i] < lo || p[i] > hi) return 0;
    return len;
}

/* The value of the \uXXXX escape at p (its backslash), or -1. */
static long hex4(cursor p, cursor end) {
    long v = 0;
    int i;
    if (end - p < 6 || p[1] != 'u') return -1;
    for (i = 2; i < 6; i++) {
        unsigned char c = p[i] | 0x20; /* lower case for the letters */
        if (p[i] >= '0' && p[i] <= '9') v = v * 16 + (p[i] - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (c - 'a' + 10);
        else return -1;
    }
    return v;
}

/* The high bit of each byte of x that cannot stand in a string as it is (", \, < 0x20, >= 0x80) is
 * set, and maybe of bytes above the first such one, never below it. */
static uint64_t special8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u;
    return ((x - ones * 0x20) | ((x ^ ones * '"') - ones) | ((x ^ ones * '\\') - ones) | x) & ones * 0x80;
}

/* The first byte at or after p that cannot stand in a string as it is, or end. */
static cursor string_run(cursor p, cursor end) {
    uint64_t x, m;
    for (; end - p >= 8; p += 8) { /* eight bytes at a time */
        memcpy(&x, p, 8);
        if ((m = special8(x))) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return p + __builtin_ctzll(m) / 8;
#else
            break;
#endif
        }
    }
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
    return p;
}

/* From p, a byte of a string that needs a look (escape, UTF-8), to past its closing quote; or to
 * the bad byte, with *why set. */
static cursor string_rest(cursor p, cursor end, const char **why) {
    for (;; p = string_run(p, end)) {
        if (p == end) return *why = "expected the closing quote of a string", p;
        if (*p == '"') return p + 1;
        if (*p < 0x20) return *why = "control character in a string (it must be escaped)", p;
        if (*p >= 0x80) {
            size_t n = utf8_sequence(p, end);
            if (!n) return *why = "invalid UTF-8 in a string", p;
            p += n;
        } else if (p + 1 < end && p[1] && strchr("\"\\/bfnrt", p[1])) {
            p += 2;
        } else { /* \uXXXX; a surrogate only as the first half of a pair */
            long u = hex4(p, end), low = u >= 0xD800 && u <= 0xDBFF ? hex4(p + 6, end) : 0xDC00;
            if (u < 0) return *why = "invalid escape in a string", p;
            if ((u >= 0xDC00 && u <= 0xDFFF) || low < 0xDC00 || low > 0xDFFF)
                return *why = "unpaired UTF-16 surrogate in a string", p;
            p += u >= 0xD800 && u <= 0xDBFF ? 12 : 6;
        }
    }
}

/* Past the string whose opening quote is at p; or the bad byte, with *why set. */
static inline cursor scan_string(cursor p, cursor end, const char **why) {
    p = string_run(p + 1, end);
    return p < end && *p == '"' ? p + 1 : string_rest(p, end, why); /* the usual case: plain ASCII */
}

/* A number at *pp: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *scan_number(cursor *pp, cursor end) {
    cursor p = *pp + (**pp == '-');
    if (p < end && *p == '0') p++;
    else if (p < end && *p >= '1' && *p <= '9') p = skip_digits(p, end);
    else return *pp = p, "expected a digit";
    if (p < end && *p == '.') {
        cursor d = p + 1;
        if ((p = skip_digits(d, end)) == d) return *pp = p, "expected a digit after the point";
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        cursor d = p + 1 + (p + 1 < end && (p[1] == '+' || p[1] == '-'));
        if ((p = skip_digits(d, end)) == d) return *pp = p, "expected a digit in the exponent";
    }
    *pp = p;
    return NULL;
}

size_t json_minify(const char *text, size_t len, char *out, json_error *err) {
    cursor start = (cursor)text, p = start, end = start + len, copied;
    char nest[JSON_MAX_DEPTH], top = 0, *o = out; /* open brackets; top: the innermost, 0 outside */
    size_t depth = 0;
    const char *why = NULL;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* RFC 8259 8.1: it may be ignored */
    copied = p;

value:
    if (p == end) goto expected_value;
    switch (*p) {
    case ' ':
    case '\n':
    case '\r':
    case '\t':
        p = skip_ws(p, end, &copied, &o);
        goto value;
    case '{':
    case '[':
        if (depth == JSON_MAX_DEPTH) {
            why = "objects and arrays nested too deep";
            goto fail;
        }
        nest[depth++] = top = (char)*p++;
        if (p < end && *p <= ' ') p = skip_ws(p, end, &copied, &o);
        if (p < end && *p == top + 2) goto close; /* '{' + 2 is '}', '[' + 2 is ']' */
        if (top == '{') goto key;
        goto value;
    case '"':
        p = scan_string(p, end, &why);
        if (why) goto fail;
        goto after;
    case 't':
    case 'n':
        if (end - p >= 4 && (!memcmp(p, "true", 4) || !memcmp(p, "null", 4))) {
            p += 4;
            goto after;
        }
        goto bad_literal;
    case 'f':
        if (end - p >= 5 && !memcmp(p, "false", 5)) {
            p += 5;
            goto after;
        }
        goto bad_literal;
    case '-': case '0': case '1': case '2': case '3':
    case '4': case '5': case '6': case '7': case '8': case '9':
        if ((why = scan_number(&p, end))) goto fail;
        goto after;
    }
expected_value:
    why = "expected a value";
    goto fail;
bad_literal:
    why = "invalid literal (true, false or null)";
    goto fail;

key:
    if (p < end && is_ws(*p)) p = skip_ws(p, end, &copied, &o);
    if (p == end || *p != '"') {
        why = "expected a string (an object key)";
        goto fail;
    }
    p = scan_string(p, end, &why);
    if (why) goto fail;
    if (p < end && *p <= ' ') p = skip_ws(p, end, &copied, &o);
    if (p == end || *p != ':') {
        why = "expected ':' after an object key";
        goto fail;
    }
    p++;
    goto value;

close: /* at the closing bracket of top */
    p++, depth--, top = depth ? nest[depth - 1] : 0;
after: /* a value ended: a comma, a closing bracket or the end */
    if (p < end && top) {
        if (*p == ',') {
            p++;
            if (top == '{') goto key;
            goto value;
        }
        if (*p == top + 2) goto close;
    }
    if (p < end && is_ws(*p)) {
        p = skip_ws(p, end, &copied, &o);
        goto after;
    }
    if (!top && p == end) {
        memmove(o, copied, (size_t)(p - copied));
        return (size_t)(o - out) + (size_t)(p - copied);
    }
    why = !top         ? "unexpected data after the JSON value"
          : top == '{' ? "expected ',' or '}'"
                       : "expected ',' or ']'";

fail:
    err->offset = (size_t)(p - start);
    snprintf(err->message, sizeof err->message, "invalid JSON at byte %zu: %s%s", err->offset,
             p == end ? "unexpected end of input; " : "", why);
    return JSON_INVALID;
}

size_t json_string(const char *s, size_t len, char *out) {
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') *o++ = '\\', *o++ = (char)c;
        else if (c < 0x20) o += sprintf(o, "\\u%04x", c);
        else *o++ = (char)c;
    }
    *o++ = '"';
    return (size_t)(o - out);
}
