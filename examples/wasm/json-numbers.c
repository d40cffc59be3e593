/* Test helper (not a workload): checks json.c's decimal-to-binary64 conversion against another one.
 * input: JSON number texts separated by '\n'. output: the binary64 of each, 8 bytes little-endian. */
#include "json.h"

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr; (void)shared_len;
    const uint8_t *in = (const uint8_t *)(size_t)input_ptr;
    uint32_t count = 0;
    for (uint32_t i = 0; i < input_len; i++) if (in[i] == '\n') count++;
    if (input_len > 0 && in[input_len - 1] != '\n') count++;
    uint8_t *out = bc_alloc_or_trap(count * 8);
    uint32_t start = 0, k = 0;
    for (uint32_t i = 0; i <= input_len; i++) {
        if (i == input_len || in[i] == '\n') {
            if (i > start || i < input_len) {
                double d = json_number(in + start, i - start);
                __builtin_memcpy(out + k * 8, &d, 8);
                k++;
            }
            start = i + 1;
        }
    }
    return bc_output(out, k * 8);
}
