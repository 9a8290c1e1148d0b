/* json_helper.h — JSON without a DOM: one pass over a body checks it (RFC 8259) and copies it
 * without the whitespace between tokens. Plain C, no allocation, no C++ runtime (the C example
 * keeps its small footprint); the C++ example uses it through examples/cpp/fast_json.hpp.
 * Compile json_helper.c into the program; copy both freely. */
#ifndef JSON_HELPER_H
#define JSON_HELPER_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JSON_INVALID ((size_t)-1)
#define JSON_MAX_DEPTH 1024 /* nested objects and arrays */

typedef struct json_error {
    size_t offset;     /* byte where the text stops being JSON (its length: it ended early) */
    char message[128]; /* "invalid JSON at byte 5: ...": printable ASCII without " or \, so it
                          can go into a JSON string as it is */
} json_error;

/* Checks that text[0..len) is one JSON document and copies it to out (len bytes of room; out may be
 * text itself), less the whitespace between tokens: keys in their order, numbers and strings byte for
 * byte as sent. A leading UTF-8 byte order mark is dropped. Returns the length written, or
 * JSON_INVALID with err filled in. */
size_t json_minify(const char *text, size_t len, char *out, json_error *err);

/* Writes s[0..len) as a JSON string, quotes included, to out (room for 6 * len + 2 bytes): " and \
 * escaped, control characters as \u00XX, the rest as it is (s must be UTF-8). Returns the length. */
size_t json_string(const char *s, size_t len, char *out);

#ifdef __cplusplus
}
#endif
#endif
