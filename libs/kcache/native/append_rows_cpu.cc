// The CPU version of appending a decode step's K and V rows to their arenas (contract: paged_attention.h).
#include <cstring>

#include "paged_attention.h"

namespace {

// The arena row a write table entry names: (slice, row in the block), or the row itself.
int64_t arena_row(const int64_t* entry, int64_t width, int64_t block_size) {
  return width == 2 ? entry[0] * block_size + entry[1] : entry[0];
}

}  // namespace

extern "C" void kcache_append_rows_cpu(const KcacheAppendRows* args) {
  const KcacheAppendRows& a = *args;
  const int64_t d = a.head_dim, slots = a.group + 2;
  for (int64_t i = 0; i < a.batch * a.num_kv_heads; i++) {
    const float* k = a.qkv + (i * slots + a.group) * d;
    const int64_t k_row = arena_row(a.k_writes + i * a.k_write_width, a.k_write_width, a.block_size);
    const int64_t v_row = arena_row(a.v_writes + i * a.v_write_width, a.v_write_width, a.block_size);
    if (k_row >= 0 && k_row < a.k_arena_rows) std::memcpy(a.k_arena + k_row * d, k, d * sizeof(float));
    if (v_row >= 0 && v_row < a.v_arena_rows) std::memcpy(a.v_arena + v_row * d, k + d, d * sizeof(float));
  }
}
