/* A task that wants too much memory: it grows memory one page (64 KiB) at a time until memory.grow
 * returns -1 (the engine's limit, 256 pages = 16 MiB, or the engine's own), then traps (`threw`). */
#include "task.h"

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr; (void)shared_len; (void)input_ptr; (void)input_len;
    while (__builtin_wasm_memory_grow(0, 1) != (size_t)-1) {
        /* touch the last byte of the new memory, so it is really used */
        uint8_t *last = (uint8_t *)(size_t)(__builtin_wasm_memory_size(0) * 65536u - 1u);
        *(volatile uint8_t *)last = 1;
    }
    __builtin_trap();
}
