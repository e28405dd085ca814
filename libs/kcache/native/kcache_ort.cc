// kcache_ort: onnxruntime's C API for the engine, where onnxruntime-node's JavaScript binding stops.
//
// What it adds: IO binding over buffers the engine owns (inputs and outputs written in place, no
// per-run copy of a KV arena), the CUDA provider's options (device id, use_tf32=0), and the memory a
// CUDA worker needs: device buffers (cudaMalloc), pinned mapped host buffers (cudaHostAlloc, visible to
// JavaScript as an ArrayBuffer and to the GPU at the same address), and host memory registered with the
// GPU in place (cudaHostRegister, for the node-shared /dev/shm tier).
//
// Nothing is linked at build time: onnxruntime is the libonnxruntime.so.1 that onnxruntime-node ships
// (its path comes from JavaScript, so both share one onnxruntime in the process), and the CUDA runtime
// is opened only when CUDA memory is asked for. So the addon builds and runs the CPU provider on a
// machine without CUDA.
//
// JavaScript face (libs/kcache/src/ort-native/): init(libPath) → version; Memory (host | device |
// pinned | registered); Tensor (dtype, dims over a Memory at a byte offset); Session (model bytes,
// options) with bind/run. Runs are synchronous on the calling thread.

#include <dlfcn.h>
#include <node_api.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "onnxruntime_c_api.h"
#include "kcache_ops.h"

namespace {

// ---- errors ---------------------------------------------------------------------------------------

struct JsError {
  std::string message;
  std::string code;
};

#define NAPI_OK(call)                                       \
  do {                                                      \
    if ((call) != napi_ok) throw JsError{"N-API call failed: " #call, "ERR_KCACHE_ORT_NAPI"}; \
  } while (0)

const OrtApi* ort = nullptr;
OrtEnv* ort_env = nullptr;
std::string ort_version;
std::mutex init_mutex;

void check(OrtStatus* status) {
  if (status == nullptr) return;
  std::string message = ort->GetErrorMessage(status);
  OrtErrorCode code = ort->GetErrorCode(status);
  ort->ReleaseStatus(status);
  throw JsError{message, "ORT_" + std::to_string(static_cast<int>(code))};
}

void require_init() {
  if (ort == nullptr) throw JsError{"kcache_ort: init(libPath) was not called", "ERR_KCACHE_ORT_INIT"};
}

// ---- the CUDA runtime, opened on first use ----------------------------------------------------------

struct Cudart {
  using Malloc = int (*)(void**, size_t);
  using Free = int (*)(void*);
  using HostAlloc = int (*)(void**, size_t, unsigned);
  using FreeHost = int (*)(void*);
  using HostRegister = int (*)(void*, size_t, unsigned);
  using HostUnregister = int (*)(void*);
  using HostGetDevicePointer = int (*)(void**, void*, unsigned);
  using Memcpy = int (*)(void*, const void*, size_t, int);
  using Memset = int (*)(void*, int, size_t);
  using SetDevice = int (*)(int);
  using StreamSynchronize = int (*)(void*);
  using GetErrorString = const char* (*)(int);
  Malloc malloc = nullptr;
  Free free = nullptr;
  HostAlloc host_alloc = nullptr;
  FreeHost free_host = nullptr;
  HostRegister host_register = nullptr;
  HostUnregister host_unregister = nullptr;
  HostGetDevicePointer host_get_device_pointer = nullptr;
  Memcpy memcpy = nullptr;
  Memset memset = nullptr;
  SetDevice set_device = nullptr;
  StreamSynchronize stream_synchronize = nullptr;
  GetErrorString error_string = nullptr;
};

constexpr unsigned kHostAllocPortable = 1, kHostAllocMapped = 2;  // cudaHostAlloc flags
constexpr unsigned kHostRegisterPortable = 1, kHostRegisterMapped = 2;
constexpr int kMemcpyHostToDevice = 1, kMemcpyDeviceToHost = 2, kMemcpyDefault = 4;

Cudart cudart;
std::mutex cudart_mutex;

const Cudart& cuda() {
  std::lock_guard<std::mutex> lock(cudart_mutex);
  if (cudart.malloc != nullptr) return cudart;
  void* lib = nullptr;
  std::string tried;
  for (const char* name : {"libcudart.so.13", "libcudart.so.12", "libcudart.so"}) {
    lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (lib != nullptr) break;
    tried += std::string(tried.empty() ? "" : "; ") + dlerror();
  }
  if (lib == nullptr) {
    throw JsError{"the CUDA runtime (libcudart.so.13 or .12) could not be opened: put the CUDA libraries on "
                  "LD_LIBRARY_PATH (" + tried + ")", "ERR_KCACHE_CUDA_RUNTIME"};
  }
  auto sym = [lib](const char* name) {
    void* f = dlsym(lib, name);
    if (f == nullptr) throw JsError{std::string("the CUDA runtime has no ") + name, "ERR_KCACHE_CUDA_RUNTIME"};
    return f;
  };
  Cudart c;
  c.malloc = reinterpret_cast<Cudart::Malloc>(sym("cudaMalloc"));
  c.free = reinterpret_cast<Cudart::Free>(sym("cudaFree"));
  c.host_alloc = reinterpret_cast<Cudart::HostAlloc>(sym("cudaHostAlloc"));
  c.free_host = reinterpret_cast<Cudart::FreeHost>(sym("cudaFreeHost"));
  c.host_register = reinterpret_cast<Cudart::HostRegister>(sym("cudaHostRegister"));
  c.host_unregister = reinterpret_cast<Cudart::HostUnregister>(sym("cudaHostUnregister"));
  c.host_get_device_pointer = reinterpret_cast<Cudart::HostGetDevicePointer>(sym("cudaHostGetDevicePointer"));
  c.memcpy = reinterpret_cast<Cudart::Memcpy>(sym("cudaMemcpy"));
  c.memset = reinterpret_cast<Cudart::Memset>(sym("cudaMemset"));
  c.set_device = reinterpret_cast<Cudart::SetDevice>(sym("cudaSetDevice"));
  c.stream_synchronize = reinterpret_cast<Cudart::StreamSynchronize>(sym("cudaStreamSynchronize"));
  c.error_string = reinterpret_cast<Cudart::GetErrorString>(sym("cudaGetErrorString"));
  cudart = c;
  return cudart;
}

void check_cuda(int rc, const char* what) {
  if (rc != 0) throw JsError{std::string(what) + " failed: " + cuda().error_string(rc), "ERR_KCACHE_CUDA_" + std::to_string(rc)};
}

// ---- N-API helpers --------------------------------------------------------------------------------

napi_value throw_js(napi_env env, const JsError& e) {
  napi_value msg, code, error;
  napi_create_string_utf8(env, e.message.c_str(), e.message.size(), &msg);
  napi_create_string_utf8(env, e.code.c_str(), e.code.size(), &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return nullptr;
}

template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const JsError& e) {
    return throw_js(env, e);
  } catch (const std::exception& e) {
    return throw_js(env, JsError{e.what(), "ERR_KCACHE_ORT"});
  }
}

struct Args {
  napi_value self = nullptr;
  std::vector<napi_value> argv;
  void* data = nullptr;
};

Args args_of(napi_env env, napi_callback_info info, size_t max) {
  Args a;
  size_t argc = max;
  a.argv.resize(max);
  NAPI_OK(napi_get_cb_info(env, info, &argc, a.argv.data(), &a.self, &a.data));
  a.argv.resize(argc);
  return a;
}

bool is_undefined(napi_env env, napi_value v) {
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, v, &t));
  return t == napi_undefined || t == napi_null;
}

