// The CUDA version of the paged decode attention (contract: paged_attention.h), built into
// kcache_paged_attention_cuda.so with the CUDA runtime linked statically.
//
// One query token per sequence: memory-bound. The T columns of a row are split into C chunks (multiples of
// kQuantum positions) so that a short batch with a long context still fills the GPU.
//   chunk_kernel, grid (batch * num_kv_heads, C, ceil(group / 8)), kThreads threads: each K row of the chunk is
//     read once for every query head of the group (up to 8 at a time, q held in registers). A row group of
//     lanes reads a row (up to 4 float4 per lane: head_dim 64 is 4 lanes, 8 rows per warp); each row group
//     runs its own online softmax over its rows, with the K (and V) loads of its next rows and the mask and
//     slice ids of the rows after them in flight, and no barrier until the end, where the row groups and then
//     the warps are merged in a fixed order (log-sum-exp).
//     Masked positions (-inf) are read from neither K nor V.
//   exact (top_n == 0): chunk_kernel<EXACT> writes the output itself when C == 1, else (m, l, acc) per chunk,
//     which merge_kernel (one block per query head) combines.
//   KCache (top_n > 0): chunk_kernel<SCORES> writes s_t for every t < T and (m, l) per chunk; keys_kernel,
//     grid (rows, key chunks of kKeyChunk positions), turns them into keys (the bits of p_t = expf(s_t - M) / L,
//     plus 1; 0 for masked positions) in place, with a histogram of their top bits per key chunk;
//     select_kernel, one block per query head, finds the histogram bin holding the top_n-th key, gathers the
//     keys at or above it into shared memory and sorts them (p descending, position ascending); when they are
//     too many, it finishes a radix select over the keys in memory and collects in position order instead.
//     Then the weighted sum of the selected V rows (many rows in flight: V may be host memory over the bus).
// Deterministic: no float atomics; every sum has a fixed order for a given shape. fp32 with expf, no fast math.
// Scratch (args->scratch; kcache_paged_attention_cuda_scratch_bytes; each section 256-byte aligned), with
// rows = batch * num_kv_heads * group, KC = ceil(T / kKeyChunk), n_sel = min(top_n, T):
//   exact, C > 1:  stats float2 [rows, C] (m, l), acc float [rows, C, head_dim]; C == 1: none
//   top_n > 0:     scores float [rows, Tp] (Tp = T rounded up to 4; then the keys), stats float2 [rows, C],
//                  hist uint16 [rows, KC, 1024], counts uint32 [rows, KC], sel_pos int32 [rows, n_sel],
//                  sel_key uint32 [rows, n_sel] (the last two only used when the shared-memory path can't be)
#include "paged_attention.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

namespace {

constexpr unsigned kFull = 0xffffffffu;

// chunk_kernel / merge_kernel
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kQuantum = 256;        // chunk lengths are multiples of this
constexpr int kMaxGroup = 8;         // query heads per block (grid z covers more)
constexpr int kTargetBlocks = 1024;  // the chunk count aims at batch * num_kv_heads * C >= this
constexpr int kMaxChunks = 1024;
constexpr int kMergeThreads = 256;

// keys_kernel
constexpr int kKeyThreads = 256;
constexpr int kKeyChunk = 4096;  // positions per block (and per histogram: counts fit 16 bits)
constexpr int kBins = 1024;      // histogram of key >> kBinShift (keys <= 0x3f800001, so bins <= 1016)
constexpr int kBinShift = 20;

// select_kernel
constexpr int kSelThreads = 256;
constexpr int kSelWarps = kSelThreads / 32;
constexpr int kSelItems = 16;  // consecutive positions per thread in the ordered collection (4 x uint4)
constexpr int kCap = 2048;     // candidates sorted in shared memory
constexpr int kBinsPerThread = kBins / kSelThreads;  // select_kernel: consecutive bins per thread
static_assert(kBinsPerThread == 4 && kSelThreads >= 256, "select_kernel's bin split and digit passes");

struct Plan {
  int64_t T = 0;       // columns
  int64_t Tp = 0;      // score row stride (T rounded up to 4)
  int64_t rows = 0;    // batch * num_kv_heads * group
  int64_t n_sel = 0;   // min(top_n, T)
  int chunks = 0;      // C
  int chunk_len = 0;   // positions per chunk, a multiple of kQuantum
  int key_chunks = 0;  // KC
  int maxg = 0;        // query heads per chunk_kernel block: 1, 2, 4 or 8
  int tpr = 0, nq = 0;          // chunk_kernel: lanes per row (a power of two <= 32), float4 per lane per row (<= 4)
  int sel_tpr = 0, sel_nq = 0;  // the same for select_kernel (nq <= 2)
  size_t off_stats = 0, off_acc = 0, off_scores = 0, off_hist = 0, off_counts = 0, off_sel_pos = 0, off_sel_key = 0;
  size_t bytes = 0;
};

size_t align256(size_t n) { return (n + 255) & ~size_t(255); }

// Lanes per row and float4 per lane for rows of d4 float4, aiming at nq_target float4 per lane (wider rows per
// lane: fewer instructions per row, which bounds these kernels at small head_dim).
void lanes_for(int d4, int nq_target, int* tpr, int* nq) {
  int p2 = 1;
  while (p2 < d4) p2 *= 2;
  int t = p2 / nq_target;
  t = t < 1 ? 1 : t > 32 ? 32 : t;
  *tpr = t;
  *nq = (d4 + t - 1) / t;  // <= 4
}

Plan make_plan(const KcachePagedAttention* a) {
  Plan p;
  p.T = a->num_blocks * a->block_size;
  p.Tp = (p.T + 3) & ~int64_t(3);
  p.rows = a->batch * a->num_kv_heads * a->group;
  const int d4 = int(a->head_dim / 4);
  p.maxg = a->group <= 1 ? 1 : a->group <= 2 ? 2 : a->group <= 4 ? 4 : kMaxGroup;
  lanes_for(d4, p.maxg == 1 ? 4 : p.maxg == 2 ? 2 : 1, &p.tpr, &p.nq);
  lanes_for(d4, 1, &p.sel_tpr, &p.sel_nq);  // whole rows per warp instruction: larger reads over the bus
  if (a->batch == 0 || p.T == 0) return p;
  const int64_t quanta = (p.T + kQuantum - 1) / kQuantum;
  const int64_t bh = a->batch * a->num_kv_heads;
  int64_t want = (kTargetBlocks + bh - 1) / bh;
  if (want > quanta) want = quanta;
  if (want > kMaxChunks) want = kMaxChunks;
  if (want < 1) want = 1;
  const int64_t quanta_per_chunk = (quanta + want - 1) / want;
  p.chunks = int((quanta + quanta_per_chunk - 1) / quanta_per_chunk);
  p.chunk_len = int(quanta_per_chunk * kQuantum);
  p.key_chunks = int((p.T + kKeyChunk - 1) / kKeyChunk);
  size_t off = 0;
  if (a->top_n == 0) {
    if (p.chunks > 1) {
      p.off_stats = off;
      off = align256(off + size_t(p.rows) * p.chunks * 2 * sizeof(float));
      p.off_acc = off;
      off = align256(off + size_t(p.rows) * p.chunks * a->head_dim * sizeof(float));
    }
  } else {
    p.n_sel = a->top_n < p.T ? a->top_n : p.T;
    p.off_scores = off;
    off = align256(off + size_t(p.rows) * p.Tp * sizeof(float));
    p.off_stats = off;
    off = align256(off + size_t(p.rows) * p.chunks * 2 * sizeof(float));
    p.off_hist = off;
    off = align256(off + size_t(p.rows) * p.key_chunks * kBins * sizeof(uint16_t));
    p.off_counts = off;
    off = align256(off + size_t(p.rows) * p.key_chunks * sizeof(uint32_t));
    p.off_sel_pos = off;
    off = align256(off + size_t(p.rows) * p.n_sel * sizeof(int32_t));
    p.off_sel_key = off;
    off = align256(off + size_t(p.rows) * p.n_sel * sizeof(uint32_t));
  }
  p.bytes = off;
  return p;
}

// n / d for 0 <= n < 2^31 and a divisor d >= 1 fixed per call: (umulhi(n, mul) + n) >> shift, with
// shift = ceil(log2 d) and mul = floor(2^32 (2^shift - d) / d) + 1 (Granlund and Montgomery; no overflow for n < 2^31).
struct Divider {
  unsigned mul;
  int shift;
};

Divider make_divider(int64_t d) {
  Divider v;
  v.shift = 0;
  while ((int64_t(1) << v.shift) < d) ++v.shift;
  v.mul = unsigned((((uint64_t(1) << v.shift) - uint64_t(d)) << 32) / uint64_t(d) + 1);
  return v;
}

struct Params {
  const float* q;
  const float* k_arena;
  const int32_t* k_slices;
  const float* v_arena;
  const int32_t* v_slices;
  const float* mask;
  float* out;
  float2* stats;     // [rows, C]
  float* acc;        // exact, C > 1: [rows, C, D]
  float* scores;     // top_n > 0: [rows, Tp], then keys
  uint16_t* hist;    // [rows, KC, kBins]
  uint32_t* counts;  // [rows, KC]: unmasked positions
  int32_t* sel_pos;  // [rows, n_sel]
  uint32_t* sel_key;
  int64_t T, Tp, n_sel, top_n;
  int H, G, D, BS, NB;
  Divider bs_div;  // n / BS
  int chunks, chunk_len, key_chunks, tpr, sel_tpr;
  int renormalize;
  float scale;
};

__device__ __forceinline__ int div_bs(int n, const Params& p) {
  return int((__umulhi(unsigned(n), p.bs_div.mul) + unsigned(n)) >> p.bs_div.shift);
}

__device__ __forceinline__ float4 f4_zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }

