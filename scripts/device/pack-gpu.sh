#!/usr/bin/env bash
# Packs, here, what scripts/device/run-gpu.sh needs on the lent GPU machine (which has no Node):
#   .gpu-bundle/node.xz       this machine's Node binary (xz)
#   .gpu-bundle/app.tar.xz    root package.json, libs/kcache/dist, libs/kcache-bench/dist, the runtime node_modules
#                             (onnxruntime-node with only its linux-x64 binaries, onnxruntime-common,
#                             onnx-proto, protobufjs, long, @protobufjs/*, @huggingface/*) and the
#                             stories260K model + oracle under shared/
#                             and the native addons (libs/kcache/native/build/Release)
#   .gl/*.deb                 the Vulkan loader (and GL loaders) for the device image (not with --cuda)
#   --cuda: instead of .gl, onnxruntime's CUDA 13 provider files for the pinned onnxruntime-node, as the
#   npm package com.github.asus4.onnxruntime.linux-x64-gpu (npm pack, cached in .cache/), split in parts
#   that fit one run's carry each: .gpu-bundle/part.0 (beside the app), .gpu-chunk1 … .gpu-chunk3, and
#   .gpu-bundle/cuda-provider.txt (name, sha256, parts): four runs stage everything.
#   --serving: also .gpu-bundle/serving.tar.xz, what the gateway and the worker need at run time beside the
#   app (apps/gateway/dist, apps/worker/dist, libs/proto/dist and its .proto files, the rest of the runtime
#   node_modules: scripts/device/runtime-modules.js, without docs, tests, maps and type declarations) and
#   redis/: Debian's redis-server (from the redis-server and redis-tools packages, cached in .cache/redis)
#   with the shared libraries it needs beyond glibc and libstdc++ (redis/lib; the serving stage uses only those
#   the device image lacks). With --cuda the provider's parts shrink to fit: still four runs.
# The folders are git-ignored (.gitignore); name them in the runs' `carry` (scripts/device/run-cuda.sh).
# Usage: bash scripts/device/pack-gpu.sh [--cuda] [--serving]   (KCACHE_SHARED_DIR overrides ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
shared=$(cd "${KCACHE_SHARED_DIR:-$root/../shared}" && pwd)
cuda=false
serving=false
for arg in "$@"; do
  case $arg in
    --cuda) cuda=true ;;
    --serving) serving=true ;;
    *) echo "pack-gpu: unknown argument $arg (expected --cuda, --serving)" >&2; exit 2 ;;
  esac
done

if ! $cuda && ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

if $serving; then npx tsc -b libs/kcache libs/kcache-bench libs/proto apps/gateway apps/worker; else npx tsc -b libs/kcache libs/kcache-bench; fi
bash libs/kcache/scripts/build-native.sh
rm -rf .gpu-bundle && mkdir .gpu-bundle
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" >.gpu-bundle/node.xz
git rev-parse --short HEAD >.gpu-bundle/commit.txt   # the app carries no git history: results name this commit
# @kcache-serve/kcache is the workspace link (a symlink to libs/kcache) the benchmarks import the engine through.
modules=(onnxruntime-node onnxruntime-common onnx-proto protobufjs long @protobufjs @huggingface/tokenizers @huggingface/jinja @kcache-serve/kcache)
tar -c -I 'xz -T0 -6' -f .gpu-bundle/app.tar.xz \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' \
  --transform "s,^$(basename "$shared")/,shared/," \
  -C "$root" package.json libs/kcache/package.json libs/kcache/dist libs/kcache-bench/package.json libs/kcache-bench/dist \
  libs/kcache/native/build/Release/kcache_shm.node \
  libs/kcache/native/build/Release/kcache_ort.node \
  $(cd "$root" && ls libs/kcache/native/build/Release/kcache_paged_attention_cuda.so libs/kcache/native/build/Release/kcache_paged_attention_check 2>/dev/null) \
  "${modules[@]/#/node_modules/}" \
  -C "$(dirname "$shared")" "$(basename "$shared")/models/stories260K" "$(basename "$shared")/oracle"
if $serving; then bash scripts/device/pack-serving.sh .gpu-bundle/serving.tar.xz "${modules[@]/#/node_modules/}"; fi
if $cuda; then
  provider=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9   # onnxruntime 1.29.0's CUDA 13 provider, as onnxruntime-node 1.29.0
  mkdir -p .cache/cuda-provider
  tgz=$(ls .cache/cuda-provider/*.tgz 2>/dev/null | head -n 1 || true)
  if [ -z "$tgz" ]; then (cd .cache/cuda-provider && npm pack --silent "$provider" >/dev/null); tgz=$(ls .cache/cuda-provider/*.tgz | head -n 1); fi
  # Four runs carry it all: the bundle with the provider's first part (filling its run to 56 MiB), then
  # three chunks of the rest (at most 56 MiB each): a run's working tree, carried paths included, is at
  # most 64 MiB, and the tracked files take about 4 (room is left for a few more).
  rm -rf .gpu-chunk1 .gpu-chunk2 .gpu-chunk3 .gpu-chunk4 .cache/cuda-provider/part.* && mkdir -p .gpu-chunk1 .gpu-chunk2 .gpu-chunk3
  limit=$((56 * 1024 * 1024))
  first=$((limit - $(du -cb .gpu-bundle/* | tail -n 1 | cut -f1) - 4096))
  [ "$first" -gt 0 ] || { echo "pack-gpu: the bundle alone is over 56 MiB" >&2; exit 1; }
  head -c "$first" "$tgz" >.gpu-bundle/part.0
  tail -c +$((first + 1)) "$tgz" | split -b "$limit" -d -a 1 --numeric-suffixes=1 - .cache/cuda-provider/part.
  parts=1
  for part in .cache/cuda-provider/part.*; do
    parts=$((parts + 1))
    [ "$parts" -le 4 ] || { echo "pack-gpu: the provider needs more than 3 chunks" >&2; exit 1; }
    mv "$part" ".gpu-chunk$((parts - 1))/"
  done
  echo "$(basename "$tgz") $(sha256sum "$tgz" | cut -d' ' -f1) $parts" >.gpu-bundle/cuda-provider.txt
  for dir in .gpu-bundle .gpu-chunk1 .gpu-chunk2 .gpu-chunk3; do echo "$dir: $(du -cb "$dir"/* | tail -n 1 | cut -f1) bytes"; done
  du -ch .gpu-bundle/* .gpu-chunk*/* | tail -n 1
else
  du -ch .gpu-bundle/* .gl/*.deb | tail -n 1
fi
ls -l .gpu-bundle
