// The CPU version of SwiGLU's gate (contract: swiglu.h).
#include <cmath>

#include "swiglu.h"

extern "C" void kcache_swiglu_cpu(const float* gate_up, float* out, int64_t rows, int64_t hidden) {
  for (int64_t r = 0; r < rows; r++) {
    const float* gate = gate_up + r * 2 * hidden;
    const float* up = gate + hidden;
    for (int64_t i = 0; i < hidden; i++) out[r * hidden + i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
}
