{
  "variables": {
    "ort_include_dir%": "<!(echo $ORT_INCLUDE_DIR)"
  },
  "targets": [
    {
      "target_name": "kcache_shm",
      "sources": ["kcache_shm.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "kcache_ort",
      "sources": ["kcache_ort.cc", "kcache_ops.cc", "cuda_kernel_library.cc", "paged_attention_op.cc", "paged_attention_cpu.cc", "step_rows_cpu.cc", "swiglu_op.cc", "swiglu_cpu.cc"],
      "include_dirs": ["<(ort_include_dir)"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++14"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ldl"]
    }
  ]
}
