// The com.kcache operator domain (kcache_ops.h): created once for the process, since sessions keep pointers into it.
#include "kcache_ops.h"

#include <mutex>

#include "cuda_kernel_library.h"
#include "paged_attention_op.h"
#include "swiglu_op.h"

namespace {

constexpr const char* kDomain = "com.kcache";

const OrtCustomOp ops[] = {make_paged_attention_op(false), make_paged_attention_op(true), make_swiglu_op(false), make_swiglu_op(true)};
std::mutex mutex;
OrtCustomOpDomain* domain = nullptr;

}  // namespace

OrtStatus* add_kcache_ops(const OrtApi* api, OrtSessionOptions* options, const std::string& cuda_library) {
  std::lock_guard<std::mutex> lock(mutex);
  name_cuda_kernel_library(cuda_library);
  if (domain == nullptr) {
    OrtCustomOpDomain* created = nullptr;
    if (OrtStatus* s = api->CreateCustomOpDomain(kDomain, &created)) return s;
    for (const OrtCustomOp& op : ops) {
      if (OrtStatus* s = api->CustomOpDomain_Add(created, &op)) {
        api->ReleaseCustomOpDomain(created);
        return s;
      }
    }
    domain = created;
  }
  return api->AddCustomOpDomain(options, domain);
}
