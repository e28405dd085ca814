// Opening the com.kcache operators' CUDA kernel library (cuda_kernel_library.h).
#include "cuda_kernel_library.h"

#include <dlfcn.h>

#include <mutex>

namespace {

std::mutex mutex;
std::string path;
CudaKernelLibrary kernels;
bool opened = false;

template <typename F>
void bind(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
}

}  // namespace

void name_cuda_kernel_library(const std::string& named) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!opened && !named.empty()) path = named;
}

std::string open_cuda_kernel_library() {
  std::lock_guard<std::mutex> lock(mutex);
  if (opened) return "";
  if (path.empty()) return "no CUDA kernel library was named (pagedAttentionCudaLibrary)";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    return std::string("the com.kcache CUDA kernels could not be opened (") + dlerror() +
           "): build them with libs/kcache/scripts/build-native.sh on a machine with nvcc";
  }
  CudaKernelLibrary k;
  bind(lib, "kcache_paged_attention_cuda_scratch_bytes", k.attention_scratch_bytes);
  bind(lib, "kcache_paged_attention_cuda", k.attention);
  bind(lib, "kcache_step_rows_cuda", k.step_rows);
  bind(lib, "kcache_swiglu_cuda", k.swiglu);
  bind(lib, "kcache_paged_attention_cuda_error", k.error_text);
  if (!k.attention_scratch_bytes || !k.attention || !k.step_rows || !k.swiglu || !k.error_text) {
    dlclose(lib);
    return path + " lacks some of the com.kcache CUDA kernels: rebuild it with libs/kcache/scripts/build-native.sh";
  }
  kernels = k;
  opened = true;
  return "";
}

const CudaKernelLibrary& cuda_kernel_library() { return kernels; }
