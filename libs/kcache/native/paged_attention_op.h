// Registers the com.kcache PagedDecodeAttention operator (CPU and CUDA kernels) with a session's options.
#ifndef KCACHE_PAGED_ATTENTION_OP_H_
#define KCACHE_PAGED_ATTENTION_OP_H_

#include <string>

#include "onnxruntime_c_api.h"

// cuda_library: the path of kcache_paged_attention_cuda.so, opened when a CUDA session first creates the
// kernel ("" when the session is CPU only). The path given last before a CUDA session first creates the kernel is
// the one opened; later paths are ignored.
OrtStatus* add_paged_attention_ops(const OrtApi* api, OrtSessionOptions* options, const std::string& cuda_library);

#endif  // KCACHE_PAGED_ATTENTION_OP_H_