napi_value arg(const Args& a, size_t i, const char* name) {
  if (i >= a.argv.size()) throw JsError{std::string("missing argument: ") + name, "ERR_INVALID_ARG_TYPE"};
  return a.argv[i];
}

std::string to_string(napi_env env, napi_value v, const char* name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    throw JsError{std::string(name) + " must be a string", "ERR_INVALID_ARG_TYPE"};
  }
  std::string s(len, '\0');
  NAPI_OK(napi_get_value_string_utf8(env, v, s.data(), len + 1, &len));
  return s;
}

int64_t to_int64(napi_env env, napi_value v, const char* name) {
  int64_t out = 0;
  if (napi_get_value_int64(env, v, &out) != napi_ok) throw JsError{std::string(name) + " must be a number", "ERR_INVALID_ARG_TYPE"};
  return out;
}

napi_value from_string(napi_env env, const std::string& s) {
  napi_value v;
  NAPI_OK(napi_create_string_utf8(env, s.c_str(), s.size(), &v));
  return v;
}

napi_value from_double(napi_env env, double d) {
  napi_value v;
  NAPI_OK(napi_create_double(env, d, &v));
  return v;
}

napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

template <typename T>
T* unwrap(napi_env env, napi_value v, const char* name) {
  void* p = nullptr;
  if (napi_unwrap(env, v, &p) != napi_ok || p == nullptr) throw JsError{std::string(name) + " is not a native object", "ERR_INVALID_ARG_TYPE"};
  auto* obj = static_cast<T*>(p);
  if (obj->tag != T::kTag) throw JsError{std::string(name) + " has the wrong native type", "ERR_INVALID_ARG_TYPE"};
  return obj;
}

// ---- Memory ---------------------------------------------------------------------------------------

enum class MemoryKind { Host, Device, Pinned, Registered };

// A buffer a Tensor can view. Host: a JavaScript ArrayBuffer (kept alive by a reference). Device:
// cudaMalloc. Pinned: cudaHostAlloc(mapped | portable), exposed to JavaScript as an external ArrayBuffer.
// Registered: a JavaScript ArrayBuffer (for example an mmap) registered with cudaHostRegister in place.
// For pinned and registered memory the GPU sees device_ptr (equal to host_ptr under unified addressing).
struct Memory {
  static constexpr uint32_t kTag = 0x4d454d31;
  uint32_t tag = kTag;
  MemoryKind kind = MemoryKind::Host;
  void* host_ptr = nullptr;
  void* device_ptr = nullptr;
  size_t bytes = 0;
  int device_id = 0;
  napi_ref buffer_ref = nullptr;  // Host and Registered: the ArrayBuffer; Pinned: the external one
  bool released = false;

  void* data() const { return kind == MemoryKind::Host ? host_ptr : device_ptr; }

  void release(napi_env env) {
    if (released) return;
    released = true;
    if (kind == MemoryKind::Device && device_ptr) cuda().free(device_ptr);
    if (kind == MemoryKind::Registered && host_ptr) cuda().host_unregister(host_ptr);
    if (buffer_ref && env) napi_delete_reference(env, buffer_ref);
    buffer_ref = nullptr;
    // Pinned memory is freed by its external ArrayBuffer's finalizer, which may outlive this object.
  }
};

