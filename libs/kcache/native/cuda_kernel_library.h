// The com.kcache operators' CUDA kernels, in their own shared library (kcache_paged_attention_cuda.so, built
// from paged_attention.cu and swiglu.cu). The addon opens it when a CUDA session first creates one of those
// kernels, so the addon itself needs no CUDA to build or load.
#ifndef KCACHE_CUDA_KERNEL_LIBRARY_H_
#define KCACHE_CUDA_KERNEL_LIBRARY_H_

#include <stddef.h>
#include <stdint.h>

#include <string>

#include "paged_attention.h"

struct CudaKernelLibrary {
  size_t (*attention_scratch_bytes)(const KcachePagedAttention*) = nullptr;
  int (*attention)(const KcachePagedAttention*, void*) = nullptr;
  int (*step_rows)(const KcacheStepRows*, void*) = nullptr;
  int (*swiglu)(const float*, float*, int64_t, int64_t, void*) = nullptr;
  const char* (*error_text)(int) = nullptr;
};

// Names the library to open; the path given last before the first open is the one opened, later ones are ignored.
void name_cuda_kernel_library(const std::string& path);

// Opens the library once. Returns "" when its kernels are there, else why not (what to build).
std::string open_cuda_kernel_library();

// The kernels (after open_cuda_kernel_library returned "").
const CudaKernelLibrary& cuda_kernel_library();

#endif  // KCACHE_CUDA_KERNEL_LIBRARY_H_