__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}

__device__ __forceinline__ void axpy4(float w, float4 v, float4& acc) {
  acc.x = fmaf(w, v.x, acc.x);
  acc.y = fmaf(w, v.y, acc.y);
  acc.z = fmaf(w, v.z, acc.z);
  acc.w = fmaf(w, v.w, acc.w);
}

__device__ __forceinline__ float4 scale4(float4 v, float s) { return make_float4(v.x * s, v.y * s, v.z * s, v.w * s); }

__device__ __forceinline__ float4 shfl_xor4(float4 v, int off) {
  return make_float4(__shfl_xor_sync(kFull, v.x, off), __shfl_xor_sync(kFull, v.y, off),
                     __shfl_xor_sync(kFull, v.z, off), __shfl_xor_sync(kFull, v.w, off));
}

// exp(m - M) for a partial result with max m, 0 for an empty one (m == -inf).
__device__ __forceinline__ float rescale(float m, float M) { return m == -INFINITY ? 0.f : (m == M ? 1.f : expf(m - M)); }

// Writes four output floats: the weighted sum over the softmax denominator, or zeros for a row with every position
// masked (M = -inf).
__device__ __forceinline__ void write_normalised(float* o, float4 sum, float M, float L) {
  if (M == -INFINITY) {
    o[0] = o[1] = o[2] = o[3] = 0.f;
  } else {
    o[0] = sum.x / L;
    o[1] = sum.y / L;
    o[2] = sum.z / L;
    o[3] = sum.w / L;
  }
}

// ---------------------------------------------------------------------------------------------------------
// chunk_kernel. Lanes [rg * tpr, rg * tpr + tpr) of a warp form row group rg (rpw = 32 / tpr groups per
// warp, rb = kWarps * rpw per block); lane lr of a group reads the float4 columns lr, lr + tpr, ... of a row.
// Batch i of the chunk covers positions base_i + u * rb + (warp * rpw + rg), u < U (base_i = t_begin + i * U * rb).
// Shared memory (static): s_m, s_l 2 * 8 * MAXG * 4 B; EXACT: s_red 8 KiB. At most 8.5 KiB.
template <int MAXG, int NQ, bool EXACT>
__global__ void __launch_bounds__(kThreads, MAXG > 1 ? 1 : EXACT ? 3 : 4) chunk_kernel(const Params p) {
  constexpr int U0 = NQ >= 4 ? 1 : NQ == 2 ? 2 : 4;  // rows in flight per row group
  constexpr int U = MAXG * NQ >= 8 && U0 > 1 ? U0 / 2 : U0;
  __shared__ float s_m[kWarps][MAXG], s_l[kWarps][MAXG];
  __shared__ __align__(16) float s_red[EXACT ? kWarps : 1][EXACT ? 256 : 4];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t bh = blockIdx.x;
  const int c = blockIdx.y;
  const int g0 = blockIdx.z * MAXG;
  const int gn = min(MAXG, p.G - g0);
  const int64_t b = bh / p.H;
  const int tpr = p.tpr, rpw = 32 / tpr, rb = kWarps * rpw;
  const int lr = lane & (tpr - 1), rg = lane / tpr;
  const int d4 = p.D / 4;
  const int64_t row0 = bh * p.G + g0;  // first query-head row of this block
  const int mine = warp * rpw + rg;

  float4 qf[MAXG][NQ];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
#pragma unroll
    for (int j = 0; j < NQ; ++j) {
      const int c4 = lr + j * tpr;
      qf[g][j] = (g < gn && c4 < d4) ? __ldg(reinterpret_cast<const float4*>(p.q + (row0 + g) * p.D) + c4) : f4_zero();
    }
  }
  float m[MAXG], l[MAXG];
  float4 acc[EXACT ? MAXG : 1][NQ];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
  }
