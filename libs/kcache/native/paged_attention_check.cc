// kcache_paged_attention_check [--quick] [--no-timing]: the CUDA paged decode attention (kcache_paged_attention_cuda.so,
// beside this program) against its CPU version (paged_attention_cpu.cc, linked in), on a machine with a GPU.
//   Correctness: random cases from a fixed seed (head_dim 8 and 64 and odd ones, group 1, 2, 3 and 9, contexts
//     1 to 32768, exact / top_n 64 / top_n >= context, renormalize 0/1, padded and holed masks with a length per
//     sequence, permuted slice tables, exact score ties, V in device memory and in mapped pinned host memory).
//     Each case: the largest |cuda - cpu| over the outputs (fails above 1e-4), a second CUDA run over garbage
//     output and scratch that must give the same bits, and for some cases a replay through a CUDA graph.
//   Step rows: kcache_step_rows_cuda (RoPE, the query rows out, K and V written through the write tables)
//     against kcache_step_rows_cpu; the SwiGlu kernel against its CPU version.
//   Timing: the ~110M model's shapes (12 KV heads, group 1, head_dim 64, block 16): time per call (CUDA
//     events over many calls after a warm-up) and the GB/s of the K and V rows read.
//   --quick: no context-32768 correctness cases and shorter timing. --no-timing: the correctness cases only
//   (e.g. under compute-sanitizer).
// Prints one line per case; exit status 0 only when every comparison passes (1 otherwise, 2 on a CUDA error).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "paged_attention.h"
#include "swiglu.h"

namespace {

#define CK(call)                                                                                  \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "CUDA error at %s:%d: %s (%s)\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)

constexpr float kFail = 1e-4f;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) / float(1ull << 24) * 2.0f - 1.0f; }  // [-1, 1)
  uint64_t below(uint64_t n) { return next() % n; }
};

enum class MaskKind { Full, Padded, Holes, Soft };
const char* mask_name(MaskKind m) {
  switch (m) {
    case MaskKind::Full: return "full";
    case MaskKind::Padded: return "padded";
    case MaskKind::Holes: return "holes";
    default: return "soft";
  }
}

struct Case {
  int64_t batch = 1, heads = 3, group = 1, head_dim = 64, block_size = 16, context = 512;
  int64_t top_n = 0;
  int renormalize = 0;
  MaskKind mask = MaskKind::Padded;
  bool v_host = false;
  bool ties = false;       // K rows drawn from 3 vectors: exact ties in the scores
  bool empty_seq = false;  // the last sequence has every position masked
  bool graph = false;      // also replay through a CUDA graph
  float scale_mul = 1.0f;  // scale = scale_mul / sqrt(head_dim)
  // Timing only, V in host memory: `layers` copies of the V arena, one allocation each like the engine's
  // per-layer host tier, and call i reads copy i % layers (so a step's footprint in host memory is the whole
  // model's, not one layer's); huge_pages: each copy is transparent-huge-page memory registered with
  // cudaHostRegister instead of cudaHostAlloc.
  int layers = 1;
  bool huge_pages = false;
};

std::string describe(const Case& c) {
  char mode[48];
  if (c.top_n == 0) {
    std::snprintf(mode, sizeof mode, "exact");
  } else {
    std::snprintf(mode, sizeof mode, "top%lld%s", (long long)c.top_n, c.renormalize ? "/renorm" : "");
  }
  char buf[256];
  char where[32];
  std::snprintf(where, sizeof where, "%s%s", c.v_host ? (c.huge_pages ? "host-thp" : "host") : "device",
                c.layers > 1 ? (" x" + std::to_string(c.layers)).c_str() : "");
  std::snprintf(buf, sizeof buf, "%-13s d%-3lld g%lld bs%-2lld B%-2lld H%-2lld ctx%-5lld mask=%s v=%s%s%s%s", mode,
                (long long)c.head_dim, (long long)c.group, (long long)c.block_size, (long long)c.batch,
                (long long)c.heads, (long long)c.context, mask_name(c.mask), where,
                c.ties ? " ties" : "", c.empty_seq ? " empty-seq" : "",
                c.scale_mul > 1.0f ? " peaky" : c.scale_mul < 1.0f ? " flat" : "");
  return buf;
}

