// The com.kcache PagedDecodeAttention operator for onnxruntime sessions of the kcache_ort addon: a CPU kernel
// (paged_attention_cpu.cc, step_rows_cpu.cc) and a CUDA kernel (paged_attention.cu, in the CUDA kernel library that
// cuda_kernel_library.h opens when a CUDA session first creates the kernel, so the addon needs no CUDA to build or load).
//
// Node (decode graph, runtime/paged-attention-op.ts):
//   out, scratch, q = PagedDecodeAttention(qkv [B, Hkv · (G + 2) · d], positions int64 [B], cos [P, d / 2],
//                                          sin [P, d / 2], k_arena [S, bs, d], k_slices int32 [B, Hkv, nb],
//                                          k_writes int64 [B, Hkv, 1, 2], v_arena [S', bs, d] or [S' · bs, d],
//                                          v_slices int32 [B, Hkv, nb], v_writes int64 [B, Hkv, 1, 1 or 2],
//                                          mask [B, 1, 1, nb·bs], top_n int64 [1] (optional: absent = exact attention))
//   attributes: scale (float), renormalize (int, 0/1)
//   First the step's rows (KcacheStepRows): qkv is the layer's projection, per KV head its G query rows, K and V.
//   The query rows and K rotate by RoPE at the sequence's position (the cos and sin tables); the rotated query
//   rows go to q, K and V to the arena rows that k_writes and v_writes name (an entry is (slice, row in the block),
//   or the row itself; a negative first value writes nothing: -1 marks a row that only pads the batch). The arenas are written in place: they are inputs bound to the caller's memory. Then the G
//   query rows attend over the arenas (KcachePagedAttention), the new position included where the mask opens it.
//   out [B, Hkv · G · d]; scratch uint8 [bytes]: the kernel's working memory; q [B, Hkv, G, d]: the rotated query
//   rows (onnxruntime allocates both like any intermediate tensor; no node reads them).
#include "paged_attention_op.h"

#include <string>
#include <vector>

#include "cuda_kernel_library.h"
#include "custom_op_io.h"
#include "paged_attention.h"

