/* The bump allocator and the two memory helpers every example module links (task.h). */
#include "task.h"

extern uint8_t __heap_base; /* first free byte after data and stack, placed by wasm-ld */

static uint32_t next_free; /* 0 until the first allocation */

uint32_t bc_alloc(uint32_t size) BC_EXPORT("bc_alloc");

uint32_t bc_alloc(uint32_t size) {
    if (next_free == 0) next_free = (uint32_t)(size_t)&__heap_base;
    uint32_t start = (next_free + 7u) & ~7u;
    if (start < next_free || size > 0xFFFFFFFFu - start) return 0;
    uint32_t end = start + size;
    uint32_t have = (uint32_t)__builtin_wasm_memory_size(0) * 65536u; /* wraps to 0 at 4 GiB: fine below */
    if (end > have) {
        uint32_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
    }
    next_free = end;
    return start;
}

void *bc_alloc_or_trap(uint32_t size) {
    uint32_t p = bc_alloc(size);
    if (p == 0) bc_refuse();
    return (void *)(size_t)p;
}

__attribute__((no_builtin)) void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) d[i] = s[i];
    return dst;
}

__attribute__((no_builtin)) void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = (uint8_t)c;
    return dst;
}
