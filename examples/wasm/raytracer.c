/* The BrowserCloud ray tracer as a WebAssembly task (docs/raytracer.md is the specification; this is a
 * C port of Public/raytracer.js that evaluates every expression in the same order, so that the bytes
 * are the same as `browsercloud render` and the `raytrace` runtime's).
 *
 * shared bytes: the scene JSON text (UTF-8), exactly a file of Public/scenes.
 * input: 16 bytes, the tile's x, y, width, height as u32 little-endian.
 * output: width · height · 4 bytes, RGBA, rows top to bottom, alpha 255.
 * A scene the JSON reader (json.h) or the rules of docs/raytracer.md refuse, `null` anywhere a value
 * is read, or a tile outside the image: a trap (`threw`). Compile with -ffp-contract=off: never fuse a
 * multiply and an add. */
#include "json.h"

#define EPSILON 1e-6
#define SHADOW_BIAS 1e-4
#define MAX_SIDE 8192
#define MAX_SAMPLES 8
#define MAX_DEPTH 8
#define MAX_OBJECTS 256
#define MAX_LIGHTS 16

typedef struct { double x, y, z; } vec3;

static inline vec3 v3(double x, double y, double z) { vec3 v = { x, y, z }; return v; }
static inline vec3 add(vec3 a, vec3 b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
static inline vec3 sub(vec3 a, vec3 b) { return v3(a.x - b.x, a.y - b.y, a.z - b.z); }
static inline vec3 scale(vec3 a, double s) { return v3(a.x * s, a.y * s, a.z * s); }
static inline vec3 mul(vec3 a, vec3 b) { return v3(a.x * b.x, a.y * b.y, a.z * b.z); }
static inline double dot(vec3 a, vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static inline vec3 cross(vec3 a, vec3 b) { return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x); }
static inline vec3 normalize(vec3 a) { double l = __builtin_sqrt(dot(a, a)); return v3(a.x / l, a.y / l, a.z / l); }
static inline int finite(double d) { return d - d == 0; } /* false for ±∞ and NaN */
static inline int finite3(vec3 v) { return finite(v.x) && finite(v.y) && finite(v.z); }

/* x^n for a non-negative integer n, by repeated multiplication (never pow). */
static double ipow(double x, int n) {
    double r = 1;
    for (int i = 0; i < n; i++) r = r * x;
    return r;
}

typedef struct {
    int checker;
    vec3 color, colors[2];
    double size, diffuse, specular, reflect;
    int shininess;
} material;

typedef struct {
    int sphere;
    vec3 center, point, normal;
    double radius, radius2;
    material m;
} object;

typedef struct { vec3 position, color; } light;

typedef struct {
    int width, height, samples, max_depth;
    vec3 ambient, background;
    vec3 position, forward, right, up;
    double half_width, half_height;
    int object_count, light_count;
    object objects[MAX_OBJECTS];
    light lights[MAX_LIGHTS];
} scene;

/* ---- reading the scene (the checks of prepareScene in Public/raytracer.js; any failure traps) ---- */

static const json_node *need(const json_node *v) {
    if (!v || v->kind == JSON_NULL) bc_refuse();
    return v;
}

static vec3 read_vec(const json_node *v) {
    need(v);
    if (v->kind != JSON_ARRAY || v->length != 3) bc_refuse();
    const json_node *x = v->first, *y = x->next, *z = y->next;
    if (x->kind != JSON_NUMBER || y->kind != JSON_NUMBER || z->kind != JSON_NUMBER) bc_refuse();
    vec3 r = v3(x->number, y->number, z->number);
    if (!finite3(r)) bc_refuse();
    return r;
}

static vec3 read_vec_or(const json_node *v, vec3 fallback) { return v ? read_vec(v) : fallback; }

static double read_num(const json_node *v, double fallback, int has_fallback, double lo, double hi) {
    if (!v) {
        if (!has_fallback) bc_refuse();
        return fallback;
    }
    need(v);
    if (v->kind != JSON_NUMBER || !finite(v->number) || v->number < lo || v->number > hi) bc_refuse();
    return v->number;
}

static int read_int(const json_node *v, double fallback, int has_fallback, int lo, int hi) {
    double d = read_num(v, fallback, has_fallback, lo, hi);
    if (__builtin_floor(d) != d) bc_refuse();
    return (int)d;
}

static material read_material(const json_node *m) {
    need(m);
    if (m->kind != JSON_OBJECT) bc_refuse();
    material out;
    memset(&out, 0, sizeof out);
    out.diffuse = read_num(json_get(m, "diffuse"), 1, 1, 0, 10);
    out.specular = read_num(json_get(m, "specular"), 0, 1, 0, 10);
    out.shininess = read_int(json_get(m, "shininess"), 1, 1, 0, 1024);
    out.reflect = read_num(json_get(m, "reflect"), 0, 1, 0, 1);
    const json_node *type = need(json_get(m, "type"));
    if (json_string_is(type, "solid")) {
        out.color = read_vec(json_get(m, "color"));
    } else if (json_string_is(type, "checker")) {
        const json_node *colors = need(json_get(m, "colors"));
        if (colors->kind != JSON_ARRAY || colors->length != 2) bc_refuse();
        out.checker = 1;
        out.colors[0] = read_vec(colors->first);
        out.colors[1] = read_vec(colors->first->next);
        out.size = read_num(json_get(m, "size"), 1, 1, 1e-6, 1e6);
    } else {
        bc_refuse();
    }
    return out;
}

static const json_node *read_list(const json_node *v, uint32_t max) {
    if (!v) return 0;
    need(v);
    if (v->kind != JSON_ARRAY || v->length > max) bc_refuse();
    return v->first;
}

static void read_scene(scene *s, const json_node *root) {
    need(root);
    if (root->kind != JSON_OBJECT) bc_refuse();
    s->width = read_int(json_get(root, "width"), 0, 0, 1, MAX_SIDE);
    s->height = read_int(json_get(root, "height"), 0, 0, 1, MAX_SIDE);
    const json_node *c = need(json_get(root, "camera"));
    if (c->kind != JSON_OBJECT) bc_refuse();
    vec3 position = read_vec(json_get(c, "position"));
    vec3 look_at = read_vec(json_get(c, "lookAt"));
    vec3 up = read_vec_or(json_get(c, "up"), v3(0, 1, 0));
    double view_height = read_num(json_get(c, "viewHeight"), 1, 1, 1e-6, 1e6);
    vec3 forward = normalize(sub(look_at, position));
    vec3 right = normalize(cross(forward, up));
    if (!finite3(right) || !finite3(forward)) bc_refuse(); /* collinear camera vectors */
    s->position = position;
    s->forward = forward;
    s->right = right;
    s->up = cross(right, forward);
    s->half_height = view_height / 2;
    s->half_width = (view_height / 2) * ((double)s->width / (double)s->height);
    const json_node *objects = read_list(json_get(root, "objects"), MAX_OBJECTS);
    const json_node *lights = read_list(json_get(root, "lights"), MAX_LIGHTS);
    s->samples = read_int(json_get(root, "samples"), 1, 1, 1, MAX_SAMPLES);
    s->max_depth = read_int(json_get(root, "maxDepth"), 3, 1, 0, MAX_DEPTH);
    s->ambient = read_vec_or(json_get(root, "ambient"), v3(0.1, 0.1, 0.1));
    s->background = read_vec_or(json_get(root, "background"), v3(0, 0, 0));
    s->object_count = 0;
    for (const json_node *o = objects; o; o = o->next) {
        need(o);
        if (o->kind != JSON_OBJECT) bc_refuse();
        object *out = &s->objects[s->object_count++];
        memset(out, 0, sizeof *out);
        const json_node *type = need(json_get(o, "type"));
        if (json_string_is(type, "sphere")) {
            out->sphere = 1;
            out->radius = read_num(json_get(o, "radius"), 0, 0, 1e-6, 1e6);
            out->center = read_vec(json_get(o, "center"));
            out->radius2 = out->radius * out->radius;
        } else if (json_string_is(type, "plane")) {
            out->normal = normalize(read_vec(json_get(o, "normal")));
            if (!finite3(out->normal)) bc_refuse(); /* a zero normal */
            out->point = read_vec(json_get(o, "point"));
        } else {
            bc_refuse();
        }
        out->m = read_material(json_get(o, "material"));
    }
    s->light_count = 0;
    for (const json_node *l = lights; l; l = l->next) {
        need(l);
        if (l->kind != JSON_OBJECT) bc_refuse();
        light *out = &s->lights[s->light_count++];
        out->position = read_vec(json_get(l, "position"));
        out->color = read_vec_or(json_get(l, "color"), v3(1, 1, 1));
    }
}

/* ---- shading (docs/raytracer.md, in its order) ---- */

#define INFINITY (__builtin_inf())

static double intersect(const object *o, vec3 origin, vec3 d) {
    if (o->sphere) {
        vec3 oc = sub(origin, o->center);
        double b = dot(oc, d);
        double c = dot(oc, oc) - o->radius2;
        double disc = b * b - c;
        if (disc < 0) return INFINITY;
        double sq = __builtin_sqrt(disc);
        double t = -b - sq;
        if (t < EPSILON) t = -b + sq;
        return t < EPSILON ? INFINITY : t;
    }
    double denom = dot(o->normal, d);
    if (__builtin_fabs(denom) < 1e-12) return INFINITY;
    double t = dot(sub(o->point, origin), o->normal) / denom;
    return t < EPSILON ? INFINITY : t;
}

/* The nearest hit: the first object with the smallest distance, in scene order; -1 for none. */
static int nearest(const scene *s, vec3 origin, vec3 d, double *t_out) {
    double best = INFINITY;
    int hit = -1;
    for (int i = 0; i < s->object_count; i++) {
        double t = intersect(&s->objects[i], origin, d);
        if (t < best) { best = t; hit = i; }
    }
    *t_out = best;
    return hit;
}

static vec3 surface_color(const material *m, vec3 p) {
    if (!m->checker) return m->color;
    double k = __builtin_floor(p.x / m->size) + __builtin_floor(p.z / m->size);
    return k - 2 * __builtin_floor(k / 2) == 0 ? m->colors[0] : m->colors[1];
}

static vec3 trace(const scene *s, vec3 origin, vec3 d, int depth) {
    double t;
    int index = nearest(s, origin, d, &t);
    if (index < 0) return s->background;
    const object *o = &s->objects[index];
    const material *m = &o->m;
    vec3 p = add(origin, scale(d, t));
    vec3 n = o->sphere ? scale(sub(p, o->center), 1 / o->radius) : o->normal;
    if (dot(n, d) > 0) n = scale(n, -1);
    vec3 base = surface_color(m, p);
    vec3 lifted = add(p, scale(n, SHADOW_BIAS));
    vec3 color = mul(s->ambient, base);
    for (int i = 0; i < s->light_count; i++) {
        const light *li = &s->lights[i];
        vec3 to_light = sub(li->position, lifted);
        double distance = __builtin_sqrt(dot(to_light, to_light));
        vec3 l = scale(to_light, 1 / distance);
        double blocker_t;
        if (nearest(s, lifted, l, &blocker_t) >= 0 && blocker_t < distance) continue;
        double lambert = dot(n, l);
        if (lambert > 0) color = add(color, scale(mul(li->color, base), m->diffuse * lambert));
        if (m->specular > 0) {
            vec3 r = sub(scale(n, 2 * dot(n, l)), l);
            double rv = -dot(r, d);
            if (rv > 0) color = add(color, scale(li->color, m->specular * ipow(rv, m->shininess)));
        }
    }
    if (m->reflect > 0 && depth < s->max_depth) {
        vec3 reflected = sub(d, scale(n, 2 * dot(d, n)));
        vec3 bounce = trace(s, lifted, reflected, depth + 1);
        color = add(scale(color, 1 - m->reflect), scale(bounce, m->reflect));
    }
    return color;
}

/* Colour channel to byte: clamp to [0, 1], then floor(c · 255 + 0.5); NaN gives 0 (as a
 * Uint8ClampedArray stores it). */
static uint8_t quantize(double c) {
    double v = c < 0 ? 0 : (c > 1 ? 1 : c);
    double q = __builtin_floor(v * 255 + 0.5);
    return q >= 0 && q <= 255 ? (uint8_t)q : 0;
}

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    if (input_len != 16) bc_refuse();
    const uint8_t *input = (const uint8_t *)(size_t)input_ptr;
    uint32_t x = bc_u32le(input), y = bc_u32le(input + 4), w = bc_u32le(input + 8), h = bc_u32le(input + 12);
    scene *s = bc_alloc_or_trap(sizeof(scene));
    read_scene(s, json_parse((const uint8_t *)(size_t)shared_ptr, shared_len));
    /* Compared without adding, so that no sum wraps. */
    if (w < 1 || h < 1 || w > (uint32_t)s->width || h > (uint32_t)s->height ||
        x > (uint32_t)s->width - w || y > (uint32_t)s->height - h) bc_refuse();
    uint32_t length = w * h * 4; /* at most 8192 · 8192 · 4 = 2^28 */
    uint8_t *out = bc_alloc_or_trap(length);
    int samples = s->samples;
    double sd = (double)samples;
    double inv = 1 / (sd * sd);
    double width = (double)s->width, height = (double)s->height;
    uint32_t k = 0;
    for (uint32_t py = y; py < y + h; py++) {
        for (uint32_t px = x; px < x + w; px++) {
            vec3 acc = v3(0, 0, 0);
            for (int sy = 0; sy < samples; sy++) {
                for (int sx = 0; sx < samples; sx++) {
                    double u = ((double)px + ((double)sx + 0.5) / sd) / width;
                    double v = ((double)py + ((double)sy + 0.5) / sd) / height;
                    double a = (2 * u - 1) * s->half_width;
                    double b = (1 - 2 * v) * s->half_height;
                    vec3 d = normalize(add(add(s->forward, scale(s->right, a)), scale(s->up, b)));
                    acc = add(acc, trace(s, s->position, d, 0));
                }
            }
            out[k] = quantize(acc.x * inv);
            out[k + 1] = quantize(acc.y * inv);
            out[k + 2] = quantize(acc.z * inv);
            out[k + 3] = 255;
            k += 4;
        }
    }
    return bc_output(out, length);
}