// A case's data on the host and on the device.
struct Data {
  KcachePagedAttention host{}, dev{};
  std::vector<float> q, k, v, mask, out_cpu;
  std::vector<int32_t> k_slices, v_slices;
  std::vector<int64_t> lengths_open;  // unmasked positions per sequence
  float* d_q = nullptr;
  float* d_k = nullptr;
  float* d_v = nullptr;  // device memory, or the mapped pinned host buffer
  float* h_v = nullptr;  // the pinned host buffer (v_host): the first of h_vs
  std::vector<float*> h_vs;  // Case::layers copies
  size_t v_bytes = 0;        // of one copy (rounded up to 2 MiB with huge_pages)
  bool huge_pages = false;
  int32_t* d_ks = nullptr;
  int32_t* d_vs = nullptr;
  float* d_mask = nullptr;
  float* d_out = nullptr;
  void* d_scratch = nullptr;
  size_t scratch_bytes = 0, out_floats = 0;
};

template <typename T>
T* device_copy(const std::vector<T>& v) {
  T* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(v.size() * sizeof(T), 256)));
  if (!v.empty()) CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

void build(const Case& c, uint64_t seed, Data& d) {
  Rng rng(seed);
  const int64_t B = c.batch, H = c.heads, G = c.group, D = c.head_dim, BS = c.block_size;
  const int64_t NB = (c.context + BS - 1) / BS, T = NB * BS;
  const int64_t slices = B * H * NB + 5;  // a few slices no table names
  const size_t arena = size_t(slices) * BS * D;

  d.q.resize(size_t(B * H * G * D));
  for (float& x : d.q) x = rng.uniform();
  d.k.resize(arena);
  if (c.ties) {
    float base[3][256];
    for (auto& row : base) {
      for (int64_t i = 0; i < D; i++) row[i] = rng.uniform();
    }
    for (size_t r = 0; r < arena / D; r++) std::memcpy(&d.k[r * D], base[(r * 7 + r / 5) % 3], D * sizeof(float));
  } else {
    for (float& x : d.k) x = rng.uniform();
  }
  d.v.resize(arena);
  for (float& x : d.v) x = rng.uniform();

  // Slice tables: the first B*H*NB entries of two random permutations of the arena's slices.
  std::vector<int32_t> perm(static_cast<size_t>(slices));
  for (int pass = 0; pass < 2; pass++) {
    for (int64_t i = 0; i < slices; i++) perm[i] = int32_t(i);
    for (int64_t i = slices - 1; i > 0; i--) std::swap(perm[i], perm[rng.below(uint64_t(i + 1))]);
    (pass == 0 ? d.k_slices : d.v_slices).assign(perm.begin(), perm.begin() + B * H * NB);
  }

  // Masks: each sequence has its own length (the first the whole context); -inf past it.
  d.mask.assign(size_t(B * T), 0.0f);
  d.lengths_open.assign(size_t(B), 0);
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < B; b++) {
    int64_t len = c.context;
    if (c.mask != MaskKind::Full && b > 0 && c.context > 0) len = 1 + int64_t(rng.below(uint64_t(c.context)));
    if (c.empty_seq && b == B - 1) len = 0;
    for (int64_t t = 0; t < T; t++) {
      float& m = d.mask[b * T + t];
      if (t >= len) {
        m = ninf;
      } else if (c.mask == MaskKind::Holes && rng.below(4) == 0) {
        m = ninf;
      } else if (c.mask == MaskKind::Soft) {
        m = -1.5f * (rng.uniform() + 1.0f);
      }
      if (m != ninf) d.lengths_open[b]++;
    }
  }

  KcachePagedAttention& a = d.host;
  a.q = d.q.data();
  a.k_arena = d.k.data();
  a.k_slices = d.k_slices.data();
  a.v_arena = d.v.data();
  a.v_slices = d.v_slices.data();
  a.mask = d.mask.data();
  d.out_floats = size_t(B * H * G * D);
  d.out_cpu.assign(d.out_floats, 0.0f);
  a.out = d.out_cpu.data();
  a.scratch = nullptr;
  a.batch = B;
  a.num_kv_heads = H;
  a.group = G;
  a.head_dim = D;
  a.block_size = BS;
  a.num_blocks = NB;
  a.top_n = c.top_n;
  a.renormalize = c.renormalize;
  a.scale = c.scale_mul / std::sqrt(float(D));

  d.d_q = device_copy(d.q);
  d.d_k = device_copy(d.k);
  d.d_ks = device_copy(d.k_slices);
  d.d_vs = device_copy(d.v_slices);
  d.d_mask = device_copy(d.mask);
  if (c.v_host) {
    d.huge_pages = c.huge_pages;
    const size_t huge = size_t(2) << 20;
    d.v_bytes = std::max<size_t>(arena * sizeof(float), 256);
    if (c.huge_pages) d.v_bytes = (d.v_bytes + huge - 1) / huge * huge;
    for (int l = 0; l < std::max(c.layers, 1); l++) {
      float* p = nullptr;
      if (c.huge_pages) {
        void* m = mmap(nullptr, d.v_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
          std::perror("mmap");
          std::exit(2);
        }
        madvise(m, d.v_bytes, MADV_HUGEPAGE);
        std::memcpy(m, d.v.data(), arena * sizeof(float));  // faults the pages in (huge where the kernel gives them)
        CK(cudaHostRegister(m, d.v_bytes, cudaHostRegisterMapped | cudaHostRegisterPortable));
        p = static_cast<float*>(m);
      } else {
        CK(cudaHostAlloc(reinterpret_cast<void**>(&p), d.v_bytes, cudaHostAllocMapped | cudaHostAllocPortable));
        std::memcpy(p, d.v.data(), arena * sizeof(float));
      }
      d.h_vs.push_back(p);
    }
    d.h_v = d.h_vs[0];
    d.d_v = d.h_v;  // under unified addressing the host pointer is the device pointer
  } else {
    d.d_v = device_copy(d.v);
  }
  CK(cudaMalloc(&d.d_out, std::max<size_t>(d.out_floats * sizeof(float), 256)));
  d.dev = a;
  d.dev.q = d.d_q;
  d.dev.k_arena = d.d_k;
  d.dev.k_slices = d.d_ks;
  d.dev.v_arena = d.d_v;
  d.dev.v_slices = d.d_vs;
  d.dev.mask = d.d_mask;
  d.dev.out = d.d_out;
  d.scratch_bytes = kcache_paged_attention_cuda_scratch_bytes(&d.dev);
  CK(cudaMalloc(&d.d_scratch, std::max<size_t>(d.scratch_bytes, 256)));
  d.dev.scratch = d.d_scratch;
}

