#!/usr/bin/env bash
# Packs, here, what scripts/device/run-gpu.sh needs on the lent GPU machine (which has no Node):
#   .gpu-bundle/node.xz       this machine's Node binary (xz)
#   .gpu-bundle/app.tar.xz    root package.json, libs/kcache/dist, the runtime node_modules
#                             (onnxruntime-node with only its linux-x64 binaries, onnxruntime-common,
#                             onnx-proto, protobufjs, long, @protobufjs/*, @huggingface/*) and the
#                             stories260K model + oracle under shared/
#   .gl/*.deb                 the Vulkan loader (and GL loaders) for the device image
# Both folders are git-ignored (.git/info/exclude); name them in the run's `carry`.
# Usage: bash scripts/device/pack-gpu.sh   (KCACHE_SHARED_DIR overrides ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
shared=$(cd "${KCACHE_SHARED_DIR:-$root/../shared}" && pwd)
exclude=$(git rev-parse --git-path info/exclude)
for dir in /.gpu-bundle/ /.gl/; do grep -qxF "$dir" "$exclude" || echo "$dir" >>"$exclude"; done

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

npx tsc -b libs/kcache
rm -rf .gpu-bundle && mkdir .gpu-bundle
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" >.gpu-bundle/node.xz
modules=(onnxruntime-node onnxruntime-common onnx-proto protobufjs long @protobufjs @huggingface/tokenizers @huggingface/jinja)
tar -c -I 'xz -T0 -6' -f .gpu-bundle/app.tar.xz \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' \
  --transform "s,^$(basename "$shared")/,shared/," \
  -C "$root" package.json libs/kcache/package.json libs/kcache/dist "${modules[@]/#/node_modules/}" \
  -C "$(dirname "$shared")" "$(basename "$shared")/models/stories260K" "$(basename "$shared")/oracle"
du -ch .gpu-bundle/* .gl/*.deb | tail -n 1
ls -l .gpu-bundle
