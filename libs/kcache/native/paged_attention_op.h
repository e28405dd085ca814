// The com.kcache PagedDecodeAttention operator (paged_attention_op.cc): its CPU kernel, or its CUDA kernel (from
// the CUDA kernel library, cuda_kernel_library.h). kcache_ops.h registers it.
#ifndef KCACHE_PAGED_ATTENTION_OP_H_
#define KCACHE_PAGED_ATTENTION_OP_H_

#include "onnxruntime_c_api.h"

OrtCustomOp make_paged_attention_op(bool cuda);

#endif  // KCACHE_PAGED_ATTENTION_OP_H_
