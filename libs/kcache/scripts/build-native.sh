#!/usr/bin/env bash
# Builds the native addons in libs/kcache/native/build/Release with the node-gyp bundled in npm, against
# this Node's own headers (no download): kcache_shm.node (the shared host tier) and kcache_ort.node
# (onnxruntime's C API: IO binding, the CUDA provider, GPU-visible memory; no CUDA needed to build it).
# Skips the build when both addons are newer than their sources.
#   in:  env ORT_INCLUDE_DIR: onnxruntime's C API headers (onnxruntime_c_api.h, version 1.29 or later);
#          default: $KCACHE_SHARED_DIR/third_party/onnxruntime-1.29.0/include (KCACHE_SHARED_DIR defaults to
#          ../shared beside the checkout), else the include/ folder of an onnxruntime release in /usr/local.
#        env KCACHE_NATIVE_OPTIONAL=1 → a missing toolchain is a warning and exit 0 (the engine then
#          runs with its in-process host tier only); otherwise it is an error (exit 1).
#   out: the addons, or a message naming what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../native"

log() { echo "build-native: $*" >&2; }
addon=build/Release/kcache_shm.node
ort_addon=build/Release/kcache_ort.node

if [ -f "$addon" ] && [ "$addon" -nt kcache_shm.c ] && [ "$addon" -nt binding.gyp ] &&
  [ -f "$ort_addon" ] && [ "$ort_addon" -nt kcache_ort.cc ] && [ "$ort_addon" -nt binding.gyp ]; then
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
