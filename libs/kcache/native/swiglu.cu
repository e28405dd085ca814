// The CUDA version of SwiGLU's gate (contract: swiglu.h): a thread per output element.
#include <cuda_runtime.h>
#include <stdint.h>

#include "swiglu.h"

namespace {

__global__ void swiglu_kernel(const float* __restrict__ gate_up, float* __restrict__ out, int64_t rows, int64_t hidden) {
  const int64_t n = rows * hidden;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / hidden, i = e - r * hidden;
    const float g = gate_up[r * 2 * hidden + i];
    out[e] = g / (1.0f + expf(-g)) * gate_up[r * 2 * hidden + hidden + i];
  }
}

}  // namespace

extern "C" int kcache_swiglu_cuda(const float* gate_up, float* out, int64_t rows, int64_t hidden, void* stream) {
  const int64_t n = rows * hidden;
  if (n == 0) return 0;
  const int64_t blocks = (n + 255) / 256;
  swiglu_kernel<<<unsigned(blocks < 4096 ? blocks : 4096), 256, 0, static_cast<cudaStream_t>(stream)>>>(gate_up, out, rows, hidden);
  return int(cudaGetLastError());
}