#pragma unroll
  for (int g = 0; g < (EXACT ? MAXG : 1); ++g) {
#pragma unroll
    for (int j = 0; j < NQ; ++j) acc[g][j] = f4_zero();
  }

  const int t_begin = c * p.chunk_len;
  const int t_end = int(p.T < int64_t(t_begin) + p.chunk_len ? p.T : int64_t(t_begin) + p.chunk_len);
  const float* mask_row = p.mask + b * p.T;
  const int32_t* ks_row = p.k_slices + bh * p.NB;
  const int32_t* vs_row = p.v_slices + bh * p.NB;
  const int step = U * rb;

  // The next batch's mask values (-inf past the chunk), slice ids and rows in their blocks, a batch ahead.
  float nmk[U];
  int32_t nks[U], nvs[U], nr[U];
  auto load_meta = [&](int base) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int t = base + u * rb + mine;
      nmk[u] = -INFINITY;
      nks[u] = 0;
      nvs[u] = 0;
      nr[u] = 0;
      if (t < t_end) {
        const int blk = div_bs(t, p);
        nr[u] = t - blk * p.BS;
        nmk[u] = mask_row[t];
        nks[u] = ks_row[blk];
        if (EXACT) nvs[u] = vs_row[blk];
      }
    }
  };
  load_meta(t_begin);

  for (int base = t_begin; base < t_end; base += step) {  // the same trip count for every thread
    float mk[U];
    float4 kf[U][NQ];
    float4 vf[EXACT ? U : 1][NQ];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      mk[u] = nmk[u];
      const bool live = mk[u] != -INFINITY;
      const int r = nr[u];
      const float4* krow = reinterpret_cast<const float4*>(p.k_arena + (live ? (int64_t(nks[u]) * p.BS + r) * p.D : 0));
#pragma unroll
      for (int j = 0; j < NQ; ++j) {
        const int c4 = lr + j * tpr;
        kf[u][j] = (live && c4 < d4) ? __ldg(krow + c4) : f4_zero();
      }
      if constexpr (EXACT) {
        const float4* vrow = reinterpret_cast<const float4*>(p.v_arena + (live ? (int64_t(nvs[u]) * p.BS + r) * p.D : 0));
#pragma unroll
        for (int j = 0; j < NQ; ++j) {
          const int c4 = lr + j * tpr;
          vf[u][j] = (live && c4 < d4) ? vrow[c4] : f4_zero();
        }
      }
    }
    if (base + step < t_end) load_meta(base + step);

    float s[U][MAXG];
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        s[u][g] = -INFINITY;
        if (g < gn) {
          float d = 0.f;
#pragma unroll
          for (int j = 0; j < NQ; ++j) d = dot4(qf[g][j], kf[u][j], d);
          for (int off = tpr >> 1; off > 0; off >>= 1) d += __shfl_xor_sync(kFull, d, off);  // same bits in every lane
          if (mk[u] != -INFINITY) s[u][g] = p.scale * d + mk[u];
        }
      }
    }
    if constexpr (!EXACT) {
      if (lr == 0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int t = base + u * rb + mine;
          if (t < t_end) {
#pragma unroll
            for (int g = 0; g < MAXG; ++g) {
              if (g < gn) p.scores[(row0 + g) * p.Tp + t] = s[u][g];
            }
          }
        }
      }
    }
    // Online softmax of this row group.
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      if (g < gn) {
        float bm = s[0][g];
#pragma unroll
        for (int u = 1; u < U; ++u) bm = fmaxf(bm, s[u][g]);
        const float m_new = fmaxf(m[g], bm);
        if (m_new != -INFINITY) {
          const float alpha = rescale(m[g], m_new);
          float e[U];
          float sum = 0.f;
#pragma unroll
          for (int u = 0; u < U; ++u) {
            e[u] = s[u][g] == -INFINITY ? 0.f : expf(s[u][g] - m_new);
            sum += e[u];
          }
          l[g] = l[g] * alpha + sum;
          if constexpr (EXACT) {
#pragma unroll
            for (int j = 0; j < NQ; ++j) {
              float4 a = scale4(acc[g][j], alpha);
#pragma unroll
              for (int u = 0; u < U; ++u) axpy4(e[u], vf[u][j], a);
              acc[g][j] = a;
            }
          }
          m[g] = m_new;
        }
      }
    }
  }

  // Merge the row groups of each warp (butterfly: every lane of a group ends with the same m and l).
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    if (g < gn) {
      for (int off = tpr; off < 32; off <<= 1) {
        const float mo = __shfl_xor_sync(kFull, m[g], off);
        const float lo = __shfl_xor_sync(kFull, l[g], off);
        const float M = fmaxf(m[g], mo);
        const float a = rescale(m[g], M), ao = rescale(mo, M);
        l[g] = l[g] * a + lo * ao;
        if constexpr (EXACT) {
#pragma unroll
          for (int j = 0; j < NQ; ++j) {
            const float4 other = shfl_xor4(acc[g][j], off);
            float4 x = scale4(acc[g][j], a);
            axpy4(ao, other, x);
            acc[g][j] = x;
          }
        }
        m[g] = M;
      }
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      s_m[warp][g] = m[g];
      s_l[warp][g] = l[g];
    }
  }
  // Then the warps, in order.
  if constexpr (!EXACT) {
    __syncthreads();
    if (tid < gn) {
      float M = -INFINITY;
      for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w][tid]);
      float L = 0.f;
      for (int w = 0; w < kWarps; ++w) L += s_l[w][tid] * rescale(s_m[w][tid], M);
      p.stats[(row0 + tid) * p.chunks + c] = make_float2(M, L);
    }
  } else {
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      if (g < gn) {
        if (rg == 0) {
#pragma unroll
          for (int j = 0; j < NQ; ++j) {
            const int c4 = lr + j * tpr;
            if (c4 < d4) reinterpret_cast<float4*>(s_red[warp])[c4] = acc[g][j];
          }
        }
        __syncthreads();
        if (tid < d4) {
          float M = -INFINITY;
          for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w][g]);
          float L = 0.f;
          float4 sum = f4_zero();
          for (int w = 0; w < kWarps; ++w) {
            const float f = rescale(s_m[w][g], M);
            L += s_l[w][g] * f;
            axpy4(f, reinterpret_cast<const float4*>(s_red[w])[tid], sum);
          }
          if (p.chunks == 1) {
            write_normalised(p.out + (row0 + g) * p.D + tid * 4, sum, M, L);
          } else {
            if (M != -INFINITY) reinterpret_cast<float4*>(p.acc + ((row0 + g) * p.chunks + c) * p.D)[tid] = sum;
            if (tid == 0) p.stats[(row0 + g) * p.chunks + c] = make_float2(M, L);
          }
        }
        __syncthreads();  // s_red is rewritten for the next query head
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// merge_kernel (exact, C > 1): one block of kMergeThreads per query-head row. Thread (grp, col) sums the
// chunks grp, grp + ngrp, ... of float4 column col; then the groups are summed in order.
// Shared memory: s_w kMaxChunks * 4 = 4 KiB + s_part kMergeThreads * 16 = 4 KiB + 8 B.
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const Params p) {
  __shared__ float s_w[kMaxChunks];
  __shared__ float s_ML[2];
  __shared__ float4 s_part[kMergeThreads];
  const int tid = threadIdx.x, lane = tid & 31;
  const int64_t row = blockIdx.x;
  const float2* st = p.stats + row * p.chunks;
  if (tid < 32) {
    float M = -INFINITY;
    for (int c = lane; c < p.chunks; c += 32) M = fmaxf(M, st[c].x);
    for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(kFull, M, off));
    float L = 0.f;
    for (int c = lane; c < p.chunks; c += 32) {
      const float2 ml = st[c];
      const float w = rescale(ml.x, M);
      s_w[c] = w;
      L += ml.y * w;
    }
    for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(kFull, L, off);
    if (lane == 0) {
      s_ML[0] = M;
      s_ML[1] = L;
    }
  }
  __syncthreads();
  const float M = s_ML[0], L = s_ML[1];
  const int d4 = p.D / 4;
  const int ngrp = kMergeThreads / d4;  // d4 <= 64
  const int grp = tid / d4, col = tid - grp * d4;
  const float4* part = reinterpret_cast<const float4*>(p.acc + row * p.chunks * p.D);
  if (grp < ngrp) {
    float4 sum = f4_zero();
#pragma unroll 4
    for (int c = grp; c < p.chunks; c += ngrp) {
      const float w = s_w[c];
      if (w != 0.f) axpy4(w, part[int64_t(c) * d4 + col], sum);  // a chunk with no unmasked position is unwritten
    }
    s_part[tid] = sum;
  }
  __syncthreads();
  if (tid < d4) {
    float4 sum = s_part[tid];
    for (int g = 1; g < ngrp; ++g) {
      const float4 x = s_part[g * d4 + tid];
      sum.x += x.x;
      sum.y += x.y;
      sum.z += x.z;
      sum.w += x.w;
    }
    write_normalised(p.out + row * p.D + tid * 4, sum, M, L);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Keys: 0 for a masked position, else (bits of p) + 1. p >= 0, so the keys order like p, and an unmasked
// position whose p underflows to 0 still ranks above every masked one.

// Adds 1 to hist[bin] for every lane with `active` (warp-aggregated); every lane of the warp must call it.
__device__ __forceinline__ void hist_add(unsigned* hist, unsigned bin, bool active) {
  const unsigned act = __ballot_sync(kFull, active);
  if (active) {
    const unsigned peers = __match_any_sync(act, bin);
    if ((threadIdx.x & 31) == unsigned(__ffs(peers) - 1)) atomicAdd(&hist[bin], unsigned(__popc(peers)));
  }
}

// The global max M and sum L of a query-head row from its chunk statistics (warp 0 of a block calls it).
__device__ __forceinline__ float2 row_max_sum(const float2* st, int chunks) {
  const int lane = threadIdx.x & 31;
  float M = -INFINITY;
  for (int c = lane; c < chunks; c += 32) M = fmaxf(M, st[c].x);
  for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(kFull, M, off));
  float L = 0.f;
  for (int c = lane; c < chunks; c += 32) {
    const float2 ml = st[c];
    L += ml.y * rescale(ml.x, M);
  }
  for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(kFull, L, off);
  return make_float2(M, L);
}

