// The CPU version of paged decode attention (contract: paged_attention.h). One (sequence, KV head) at a
// time: scores of its query heads over the unmasked positions, softmax, then every position's V (exact)
// or the top_n positions' V (KCache) summed in ascending position order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "paged_attention.h"

namespace {

// The arena row of position t for sequence b and KV head h.
inline const float* arena_row(const float* arena, const int32_t* slices, const KcachePagedAttention& a, int64_t b, int64_t h, int64_t t) {
  const int64_t slice = slices[(b * a.num_kv_heads + h) * a.num_blocks + t / a.block_size];
  return arena + (slice * a.block_size + t % a.block_size) * a.head_dim;
}

// The indices of the n largest values of p over `open` positions, ties to the lower position, ascending.
void top_positions(const std::vector<float>& p, const std::vector<int64_t>& open, int64_t n, std::vector<int64_t>& chosen) {
  chosen = open;
  if (static_cast<int64_t>(chosen.size()) > n) {
    std::nth_element(chosen.begin(), chosen.begin() + n, chosen.end(), [&](int64_t x, int64_t y) {
      return p[x] > p[y] || (p[x] == p[y] && x < y);
    });
    chosen.resize(n);
  }
  std::sort(chosen.begin(), chosen.end());
}

}  // namespace

extern "C" size_t kcache_paged_attention_cpu_scratch_bytes(const KcachePagedAttention*) { return 0; }

extern "C" int kcache_paged_attention_cpu(const KcachePagedAttention* args) {
  const KcachePagedAttention& a = *args;
  if (kcache_paged_attention_invalid(&a) != nullptr) return 1;
  const int64_t d = a.head_dim, columns = a.num_blocks * a.block_size;
  std::vector<int64_t> open, chosen;
  std::vector<float> p(columns);
  for (int64_t b = 0; b < a.batch; b++) {
    const float* mask = a.mask + b * columns;
    open.clear();
    for (int64_t t = 0; t < columns; t++) if (mask[t] != -std::numeric_limits<float>::infinity()) open.push_back(t);
    for (int64_t h = 0; h < a.num_kv_heads; h++) {
      for (int64_t g = 0; g < a.group; g++) {
        const int64_t head = (b * a.num_kv_heads + h) * a.group + g;
        const float* q = a.q + head * d;
        float* out = a.out + head * d;
        std::fill(out, out + d, 0.0f);
        if (open.empty()) continue;
        float max = -std::numeric_limits<float>::infinity();
        for (int64_t t : open) {
          const float* k = arena_row(a.k_arena, a.k_slices, a, b, h, t);
          float dot = 0.0f;
          for (int64_t i = 0; i < d; i++) dot += q[i] * k[i];
          p[t] = a.scale * dot + mask[t];
          max = std::max(max, p[t]);
        }
        float sum = 0.0f;
        for (int64_t t : open) {
          p[t] = std::exp(p[t] - max);
          sum += p[t];
        }
        for (int64_t t : open) p[t] /= sum;
        const std::vector<int64_t>* rows = &open;
        float weight_sum = 1.0f;
        if (a.top_n > 0) {
          top_positions(p, open, a.top_n, chosen);
          rows = &chosen;
          if (a.renormalize) {
            weight_sum = 0.0f;
            for (int64_t t : chosen) weight_sum += p[t];
          }
        }
        for (int64_t t : *rows) {
          const float* v = arena_row(a.v_arena, a.v_slices, a, b, h, t);
          const float w = a.renormalize && a.top_n > 0 ? p[t] / weight_sum : p[t];
          for (int64_t i = 0; i < d; i++) out[i] += w * v[i];
        }
      }
    }
  }
  return 0;
}