void finalize_memory(napi_env env, void* data, void*) {
  auto* m = static_cast<Memory*>(data);
  m->release(env);
  delete m;
}

void finalize_pinned(napi_env, void* data, void*) {
  if (data) cuda().free_host(data);
}

// Pinned memory in transparent huge pages: unregistered, then unmapped (hint: its mapped size, owned here).
void finalize_pinned_huge(napi_env, void* data, void* hint) {
  auto* mapped = static_cast<size_t*>(hint);
  if (data) {
    cuda().host_unregister(data);
    munmap(data, *mapped);
  }
  delete mapped;
}

void array_buffer_of(napi_env env, napi_value v, void** data, size_t* bytes, const char* name) {
  bool is_ab = false;
  NAPI_OK(napi_is_arraybuffer(env, v, &is_ab));
  if (!is_ab) throw JsError{std::string(name) + " must be an ArrayBuffer", "ERR_INVALID_ARG_TYPE"};
  NAPI_OK(napi_get_arraybuffer_info(env, v, data, bytes));
}

// new Memory('host', arrayBuffer) | ('device', bytes, deviceId) | ('pinned', bytes) | ('pinned-huge', bytes) |
//            ('registered', arrayBuffer, deviceId)
napi_value memory_new(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 3);
    std::string kind = to_string(env, arg(a, 0, "kind"), "kind");
    auto* m = new Memory();
    try {
      if (kind == "host" || kind == "registered") {
        napi_value buffer = arg(a, 1, "buffer");
        array_buffer_of(env, buffer, &m->host_ptr, &m->bytes, "buffer");
        NAPI_OK(napi_create_reference(env, buffer, 1, &m->buffer_ref));
        m->kind = MemoryKind::Host;
        if (kind == "registered") {
          m->device_id = a.argv.size() > 2 ? static_cast<int>(to_int64(env, a.argv[2], "deviceId")) : 0;
          check_cuda(cuda().set_device(m->device_id), "cudaSetDevice");
          check_cuda(cuda().host_register(m->host_ptr, m->bytes, kHostRegisterMapped | kHostRegisterPortable), "cudaHostRegister");
          m->kind = MemoryKind::Registered;
          check_cuda(cuda().host_get_device_pointer(&m->device_ptr, m->host_ptr, 0), "cudaHostGetDevicePointer");
        }
      } else if (kind == "device") {
        m->kind = MemoryKind::Device;
        m->bytes = static_cast<size_t>(to_int64(env, arg(a, 1, "bytes"), "bytes"));
        m->device_id = a.argv.size() > 2 ? static_cast<int>(to_int64(env, a.argv[2], "deviceId")) : 0;
        check_cuda(cuda().set_device(m->device_id), "cudaSetDevice");
        check_cuda(cuda().malloc(&m->device_ptr, m->bytes == 0 ? 1 : m->bytes), "cudaMalloc");
      } else if (kind == "pinned" || kind == "pinned-huge") {
        m->kind = MemoryKind::Pinned;
        m->bytes = static_cast<size_t>(to_int64(env, arg(a, 1, "bytes"), "bytes"));
        napi_value external;
        napi_status made;
        if (kind == "pinned") {
          check_cuda(cuda().host_alloc(&m->host_ptr, m->bytes == 0 ? 1 : m->bytes, kHostAllocMapped | kHostAllocPortable), "cudaHostAlloc");
          std::memset(m->host_ptr, 0, m->bytes);
          made = napi_create_external_arraybuffer(env, m->host_ptr, m->bytes, finalize_pinned, nullptr, &external);
          if (made != napi_ok) cuda().free_host(m->host_ptr);
        } else {
          // Transparent huge pages (2 MiB where the kernel grants them), registered with the GPU in place: fewer
          // pages for the GPU to translate when it reads rows scattered over gigabytes.
          const size_t huge = size_t(2) << 20;
          auto* mapped = new size_t((std::max<size_t>(m->bytes, 1) + huge - 1) / huge * huge);
          void* p = mmap(nullptr, *mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
          if (p == MAP_FAILED) {
            delete mapped;
            throw JsError{std::string("mmap of ") + std::to_string(m->bytes) + " bytes failed: " + std::strerror(errno), "ERR_KCACHE_ORT_MEMORY"};
          }
          madvise(p, *mapped, MADV_HUGEPAGE);  // a hint: where the kernel grants none, 4 KiB pages
          madvise(p, *mapped, MADV_DONTFORK);  // a fork must not copy-on-write what the GPU reads
          std::memset(p, 0, *mapped);  // faults the pages in now
          if (int rc = cuda().host_register(p, *mapped, kHostRegisterMapped | kHostRegisterPortable)) {
            munmap(p, *mapped);
            delete mapped;
            check_cuda(rc, "cudaHostRegister");
          }
          m->host_ptr = p;
          made = napi_create_external_arraybuffer(env, p, m->bytes, finalize_pinned_huge, mapped, &external);
          if (made != napi_ok) finalize_pinned_huge(env, p, mapped);
        }
        if (made != napi_ok) throw JsError{"this Node cannot expose native memory as an ArrayBuffer", "ERR_KCACHE_ORT_NAPI"};
        check_cuda(cuda().host_get_device_pointer(&m->device_ptr, m->host_ptr, 0), "cudaHostGetDevicePointer");
        NAPI_OK(napi_create_reference(env, external, 1, &m->buffer_ref));
      } else {
        throw JsError{"memory kind must be host, device, pinned, pinned-huge or registered, got '" + kind + "'", "ERR_INVALID_ARG_VALUE"};
      }
      NAPI_OK(napi_wrap(env, a.self, m, finalize_memory, nullptr, nullptr));
    } catch (...) {
      m->release(env);
      delete m;
      throw;
    }
    return a.self;
  });
}

