// The com.kcache SwiGlu operator for onnxruntime sessions of the kcache_ort addon (swiglu.h says what it computes).
//
// Node (decode graph, runtime/transformer-ops.ts): out = SwiGlu(gate_up [rows, 2 · hidden]), out [rows, hidden].
// One node where onnxruntime's operators take three (Split, then Sigmoid·Mul, which it fuses, and Mul).
#include "swiglu_op.h"

#include <string>
#include <vector>

#include "cuda_kernel_library.h"
#include "custom_op_io.h"
#include "swiglu.h"

namespace {

constexpr const char* kOpName = "SwiGlu";

struct Kernel {
  const OrtApi* api;
  bool cuda;
};

OrtStatus* compute(void* state, OrtKernelContext* context) {
  const Kernel& kernel = *static_cast<Kernel*>(state);
  const OrtApi* api = kernel.api;
  std::vector<int64_t> dims;
  const void* data = nullptr;
  ORT_TRY(input_of(api, context, 0, dims, &data));
  if (dims.size() != 2 || dims[1] % 2 != 0) return op_error(api, kOpName, "gate_up must be [rows, 2 x hidden]");
  const int64_t out_dims[2] = {dims[0], dims[1] / 2};
  OrtValue* out = nullptr;
  ORT_TRY(api->KernelContext_GetOutput(context, 0, out_dims, 2, &out));
  float* out_data = nullptr;
  ORT_TRY(api->GetTensorMutableData(out, reinterpret_cast<void**>(&out_data)));
  const float* gate_up = static_cast<const float*>(data);
  if (!kernel.cuda) {
    kcache_swiglu_cpu(gate_up, out_data, out_dims[0], out_dims[1]);
    return nullptr;
  }
  void* stream = nullptr;
  ORT_TRY(api->KernelContext_GetGPUComputeStream(context, &stream));
  const int rc = cuda_kernel_library().swiglu(gate_up, out_data, out_dims[0], out_dims[1], stream);
  return rc == 0 ? nullptr : cuda_launch_error(api, kOpName, rc);
}

OrtStatus* create_kernel(const OrtApi* api, void** out, bool cuda) {
  if (cuda) {
    ORT_TRY(require_cuda_kernels(api, kOpName));
  }
  *out = new Kernel{api, cuda};
  return nullptr;
}

}  // namespace

OrtCustomOp make_swiglu_op(bool cuda) {
  OrtCustomOp op{};
  set_common_op_fields(op, cuda);
  op.GetName = [](const OrtCustomOp*) { return kOpName; };
  op.GetInputType = [](const OrtCustomOp*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
  op.GetInputTypeCount = [](const OrtCustomOp*) -> size_t { return 1; };
  op.GetOutputType = [](const OrtCustomOp*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
  op.GetOutputTypeCount = [](const OrtCustomOp*) -> size_t { return 1; };
  op.KernelDestroy = [](void* kernel) { delete static_cast<Kernel*>(kernel); };
  op.GetInputCharacteristic = [](const OrtCustomOp*, size_t) { return INPUT_OUTPUT_REQUIRED; };
  op.GetInputMemoryType = [](const OrtCustomOp*, size_t) { return OrtMemTypeDefault; };
  op.CreateKernelV2 = cuda ? [](const OrtCustomOp*, const OrtApi* api, const OrtKernelInfo*, void** out) { return create_kernel(api, out, true); }
                           : [](const OrtCustomOp*, const OrtApi* api, const OrtKernelInfo*, void** out) { return create_kernel(api, out, false); };
  op.KernelComputeV2 = compute;
  return op;
}