// keys_kernel: grid (rows, KC), kKeyThreads threads; positions [kc * kKeyChunk, +kKeyChunk) of the padded row.
// Shared memory: s_hist 4 KiB + 40 B.
__global__ void __launch_bounds__(kKeyThreads) keys_kernel(const Params p) {
  __shared__ unsigned s_hist[kBins];
  __shared__ float s_ML[2];
  __shared__ unsigned s_count[kKeyThreads / 32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t row = blockIdx.x;
  const int kc = blockIdx.y;
  for (int i = tid; i < kBins; i += kKeyThreads) s_hist[i] = 0u;
  if (warp == 0) {
    const float2 ML = row_max_sum(p.stats + row * p.chunks, p.chunks);
    if (lane == 0) {
      s_ML[0] = ML.x;
      s_ML[1] = ML.y;
    }
  }
  __syncthreads();
  const float M = s_ML[0], L = s_ML[1];
  uint4* keys4 = reinterpret_cast<uint4*>(p.scores + row * p.Tp);
  const float4* sc4 = reinterpret_cast<const float4*>(p.scores + row * p.Tp);
  const int g_begin = kc * (kKeyChunk / 4);
  const int g_end = int(p.Tp / 4 < int64_t(g_begin) + kKeyChunk / 4 ? p.Tp / 4 : int64_t(g_begin) + kKeyChunk / 4);
  // kKeyChunk / 4 / kKeyThreads groups of 4 positions per thread, all loaded before use.
  constexpr int kGroups = kKeyChunk / 4 / kKeyThreads;
  static_assert(kGroups * 4 * kKeyThreads == kKeyChunk, "keys_kernel covers its chunk in one round");
  float4 sv[kGroups];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
    const int i4 = g_begin + j * kKeyThreads + tid;
    sv[j] = i4 < g_end ? sc4[i4] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
  }
  unsigned unmasked = 0;
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
    const int i4 = g_begin + j * kKeyThreads + tid;
    const float x[4] = {sv[j].x, sv[j].y, sv[j].z, sv[j].w};
    unsigned kv[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      // p is in [0, 1], so its key is at most 0x3f800001; a NaN p (a NaN or infinite score) is held to that bound
      // too, so that its histogram bin stays inside s_hist.
      kv[e] = (i4 * 4 + e < p.T && x[e] != -INFINITY) ? min(__float_as_uint(expf(x[e] - M) / L) + 1u, 0x3f800001u) : 0u;
      unmasked += kv[e] != 0u;
    }
    if (i4 < g_end) keys4[i4] = make_uint4(kv[0], kv[1], kv[2], kv[3]);
#pragma unroll
    for (int e = 0; e < 4; ++e) hist_add(s_hist, kv[e] >> kBinShift, kv[e] != 0u);
  }
  for (int off = 16; off > 0; off >>= 1) unmasked += __shfl_xor_sync(kFull, unmasked, off);
  if (lane == 0) s_count[warp] = unmasked;
  __syncthreads();
  uint16_t* h = p.hist + (row * p.key_chunks + kc) * kBins;
  for (int i = tid; i < kBins; i += kKeyThreads) h[i] = uint16_t(s_hist[i]);
  if (tid == 0) {
    unsigned n = 0;
    for (int w = 0; w < kKeyThreads / 32; ++w) n += s_count[w];
    p.counts[row * p.key_chunks + kc] = n;
  }
}

