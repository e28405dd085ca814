#!/usr/bin/env bash
# `npm test`: build every project, start a throwaway Redis (unless REDIS_URL is set), run all node:test
# files — libs/*/dist, apps/*/dist, tools/, deploy/ — and exit non-zero on any failure.
#   env in:  REDIS_URL (use this Redis instead of starting one), TEST_CONCURRENCY (default 1)
#   out:     node's spec reporter; its closing summary (ℹ tests / ℹ pass / ℹ fail) is the last output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

install_redis() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      log "redis-server is not installed and this user cannot run apt-get (not root, no passwordless sudo)."
      log "Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL=redis://host:port."
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    log "redis-server is not installed and apt-get is unavailable; install Redis >= 7 or set REDIS_URL."
    exit 1
  fi
  log "installing redis-server with apt-get"
  if ! { "${sudo[@]}" apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }; then
    log "apt-get could not install redis-server (offline?); install it or set REDIS_URL=redis://host:port."
    exit 1
  fi
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# PING over bash's /dev/tcp, so redis-cli is not needed. A subshell keeps fd 3 and the stderr redirect local.
redis_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 1 reply <&3 || exit 1
    [[ $reply == +PONG* ]]
  ) 2>/dev/null
}

redis_pid=''
redis_dir=''
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ -n "$redis_dir" ]; then rm -rf "$redis_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_redis() {
  command -v redis-server >/dev/null || install_redis
  local port
  port=$(free_port)
  redis_dir=$(mktemp -d -t kcache-redis.XXXXXX)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
    --daemonize no --logfile "$redis_dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 100); do
    if redis_answers "$port"; then
      export REDIS_URL="redis://127.0.0.1:$port"
      log "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on $REDIS_URL (pid $redis_pid)"
      return 0
    fi
    if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "redis-server did not start; its log:"
  cat "$redis_dir/redis.log" >&2 || true
  exit 1
}

log "building (tsc -b tsconfig.build.json)"
node_modules/.bin/tsc -b tsconfig.build.json

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
