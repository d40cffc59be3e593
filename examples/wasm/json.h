/* A small JSON reader for task inputs (the ray tracer's scene). It reads RFC 8259 JSON with these
 * limits, and refuses (traps) anything outside them:
 *  - strings without backslash escapes and without control characters (bytes are not checked for UTF-8);
 *  - numbers with at most 40 significant digits, zero or of magnitude in [1e-307, 1e308); converted
 *    correctly rounded (round to nearest, ties to even), as JavaScript's JSON.parse and Swift do;
 *  - no duplicate keys in one object; nesting depth at most 64; `null` is read (callers refuse it).
 * The tree lives in memory from bc_alloc and is never freed (one instance per task). */
#ifndef BC_JSON_H
#define BC_JSON_H
#include "task.h"

enum json_kind { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

typedef struct json_node {
    enum json_kind kind;
    double number;                 /* JSON_NUMBER */
    const uint8_t *text;           /* JSON_STRING: the bytes between the quotes */
    uint32_t length;               /* JSON_STRING: byte count; JSON_ARRAY/OBJECT: member count */
    const uint8_t *key;            /* member of an object: its key */
    uint32_t key_length;
    struct json_node *first, *next; /* children of an array or object, in order */
} json_node;

/* Parses `length` bytes holding exactly one JSON value (whitespace around it allowed); traps otherwise. */
json_node *json_parse(const uint8_t *bytes, uint32_t length);

/* The member of object `o` named `key` (a C string), or 0 when absent. */
const json_node *json_get(const json_node *o, const char *key);

/* Whether string node `s` holds exactly the C string `text`. */
int json_string_is(const json_node *s, const char *text);

/* Converts a decimal number text (JSON number syntax) to the nearest binary64; traps outside the limits
 * above. Exposed for the conversion test module. */
double json_number(const uint8_t *text, uint32_t length);

#endif
