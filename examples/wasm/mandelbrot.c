/* Mandelbrot tiles: iteration counts of points of the complex plane, a workload of another shape than
 * the ray tracer (a short binary input, no shared data, two bytes per pixel out).
 *
 * shared bytes: ignored (send none).
 * input: 52 bytes, little-endian: x0, y0, dx, dy as f64 (offsets 0, 8, 16, 24), then left, top, width,
 *   height, maxIterations as u32 (offsets 32, 36, 40, 44, 48). The tile is the pixels (i, j) with
 *   left ≤ i < left + width and top ≤ j < top + height of an image whose pixel (0, 0) is (x0, y0);
 *   1 ≤ width, height; left + width and top + height below 2^31; width · height · 2 ≤ 16 MiB;
 *   1 ≤ maxIterations ≤ 65535; x0, y0, dx, dy finite. Anything else: a trap (`threw`).
 * output: width · height iteration counts as u16 little-endian, rows (j) in order, each row in order of i.
 * Pixel (i, j) is the point c = cx + cy·i with cx = x0 + dx · i, cy = y0 + dy · j (so the tiles of an
 * image assemble into exactly the image computed as one tile). From z = 0, with n = 0:
 *   while n < maxIterations: xx = zx · zx; yy = zy · zy; if xx + yy > 4: stop;
 *   zy = (2 · zx) · zy + cy; zx = (xx − yy) + cx; n = n + 1
 * and the pixel is n. binary64 throughout, in exactly this order (Tests/vectors/make_mandelbrot_vectors.py
 * is the reference). */
#include "task.h"

static inline int finite(double d) { return d - d == 0; }

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) BC_EXPORT("bc_run");

uint64_t bc_run(uint32_t shared_ptr, uint32_t shared_len, uint32_t input_ptr, uint32_t input_len) {
    (void)shared_ptr;
    (void)shared_len;
    if (input_len != 52) bc_refuse();
    const uint8_t *in = (const uint8_t *)(size_t)input_ptr;
    double x0 = bc_f64le(in), y0 = bc_f64le(in + 8), dx = bc_f64le(in + 16), dy = bc_f64le(in + 24);
    uint32_t left = bc_u32le(in + 32), top = bc_u32le(in + 36);
    uint32_t width = bc_u32le(in + 40), height = bc_u32le(in + 44), max_iterations = bc_u32le(in + 48);
    if (!finite(x0) || !finite(y0) || !finite(dx) || !finite(dy)) bc_refuse();
    if (width < 1 || height < 1 || max_iterations < 1 || max_iterations > 65535) bc_refuse();
    if ((uint64_t)width * height * 2 > 16u * 1024 * 1024) bc_refuse();
    if ((uint64_t)left + width > 0x80000000u || (uint64_t)top + height > 0x80000000u) bc_refuse();
    uint32_t length = width * height * 2;
    uint8_t *out = bc_alloc_or_trap(length);
    uint32_t k = 0;
    for (uint32_t j = top; j < top + height; j++) {
        double cy = y0 + dy * (double)j;
        for (uint32_t i = left; i < left + width; i++) {
            double cx = x0 + dx * (double)i;
            double zx = 0, zy = 0;
            uint32_t n = 0;
            while (n < max_iterations) {
                double xx = zx * zx, yy = zy * zy;
                if (xx + yy > 4) break;
                zy = (2 * zx) * zy + cy;
                zx = (xx - yy) + cx;
                n++;
            }
            out[k] = (uint8_t)n;
            out[k + 1] = (uint8_t)(n >> 8);
            k += 2;
        }
    }
    return bc_output(out, length);
}
