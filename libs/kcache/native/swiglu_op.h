// The com.kcache SwiGlu operator (swiglu_op.cc): its CPU kernel, or its CUDA kernel (from the CUDA kernel library,
// cuda_kernel_library.h). kcache_ops.h registers it.
#ifndef KCACHE_SWIGLU_OP_H_
#define KCACHE_SWIGLU_OP_H_

#include "onnxruntime_c_api.h"

OrtCustomOp make_swiglu_op(bool cuda);

#endif  // KCACHE_SWIGLU_OP_H_
