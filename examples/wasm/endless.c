/* A task that never returns: bc_run loops for ever (stores to memory, so no compiler may drop the loop).
 * The engine must end it at the task's deadline (`deadline`) without losing its worker. */
#include "task.h"

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

static volatile uint32_t counter;

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr; (void)shared_len; (void)input_ptr; (void)input_len;
    for (;;) counter = counter + 1;
}