// Exclusive prefix sum over the block (in thread order); *total gets the block's sum. Every thread calls it.
__device__ __forceinline__ unsigned block_exclusive_scan(unsigned v, unsigned* s_scan, unsigned* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned x = v;
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned y = __shfl_up_sync(kFull, x, off);
    if (lane >= off) x += y;
  }
  if (lane == 31) s_scan[warp] = x;
  __syncthreads();
  if (warp == 0) {
    unsigned w = lane < kSelWarps ? s_scan[lane] : 0u;
    for (int off = 1; off < 32; off <<= 1) {
      const unsigned y = __shfl_up_sync(kFull, w, off);
      if (lane >= off) w += y;
    }
    if (lane < kSelWarps) s_scan[lane] = w;
  }
  __syncthreads();
  const unsigned before = warp ? s_scan[warp - 1] : 0u;
  *total = s_scan[kSelWarps - 1];
  __syncthreads();  // s_scan is free again
  return before + x - v;
}

// select_kernel: one block of kSelThreads per query-head row.
// Shared memory (static): s_hist 4 KiB + s_list 16 KiB + s_red 16 KiB + about 100 B.
template <int NQ>
__global__ void __launch_bounds__(kSelThreads) select_kernel(const Params p) {
  __shared__ unsigned s_hist[kBins];
  __shared__ unsigned s_scan[kSelWarps];
  __shared__ unsigned s_sel[5];
  __shared__ unsigned s_count;
  __shared__ float s_norm;
  __shared__ unsigned long long s_list[kCap];  // (key << 32) | (0xffffffff - position)
  __shared__ __align__(16) float s_red[kSelWarps][256];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t row = blockIdx.x;
  const int64_t bh = row / p.G;
  const int d4 = p.D / 4;
  float* out = p.out + row * p.D;
  const int kcs = p.key_chunks;

  // The row's histogram, its unmasked count, and the end of its last key chunk with an unmasked position.
  {  // thread tid sums bins 4 tid .. 4 tid + 3 (one 8-byte load per key chunk)
    const uint2* hg = reinterpret_cast<const uint2*>(p.hist + row * kcs * kBins);
    unsigned h0 = 0, h1 = 0, h2 = 0, h3 = 0;
#pragma unroll 8
    for (int kc = 0; kc < kcs; ++kc) {
      const uint2 v = hg[kc * (kBins / 4) + tid];
      h0 += v.x & 0xffffu;
      h1 += v.x >> 16;
      h2 += v.y & 0xffffu;
      h3 += v.y >> 16;
    }
    s_hist[4 * tid] = h0;
    s_hist[4 * tid + 1] = h1;
    s_hist[4 * tid + 2] = h2;
    s_hist[4 * tid + 3] = h3;
  }
  if (warp == 0) {
    unsigned n = 0;
    int last = -1;
    for (int kc = lane; kc < kcs; kc += 32) {
      const unsigned x = p.counts[row * kcs + kc];
      n += x;
      if (x != 0u) last = kc;
    }
    for (int off = 16; off > 0; off >>= 1) {
      n += __shfl_xor_sync(kFull, n, off);
      last = max(last, __shfl_xor_sync(kFull, last, off));
    }
    if (lane == 0) {
      s_sel[0] = n;
      s_sel[1] = unsigned(last + 1);
    }
  }
  if (tid == 0) s_count = 0u;
  __syncthreads();
  const unsigned n_unmasked = s_sel[0];
  if (n_unmasked == 0u) {  // every position masked
    for (int d = tid; d < p.D; d += kSelThreads) out[d] = 0.f;
    return;
  }
  const int64_t t_eff = int64_t(s_sel[1]) * kKeyChunk < p.T ? int64_t(s_sel[1]) * kKeyChunk : p.T;
  const int n4 = int((t_eff + 3) / 4);  // n4 * 4 <= Tp
  const uint4* keys4 = reinterpret_cast<const uint4*>(p.scores + row * p.Tp);
  const bool take_all = int64_t(n_unmasked) <= p.top_n;

  // Candidates: every key >= lo_key. With take_all, every unmasked key; else the keys in the bin holding the
  // top_n-th largest key (b1) and above.
  unsigned lo_key = 1u, above = 0u, n_cand = n_unmasked;
  int b1 = 0;
  if (!take_all) {
    const int bhi = kBins - 1 - kBinsPerThread * tid;  // this thread's bins: bhi down to bhi - kBinsPerThread + 1
    unsigned mine = 0;
#pragma unroll
    for (int i = 0; i < kBinsPerThread; ++i) mine += s_hist[bhi - i];
    unsigned total;
    const unsigned excl = block_exclusive_scan(mine, s_scan, &total);
    const unsigned k = unsigned(p.top_n);
    if (excl < k && k <= excl + mine) {  // exactly one thread
      unsigned before = excl;
      int bin = bhi;
      for (int i = 0; i < kBinsPerThread - 1; ++i, --bin) {
        if (k <= before + s_hist[bin]) break;
        before += s_hist[bin];
      }
      s_sel[2] = unsigned(bin);
      s_sel[3] = before;
      s_sel[4] = before + s_hist[bin];
    }
    __syncthreads();
    b1 = int(s_sel[2]);
    above = s_sel[3];
    n_cand = s_sel[4];  // not s_hist: the radix passes below rewrite it without a barrier first
    lo_key = b1 == 0 ? 1u : unsigned(b1) << kBinShift;
  }
  const bool in_smem = n_cand <= unsigned(kCap);
  int n = 0;  // selected rows
  int32_t* sel_pos = p.sel_pos + row * p.n_sel;
  uint32_t* sel_key = p.sel_key + row * p.n_sel;

  if (in_smem) {
    // Gather the candidates (in any order), then sort them: key descending, position ascending.
    const unsigned lt = (1u << lane) - 1u;
    constexpr int kLoads = 8;  // uint4 per thread in flight
    for (int base = 0; base < n4; base += kSelThreads * kLoads) {  // uniform trip count (ballots)
      uint4 k4[kLoads];
#pragma unroll
      for (int j = 0; j < kLoads; ++j) {
        const int i4 = base + j * kSelThreads + tid;
        k4[j] = i4 < n4 ? keys4[i4] : make_uint4(0u, 0u, 0u, 0u);
      }
#pragma unroll
      for (int j = 0; j < kLoads; ++j) {
        const int i4 = base + j * kSelThreads + tid;
        const unsigned kv[4] = {k4[j].x, k4[j].y, k4[j].z, k4[j].w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool take = kv[e] >= lo_key;
          const unsigned vote = __ballot_sync(kFull, take);
          if (vote != 0u) {
            const int leader = __ffs(vote) - 1;
            unsigned slot = 0u;
            if (lane == leader) slot = atomicAdd(&s_count, unsigned(__popc(vote)));
            slot = __shfl_sync(kFull, slot, leader) + unsigned(__popc(vote & lt));
            if (take && slot < unsigned(kCap)) {
              s_list[slot] = (static_cast<unsigned long long>(kv[e]) << 32) | (0xffffffffu - unsigned(i4 * 4 + e));
            }
          }
        }
      }
    }
    __syncthreads();
    const int n_list = int(min(s_count, unsigned(kCap)));
    int n2 = 1;
    while (n2 < n_list) n2 *= 2;
    for (int i = n_list + tid; i < n2; i += kSelThreads) s_list[i] = 0ull;  // sorts last
    __syncthreads();
    for (int k = 2; k <= n2; k <<= 1) {  // bitonic sort, descending
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int i = tid; i < n2; i += kSelThreads) {
          const int ixj = i ^ j;
          if (ixj > i) {
            const unsigned long long a = s_list[i], bb = s_list[ixj];
            if (((i & k) == 0) ? (a < bb) : (a > bb)) {
              s_list[i] = bb;
              s_list[ixj] = a;
            }
          }
        }
        __syncthreads();
      }
    }
    n = int(int64_t(n_list) < p.top_n ? int64_t(n_list) : p.top_n);
  } else {
    // Too many candidates: radix select the threshold key over the keys in memory (the bits below the
    // histogram's), then collect the selection in position order.
    unsigned thr_gt = 0u, thr_eq = 0u, n_eq = 0u;
    if (!take_all) {
      unsigned prefix = unsigned(b1) << kBinShift, hi = ~((1u << kBinShift) - 1u), k = unsigned(p.top_n) - above;
#pragma unroll 1
      for (int pass = 0; pass < 3; ++pass) {  // bits 19..12, 11..4, 3..0
        const int shift = pass == 0 ? 12 : pass == 1 ? 4 : 0;
        const unsigned dmask = pass == 2 ? 0xfu : 0xffu;
        if (tid < 256) s_hist[tid] = 0u;
        __syncthreads();
        for (int base = 0; base < n4; base += kSelThreads) {
          const int i4 = base + tid;
          const bool in = i4 < n4;
          const uint4 k4 = in ? keys4[i4] : make_uint4(0u, 0u, 0u, 0u);
          hist_add(s_hist, (k4.x >> shift) & dmask, in && (k4.x & hi) == prefix);
          hist_add(s_hist, (k4.y >> shift) & dmask, in && (k4.y & hi) == prefix);
          hist_add(s_hist, (k4.z >> shift) & dmask, in && (k4.z & hi) == prefix);
          hist_add(s_hist, (k4.w >> shift) & dmask, in && (k4.w & hi) == prefix);
        }
        __syncthreads();
        const int bin = int(dmask) - tid;  // thread tid holds bin dmask - tid (descending)
        const unsigned cnt = bin >= 0 ? s_hist[bin] : 0u;
        unsigned total;
        const unsigned excl = block_exclusive_scan(cnt, s_scan, &total);
        if (excl < k && k <= excl + cnt) {
          s_sel[0] = prefix | (unsigned(bin) << shift);
          s_sel[1] = k - excl;
        }
        __syncthreads();
        prefix = s_sel[0];
        k = s_sel[1];
        hi |= dmask << shift;
        __syncthreads();  // s_sel and s_hist are rewritten by the next pass
      }
      thr_gt = prefix;
      thr_eq = prefix;
      n_eq = k;
    }
    // Ordered collection: thread tid holds kSelItems consecutive positions of each super-tile.
    const unsigned n_target = take_all ? n_unmasked : unsigned(p.top_n);
    unsigned eq_run = 0u, sel_run = 0u;
    for (int st0 = 0; st0 < n4 * 4 && sel_run < n_target; st0 += kSelThreads * kSelItems) {
      const int first = st0 + tid * kSelItems;
      unsigned kv[kSelItems];
#pragma unroll
      for (int j = 0; j < kSelItems / 4; ++j) {
        const int i4 = first / 4 + j;
        const uint4 k4 = i4 < n4 ? keys4[i4] : make_uint4(0u, 0u, 0u, 0u);
        kv[4 * j] = k4.x;
        kv[4 * j + 1] = k4.y;
        kv[4 * j + 2] = k4.z;
        kv[4 * j + 3] = k4.w;
      }
      unsigned my_eq = 0u;
#pragma unroll
      for (int e = 0; e < kSelItems; ++e) my_eq += (n_eq != 0u && kv[e] == thr_eq);
      unsigned eq_total;
      const unsigned eq_before = eq_run + block_exclusive_scan(my_eq, s_scan, &eq_total);
      unsigned my_sel = 0u, sel_mask = 0u;
      unsigned eq_i = eq_before;
#pragma unroll
      for (int e = 0; e < kSelItems; ++e) {
        bool take = kv[e] > thr_gt;
        if (n_eq != 0u && kv[e] == thr_eq) {
          take = eq_i < n_eq;
          ++eq_i;
        }
        if (take) {
          sel_mask |= 1u << e;
          ++my_sel;
        }
      }
      unsigned sel_total;
      unsigned idx = sel_run + block_exclusive_scan(my_sel, s_scan, &sel_total);
#pragma unroll
      for (int e = 0; e < kSelItems; ++e) {
        if (sel_mask & (1u << e)) {
          if (int64_t(idx) < p.n_sel) {
            sel_pos[idx] = first + e;
            sel_key[idx] = kv[e];
          }
          ++idx;
        }
      }
      eq_run += eq_total;
      sel_run += sel_total;
    }
    n = int(int64_t(sel_run) < p.n_sel ? int64_t(sel_run) : p.n_sel);
    __syncthreads();  // sel_pos / sel_key written above are read by other threads below
  }

  // Selected entry i: its key (p's bits + 1) and position.
  auto entry_key = [&](int i) -> unsigned { return in_smem ? unsigned(s_list[i] >> 32) : sel_key[i]; };
  auto entry_pos = [&](int i) -> int {
    return in_smem ? int(0xffffffffu - unsigned(s_list[i] & 0xffffffffull)) : sel_pos[i];
  };

  // The weights' normaliser: 1, or the sum of the selected p (fixed order: strided, then a fixed tree).
  float norm = 1.f;
  if (p.renormalize) {
    float s = 0.f;
    for (int i = tid; i < n; i += kSelThreads) s += __uint_as_float(entry_key(i) - 1u);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
    if (lane == 0) s_red[warp][0] = s;
    __syncthreads();
    if (warp == 0) {
      float x = lane < kSelWarps ? s_red[lane][0] : 0.f;
      for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(kFull, x, off);
      if (lane == 0) s_norm = x;
    }
    __syncthreads();
    norm = s_norm;
  }

  // Weighted V sum: entries i * RB + warp * RPW + rg, kUnroll rows in flight per thread.
  constexpr int kUnroll = NQ >= 2 ? 2 : 4;
  const int tpr = p.sel_tpr, rpw = 32 / tpr, rb = kSelWarps * rpw;
  const int lr = lane & (tpr - 1), rg = lane / tpr;
  const int32_t* vs_row = p.v_slices + bh * p.NB;
  float4 acc[NQ];