napi_value memory_kind(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 0);
    auto* m = unwrap<Memory>(env, a.self, "this");
    static const char* names[] = {"host", "device", "pinned", "registered"};
    return from_string(env, names[static_cast<int>(m->kind)]);
  });
}

napi_value memory_bytes(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 0);
    return from_double(env, static_cast<double>(unwrap<Memory>(env, a.self, "this")->bytes));
  });
}

// The ArrayBuffer over the memory's host side (host, pinned, registered); undefined for device memory.
napi_value memory_buffer(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 0);
    auto* m = unwrap<Memory>(env, a.self, "this");
    if (m->buffer_ref == nullptr) return undefined(env);
    napi_value v;
    NAPI_OK(napi_get_reference_value(env, m->buffer_ref, &v));
    return v;
  });
}

// copy(direction 'toDevice'|'fromDevice', byteOffset, view): between the memory and a typed array / DataView.
napi_value memory_copy(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 4);
    auto* m = unwrap<Memory>(env, a.self, "this");
    if (m->released) throw JsError{"memory was released", "ERR_KCACHE_ORT_RELEASED"};
    std::string direction = to_string(env, arg(a, 0, "direction"), "direction");
    bool wait = true;  // copy(direction, byteOffset, view, wait = true)
    if (a.argv.size() > 3 && !is_undefined(env, a.argv[3])) NAPI_OK(napi_get_value_bool(env, a.argv[3], &wait));
    int64_t offset = to_int64(env, arg(a, 1, "byteOffset"), "byteOffset");
    napi_value view = arg(a, 2, "view");
    void* data = nullptr;
    size_t length = 0;
    bool is_typed = false, is_dv = false;
    NAPI_OK(napi_is_typedarray(env, view, &is_typed));
    NAPI_OK(napi_is_dataview(env, view, &is_dv));
    if (is_typed) {
      napi_typedarray_type type;
      size_t count, byte_offset;
      napi_value ab;
      NAPI_OK(napi_get_typedarray_info(env, view, &type, &count, &data, &ab, &byte_offset));
      size_t elem = 1;
      switch (type) {
        case napi_int16_array: case napi_uint16_array: elem = 2; break;
        case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
        case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
        default: elem = 1;
      }
      length = count * elem;
    } else if (is_dv) {
      napi_value ab;
      size_t byte_offset;
      NAPI_OK(napi_get_dataview_info(env, view, &length, &data, &ab, &byte_offset));
    } else {
      throw JsError{"view must be a typed array or DataView", "ERR_INVALID_ARG_TYPE"};
    }
    if (offset < 0 || static_cast<size_t>(offset) + length > m->bytes) {
      throw JsError{"copy of " + std::to_string(length) + " bytes at " + std::to_string(offset) + " is outside the memory's " +
                        std::to_string(m->bytes) + " bytes", "ERR_OUT_OF_RANGE"};
    }
    char* base = static_cast<char*>(m->kind == MemoryKind::Device ? m->device_ptr : m->host_ptr) + offset;
    bool to_device = direction == "toDevice";
    if (!to_device && direction != "fromDevice") throw JsError{"direction must be toDevice or fromDevice", "ERR_INVALID_ARG_VALUE"};
    if (m->kind == MemoryKind::Device) {
      check_cuda(cuda().memcpy(to_device ? base : data, to_device ? data : base, length, to_device ? kMemcpyHostToDevice : kMemcpyDeviceToHost), "cudaMemcpy");
      // From pageable memory, cudaMemcpy may return before the DMA lands, and onnxruntime's kernels run on a
      // non-blocking stream that does not wait for the default one: wait here, so the next run reads these bytes
      // (wait false: the caller waits once for several copies, waitForCopies).
      if (to_device && wait) check_cuda(cuda().stream_synchronize(nullptr), "cudaStreamSynchronize");
    } else {
      std::memmove(to_device ? base : data, to_device ? data : base, length);
    }
    return undefined(env);
  });
}

// waitForCopies(): waits for the copies to device memory made with wait false (the default stream's work).
napi_value wait_for_copies(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    check_cuda(cuda().stream_synchronize(nullptr), "cudaStreamSynchronize");
    return undefined(env);
  });
}

// fill(byteOffset, bytes, value): memset on either side.
napi_value memory_fill(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 3);
    auto* m = unwrap<Memory>(env, a.self, "this");
    int64_t offset = to_int64(env, arg(a, 0, "byteOffset"), "byteOffset");
    int64_t bytes = to_int64(env, arg(a, 1, "bytes"), "bytes");
    int value = static_cast<int>(to_int64(env, arg(a, 2, "value"), "value"));
    if (offset < 0 || bytes < 0 || static_cast<size_t>(offset + bytes) > m->bytes) throw JsError{"fill is outside the memory", "ERR_OUT_OF_RANGE"};
    if (m->kind == MemoryKind::Device) {
      check_cuda(cuda().memset(static_cast<char*>(m->device_ptr) + offset, value, bytes), "cudaMemset");
      check_cuda(cuda().stream_synchronize(nullptr), "cudaStreamSynchronize");  // cudaMemset may return before it is done
    } else std::memset(static_cast<char*>(m->host_ptr) + offset, value, bytes);
    return undefined(env);
  });
}

