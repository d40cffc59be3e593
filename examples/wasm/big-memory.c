/* A module whose memory minimum (300 pages, set by the Makefile's --initial-memory) is above the
 * engines' limit of 256 pages: refused before it runs (`bad-task`). Otherwise a valid echo task. */
#include "task.h"

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr; (void)shared_len;
    return bc_output((const void *)(size_t)input_ptr, input_len);
}