namespace {

constexpr const char* kOpName = "PagedDecodeAttention";
constexpr size_t kQkv = 0, kPositions = 1, kCos = 2, kSin = 3, kKArena = 4, kKSlices = 5, kKWrites = 6, kVArena = 7,
                 kVSlices = 8, kVWrites = 9, kMask = 10, kTopNInput = 11, kInputs = 12, kOutputs = 3;

struct Kernel {
  const OrtApi* api;
  bool cuda;
  float scale;
  int32_t renormalize;
};

OrtStatus* fail(const OrtApi* api, const std::string& message) { return op_error(api, kOpName, message); }

OrtStatus* compute(void* state, OrtKernelContext* context) {
  const Kernel& kernel = *static_cast<Kernel*>(state);
  const OrtApi* api = kernel.api;
  std::vector<int64_t> dims[kInputs];
  const void* data[kInputs];
  for (size_t i = 0; i < kInputs; i++) ORT_TRY(input_of(api, context, i, dims[i], &data[i]));
  const std::vector<int64_t>&qkv = dims[kQkv], &k_arena = dims[kKArena], &v_arena = dims[kVArena], &k_slices = dims[kKSlices],
                        &v_slices = dims[kVSlices], &mask = dims[kMask], &cos = dims[kCos], &sin = dims[kSin];
  if (k_arena.size() != 3 || k_arena[1] < 1 || k_arena[2] < 1) return fail(api, "k_arena must be [slices, block size, head dim]");
  if (k_slices.size() != 3 || k_slices[1] < 1) return fail(api, "k_slices must be [batch, kv heads, blocks]");
  const int64_t block_size = k_arena[1], head_dim = k_arena[2], heads = k_slices[1];
  if (qkv.size() != 2 || qkv[1] % (heads * head_dim) != 0 || qkv[1] / (heads * head_dim) < 3) {
    return fail(api, "qkv must be [batch, kv heads x (group + 2) x head dim], with k_slices' kv heads and k_arena's head dim");
  }
  const int64_t batch = qkv[0], group = qkv[1] / (heads * head_dim) - 2;
  if (dims[kPositions].size() != 1 || dims[kPositions][0] != batch) return fail(api, "positions must be [batch]");
  if (cos.size() != 2 || cos[1] * 2 != head_dim || sin != cos) return fail(api, "cos and sin must be [positions, head dim / 2]");
  const bool v_blocks = v_arena.size() == 3;
  if (!(v_blocks ? v_arena[1] == block_size && v_arena[2] == head_dim : v_arena.size() == 2 && v_arena[1] == head_dim && v_arena[0] % block_size == 0)) {
    return fail(api, "v_arena must be [slices, block size, head dim] or [slices x block size, head dim], with k_arena's block size and head dim");
  }
  if (k_slices[0] != batch) return fail(api, "k_slices must be [batch, kv heads, blocks]");
  if (v_slices != k_slices) return fail(api, "v_slices must have k_slices' shape");
  const std::vector<int64_t>&k_writes = dims[kKWrites], &v_writes = dims[kVWrites];
  auto writes_ok = [&](const std::vector<int64_t>& w) {
    return w.size() == 4 && w[0] == batch && w[1] == heads && w[2] == 1 && (w[3] == 1 || w[3] == 2);
  };
  if (!writes_ok(k_writes)) return fail(api, "k_writes must be [batch, kv heads, 1, 2 or 1]");
  if (!writes_ok(v_writes)) return fail(api, "v_writes must be [batch, kv heads, 1, 2 or 1]");
  if (mask.size() != 4 || mask[0] != batch || mask[1] != 1 || mask[2] != 1 || mask[3] != k_slices[2] * block_size) {
    return fail(api, "mask must be [batch, 1, 1, blocks x block size]");
  }
  if (data[kTopNInput] != nullptr && (dims[kTopNInput].size() != 1 || dims[kTopNInput][0] != 1)) return fail(api, "top_n must be [1]");

  KcachePagedAttention a{};
  a.k_arena = static_cast<const float*>(data[kKArena]);
  a.k_slices = static_cast<const int32_t*>(data[kKSlices]);
  a.v_arena = static_cast<const float*>(data[kVArena]);
  a.v_slices = static_cast<const int32_t*>(data[kVSlices]);
  a.mask = static_cast<const float*>(data[kMask]);
  a.batch = batch;
  a.num_kv_heads = heads;
  a.group = group;
  a.head_dim = head_dim;
  a.block_size = block_size;
  a.num_blocks = k_slices[2];
  a.top_n = data[kTopNInput] != nullptr ? *static_cast<const int64_t*>(data[kTopNInput]) : 0;
  a.renormalize = kernel.renormalize;
  a.scale = kernel.scale;
  if (const char* invalid = kcache_paged_attention_invalid(&a)) return fail(api, invalid);
  const int64_t k_slice_count = k_arena[0], v_slice_count = v_blocks ? v_arena[0] : v_arena[0] / block_size;

  // The arenas are written in place: inputs bound to the caller's memory (never one of onnxruntime's own).
  KcacheStepRows rows{};
  rows.qkv = static_cast<const float*>(data[kQkv]);
  rows.positions = static_cast<const int64_t*>(data[kPositions]);
  rows.cos = static_cast<const float*>(data[kCos]);
  rows.sin = static_cast<const float*>(data[kSin]);
  rows.rope_positions = cos[0];
  rows.k_arena = const_cast<float*>(a.k_arena);
  rows.v_arena = const_cast<float*>(a.v_arena);
  rows.k_writes = static_cast<const int64_t*>(data[kKWrites]);
  rows.v_writes = static_cast<const int64_t*>(data[kVWrites]);
  rows.k_write_width = k_writes[3];
  rows.v_write_width = v_writes[3];
  rows.k_arena_rows = k_slice_count * block_size;
  rows.v_arena_rows = v_slice_count * block_size;
  rows.batch = batch;
  rows.num_kv_heads = heads;
  rows.group = group;
  rows.head_dim = head_dim;
  rows.block_size = block_size;

  const int64_t out_dims[2] = {batch, heads * group * head_dim};
  OrtValue* out = nullptr;
  ORT_TRY(api->KernelContext_GetOutput(context, 0, out_dims, 2, &out));
  ORT_TRY(api->GetTensorMutableData(out, reinterpret_cast<void**>(&a.out)));
  const int64_t scratch_bytes = static_cast<int64_t>(kernel.cuda ? cuda_kernel_library().attention_scratch_bytes(&a) : kcache_paged_attention_cpu_scratch_bytes(&a));
  OrtValue* scratch = nullptr;
  ORT_TRY(api->KernelContext_GetOutput(context, 1, &scratch_bytes, 1, &scratch));
  ORT_TRY(api->GetTensorMutableData(scratch, &a.scratch));
  const int64_t q_dims[4] = {batch, heads, group, head_dim};
  OrtValue* q_out = nullptr;
  ORT_TRY(api->KernelContext_GetOutput(context, 2, q_dims, 4, &q_out));
  ORT_TRY(api->GetTensorMutableData(q_out, reinterpret_cast<void**>(&rows.q_out)));
  a.q = rows.q_out;

  if (!kernel.cuda) {
    // Host memory: every slice id and written row is checked against its arena, so a bad table is an error, not a
    // stray read or write.
    const int64_t entries = a.batch * a.num_kv_heads * a.num_blocks;
    for (int64_t i = 0; i < entries; i++) {
      if (a.k_slices[i] < 0 || a.k_slices[i] >= k_slice_count) return fail(api, "k_slices holds a slice outside k_arena");
      if (a.v_slices[i] < 0 || a.v_slices[i] >= v_slice_count) return fail(api, "v_slices holds a slice outside v_arena");
    }
    for (int64_t i = 0; i < batch * heads; i++) {
      const int64_t* kw = rows.k_writes + i * rows.k_write_width;
      const int64_t* vw = rows.v_writes + i * rows.v_write_width;
      const int64_t k_row = kcache_write_row(kw, rows.k_write_width, block_size);
      const int64_t v_row = kcache_write_row(vw, rows.v_write_width, block_size);
      // A negative first value: no write (-1, a row that only pads the batch to a fixed size).
      if (kw[0] >= 0 && (k_row < 0 || k_row >= rows.k_arena_rows || (rows.k_write_width == 2 && (kw[1] < 0 || kw[1] >= block_size)))) return fail(api, "k_writes names a row outside k_arena");
      if (vw[0] >= 0 && (v_row < 0 || v_row >= rows.v_arena_rows || (rows.v_write_width == 2 && (vw[1] < 0 || vw[1] >= block_size)))) return fail(api, "v_writes names a row outside v_arena");
    }
    for (int64_t b = 0; b < batch; b++) {
      if (rows.positions[b] < 0 || rows.positions[b] >= rows.rope_positions) return fail(api, "positions holds a position outside the cos and sin tables");
    }
    kcache_step_rows_cpu(&rows);
    return kcache_paged_attention_cpu(&a) == 0 ? nullptr : fail(api, "the CPU kernel refused its arguments");
  }
  void* stream = nullptr;
  ORT_TRY(api->KernelContext_GetGPUComputeStream(context, &stream));
  const CudaKernelLibrary& cuda = cuda_kernel_library();
  int rc = cuda.step_rows(&rows, stream);
  if (rc == 0) rc = cuda.attention(&a, stream);
  return rc == 0 ? nullptr : cuda_launch_error(api, kOpName, rc);
}

OrtStatus* create_kernel(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info, void** out, bool cuda) {
  if (cuda) {
    ORT_TRY(require_cuda_kernels(api, kOpName));
  }
  auto* kernel = new Kernel{api, cuda, 1.0f, 0};
  if (OrtStatus* s = api->KernelInfoGetAttribute_float(info, "scale", &kernel->scale)) {
    api->ReleaseStatus(s);
    delete kernel;
    return fail(api, "attribute scale (float) is required");
  }
  int64_t renormalize = 0;
  if (OrtStatus* s = api->KernelInfoGetAttribute_int64(info, "renormalize", &renormalize)) api->ReleaseStatus(s);  // optional, 0
  kernel->renormalize = renormalize != 0 ? 1 : 0;
  *out = kernel;
  return nullptr;
}

ONNXTensorElementDataType input_type(const OrtCustomOp*, size_t index) {
  switch (index) {
    case kKSlices:
    case kVSlices:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case kPositions:
    case kKWrites:
    case kVWrites:
    case kTopNInput:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    default:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
}

OrtCustomOp make_op(bool cuda) {
  OrtCustomOp op{};
  set_common_op_fields(op, cuda);
  op.GetName = [](const OrtCustomOp*) { return kOpName; };
  op.GetInputType = input_type;
  op.GetInputTypeCount = [](const OrtCustomOp*) { return kInputs; };
  op.GetOutputType = [](const OrtCustomOp*, size_t index) {
    return index == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  };
  op.GetOutputTypeCount = [](const OrtCustomOp*) -> size_t { return kOutputs; };
  op.KernelDestroy = [](void* kernel) { delete static_cast<Kernel*>(kernel); };
  op.GetInputCharacteristic = [](const OrtCustomOp*, size_t index) {
    return index == kTopNInput ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
  };
  // top_n is read by the host to size the selection: keep it in CPU memory on a GPU provider.
  op.GetInputMemoryType = [](const OrtCustomOp*, size_t index) { return index == kTopNInput ? OrtMemTypeCPUInput : OrtMemTypeDefault; };
  op.CreateKernelV2 = cuda ? [](const OrtCustomOp* o, const OrtApi* api, const OrtKernelInfo* info, void** out) { return create_kernel(o, api, info, out, true); }
                           : [](const OrtCustomOp* o, const OrtApi* api, const OrtKernelInfo* info, void** out) { return create_kernel(o, api, info, out, false); };
  op.KernelComputeV2 = compute;
  return op;
}

}  // namespace

OrtCustomOp make_paged_attention_op(bool cuda) { return make_op(cuda); }