#pragma unroll
  for (int j = 0; j < NQ; ++j) acc[j] = f4_zero();
  for (int k0 = 0; k0 < n; k0 += rb * kUnroll) {
    float4 vf[kUnroll][NQ];
    float w[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = k0 + u * rb + warp * rpw + rg;
      const bool live = i < n;
      int64_t vrow = 0;
      w[u] = 0.f;
      if (live) {
        const int t = entry_pos(i);
        const int blk = div_bs(t, p);
        vrow = (int64_t(vs_row[blk]) * p.BS + (t - blk * p.BS)) * p.D;
        const float pk = __uint_as_float(entry_key(i) - 1u);
        w[u] = p.renormalize ? pk / norm : pk;
      }
      const float4* v = reinterpret_cast<const float4*>(p.v_arena + vrow);
#pragma unroll
      for (int j = 0; j < NQ; ++j) {
        const int c4 = lr + j * tpr;
        vf[u][j] = (live && c4 < d4) ? v[c4] : f4_zero();
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int j = 0; j < NQ; ++j) axpy4(w[u], vf[u][j], acc[j]);
    }
  }
  __syncthreads();  // s_red[.][0] was read above
#pragma unroll
  for (int j = 0; j < NQ; ++j) {
    float4 v = acc[j];
    for (int off = tpr; off < 32; off <<= 1) {
      const float4 o = shfl_xor4(v, off);
      v.x += o.x;
      v.y += o.y;
      v.z += o.z;
      v.w += o.w;
    }
    const int c4 = lr + j * tpr;
    if (rg == 0 && c4 < d4) reinterpret_cast<float4*>(s_red[warp])[c4] = v;
  }
  __syncthreads();
  if (tid < d4) {
    float4 sum = reinterpret_cast<const float4*>(s_red[0])[tid];
    for (int w2 = 1; w2 < kSelWarps; ++w2) {
      const float4 x = reinterpret_cast<const float4*>(s_red[w2])[tid];
      sum.x += x.x;
      sum.y += x.y;
      sum.z += x.z;
      sum.w += x.w;
    }
    float* o = out + tid * 4;
    o[0] = sum.x;
    o[1] = sum.y;
    o[2] = sum.z;
    o[3] = sum.w;
  }
}

