// SwiGLU's gate: for each row r of gate_up [rows, 2 · hidden] (the fused W1 and W3 projection),
//   out[r, i] = silu(gate_up[r, i]) · gate_up[r, hidden + i],  silu(x) = x / (1 + exp(-x)),
// out [rows, hidden]. The kernel behind the com.kcache SwiGlu operator (swiglu_op.cc).
#ifndef KCACHE_SWIGLU_H_
#define KCACHE_SWIGLU_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void kcache_swiglu_cpu(const float* gate_up, float* out, int64_t rows, int64_t hidden);

// Every pointer in device memory; launches on `stream` (a cudaStream_t) without synchronising. Returns 0 or a
// cudaError_t.
int kcache_swiglu_cuda(const float* gate_up, float* out, int64_t rows, int64_t hidden, void* stream);

#ifdef __cplusplus
}
#endif

#endif  // KCACHE_SWIGLU_H_
