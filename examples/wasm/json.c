/* The JSON reader of json.h and its correctly rounded decimal-to-binary64 conversion. */
#include "json.h"

/* ---- exact big integers, just enough for comparing a decimal number with a binary64 halfway point ---- */

#define BIG_LIMBS 48 /* 1536 bits: the products below stay under about 900 bits */

typedef struct { uint32_t limb[BIG_LIMBS]; uint32_t used; } big;

static void big_set(big *b, uint64_t v) {
    b->used = 0;
    while (v) { b->limb[b->used++] = (uint32_t)v; v >>= 32; }
}

static void big_mul_small(big *b, uint32_t m) {
    uint64_t carry = 0;
    for (uint32_t i = 0; i < b->used; i++) {
        uint64_t p = (uint64_t)b->limb[i] * m + carry;
        b->limb[i] = (uint32_t)p;
        carry = p >> 32;
    }
    if (carry) {
        if (b->used == BIG_LIMBS) bc_refuse();
        b->limb[b->used++] = (uint32_t)carry;
    }
}

static void big_add_small(big *b, uint32_t a) {
    uint64_t carry = a;
    for (uint32_t i = 0; i < b->used && carry; i++) {
        uint64_t s = (uint64_t)b->limb[i] + carry;
        b->limb[i] = (uint32_t)s;
        carry = s >> 32;
    }
    if (carry) {
        if (b->used == BIG_LIMBS) bc_refuse();
        b->limb[b->used++] = (uint32_t)carry;
    }
}

static void big_mul_pow5(big *b, uint32_t n) {
    while (n >= 13) { big_mul_small(b, 1220703125u); n -= 13; } /* 5^13 */
    uint32_t m = 1;
    while (n--) m *= 5;
    big_mul_small(b, m);
}

static void big_shift_left(big *b, uint32_t bits) {
    if (b->used == 0) return;
    uint32_t words = bits / 32, rest = bits % 32;
    if (b->used + words + 1 > BIG_LIMBS) bc_refuse();
    uint32_t top = b->used + words;
    b->limb[top] = 0;
    for (int32_t i = (int32_t)b->used - 1; i >= 0; i--) {
        uint64_t v = (uint64_t)b->limb[i] << rest;
        b->limb[i + words + 1] |= (uint32_t)(v >> 32);
        b->limb[i + words] = (uint32_t)v;
    }
    for (uint32_t i = 0; i < words; i++) b->limb[i] = 0;
    b->used = top + 1;
    while (b->used && b->limb[b->used - 1] == 0) b->used--;
}

static int big_compare(const big *a, const big *b) {
    if (a->used != b->used) return a->used < b->used ? -1 : 1;
    for (int32_t i = (int32_t)a->used - 1; i >= 0; i--) {
        if (a->limb[i] != b->limb[i]) return a->limb[i] < b->limb[i] ? -1 : 1;
    }
    return 0;
}

/* ---- decimal to binary64 ---- */

#define MAX_DIGITS 40

typedef struct { uint8_t digit[MAX_DIGITS]; uint32_t count; int32_t exponent; } decimal; /* d1 d2 … dn × 10^exponent */

/* Compares digits × 10^exponent with (2m + 1) × 2^(e2 - 1) where the double is m × 2^e2 and `below`
 * selects (2m − 1) × 2^(e2 − 1), or (4m − 1) × 2^(e2 − 2) when m is the smallest mantissa. */
static int compare_halfway(const decimal *d, uint64_t m, int32_t e2, int below) {
    big lhs, rhs;
    big_set(&lhs, 0);
    for (uint32_t i = 0; i < d->count; i++) { big_mul_small(&lhs, 10); big_add_small(&lhs, d->digit[i]); }
    uint64_t h;
    int32_t h2;
    if (!below) { h = 2 * m + 1; h2 = e2 - 1; }
    else if (m == (1ull << 52)) { h = 4 * m - 1; h2 = e2 - 2; }
    else { h = 2 * m - 1; h2 = e2 - 1; }
    big_set(&rhs, h);
    /* lhs = digits × 5^E × 2^E, rhs = h × 2^h2: move the powers of five and two to one side each. */
    if (d->exponent >= 0) big_mul_pow5(&lhs, (uint32_t)d->exponent);
    else big_mul_pow5(&rhs, (uint32_t)-d->exponent);
    int32_t twos = d->exponent - h2;
    if (twos >= 0) big_shift_left(&lhs, (uint32_t)twos);
    else big_shift_left(&rhs, (uint32_t)-twos);
    return big_compare(&lhs, &rhs);
}