napi_value memory_release(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 0);
    unwrap<Memory>(env, a.self, "this")->release(env);
    return undefined(env);
  });
}

// ---- Tensor ---------------------------------------------------------------------------------------

struct DtypeInfo {
  const char* name;
  ONNXTensorElementDataType type;
  size_t bytes;
};

const DtypeInfo kDtypes[] = {
    {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4},   {"float16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2},
    {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8},     {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4},
    {"uint16", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, 2},   {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1},
    {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1},       {"float64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8},
};

const DtypeInfo& dtype_of(const std::string& name) {
  for (const auto& d : kDtypes) if (name == d.name) return d;
  throw JsError{"unsupported dtype '" + name + "'", "ERR_INVALID_ARG_VALUE"};
}

// An OrtValue over a Memory: dims, dtype, byte offset. Keeps its memory alive by a reference.
struct Tensor {
  static constexpr uint32_t kTag = 0x54454e31;
  uint32_t tag = kTag;
  OrtValue* value = nullptr;
  napi_ref memory_ref = nullptr;
};

void finalize_tensor(napi_env env, void* data, void*) {
  auto* t = static_cast<Tensor*>(data);
  if (t->value) ort->ReleaseValue(t->value);
  if (t->memory_ref) napi_delete_reference(env, t->memory_ref);
  delete t;
}

OrtMemoryInfo* memory_info_for(const Memory& m) {
  OrtMemoryInfo* info = nullptr;
  if (m.kind == MemoryKind::Host) {
    check(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &info));
  } else {
    // Device, pinned and registered memory are all addressed by the GPU: the CUDA provider's kernels read
    // pinned and registered host memory in place over the bus (unified addressing).
    check(ort->CreateMemoryInfo("Cuda", OrtDeviceAllocator, m.device_id, OrtMemTypeDefault, &info));
  }
  return info;
}

// new Tensor(memory, dtype, dims, byteOffset)
napi_value tensor_new(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    require_init();
    Args a = args_of(env, info, 4);
    napi_value memory_value = arg(a, 0, "memory");
    auto* m = unwrap<Memory>(env, memory_value, "memory");
    if (m->released) throw JsError{"memory was released", "ERR_KCACHE_ORT_RELEASED"};
    const DtypeInfo& dt = dtype_of(to_string(env, arg(a, 1, "dtype"), "dtype"));
    napi_value dims_value = arg(a, 2, "dims");
    uint32_t rank = 0;
    NAPI_OK(napi_get_array_length(env, dims_value, &rank));
    std::vector<int64_t> dims(rank);
    size_t count = 1;
    for (uint32_t i = 0; i < rank; i++) {
      napi_value d;
      NAPI_OK(napi_get_element(env, dims_value, i, &d));
      dims[i] = to_int64(env, d, "dims[i]");
      if (dims[i] < 0) throw JsError{"dims must not be negative", "ERR_OUT_OF_RANGE"};
      count *= static_cast<size_t>(dims[i]);
    }
    int64_t offset = a.argv.size() > 3 ? to_int64(env, a.argv[3], "byteOffset") : 0;
    size_t bytes = count * dt.bytes;
    if (offset < 0 || static_cast<size_t>(offset) + bytes > m->bytes) {
      throw JsError{"a " + std::string(dt.name) + " tensor of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                        " does not fit the memory's " + std::to_string(m->bytes) + " bytes", "ERR_OUT_OF_RANGE"};
    }
    OrtMemoryInfo* mem_info = memory_info_for(*m);
    auto* t = new Tensor();
    OrtStatus* status = ort->CreateTensorWithDataAsOrtValue(mem_info, static_cast<char*>(m->data()) + offset, bytes, dims.data(), dims.size(), dt.type, &t->value);
    ort->ReleaseMemoryInfo(mem_info);
    if (status) {
      delete t;
      check(status);
    }
    napi_create_reference(env, memory_value, 1, &t->memory_ref);
    NAPI_OK(napi_wrap(env, a.self, t, finalize_tensor, nullptr, nullptr));
    return a.self;
  });
}

// ---- Session --------------------------------------------------------------------------------------

struct Session {
  static constexpr uint32_t kTag = 0x53455331;
  uint32_t tag = kTag;
  OrtSession* session = nullptr;
  OrtIoBinding* binding = nullptr;
  OrtRunOptions* run_options = nullptr;
  std::map<int64_t, OrtRunOptions*> graph_run_options;  // run(graphId): onnxruntime's gpu_graph_id, one per id
  std::vector<std::string> input_names, output_names;
  std::map<std::string, napi_ref> bound;  // "in:name" / "out:name" → the tensor bound now, kept alive until rebound or cleared

  void close(napi_env env) {
    for (auto& [name, r] : bound) napi_delete_reference(env, r);
    bound.clear();
    if (binding) ort->ReleaseIoBinding(binding);
    if (run_options) ort->ReleaseRunOptions(run_options);
    for (auto& [id, options] : graph_run_options) ort->ReleaseRunOptions(options);
    graph_run_options.clear();
    if (session) ort->ReleaseSession(session);
    binding = nullptr;
    run_options = nullptr;
    session = nullptr;
  }
};

