/* A task that traps: it reads its input, does a little arithmetic and then executes `unreachable`.
 * The engine must report `threw` with the trap's message, and go on serving the next task. */
#include "task.h"

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    volatile uint32_t sum = shared_ptr + shared_len; /* a few instructions before the trap */
    const uint8_t *in = (const uint8_t *)(size_t)input_ptr;
    for (uint32_t i = 0; i < input_len; i++) sum = sum + in[i];
    __builtin_trap();
}