static double from_bits(uint64_t bits) { double d; __builtin_memcpy(&d, &bits, 8); return d; }
static uint64_t to_bits(double d) { uint64_t b; __builtin_memcpy(&b, &d, 8); return b; }

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

double json_number(const uint8_t *s, uint32_t n) {
    /* The grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
    uint32_t i = 0;
    int negative = 0;
    if (i < n && s[i] == '-') { negative = 1; i++; }
    uint32_t mantissa_start = i;
    if (i < n && s[i] == '0') i++;
    else if (i < n && is_digit(s[i])) while (i < n && is_digit(s[i])) i++;
    else bc_refuse();
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) bc_refuse();
        while (i < n && is_digit(s[i])) i++;
    }
    uint32_t mantissa_end = i;
    int32_t written_exponent = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int exp_negative = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) { exp_negative = s[i] == '-'; i++; }
        if (i >= n || !is_digit(s[i])) bc_refuse();
        while (i < n && is_digit(s[i])) {
            if (written_exponent < 100000) written_exponent = written_exponent * 10 + (s[i] - '0');
            i++;
        }
        if (exp_negative) written_exponent = -written_exponent;
    }
    if (i != n) bc_refuse();

    /* The significant digits (no leading zeros; trailing zeros folded into the exponent) and the
     * exponent of the last one. */
    decimal d = { .count = 0, .exponent = written_exponent };
    int32_t pending_zeros = 0, in_fraction = 0;
    for (uint32_t k = mantissa_start; k < mantissa_end; k++) {
        if (s[k] == '.') { in_fraction = 1; continue; }
        uint8_t digit = (uint8_t)(s[k] - '0');
        if (in_fraction) d.exponent -= 1;
        if (digit == 0) {
            if (d.count > 0) pending_zeros++;
            continue;
        }
        while (pending_zeros > 0) {
            if (d.count == MAX_DIGITS) bc_refuse();
            d.digit[d.count++] = 0;
            pending_zeros--;
        }
        if (d.count == MAX_DIGITS) bc_refuse();
        d.digit[d.count++] = digit;
    }
    d.exponent += pending_zeros; /* digits × 10^exponent, the dropped zeros moved into the exponent */
    if (d.count == 0) return negative ? -0.0 : 0.0;
    /* The value lies in [10^(count − 1 + exponent), 10^(count + exponent)). */
    int32_t magnitude = (int32_t)d.count - 1 + d.exponent;
    if (magnitude < -307 || magnitude > 307) bc_refuse();

    /* An approximation within a few units in the last place: the first 19 digits, then powers of ten. */
    uint64_t head = 0;
    uint32_t used = d.count < 19 ? d.count : 19;
    for (uint32_t k = 0; k < used; k++) head = head * 10 + d.digit[k];
    double z = (double)head;
    int32_t e10 = d.exponent + (int32_t)(d.count - used);
    while (e10 >= 22) { z *= 1e22; e10 -= 22; }
    while (e10 <= -22) { z /= 1e22; e10 += 22; }
    static const double tens[22] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                                     1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21 };
    if (e10 > 0) z *= tens[e10];
    else if (e10 < 0) z /= tens[-e10];

    /* Exact correction: step to the neighbour while the decimal lies beyond a halfway point. */
    uint64_t bits = to_bits(z);
    for (int steps = 0;; steps++) {
        if (steps > 4096) bc_refuse();
        uint32_t field = (uint32_t)(bits >> 52) & 0x7FF;
        if (field == 0 || field == 0x7FF) bc_refuse(); /* subnormal or infinite: outside the limits */
        uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
        int32_t e2 = (int32_t)field - 1075;
        int c = compare_halfway(&d, m, e2, 0);
        if (c > 0 || (c == 0 && (m & 1))) { bits += 1; continue; }
        c = compare_halfway(&d, m, e2, 1);
        if (c < 0 || (c == 0 && (m & 1))) { bits -= 1; continue; }
        break;
    }
    double r = from_bits(bits);
    return negative ? -r : r;
}