// ---------------------------------------------------------------------------------------------------------

template <int MAXG, int NQ>
void launch_chunk(const Params& p, dim3 grid, bool exact, cudaStream_t stream) {
  if (exact) {
    chunk_kernel<MAXG, NQ, true><<<grid, kThreads, 0, stream>>>(p);
  } else {
    chunk_kernel<MAXG, NQ, false><<<grid, kThreads, 0, stream>>>(p);
  }
}

// NQ: 1, 2 or 4 float4 per lane (3 runs as 4); more than 2 only with one query head per block.
void launch_chunk_any(const Params& p, dim3 grid, int maxg, int nq, bool exact, cudaStream_t stream) {
  switch (maxg) {
    case 1:
      if (nq == 1) {
        launch_chunk<1, 1>(p, grid, exact, stream);
      } else if (nq == 2) {
        launch_chunk<1, 2>(p, grid, exact, stream);
      } else {
        launch_chunk<1, 4>(p, grid, exact, stream);
      }
      break;
    case 2: nq == 1 ? launch_chunk<2, 1>(p, grid, exact, stream) : launch_chunk<2, 2>(p, grid, exact, stream); break;
    case 4: nq == 1 ? launch_chunk<4, 1>(p, grid, exact, stream) : launch_chunk<4, 2>(p, grid, exact, stream); break;
    default: nq == 1 ? launch_chunk<8, 1>(p, grid, exact, stream) : launch_chunk<8, 2>(p, grid, exact, stream); break;
  }
}

}  // namespace

extern "C" size_t kcache_paged_attention_cuda_scratch_bytes(const KcachePagedAttention* args) {
  if (kcache_paged_attention_invalid(args) != NULL) return 0;
  return make_plan(args).bytes;
}

