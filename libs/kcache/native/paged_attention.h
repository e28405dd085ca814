// One decode step of attention over paged K/V arenas, for every sequence and query head of a batch: the
// kernel behind the com.kcache PagedDecodeAttention operator (paged_attention_op.cc). The CPU version is
// paged_attention_cpu.cc; the CUDA version, paged_attention.cu, is built into its own shared library
// (kcache_paged_attention_cuda.so) that the addon opens when a CUDA session first uses the operator.
//
// Layout. A KV arena is viewed as [slices, block_size, head_dim] floats: a slice is one block of one KV head,
// block_size rows of head_dim floats, consecutive. Position t of sequence b, KV head h, is row t % block_size
// of slice slices[(b * num_kv_heads + h) * num_blocks + t / block_size]. T = num_blocks * block_size columns.
//
// What it computes, for each sequence b, KV head h and query head g of the group (query head h * group + g):
//   s_t = scale * dot(q[b, h, g, :], K(b, h, t)) + mask[b, t]          for every t with mask[b, t] != -inf
//   p_t = exp(s_t - max_t s_t) / sum_t exp(s_t - max_t s_t)             (softmax over those t)
//   top_n == 0 (exact):  out[b, h, g, :] = sum_t p_t * V(b, h, t)
//   top_n  > 0 (KCache): S = the top_n positions of largest p_t (ties: the lower position first; every
//                        unmasked position when there are at most top_n), w_t = p_t, or p_t / sum_{S} p
//                        with renormalize; out[b, h, g, :] = sum_{t in S} w_t * V(b, h, t)
// Masked positions (mask == -inf) are never read from V and never selected. A row with every position
// masked gives zeros.
#ifndef KCACHE_PAGED_ATTENTION_H_
#define KCACHE_PAGED_ATTENTION_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct KcachePagedAttention {
  const float* q;           // [batch, num_kv_heads, group, head_dim]
  const float* k_arena;     // [any, block_size, head_dim]
  const int32_t* k_slices;  // [batch, num_kv_heads, num_blocks]
  const float* v_arena;     // [any, block_size, head_dim]; on CUDA it may be mapped host memory (read over the bus)
  const int32_t* v_slices;  // [batch, num_kv_heads, num_blocks]
  const float* mask;        // [batch, num_blocks * block_size]: added to the score; -inf excludes the position
  float* out;               // [batch, num_kv_heads, group, head_dim]
  void* scratch;            // kcache_paged_attention_*_scratch_bytes(this) bytes, in the kernel's memory
  int64_t batch;
  int64_t num_kv_heads;
  int64_t group;      // query heads per KV head
  int64_t head_dim;   // a multiple of 4, at most 256
  int64_t block_size;
  int64_t num_blocks;
  int64_t top_n;      // 0: exact attention over every unmasked position
  int32_t renormalize;
  float scale;
} KcachePagedAttention;

// A decode step's rows before it attends (the operator does both): for each sequence b and KV head h, the G query
// rows qkv[b, h, 0..G-1, :] and the K row qkv[b, h, G, :] rotate by RoPE at positions[b] (interleaved pairs: pair
// (2j, 2j+1) by the angle whose cos and sin are row positions[b], column j of the tables; a position outside the
// tables leaves the rows as they are). The rotated query rows go to q_out; the rotated K row to row k_row(b, h) of
// k_arena and the V row qkv[b, h, G + 1, :] (not rotated) to row v_row(b, h) of v_arena (arenas viewed as rows of
// head_dim floats). A write table entry is (slice, row in the block) when its width is 2, the arena row itself
// when it is 1. An entry whose first value is negative writes nothing (-1 marks a batch row that only pads the batch
// to a fixed size); nor does one that names a row outside its arena.
typedef struct KcacheStepRows {
  const float* qkv;         // [batch, num_kv_heads, group + 2, head_dim]
  const int64_t* positions; // [batch]
  const float* cos;         // [rope_positions, head_dim / 2]
  const float* sin;
  int64_t rope_positions;
  float* q_out;             // [batch, num_kv_heads, group, head_dim]
  float* k_arena;
  float* v_arena;           // on CUDA it may be mapped host memory (written over the bus)
  const int64_t* k_writes;  // [batch, num_kv_heads, k_write_width]
  const int64_t* v_writes;  // [batch, num_kv_heads, v_write_width]
  int64_t k_write_width;    // 1 or 2
  int64_t v_write_width;
  int64_t k_arena_rows;
  int64_t v_arena_rows;
  int64_t batch;
  int64_t num_kv_heads;
  int64_t group;
  int64_t head_dim;
  int64_t block_size;
} KcacheStepRows;

// The arena row a write table entry names (KcacheStepRows): (slice, row in the block) when width is 2, the row itself
// when it is 1; -1 (no write) when its first value is negative.
#ifdef __CUDACC__
__host__ __device__
#endif
static inline int64_t kcache_write_row(const int64_t* entry, int64_t width, int64_t block_size) {
  if (entry[0] < 0) return -1;
  return width == 2 ? entry[0] * block_size + entry[1] : entry[0];
}

// The CPU version (paged_attention_cpu.cc). Returns 0, or 1 when the shape fields are unusable (kcache_paged_attention_invalid says why).
size_t kcache_paged_attention_cpu_scratch_bytes(const KcachePagedAttention* args);
int kcache_paged_attention_cpu(const KcachePagedAttention* args);

// Rotates and writes the step's rows (KcacheStepRows). The CUDA version launches on `stream` without synchronising
// and returns 0 or a cudaError_t.
void kcache_step_rows_cpu(const KcacheStepRows* args);
int kcache_step_rows_cuda(const KcacheStepRows* args, void* stream);

// The CUDA version (paged_attention.cu, in kcache_paged_attention_cuda.so). Every pointer is device-visible
// (device memory, or pinned/registered host memory under unified addressing). Launches on `stream`
// (a cudaStream_t) without synchronising; returns 0 or a cudaError_t (text: kcache_paged_attention_cuda_error).
size_t kcache_paged_attention_cuda_scratch_bytes(const KcachePagedAttention* args);
int kcache_paged_attention_cuda(const KcachePagedAttention* args, void* stream);
const char* kcache_paged_attention_cuda_error(int code);

// Checks the shape fields; returns NULL when they are usable, else a message naming the field.
static inline const char* kcache_paged_attention_invalid(const KcachePagedAttention* a) {
  if (a->batch < 0) return "batch must not be negative";
  if (a->num_kv_heads < 1) return "num_kv_heads must be at least 1";
  if (a->group < 1) return "group (query heads per KV head) must be at least 1";
  if (a->head_dim < 4 || a->head_dim > 256 || a->head_dim % 4 != 0) return "head_dim must be a multiple of 4 from 4 to 256";
  if (a->block_size < 1) return "block_size must be at least 1";
  if (a->num_blocks < 0) return "num_blocks must not be negative";
  if (a->top_n < 0) return "top_n must not be negative";
  return NULL;
}

#ifdef __cplusplus
}
#endif

#endif  // KCACHE_PAGED_ATTENTION_H_