/* ---- the tree ---- */

typedef struct { const uint8_t *at, *end; uint32_t depth; } reader;

static void skip_space(reader *r) {
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' || *r->at == '\r')) r->at++;
}

static int is_number_byte(uint8_t c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static void read_string(reader *r, const uint8_t **text, uint32_t *length) {
    r->at++; /* the opening quote */
    const uint8_t *start = r->at;
    while (r->at < r->end && *r->at != '"') {
        if (*r->at == '\\' || *r->at < 0x20) bc_refuse();
        r->at++;
    }
    if (r->at >= r->end) bc_refuse();
    *text = start;
    *length = (uint32_t)(r->at - start);
    r->at++;
}

static int literal(reader *r, const char *word) {
    const uint8_t *p = r->at;
    while (*word) {
        if (p >= r->end || *p != (uint8_t)*word) return 0;
        p++;
        word++;
    }
    r->at = p;
    return 1;
}

static int same(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
    if (an != bn) return 0;
    for (uint32_t i = 0; i < an; i++) if (a[i] != b[i]) return 0;
    return 1;
}

static json_node *read_value(reader *r) {
    skip_space(r);
    if (r->at >= r->end) bc_refuse();
    json_node *v = bc_alloc_or_trap(sizeof(json_node));
    memset(v, 0, sizeof *v);
    uint8_t c = *r->at;
    if (c == '{' || c == '[') {
        if (++r->depth > 64) bc_refuse();
        int object = c == '{';
        v->kind = object ? JSON_OBJECT : JSON_ARRAY;
        r->at++;
        skip_space(r);
        json_node **tail = &v->first;
        if (r->at < r->end && *r->at == (object ? '}' : ']')) { r->at++; r->depth--; return v; }
        for (;;) {
            const uint8_t *key = 0;
            uint32_t key_length = 0;
            if (object) {
                skip_space(r);
                if (r->at >= r->end || *r->at != '"') bc_refuse();
                read_string(r, &key, &key_length);
                for (json_node *m = v->first; m; m = m->next) {
                    if (same(m->key, m->key_length, key, key_length)) bc_refuse(); /* duplicate key */
                }
                skip_space(r);
                if (r->at >= r->end || *r->at != ':') bc_refuse();
                r->at++;
            }
            json_node *member = read_value(r);
            member->key = key;
            member->key_length = key_length;
            *tail = member;
            tail = &member->next;
            v->length++;
            skip_space(r);
            if (r->at >= r->end) bc_refuse();
            if (*r->at == ',') { r->at++; continue; }
            if (*r->at == (object ? '}' : ']')) { r->at++; break; }
            bc_refuse();
        }
        r->depth--;
    } else if (c == '"') {
        v->kind = JSON_STRING;
        read_string(r, &v->text, &v->length);
    } else if (literal(r, "null")) {
        v->kind = JSON_NULL;
    } else if (literal(r, "true")) {
        v->kind = JSON_TRUE;
    } else if (literal(r, "false")) {
        v->kind = JSON_FALSE;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        const uint8_t *start = r->at;
        while (r->at < r->end && is_number_byte(*r->at)) r->at++;
        v->kind = JSON_NUMBER;
        v->number = json_number(start, (uint32_t)(r->at - start));
    } else {
        bc_refuse();
    }
    return v;
}

json_node *json_parse(const uint8_t *bytes, uint32_t length) {
    reader r = { bytes, bytes + length, 0 };
    json_node *root = read_value(&r);
    skip_space(&r);
    if (r.at != r.end) bc_refuse();
    return root;
}

static uint32_t c_length(const char *s) { uint32_t n = 0; while (s[n]) n++; return n; }

const json_node *json_get(const json_node *o, const char *key) {
    if (!o || o->kind != JSON_OBJECT) return 0;
    uint32_t n = c_length(key);
    for (const json_node *m = o->first; m; m = m->next) {
        if (same(m->key, m->key_length, (const uint8_t *)key, n)) return m;
    }
    return 0;
}

int json_string_is(const json_node *s, const char *text) {
    return s && s->kind == JSON_STRING && same(s->text, s->length, (const uint8_t *)text, c_length(text));
}