extern "C" int kcache_paged_attention_cuda(const KcachePagedAttention* a, void* stream_ptr) {
  if (kcache_paged_attention_invalid(a) != NULL) return int(cudaErrorInvalidValue);
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  if (a->batch == 0) return 0;
  const Plan plan = make_plan(a);
  if (plan.T == 0) {  // no columns: every row is fully masked
    cudaMemsetAsync(a->out, 0, size_t(plan.rows) * a->head_dim * sizeof(float), stream);
    return int(cudaGetLastError());
  }
  // Index ranges the kernels rely on (32-bit positions, grid dimensions).
  if (plan.T > INT32_MAX - 2 * kKeyChunk || plan.key_chunks > 65535 || a->num_kv_heads > INT32_MAX ||
      a->group > 65535 * int64_t(kMaxGroup) || a->top_n > INT32_MAX) {
    return int(cudaErrorInvalidValue);
  }
  char* scratch = static_cast<char*>(a->scratch);
  const bool exact = a->top_n == 0;
  Params p{};
  p.q = a->q;
  p.k_arena = a->k_arena;
  p.k_slices = a->k_slices;
  p.v_arena = a->v_arena;
  p.v_slices = a->v_slices;
  p.mask = a->mask;
  p.out = a->out;
  if (!exact || plan.chunks > 1) p.stats = reinterpret_cast<float2*>(scratch + plan.off_stats);
  if (exact && plan.chunks > 1) p.acc = reinterpret_cast<float*>(scratch + plan.off_acc);
  if (!exact) {
    p.scores = reinterpret_cast<float*>(scratch + plan.off_scores);
    p.hist = reinterpret_cast<uint16_t*>(scratch + plan.off_hist);
    p.counts = reinterpret_cast<uint32_t*>(scratch + plan.off_counts);
    p.sel_pos = reinterpret_cast<int32_t*>(scratch + plan.off_sel_pos);
    p.sel_key = reinterpret_cast<uint32_t*>(scratch + plan.off_sel_key);
  }
  p.T = plan.T;
  p.Tp = plan.Tp;
  p.n_sel = plan.n_sel;
  p.top_n = a->top_n;
  p.H = int(a->num_kv_heads);
  p.G = int(a->group);
  p.D = int(a->head_dim);
  p.BS = int(a->block_size);
  p.NB = int(a->num_blocks);
  p.bs_div = make_divider(a->block_size);
  p.chunks = plan.chunks;
  p.chunk_len = plan.chunk_len;
  p.key_chunks = plan.key_chunks;
  p.tpr = plan.tpr;
  p.sel_tpr = plan.sel_tpr;
  p.renormalize = a->renormalize;
  p.scale = a->scale;

  const int maxg = plan.maxg;
  const dim3 grid(unsigned(a->batch * a->num_kv_heads), unsigned(plan.chunks), unsigned((a->group + maxg - 1) / maxg));
  launch_chunk_any(p, grid, maxg, plan.nq, exact, stream);
  if (exact) {
    if (plan.chunks > 1) merge_kernel<<<unsigned(plan.rows), kMergeThreads, 0, stream>>>(p);
  } else {
    keys_kernel<<<dim3(unsigned(plan.rows), unsigned(plan.key_chunks)), kKeyThreads, 0, stream>>>(p);
    if (plan.sel_nq == 1) {
      select_kernel<1><<<unsigned(plan.rows), kSelThreads, 0, stream>>>(p);
    } else {
      select_kernel<2><<<unsigned(plan.rows), kSelThreads, 0, stream>>>(p);
    }
  }
  return int(cudaGetLastError());
}

namespace {

// step_rows_kernel: one block per (sequence, KV head). A thread per pair of the G query rows and the K row (RoPE,
// interleaved pairs), then per float2 of the V row.
__global__ void step_rows_kernel(const KcacheStepRows a) {
  const int64_t i = blockIdx.x;
  const int64_t b = i / a.num_kv_heads;
  const int64_t half = a.head_dim / 2;
  const int64_t pos = a.positions[b];
  const bool in_table = pos >= 0 && pos < a.rope_positions;
  const float2* rows = reinterpret_cast<const float2*>(a.qkv + i * (a.group + 2) * a.head_dim);
  const int64_t* kw = a.k_writes + i * a.k_write_width;
  const int64_t* vw = a.v_writes + i * a.v_write_width;
  const int64_t k_row = kcache_write_row(kw, a.k_write_width, a.block_size);
  const int64_t v_row = kcache_write_row(vw, a.v_write_width, a.block_size);
  const bool k_in = k_row >= 0 && k_row < a.k_arena_rows, v_in = v_row >= 0 && v_row < a.v_arena_rows;
  for (int64_t j = threadIdx.x; j < (a.group + 2) * half; j += blockDim.x) {
    const int64_t slot = j / half, jj = j - slot * half;
    float2 x = rows[j];
    if (slot <= a.group && in_table) {
      const float c = a.cos[pos * half + jj], s = a.sin[pos * half + jj];
      x = make_float2(x.x * c - x.y * s, x.y * c + x.x * s);
    }
    if (slot < a.group) {
      reinterpret_cast<float2*>(a.q_out + (i * a.group + slot) * a.head_dim)[jj] = x;
    } else if (slot == a.group) {
      if (k_in) reinterpret_cast<float2*>(a.k_arena + k_row * a.head_dim)[jj] = x;
    } else if (v_in) {
      reinterpret_cast<float2*>(a.v_arena + v_row * a.head_dim)[jj] = x;
    }
  }
}

}  // namespace

extern "C" int kcache_step_rows_cuda(const KcacheStepRows* a, void* stream_ptr) {
  if (a->batch * a->num_kv_heads == 0) return 0;
  if (a->head_dim % 2 != 0 || a->batch * a->num_kv_heads > INT32_MAX) return int(cudaErrorInvalidValue);
  const int64_t pairs = (a->group + 2) * (a->head_dim / 2);
  const unsigned threads = unsigned(pairs < 32 ? 32 : pairs > 256 ? 256 : (pairs + 31) / 32 * 32);
  step_rows_kernel<<<unsigned(a->batch * a->num_kv_heads), threads, 0, static_cast<cudaStream_t>(stream_ptr)>>>(*a);
  return int(cudaGetLastError());
}

extern "C" const char* kcache_paged_attention_cuda_error(int code) {
  if (code == 0) return "no error";
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}
