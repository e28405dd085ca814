// The com.kcache operator domain: PagedDecodeAttention (paged_attention_op.h) and SwiGlu (swiglu_op.h), each with a
// CPU and a CUDA kernel.
#ifndef KCACHE_OPS_H_
#define KCACHE_OPS_H_

#include <string>

#include "onnxruntime_c_api.h"

// Adds the domain to a session's options. cuda_library: the path of the CUDA kernel library (kcache_paged_attention_cuda.so),
// opened when a CUDA session first creates one of the kernels ("" when the session is CPU only; see
// name_cuda_kernel_library for which path wins).
OrtStatus* add_kcache_ops(const OrtApi* api, OrtSessionOptions* options, const std::string& cuda_library);

#endif  // KCACHE_OPS_H_