void release(Data& d) {
  CK(cudaFree(d.d_q));
  CK(cudaFree(d.d_k));
  CK(cudaFree(d.d_ks));
  CK(cudaFree(d.d_vs));
  CK(cudaFree(d.d_mask));
  CK(cudaFree(d.d_out));
  CK(cudaFree(d.d_scratch));
  if (d.h_v != nullptr) {
    for (float* p : d.h_vs) {
      if (d.huge_pages) {
        CK(cudaHostUnregister(p));
        munmap(p, d.v_bytes);
      } else {
        CK(cudaFreeHost(p));
      }
    }
  } else {
    CK(cudaFree(d.d_v));
  }
}

void run_cuda(Data& d, cudaStream_t stream) {
  const int rc = kcache_paged_attention_cuda(&d.dev, stream);
  if (rc != 0) {
    std::fprintf(stderr, "kcache_paged_attention_cuda failed: %d (%s)\n", rc, kcache_paged_attention_cuda_error(rc));
    std::exit(2);
  }
}

// Fills the output and the scratch with a byte pattern (0xff: NaN) so that unwritten outputs or reads of
// unwritten scratch show.
void poison(Data& d, int byte, cudaStream_t stream) {
  CK(cudaMemsetAsync(d.d_out, byte, std::max<size_t>(d.out_floats * sizeof(float), 1), stream));
  CK(cudaMemsetAsync(d.d_scratch, byte, std::max<size_t>(d.scratch_bytes, 1), stream));
}

