// What the com.kcache operators' kernels share: returning on a failed onnxruntime call, an input's dims and data,
// the statuses that name the operator, and the OrtCustomOp fields that are the same for every one of them.
#ifndef KCACHE_CUSTOM_OP_IO_H_
#define KCACHE_CUSTOM_OP_IO_H_

#include <climits>
#include <string>
#include <vector>

#include "cuda_kernel_library.h"
#include "onnxruntime_c_api.h"

#define ORT_TRY(call)                      \
  do {                                     \
    if (OrtStatus* s_ = (call)) return s_; \
  } while (0)

// "<op>: <message>", ORT_INVALID_ARGUMENT.
inline OrtStatus* op_error(const OrtApi* api, const char* op, const std::string& message) {
  return api->CreateStatus(ORT_INVALID_ARGUMENT, (std::string(op) + ": " + message).c_str());
}

// The dims of input `index`, and its data (no dims and null data for an absent optional input).
inline OrtStatus* input_of(const OrtApi* api, OrtKernelContext* context, size_t index, std::vector<int64_t>& dims, const void** data) {
  const OrtValue* value = nullptr;
  ORT_TRY(api->KernelContext_GetInput(context, index, &value));
  if (value == nullptr) {
    dims.clear();
    *data = nullptr;
    return nullptr;
  }
  OrtTensorTypeAndShapeInfo* info = nullptr;
  ORT_TRY(api->GetTensorTypeAndShape(value, &info));
  size_t rank = 0;
  OrtStatus* status = api->GetDimensionsCount(info, &rank);
  if (status == nullptr) {
    dims.resize(rank);
    status = api->GetDimensions(info, dims.data(), rank);
  }
  api->ReleaseTensorTypeAndShapeInfo(info);
  ORT_TRY(status);
  return api->GetTensorData(value, data);
}

// A CUDA kernel's creation: the CUDA kernel library opened, or an error naming the operator and what to build.
inline OrtStatus* require_cuda_kernels(const OrtApi* api, const char* op) {
  const std::string error = open_cuda_kernel_library();
  return error.empty() ? nullptr : api->CreateStatus(ORT_FAIL, (std::string(op) + ": " + error).c_str());
}

// A failed launch (rc a cudaError_t) as the operator's error.
inline OrtStatus* cuda_launch_error(const OrtApi* api, const char* op, int rc) {
  return api->CreateStatus(ORT_EP_FAIL, (std::string(op) + ": CUDA kernel launch failed: " + cuda_kernel_library().error_text(rc)).c_str());
}

// The fields every com.kcache operator sets alike: API version, provider (CUDA or CPU), required outputs, no
// variadic inputs or outputs, opset versions 1 and up.
inline void set_common_op_fields(OrtCustomOp& op, bool cuda) {
  op.version = ORT_API_VERSION;
  op.GetExecutionProviderType = cuda ? [](const OrtCustomOp*) -> const char* { return "CUDAExecutionProvider"; }
                                     : [](const OrtCustomOp*) -> const char* { return nullptr; };
  op.GetOutputCharacteristic = [](const OrtCustomOp*, size_t) { return INPUT_OUTPUT_REQUIRED; };
  op.GetVariadicInputMinArity = [](const OrtCustomOp*) { return 1; };
  op.GetVariadicInputHomogeneity = [](const OrtCustomOp*) { return 1; };
  op.GetVariadicOutputMinArity = [](const OrtCustomOp*) { return 1; };
  op.GetVariadicOutputHomogeneity = [](const OrtCustomOp*) { return 1; };
  op.GetStartVersion = [](const OrtCustomOp*) { return 1; };
  op.GetEndVersion = [](const OrtCustomOp*) { return INT_MAX; };
}

#endif  // KCACHE_CUSTOM_OP_IO_H_
