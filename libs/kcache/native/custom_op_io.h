// What the com.kcache operators' kernels share: returning on a failed onnxruntime call, an input's dims and data,
// and an invalid-argument status that names the operator.
#ifndef KCACHE_CUSTOM_OP_IO_H_
#define KCACHE_CUSTOM_OP_IO_H_

#include <string>
#include <vector>

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

#endif  // KCACHE_CUSTOM_OP_IO_H_
