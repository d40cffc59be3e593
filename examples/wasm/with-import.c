/* A module that imports a function (env.bc_log): refused before it runs (`bad-task`), since a task
 * module imports nothing. Otherwise a valid echo task. */
#include "task.h"

__attribute__((import_module("env"), import_name("bc_log"))) void bc_log(uint32_t ptr, uint32_t len);

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr; (void)shared_len;
    bc_log(input_ptr, input_len);
    return bc_output((const void *)(size_t)input_ptr, input_len);
}