void finalize_session(napi_env env, void* data, void*) {
  auto* s = static_cast<Session*>(data);
  s->close(env);
  delete s;
}

napi_value get_property(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  NAPI_OK(napi_get_named_property(env, obj, name, &v));
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, v, &t));
  return t == napi_undefined || t == napi_null ? nullptr : v;
}

std::vector<std::string> names_of(OrtSession* session, bool inputs) {
  OrtAllocator* allocator = nullptr;
  check(ort->GetAllocatorWithDefaultOptions(&allocator));
  size_t count = 0;
  check(inputs ? ort->SessionGetInputCount(session, &count) : ort->SessionGetOutputCount(session, &count));
  std::vector<std::string> names;
  for (size_t i = 0; i < count; i++) {
    char* name = nullptr;
    check(inputs ? ort->SessionGetInputName(session, i, allocator, &name) : ort->SessionGetOutputName(session, i, allocator, &name));
    names.emplace_back(name);
    allocator->Free(allocator, name);
  }
  return names;
}

void append_cuda(napi_env env, OrtSessionOptions* options, napi_value opts) {
  OrtCUDAProviderOptionsV2* cuda_options = nullptr;
  check(ort->CreateCUDAProviderOptions(&cuda_options));
  std::vector<std::string> keys{"device_id", "use_tf32"}, values{"0", "0"};
  if (napi_value id = get_property(env, opts, "deviceId")) values[0] = std::to_string(to_int64(env, id, "deviceId"));
  if (napi_value extra = get_property(env, opts, "cudaOptions")) {
    napi_value names;
    NAPI_OK(napi_get_property_names(env, extra, &names));
    uint32_t n = 0;
    NAPI_OK(napi_get_array_length(env, names, &n));
    for (uint32_t i = 0; i < n; i++) {
      napi_value key, value;
      NAPI_OK(napi_get_element(env, names, i, &key));
      NAPI_OK(napi_get_property(env, extra, key, &value));
      std::string k = to_string(env, key, "cudaOptions key");
      std::string v = to_string(env, value, "cudaOptions value");
      bool replaced = false;
      for (size_t j = 0; j < keys.size(); j++) if (keys[j] == k) { values[j] = v; replaced = true; }
      if (!replaced) { keys.push_back(k); values.push_back(v); }
    }
  }
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keys.size(); i++) { k.push_back(keys[i].c_str()); v.push_back(values[i].c_str()); }
  OrtStatus* status = ort->UpdateCUDAProviderOptions(cuda_options, k.data(), v.data(), k.size());
  if (!status) status = ort->SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda_options);
  ort->ReleaseCUDAProviderOptions(cuda_options);
  check(status);
}

// new Session(model: Uint8Array, { provider: 'cpu'|'cuda', deviceId?, intraOpNumThreads?, logSeverityLevel?,
//   graphOptimizationLevel?: 'all'|'basic'|'extended'|'disabled', cudaOptions?: Record<string,string>,
//   sessionConfig?: Record<string,string>, profileFilePrefix?: string, pagedAttention?: boolean (the
//   com.kcache PagedDecodeAttention operator), pagedAttentionCudaLibrary?: string (its CUDA kernels' .so) })
napi_value session_new(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    require_init();
    Args a = args_of(env, info, 2);
    napi_value model = arg(a, 0, "model");
    bool is_typed = false;
    NAPI_OK(napi_is_typedarray(env, model, &is_typed));
    if (!is_typed) throw JsError{"model must be a Uint8Array", "ERR_INVALID_ARG_TYPE"};
    napi_typedarray_type type;
    size_t length, byte_offset;
    void* data;
    napi_value ab;
    NAPI_OK(napi_get_typedarray_info(env, model, &type, &length, &data, &ab, &byte_offset));
    napi_value opts = arg(a, 1, "options");

    OrtSessionOptions* options = nullptr;
    check(ort->CreateSessionOptions(&options));
    auto* s = new Session();
    try {
      int threads = 0;
      if (napi_value t = get_property(env, opts, "intraOpNumThreads")) threads = static_cast<int>(to_int64(env, t, "intraOpNumThreads"));
      check(ort->SetIntraOpNumThreads(options, threads));
      check(ort->SetInterOpNumThreads(options, 1));
      check(ort->SetSessionExecutionMode(options, ORT_SEQUENTIAL));
      int severity = 3;
      if (napi_value l = get_property(env, opts, "logSeverityLevel")) severity = static_cast<int>(to_int64(env, l, "logSeverityLevel"));
      check(ort->SetSessionLogSeverityLevel(options, severity));
      GraphOptimizationLevel level = ORT_ENABLE_ALL;
      if (napi_value g = get_property(env, opts, "graphOptimizationLevel")) {
        std::string name = to_string(env, g, "graphOptimizationLevel");
        level = name == "disabled" ? ORT_DISABLE_ALL : name == "basic" ? ORT_ENABLE_BASIC : name == "extended" ? ORT_ENABLE_EXTENDED : ORT_ENABLE_ALL;
      }
      check(ort->SetSessionGraphOptimizationLevel(options, level));
      if (napi_value cfg = get_property(env, opts, "sessionConfig")) {
        napi_value names;
        NAPI_OK(napi_get_property_names(env, cfg, &names));
        uint32_t n = 0;
        NAPI_OK(napi_get_array_length(env, names, &n));
        for (uint32_t i = 0; i < n; i++) {
          napi_value key, value;
          NAPI_OK(napi_get_element(env, names, i, &key));
          NAPI_OK(napi_get_property(env, cfg, key, &value));
          check(ort->AddSessionConfigEntry(options, to_string(env, key, "sessionConfig key").c_str(), to_string(env, value, "sessionConfig value").c_str()));
        }
      }
      if (napi_value prefix = get_property(env, opts, "profileFilePrefix")) {
        check(ort->EnableProfiling(options, to_string(env, prefix, "profileFilePrefix").c_str()));
      }
      std::string provider = "cpu";
      if (napi_value p = get_property(env, opts, "provider")) provider = to_string(env, p, "provider");
      if (napi_value ops = get_property(env, opts, "pagedAttention")) {
        bool on = false;
        NAPI_OK(napi_get_value_bool(env, ops, &on));
        std::string cuda_library;
        if (napi_value lib = get_property(env, opts, "pagedAttentionCudaLibrary")) cuda_library = to_string(env, lib, "pagedAttentionCudaLibrary");
        if (on) check(add_kcache_ops(ort, options, cuda_library));
      }
      if (provider == "cuda") append_cuda(env, options, opts);
      else if (provider != "cpu") throw JsError{"provider must be cpu or cuda, got '" + provider + "'", "ERR_INVALID_ARG_VALUE"};
      check(ort->CreateSessionFromArray(ort_env, static_cast<char*>(data), length, options, &s->session));
      check(ort->CreateIoBinding(s->session, &s->binding));
      check(ort->CreateRunOptions(&s->run_options));
      s->input_names = names_of(s->session, true);
      s->output_names = names_of(s->session, false);
      ort->ReleaseSessionOptions(options);
      options = nullptr;
      NAPI_OK(napi_wrap(env, a.self, s, finalize_session, nullptr, nullptr));
    } catch (...) {
      if (options) ort->ReleaseSessionOptions(options);
      s->close(env);
      delete s;
      throw;
    }
    return a.self;
  });
}

