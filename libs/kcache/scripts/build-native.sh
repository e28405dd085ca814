#!/usr/bin/env bash
# Builds the shared host tier's addon, libs/kcache/native/build/Release/kcache_shm.node, with the
# node-gyp bundled in npm, against this Node's own headers (no download). Skips the build when the
# addon is newer than its sources.
#   in:  env KCACHE_NATIVE_OPTIONAL=1 → a missing toolchain is a warning and exit 0 (the engine then
#        runs with its in-process host tier only); otherwise it is an error (exit 1).
#   out: the addon, or a message naming what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../native"

log() { echo "build-native: $*" >&2; }
addon=build/Release/kcache_shm.node

if [ -f "$addon" ] && [ "$addon" -nt kcache_shm.c ] && [ "$addon" -nt binding.gyp ]; then
  exit 0
fi

node_bin=$(command -v node)
prefix=$(cd "$(dirname "$(readlink -f "$node_bin")")/.." && pwd)
node_gyp="$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
missing=()
command -v python3 >/dev/null || missing+=("python3")
command -v make >/dev/null || missing+=("make")
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=("a C compiler (gcc)")
[ -f "$prefix/include/node/node_api.h" ] || missing+=("Node headers ($prefix/include/node/node_api.h)")
[ -f "$node_gyp" ] || missing+=("node-gyp (expected with npm at $node_gyp)")
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
