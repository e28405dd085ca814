// The CPU version of a decode step's rows before it attends: RoPE on the query and K rows, the query rows out,
// K and V appended to their arenas (contract: paged_attention.h, KcacheStepRows).
#include <cstring>

#include "paged_attention.h"

namespace {

// out = x rotated by the angles of one table row (interleaved pairs), or x where there is no row.
void rotate(const float* x, const float* cos, const float* sin, int64_t d, float* out) {
  if (cos == nullptr) {
    std::memcpy(out, x, d * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < d / 2; j++) {
    const float x0 = x[2 * j], x1 = x[2 * j + 1];
    out[2 * j] = x0 * cos[j] - x1 * sin[j];
    out[2 * j + 1] = x1 * cos[j] + x0 * sin[j];
  }
}

}  // namespace

extern "C" void kcache_step_rows_cpu(const KcacheStepRows* args) {
  const KcacheStepRows& a = *args;
  const int64_t d = a.head_dim, slots = a.group + 2, half = d / 2;
  for (int64_t b = 0; b < a.batch; b++) {
    const int64_t pos = a.positions[b];
    const bool in_table = pos >= 0 && pos < a.rope_positions;
    const float* cos = in_table ? a.cos + pos * half : nullptr;
    const float* sin = in_table ? a.sin + pos * half : nullptr;
    for (int64_t h = 0; h < a.num_kv_heads; h++) {
      const int64_t i = b * a.num_kv_heads + h;
      const float* rows = a.qkv + i * slots * d;
      for (int64_t g = 0; g < a.group; g++) rotate(rows + g * d, cos, sin, d, a.q_out + (i * a.group + g) * d);
      const int64_t k_row = kcache_write_row(a.k_writes + i * a.k_write_width, a.k_write_width, a.block_size);
      const int64_t v_row = kcache_write_row(a.v_writes + i * a.v_write_width, a.v_write_width, a.block_size);
      if (k_row >= 0 && k_row < a.k_arena_rows) rotate(rows + a.group * d, cos, sin, d, a.k_arena + k_row * d);
      if (v_row >= 0 && v_row < a.v_arena_rows) std::memcpy(a.v_arena + v_row * d, rows + (a.group + 1) * d, d * sizeof(float));
    }
  }
}
