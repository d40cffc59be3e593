/* The BrowserCloud WebAssembly task ABI (docs/jobs.md, "WebAssembly tasks"), for modules written in C
 * and built with `clang --target=wasm32 -nostdlib` (no libc).
 *
 * A module exports `memory`, `bc_alloc(size) -> ptr` and `bc_run(shared_ptr, shared_len, input_ptr,
 * input_len) -> (output_len << 32) | output_ptr`, and imports nothing. The engine instantiates the
 * module afresh for every task, so the allocator below never frees: everything is dropped with the
 * instance. */
#ifndef BC_TASK_H
#define BC_TASK_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned long size_t;

#define BC_EXPORT(name) __attribute__((export_name(name)))

/* A pointer to `size` writable bytes, 8-byte aligned, or 0 when memory cannot grow enough. Never 0 for
 * size 0 (the engine calls bc_alloc(0) for empty shared data or input). */
uint32_t bc_alloc(uint32_t size);

/* Like bc_alloc, but traps when memory cannot grow (the engine reports `threw`). */
void *bc_alloc_or_trap(uint32_t size);

/* Refuses the task: a trap, which the engine reports as `threw` with the trap's message. */
__attribute__((noreturn)) static inline void bc_refuse(void) { __builtin_trap(); }

/* The value bc_run returns: output length in the high 32 bits, its pointer in the low 32 bits. */
static inline uint64_t bc_output(const void *ptr, uint32_t len) {
    return ((uint64_t)len << 32) | (uint64_t)(uint32_t)(size_t)ptr;
}

/* Little-endian reads of input bytes (the task inputs are little-endian, as is Wasm memory). */
static inline uint32_t bc_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline double bc_f64le(const uint8_t *p) {
    uint64_t bits = (uint64_t)bc_u32le(p) | ((uint64_t)bc_u32le(p + 4) << 32);
    double d;
    __builtin_memcpy(&d, &bits, 8);
    return d;
}

/* clang may emit calls to these for struct copies and zeroing loops; there is no libc to provide them. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#endif
