#!/usr/bin/env bash
# `npm test`: build every project, start a throwaway Redis (unless REDIS_URL is set), run all node:test
# files — libs/*/dist, apps/*/dist, tools/, deploy/ — and exit non-zero on any failure.
#   env in:  REDIS_URL (use this Redis instead of starting one), TEST_CONCURRENCY (default 1)
#   out:     node's spec reporter; its closing summary (ℹ tests / ℹ pass / ℹ fail) is the last output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
trap stop_redis EXIT
trap 'exit 130' INT TERM

log "building (tsc -b tsconfig.build.json)"
node_modules/.bin/tsc -b tsconfig.build.json
log "building the shared host tier addon"
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