std::vector<float> fetch(const Data& d, cudaStream_t stream) {
  std::vector<float> out(d.out_floats);
  CK(cudaStreamSynchronize(stream));
  if (!out.empty()) CK(cudaMemcpy(out.data(), d.d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); i++) {
    const double x = std::fabs(double(a[i]) - double(b[i]));
    if (!(x <= m)) m = std::isnan(x) ? std::numeric_limits<double>::infinity() : x;
  }
  return m;
}

bool run_cpu(Data& d) {
  std::vector<unsigned char> scratch(std::max<size_t>(kcache_paged_attention_cpu_scratch_bytes(&d.host), 1));
  d.host.scratch = scratch.data();
  const int rc = kcache_paged_attention_cpu(&d.host);
  d.host.scratch = nullptr;
  if (rc != 0) std::printf("  the CPU version failed: %d\n", rc);
  return rc == 0;
}

// One correctness case; returns whether it passed.
bool check_case(const Case& c, uint64_t seed, cudaStream_t stream) {
  Data d;
  build(c, seed, d);
  bool ok = run_cpu(d);
  poison(d, 0xff, stream);
  run_cuda(d, stream);
  const std::vector<float> first = fetch(d, stream);
  poison(d, 0x7e, stream);
  run_cuda(d, stream);
  const std::vector<float> second = fetch(d, stream);
  const bool same = first.size() == second.size() &&
                    (first.empty() || std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
  bool graph_same = true;
  if (c.graph) {
    poison(d, 0xff, stream);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    const int rc = kcache_paged_attention_cuda(&d.dev, stream);
    CK(cudaStreamEndCapture(stream, &graph));
    if (rc != 0) {
      std::printf("  kcache_paged_attention_cuda under capture failed: %d (%s)\n", rc,
                  kcache_paged_attention_cuda_error(rc));
      graph_same = false;
    } else {
      CK(cudaGraphInstantiate(&exec, graph, 0));
      CK(cudaGraphLaunch(exec, stream));
      const std::vector<float> replay = fetch(d, stream);
      graph_same = replay.empty() || std::memcmp(replay.data(), first.data(), replay.size() * sizeof(float)) == 0;
      CK(cudaGraphExecDestroy(exec));
    }
    CK(cudaGraphDestroy(graph));
  }
  const double diff = max_diff(first, d.out_cpu);
  ok = ok && diff <= kFail && same && graph_same;
  std::printf("%s %s  max|cuda-cpu| %.3g  %s%s\n", ok ? "PASS" : "FAIL", describe(c).c_str(), diff,
              same ? "deterministic" : "NOT DETERMINISTIC",
              c.graph ? (graph_same ? ", graph replay same" : ", GRAPH REPLAY DIFFERS") : "");
  std::fflush(stdout);
  release(d);
  return ok;
}

// One timing row; returns whether its comparison with the CPU version passed.
bool time_case(const Case& c, uint64_t seed, bool quick, cudaStream_t stream) {
  Data d;
  build(c, seed, d);
  bool ok = run_cpu(d);
  poison(d, 0xff, stream);
  run_cuda(d, stream);
  const double diff = max_diff(fetch(d, stream), d.out_cpu);
  ok = ok && diff <= kFail;

  // Call i reads V copy i % layers (each holds the same values).
  size_t call = 0;
  auto run_next = [&]() {
    if (!d.h_vs.empty()) d.dev.v_arena = d.h_vs[call++ % d.h_vs.size()];
    run_cuda(d, stream);
  };
  cudaEvent_t start, stop;
  CK(cudaEventCreate(&start));
  CK(cudaEventCreate(&stop));
  for (int i = 0; i < 10; i++) run_next();
  CK(cudaEventRecord(start, stream));
  for (int i = 0; i < 10; i++) run_next();
  CK(cudaEventRecord(stop, stream));
  CK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  CK(cudaEventElapsedTime(&ms, start, stop));
  const double budget_ms = quick ? 50.0 : 300.0;
  const int iters = int(std::min(5000.0, std::max(20.0, budget_ms / std::max(ms / 10.0, 1e-3))));
  CK(cudaEventRecord(start, stream));
  for (int i = 0; i < iters; i++) run_next();
  CK(cudaEventRecord(stop, stream));
  CK(cudaEventSynchronize(stop));
  CK(cudaEventElapsedTime(&ms, start, stop));
  const double us = 1000.0 * ms / iters;

  // Bytes of K and V rows read: K once per KV head for each unmasked position; V the same (exact) or the
  // selected rows of every query head (top_n).
  const double row_bytes = double(c.head_dim) * sizeof(float);
  double k_rows = 0.0, v_rows = 0.0;
  for (int64_t b = 0; b < c.batch; b++) {
    const double open = double(d.lengths_open[b]);
    k_rows += open * c.heads;
    v_rows += c.top_n == 0 ? open * c.heads : std::min(open, double(c.top_n)) * c.heads * c.group;
  }
  const double mb = (k_rows + v_rows) * row_bytes / 1e6;
  std::printf("%s %-55s %9.1f us %9.2f MB %8.1f GB/s  (K %.2f MB, V %.2f MB, %d calls, max|cuda-cpu| %.3g)\n",
              ok ? "PASS" : "FAIL", describe(c).c_str(), us, mb, mb * 1e-3 / (us * 1e-6), k_rows * row_bytes / 1e6,
              v_rows * row_bytes / 1e6, iters, diff);
  std::fflush(stdout);
  CK(cudaEventDestroy(start));
  CK(cudaEventDestroy(stop));
  release(d);
  return ok;
}

// The step's rows (KcacheStepRows) on CUDA against the CPU version: rotated query rows, K and V written where the
// tables say (tables of width 1 and 2, some rows outside the arenas and a position outside the RoPE tables, which
// the CPU version leaves unwritten or unrotated the same way), V in device or mapped host memory. Returns whether
// every output and arena matches within 1e-6.
bool check_step_rows(uint64_t seed, int64_t D, int64_t G, int64_t k_width, int64_t v_width, bool v_host, cudaStream_t stream) {
  Rng rng(seed);
  const int64_t B = 5, H = 3, BS = 16, slices = 40, rope_positions = 64;
  const int64_t arena_rows = slices * BS;
  std::vector<float> qkv(size_t(B * H * (G + 2) * D)), cos(size_t(rope_positions * D / 2)), sin(cos.size());
  for (float& x : qkv) x = rng.uniform();
  for (size_t i = 0; i < cos.size(); i++) {
    const float angle = float(i / size_t(D / 2)) * 0.01f * float(i % size_t(D / 2) + 1);
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
  std::vector<int64_t> positions(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; b++) positions[b] = b == B - 1 ? rope_positions + 3 : int64_t(rng.below(uint64_t(rope_positions)));
  auto table = [&](int64_t width) {
    std::vector<int64_t> t;
    for (int64_t i = 0; i < B * H; i++) {
      const int64_t r = i == 2 ? arena_rows + 5 : i == 4 ? -1 : int64_t(rng.below(uint64_t(arena_rows)));  // two outside
      if (width == 2) {
        t.push_back(r < 0 ? -1 : r / BS);
        t.push_back(r < 0 ? 0 : r % BS);
      } else {
        t.push_back(r);
      }
    }
    return t;
  };
  const std::vector<int64_t> k_writes = table(k_width), v_writes = table(v_width);
  std::vector<float> k_cpu(size_t(arena_rows * D)), v_cpu(k_cpu.size()), q_cpu(size_t(B * H * G * D));
  for (float& x : k_cpu) x = rng.uniform();
  for (float& x : v_cpu) x = rng.uniform();
  const std::vector<float> k_start = k_cpu, v_start = v_cpu;

  KcacheStepRows r{};
  r.qkv = qkv.data();
  r.positions = positions.data();
  r.cos = cos.data();
  r.sin = sin.data();
  r.rope_positions = rope_positions;
  r.q_out = q_cpu.data();
  r.k_arena = k_cpu.data();
  r.v_arena = v_cpu.data();
  r.k_writes = k_writes.data();
  r.v_writes = v_writes.data();
  r.k_write_width = k_width;
  r.v_write_width = v_width;
  r.k_arena_rows = arena_rows;
  r.v_arena_rows = arena_rows;
  r.batch = B;
  r.num_kv_heads = H;
  r.group = G;
  r.head_dim = D;
  r.block_size = BS;
  kcache_step_rows_cpu(&r);

  float* h_v = nullptr;
  KcacheStepRows dr = r;
  dr.qkv = device_copy(qkv);
  dr.positions = device_copy(positions);
  dr.cos = device_copy(cos);
  dr.sin = device_copy(sin);
  dr.k_writes = device_copy(k_writes);
  dr.v_writes = device_copy(v_writes);
  dr.k_arena = device_copy(k_start);
  CK(cudaMalloc(&dr.q_out, q_cpu.size() * sizeof(float)));
  if (v_host) {
    CK(cudaHostAlloc(reinterpret_cast<void**>(&h_v), v_start.size() * sizeof(float), cudaHostAllocMapped | cudaHostAllocPortable));
    std::memcpy(h_v, v_start.data(), v_start.size() * sizeof(float));
    dr.v_arena = h_v;
  } else {
    dr.v_arena = device_copy(v_start);
  }
  const int rc = kcache_step_rows_cuda(&dr, stream);
  CK(cudaStreamSynchronize(stream));
  std::vector<float> q_gpu(q_cpu.size()), k_gpu(k_cpu.size()), v_gpu(v_cpu.size());
  CK(cudaMemcpy(q_gpu.data(), dr.q_out, q_gpu.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(k_gpu.data(), dr.k_arena, k_gpu.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(v_gpu.data(), dr.v_arena, v_gpu.size() * sizeof(float), cudaMemcpyDefault));
  const double diff = std::max({max_diff(q_gpu, q_cpu), max_diff(k_gpu, k_cpu), max_diff(v_gpu, v_cpu)});
  const bool ok = rc == 0 && diff <= 1e-6;
  std::printf("%s step rows    d%-3lld g%lld B%lld H%lld writes k%lld v%lld v=%s  max|cuda-cpu| %.3g%s\n", ok ? "PASS" : "FAIL",
              (long long)D, (long long)G, (long long)B, (long long)H, (long long)k_width, (long long)v_width,
              v_host ? "host" : "device", diff, rc == 0 ? "" : "  (launch failed)");
  std::fflush(stdout);
  CK(cudaFree(const_cast<float*>(dr.qkv)));
  CK(cudaFree(const_cast<int64_t*>(dr.positions)));
  CK(cudaFree(const_cast<float*>(dr.cos)));
  CK(cudaFree(const_cast<float*>(dr.sin)));
  CK(cudaFree(const_cast<int64_t*>(dr.k_writes)));
  CK(cudaFree(const_cast<int64_t*>(dr.v_writes)));
  CK(cudaFree(dr.k_arena));
  CK(cudaFree(dr.q_out));
  if (h_v != nullptr) {
    CK(cudaFreeHost(h_v));
  } else {
    CK(cudaFree(dr.v_arena));
  }
  return ok;
}

// SwiGlu on CUDA against the CPU version (within 1e-6, relative to the output's size).
bool check_swiglu(uint64_t seed, int64_t rows, int64_t hidden, cudaStream_t stream) {
  Rng rng(seed);
  std::vector<float> gate_up(size_t(rows * 2 * hidden)), cpu(size_t(rows * hidden)), gpu(cpu.size());
  for (float& x : gate_up) x = 8.0f * rng.uniform() - 4.0f;
  kcache_swiglu_cpu(gate_up.data(), cpu.data(), rows, hidden);
  float* d_in = device_copy(gate_up);
  float* d_out = nullptr;
  CK(cudaMalloc(&d_out, std::max<size_t>(gpu.size() * sizeof(float), 256)));
  const int rc = kcache_swiglu_cuda(d_in, d_out, rows, hidden, stream);
  CK(cudaStreamSynchronize(stream));
  if (!gpu.empty()) CK(cudaMemcpy(gpu.data(), d_out, gpu.size() * sizeof(float), cudaMemcpyDeviceToHost));
  double diff = 0.0;
  for (size_t i = 0; i < gpu.size(); i++) diff = std::max(diff, std::fabs(double(gpu[i]) - double(cpu[i])) / std::max(1.0, std::fabs(double(cpu[i]))));
  const bool ok = rc == 0 && diff <= 1e-6;
  std::printf("%s swiglu       rows %lld hidden %lld  max|cuda-cpu| (relative) %.3g\n", ok ? "PASS" : "FAIL", (long long)rows, (long long)hidden, diff);
  std::fflush(stdout);
  CK(cudaFree(d_in));
  CK(cudaFree(d_out));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, timed = true;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--no-timing") == 0) {
      timed = false;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--no-timing]\n", argv[0]);
      return 2;
    }
  }
  int device = 0;
  CK(cudaGetDevice(&device));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, device));
  std::printf("device %d: %s, %d SMs, compute %d.%d\n", device, prop.name, prop.multiProcessorCount, prop.major,
              prop.minor);
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  std::vector<Case> cases;
  // The main grid: head_dim 8 and 64, group 1 and 2, contexts short (batch 32) to long (batch 1-2), exact,
  // top_n 64 (plain and renormalized) and top_n at or past the context.
  const MaskKind kinds[] = {MaskKind::Padded, MaskKind::Holes, MaskKind::Soft, MaskKind::Full};
  int index = 0;
  for (int64_t D : {8, 64}) {
    for (int64_t G : {1, 2}) {
      for (int64_t ctx : {1, 17, 512, 2048, 32768}) {
        if (quick && ctx > 2048) continue;
        for (int mode = 0; mode < 4; mode++) {
          Case c;
          c.head_dim = D;
          c.group = G;
          c.context = ctx;
          c.batch = ctx <= 512 ? 32 : ctx <= 2048 ? 4 : (G == 1 ? 2 : 1);
          c.top_n = mode == 0 ? 0 : mode == 3 ? ctx + (index % 2) * 7 : 64;
          c.renormalize = mode == 2 || (mode == 3 && index % 2 == 0);
          c.mask = kinds[index % 4];
          c.v_host = index % 3 == 1;
          c.graph = ctx == 2048 && (mode == 0 || mode == 1);
          cases.push_back(c);
          index++;
        }
      }
    }
  }
  // Exact ties in the scores (identical K rows), top 64: the lower position first; renormalised with a holed mask.
  auto ties = [](int64_t batch, int64_t context, int renorm, MaskKind plain_mask) {
    Case c;
    c.ties = true;
    c.batch = batch;
    c.context = context;
    c.top_n = 64;
    c.renormalize = renorm;
    c.mask = renorm ? MaskKind::Holes : plain_mask;
    return c;
  };
  for (int renorm = 0; renorm < 2; renorm++) cases.push_back(ties(8, 512, renorm, MaskKind::Full));
  {
    Case c;
    c.ties = true;
    c.head_dim = 8;
    c.group = 2;
    c.batch = 4;
    c.context = 2048;
    c.top_n = 100;
    c.v_host = true;
    cases.push_back(c);
  }
  // Selections too large for the kernel's shared-memory sort (its radix path over the keys in memory): many
  // ties, a nearly flat softmax, a top_n in the thousands.
  for (int renorm = 0; renorm < 2; renorm++) cases.push_back(ties(2, 8192, renorm, MaskKind::Padded));
  {
    Case c;
    c.batch = 1;
    c.group = 2;
    c.context = quick ? 8192 : 32768;
    c.top_n = 64;
    c.scale_mul = 0.01f;
    c.mask = MaskKind::Full;
    cases.push_back(c);
    c.batch = 2;
    c.group = 1;
    c.context = 8192;
    c.top_n = 3000;
    c.scale_mul = 1.0f;
    c.renormalize = 1;
    c.mask = MaskKind::Padded;
    c.v_host = true;
    cases.push_back(c);
  }
  // A sequence with every position masked; peaky softmax (exp underflows); odd shapes.
  for (int64_t top_n : {0, 64}) {
    Case c;
    c.batch = 4;
    c.empty_seq = true;
    c.top_n = top_n;
    cases.push_back(c);
    Case p;
    p.batch = 4;
    p.context = 2048;
    p.scale_mul = 24.0f;
    p.top_n = top_n;
    p.mask = MaskKind::Soft;
    cases.push_back(p);
  }
  struct Odd {
    int64_t D, G, BS, ctx, batch;
  };
  for (const Odd& o : {Odd{4, 1, 16, 300, 5}, Odd{12, 3, 16, 700, 3}, Odd{160, 2, 16, 1000, 2}, Odd{256, 8, 16, 600, 2},
                       Odd{256, 1, 16, 5000, 1}, Odd{64, 9, 16, 520, 2}, Odd{64, 4, 1, 300, 3}, Odd{32, 5, 7, 777, 3},
                       Odd{128, 6, 32, 3000, 2}, Odd{64, 1, 16, 0, 2}}) {
    for (int64_t top_n : {int64_t(0), int64_t(32)}) {
      Case c;
      c.head_dim = o.D;
      c.group = o.G;
      c.block_size = o.BS;
      c.context = o.ctx;
      c.batch = o.batch;
      c.heads = 2;
      c.top_n = top_n;
      c.renormalize = top_n != 0;
      c.mask = top_n ? MaskKind::Holes : MaskKind::Padded;
      c.v_host = o.D == 160;
      cases.push_back(c);
    }
  }
  {
    Case c;  // batch 0: nothing to do, nothing written
    c.batch = 0;
    cases.push_back(c);
  }

  int failed = 0;
  uint64_t seed = 20240611;
  std::printf("correctness: %zu cases (fail above %.0e)\n", cases.size(), double(kFail));
  for (const Case& c : cases) failed += !check_case(c, seed++, stream);
  int step_checks = 0;
  for (int64_t D : {8, 64, 128}) {
    for (int64_t G : {1, 4}) {
      failed += !check_step_rows(seed++, D, G, 2, D == 8 ? 2 : 1, D != 128, stream);
      step_checks++;
    }
  }
  for (int64_t rows : {1, 32, 257}) {
    failed += !check_swiglu(seed++, rows, rows == 257 ? 11 : 2048, stream);
    step_checks++;
  }

  // Timing at the ~110M model's shapes.
  if (timed) {
    std::printf("timing: 12 KV heads, group 1, head_dim 64, block 16; time per call and GB/s of K and V rows read\n");
  }
  std::vector<Case> timing;
  auto shape = [](int64_t batch, int64_t ctx, int64_t top_n, bool v_host) {
    Case c;
    c.batch = batch;
    c.heads = 12;
    c.context = ctx;
    c.top_n = top_n;
    c.v_host = v_host;
    c.mask = MaskKind::Full;
    return c;
  };
  timing.push_back(shape(32, 512, 0, false));
  timing.push_back(shape(32, 512, 64, false));
  timing.push_back(shape(32, 512, 64, true));
  timing.push_back(shape(1, 32768, 0, false));
  timing.push_back(shape(2, 32768, 64, true));
  timing.push_back(shape(4, 8192, 0, false));
  timing.push_back(shape(8, 8192, 64, true));
  // V in host memory spread like the engine's host tier (12 layer arenas, one read per call in turn), and the
  // same in transparent huge pages: is a step's host-V time the rows' bytes, or the GPU's address translation
  // over a footprint of gigabytes?
  auto spread = [&](int64_t batch, int64_t ctx, bool huge) {
    Case c = shape(batch, ctx, 64, true);
    c.layers = 12;
    c.huge_pages = huge;
    return c;
  };
  timing.push_back(shape(4, 8192, 64, true));
  timing.push_back(spread(4, 8192, false));
  timing.push_back(spread(8, 8192, false));
  timing.push_back(spread(8, 8192, true));
  timing.push_back(spread(2, 32768, false));
  timing.push_back(spread(2, 32768, true));
  timing.push_back(spread(32, 2048, false));
  timing.push_back(spread(32, 2048, true));
  // Flat scores (a twentieth of the scale): many positions share the N-th largest weight's histogram bin, so the
  // select takes its radix path. Is that what a model's near-uniform attention costs?
  for (const Case& base : {shape(8, 8192, 64, true), shape(2, 32768, 64, true)}) {
    Case c = base;
    c.scale_mul = 0.05f;
    timing.push_back(c);
  }
  if (!timed) timing.clear();
  for (const Case& c : timing) failed += !time_case(c, seed++, quick, stream);

  CK(cudaStreamDestroy(stream));
  std::printf("%s: %d of %zu comparisons failed\n", failed ? "FAILED" : "OK", failed, cases.size() + step_checks + timing.size());
  return failed ? 1 : 0;
}