Session* live_session(napi_env env, napi_value self) {
  auto* s = unwrap<Session>(env, self, "this");
  if (s->session == nullptr) throw JsError{"session was released", "ERR_KCACHE_ORT_RELEASED"};
  return s;
}

napi_value names_value(napi_env env, const std::vector<std::string>& names) {
  napi_value arr;
  NAPI_OK(napi_create_array_with_length(env, names.size(), &arr));
  for (size_t i = 0; i < names.size(); i++) NAPI_OK(napi_set_element(env, arr, i, from_string(env, names[i])));
  return arr;
}

napi_value session_input_names(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() { return names_value(env, live_session(env, args_of(env, info, 0).self)->input_names); });
}

napi_value session_output_names(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() { return names_value(env, live_session(env, args_of(env, info, 0).self)->output_names); });
}

// bind(inputs: Record<string, Tensor>, outputs: Record<string, Tensor>): binds each (replacing an earlier
// binding of the same name). Bound tensors stay bound across runs until clear().
napi_value session_bind(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 2);
    Session* s = live_session(env, a.self);
    for (int side = 0; side < 2; side++) {
      if (side >= static_cast<int>(a.argv.size())) break;
      napi_value map = a.argv[side];
      napi_valuetype t;
      NAPI_OK(napi_typeof(env, map, &t));
      if (t == napi_undefined || t == napi_null) continue;
      napi_value names;
      NAPI_OK(napi_get_property_names(env, map, &names));
      uint32_t n = 0;
      NAPI_OK(napi_get_array_length(env, names, &n));
      const auto& known = side == 0 ? s->input_names : s->output_names;
      for (uint32_t i = 0; i < n; i++) {
        napi_value key, value;
        NAPI_OK(napi_get_element(env, names, i, &key));
        NAPI_OK(napi_get_property(env, map, key, &value));
        std::string name = to_string(env, key, "name");
        bool found = false;
        for (const auto& k : known) found = found || k == name;
        if (!found) throw JsError{std::string("the graph has no ") + (side == 0 ? "input" : "output") + " named '" + name + "'", "ERR_INVALID_ARG_VALUE"};
        auto* tensor = unwrap<Tensor>(env, value, name.c_str());
        check(side == 0 ? ort->BindInput(s->binding, name.c_str(), tensor->value) : ort->BindOutput(s->binding, name.c_str(), tensor->value));
        napi_ref ref;
        NAPI_OK(napi_create_reference(env, value, 1, &ref));
        napi_ref& slot = s->bound[(side == 0 ? "in:" : "out:") + name];
        if (slot) napi_delete_reference(env, slot);
        slot = ref;
      }
    }
    return undefined(env);
  });
}

napi_value session_clear(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Session* s = live_session(env, args_of(env, info, 0).self);
    ort->ClearBoundInputs(s->binding);
    ort->ClearBoundOutputs(s->binding);
    for (auto& [name, r] : s->bound) napi_delete_reference(env, r);
    s->bound.clear();
    return undefined(env);
  });
}

