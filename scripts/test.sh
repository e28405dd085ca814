#!/usr/bin/env bash
# `npm test`: lint (Nx module boundaries, ESLint), type-check the k6 scripts, build every project and the
# native addon, start a throwaway Redis (unless REDIS_URL is set), run all node:test files — libs/*/dist,
# apps/*/dist, tools/, deploy/ — and exit non-zero on any failure.
#   env in:  REDIS_URL (use this Redis instead of starting one), TEST_CONCURRENCY (default 1)
#   out:     node's spec reporter; its closing summary (ℹ tests / ℹ pass / ℹ fail) is the last output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
trap stop_redis EXIT
trap 'exit 130' INT TERM

export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
log "lint (nx run-many -t lint)"
node_modules/.bin/nx run-many -t lint --outputStyle=static
log "type-checking the k6 scripts"
node_modules/.bin/tsc -p deploy/k6/tsconfig.json

log "building (tsc -b tsconfig.build.json)"
node_modules/.bin/tsc -b tsconfig.build.json
log "building the native addons (shared host tier, onnxruntime C API)"
# The toolchain node-gyp needs; installed when missing (as redis-server is).
missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v make >/dev/null || missing+=(make)
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=(g++)
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=(g++)
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}" || exit 1; fi
bash libs/kcache/scripts/build-native.sh

if [ -n "${REDIS_URL:-}" ]; then
  log "using REDIS_URL=$REDIS_URL"
else
  start_redis
fi

shopt -s nullglob
test_roots=(libs/*/dist apps/*/dist tools deploy)
set +e
bash scripts/node-tests.sh "${test_roots[@]}"
status=$?
set -e
exit "$status"
