#!/usr/bin/env bash
# Builds the native addons in libs/kcache/native/build/Release with the node-gyp bundled in npm, against
# this Node's own headers (no download): kcache_shm.node (the shared host tier) and kcache_ort.node
# (onnxruntime's C API: IO binding, the CUDA provider, GPU-visible memory; no CUDA needed to build it).
# Where nvcc is found, also the CUDA kernels of the PagedDecodeAttention operator, kcache_paged_attention_cuda.so
# (CUDA runtime linked in statically: needs only the driver), and kcache_paged_attention_check (those kernels
# against their CPU version, and their speed; run it on a machine with a GPU). Without nvcc only those two are
# skipped, with a warning (the operator's CPU kernel still works).
# Skips the build when every output is newer than every source in native/ (*.c, *.cc, *.h, *.cu, binding.gyp).
#   in:  env ORT_INCLUDE_DIR: onnxruntime's C API headers (onnxruntime_c_api.h, version 1.29 or later);
#          default: $KCACHE_SHARED_DIR/third_party/onnxruntime-1.29.0/include (KCACHE_SHARED_DIR defaults to
#          ../shared beside the checkout), else the include/ folder of an onnxruntime release in /usr/local.
#        env KCACHE_NATIVE_OPTIONAL=1 → a missing toolchain is a warning and exit 0 (the engine then
#          runs with its in-process host tier only); otherwise it is an error (exit 1).
#        env NVCC: the CUDA compiler; default: nvcc on the PATH, else $CUDA_HOME/bin/nvcc.
#   out: the addons (and, with nvcc, the CUDA kernel library and its check program), or a message naming what
#        is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../native"

log() { echo "build-native: $*" >&2; }
addon=build/Release/kcache_shm.node
ort_addon=build/Release/kcache_ort.node
cuda_lib=build/Release/kcache_paged_attention_cuda.so
cuda_check=build/Release/kcache_paged_attention_check

nvcc_bin=${NVCC:-}
[ -n "$nvcc_bin" ] || nvcc_bin=$(command -v nvcc || true)
[ -n "$nvcc_bin" ] || { [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && nvcc_bin=$CUDA_HOME/bin/nvcc; } || true

# Up to date: every output exists and is newer than every source (the CUDA outputs only where nvcc is).
outputs=("$addon" "$ort_addon")
[ -z "$nvcc_bin" ] || outputs+=("$cuda_lib" "$cuda_check")
up_to_date() {
  local out src
  for out in "${outputs[@]}"; do
    [ -f "$out" ] || return 1
    for src in *.c *.cc *.h *.cu binding.gyp; do
      [ ! -e "$src" ] || [ "$out" -nt "$src" ] || return 1
    done
  done
}
if up_to_date; then
  exit 0
fi

if [ -z "${ORT_INCLUDE_DIR:-}" ]; then
  shared=${KCACHE_SHARED_DIR:-../../../../shared}
  for dir in "$shared/third_party/onnxruntime-1.29.0/include" /usr/local/include/onnxruntime /usr/include/onnxruntime; do
    if [ -f "$dir/onnxruntime_c_api.h" ]; then ORT_INCLUDE_DIR=$(cd "$dir" && pwd); break; fi
  done
fi
export ORT_INCLUDE_DIR=${ORT_INCLUDE_DIR:-}

node_bin=$(command -v node)
prefix=$(cd "$(dirname "$(readlink -f "$node_bin")")/.." && pwd)
node_gyp="$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
missing=()
command -v python3 >/dev/null || missing+=("python3")
command -v make >/dev/null || missing+=("make")
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=("a C compiler (gcc)")
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++ compiler (g++)")
[ -f "$prefix/include/node/node_api.h" ] || missing+=("Node headers ($prefix/include/node/node_api.h)")
[ -f "$node_gyp" ] || missing+=("node-gyp (expected with npm at $node_gyp)")
[ -f "$ORT_INCLUDE_DIR/onnxruntime_c_api.h" ] || missing+=("onnxruntime's C API headers (set ORT_INCLUDE_DIR to the include/ folder of the onnxruntime 1.29 release)")
if [ "${#missing[@]}" -gt 0 ]; then
  log "cannot build the shared host tier addon: missing $(printf '%s, ' "${missing[@]}" | sed 's/, $//')."
  log "Debian/Ubuntu: apt-get install -y python3 make g++ (Node headers come with the official Node builds)."
  log "Without it the engine runs with its in-process host tier only (hostTier: { kind: 'shared' } fails at start-up)."
  if [ "${KCACHE_NATIVE_OPTIONAL:-0}" = 1 ]; then exit 0; fi
  exit 1
fi

log "building $(pwd)/$addon"
if ! node "$node_gyp" rebuild --nodedir="$prefix" --loglevel=warn >build.log 2>&1; then
  cat build.log >&2
  log "node-gyp failed (log above)."
  exit 1
fi
rm -f build.log

# The CUDA kernels of PagedDecodeAttention (opened by the addon when a CUDA session first uses the operator)
# and their check program (linked to the library beside it, and to the CPU version).
if [ -z "$nvcc_bin" ]; then
  log "nvcc not found (NVCC, PATH, CUDA_HOME): skipped the CUDA PagedDecodeAttention kernels ($cuda_lib) and their check; the operator's CPU kernel still works."
  exit 0
fi
log "building $(pwd)/$cuda_lib with $nvcc_bin"
cuda_flags=(-O3 -std=c++17 -Xcompiler -fPIC,-Wall,-Wextra -cudart static
  -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90)
# --exclude-libs: the static CUDA runtime's symbols stay inside the library (onnxruntime loads its own).
if ! "$nvcc_bin" "${cuda_flags[@]}" -shared -Xlinker --exclude-libs,ALL -o "$cuda_lib" paged_attention.cu swiglu.cu >build.log 2>&1 ||
  ! "$nvcc_bin" -O2 -std=c++17 -Xcompiler -Wall,-Wextra -cudart static -o "$cuda_check" \
    paged_attention_check.cc paged_attention_cpu.cc step_rows_cpu.cc swiglu_cpu.cc -Lbuild/Release -l:kcache_paged_attention_cuda.so \
    -Xlinker -rpath,'$ORIGIN' >>build.log 2>&1; then
  cat build.log >&2
  rm -f "$cuda_lib" "$cuda_check"
  log "nvcc failed (log above)."
  exit 1
fi
if [ -s build.log ]; then cat build.log >&2; fi
rm -f build.log