// run(): one run over the bound tensors; returns when the outputs are written (the provider's stream is
// synchronized at the end of the run).
// run(graphId?): graphId, with a CUDA session made with cudaOptions enable_cuda_graph '1', is onnxruntime's
// gpu_graph_id: each id captures its own CUDA graph (its shapes and bound addresses must stay the same), then replays it.
napi_value session_run(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 1);
    Session* s = live_session(env, a.self);
    OrtRunOptions* options = s->run_options;
    if (!a.argv.empty() && !is_undefined(env, a.argv[0])) {
      const int64_t id = to_int64(env, a.argv[0], "graphId");
      if (id < 0) throw JsError{"graphId must not be negative, got " + std::to_string(id), "ERR_OUT_OF_RANGE"};
      auto found = s->graph_run_options.find(id);
      if (found == s->graph_run_options.end()) {
        OrtRunOptions* made = nullptr;
        check(ort->CreateRunOptions(&made));
        if (OrtStatus* status = ort->AddRunConfigEntry(made, "gpu_graph_id", std::to_string(id).c_str())) {
          ort->ReleaseRunOptions(made);
          check(status);
        }
        found = s->graph_run_options.emplace(id, made).first;
      }
      options = found->second;
    }
    check(ort->RunWithBinding(s->session, options, s->binding));
    return undefined(env);
  });
}

// endProfiling(): ends onnxruntime's profile of a session made with profileFilePrefix; returns the JSON file's path.
napi_value session_end_profiling(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Session* s = live_session(env, args_of(env, info, 0).self);
    OrtAllocator* allocator = nullptr;
    check(ort->GetAllocatorWithDefaultOptions(&allocator));
    char* path = nullptr;
    check(ort->SessionEndProfiling(s->session, allocator, &path));
    std::string result = path == nullptr ? "" : path;
    if (path != nullptr) allocator->Free(allocator, path);
    return from_string(env, result);
  });
}

napi_value session_release(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 0);
    unwrap<Session>(env, a.self, "this")->close(env);
    return undefined(env);
  });
}

// ---- init -----------------------------------------------------------------------------------------

// init(libPath): opens onnxruntime (the library onnxruntime-node loads, so the process has one), asks for
// the C API these headers describe, creates the process's OrtEnv. Returns onnxruntime's version string.
napi_value init(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a = args_of(env, info, 1);
    std::string path = to_string(env, arg(a, 0, "libPath"), "libPath");
    std::lock_guard<std::mutex> lock(init_mutex);
    if (ort == nullptr) {
      void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (lib == nullptr) throw JsError{std::string("cannot open onnxruntime: ") + dlerror(), "ERR_KCACHE_ORT_LOAD"};
      using GetApiBase = const OrtApiBase* (*)();
      auto get_base = reinterpret_cast<GetApiBase>(dlsym(lib, "OrtGetApiBase"));
      if (get_base == nullptr) throw JsError{path + " has no OrtGetApiBase", "ERR_KCACHE_ORT_LOAD"};
      const OrtApiBase* base = get_base();
      const OrtApi* api = base->GetApi(ORT_API_VERSION);
      if (api == nullptr) {
        throw JsError{"onnxruntime " + std::string(base->GetVersionString()) + " at " + path + " does not offer C API version " +
                          std::to_string(ORT_API_VERSION) + " (onnxruntime 1." + std::to_string(ORT_API_VERSION) + " or later is needed)", "ERR_KCACHE_ORT_VERSION"};
      }
      ort = api;
      check(ort->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "kcache", &ort_env));
      ort_version = base->GetVersionString();
    }
    return from_string(env, ort_version);
  });
}

napi_value define_class(napi_env env, napi_value exports, const char* name, napi_callback ctor,
                        const std::vector<napi_property_descriptor>& props) {
  napi_value cls;
  NAPI_OK(napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, nullptr, props.size(), props.data(), &cls));
  NAPI_OK(napi_set_named_property(env, exports, name, cls));
  return cls;
}

napi_property_descriptor method(const char* name, napi_callback cb) {
  return {name, nullptr, cb, nullptr, nullptr, nullptr, napi_default, nullptr};
}

napi_property_descriptor getter(const char* name, napi_callback cb) {
  return {name, nullptr, nullptr, cb, nullptr, nullptr, napi_default, nullptr};
}

}  // namespace

NAPI_MODULE_INIT() {
  return guarded(env, [&]() -> napi_value {
    napi_value fn;
    NAPI_OK(napi_create_function(env, "init", NAPI_AUTO_LENGTH, init, nullptr, &fn));
    NAPI_OK(napi_set_named_property(env, exports, "init", fn));
    napi_value wait;
    NAPI_OK(napi_create_function(env, "waitForCopies", NAPI_AUTO_LENGTH, wait_for_copies, nullptr, &wait));
    NAPI_OK(napi_set_named_property(env, exports, "waitForCopies", wait));
    define_class(env, exports, "Memory", memory_new,
                 {getter("kind", memory_kind), getter("bytes", memory_bytes), getter("buffer", memory_buffer),
                  method("copy", memory_copy), method("fill", memory_fill), method("release", memory_release)});
    define_class(env, exports, "Tensor", tensor_new, {});
    define_class(env, exports, "Session", session_new,
                 {getter("inputNames", session_input_names), getter("outputNames", session_output_names),
                  method("bind", session_bind), method("clear", session_clear), method("run", session_run),
                  method("endProfiling", session_end_profiling), method("release", session_release)});
    return exports;
  });
}
