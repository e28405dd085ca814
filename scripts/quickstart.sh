#!/usr/bin/env bash
# Quick start: install and build, start Redis, a gateway and two workers on stories260K, stream one demo
# completion over gRPC, print how to call the API, and serve until Ctrl-C.
#   usage:   bash scripts/quickstart.sh [--exit-after-demo] [--workers N] [--no-install]
#            --exit-after-demo  stop everything after the demo and exit 0
#            --workers N        worker processes (default 2)
#            --no-install       fail instead of running `npm ci` when node_modules is missing or stale
#   env in:  REDIS_URL    use this Redis (else a private redis-server on a free port, no persistence,
#                         installed with apt-get when missing)
#            MODEL        model spec (default stories260K: ../shared/models/stories260K, else
#                         ~/.cache/kcache-serve/stories260K, else a verified download into that cache)
#            PORT, HTTP_PORT  public gRPC / HTTP ports (default 50051 / 8080, or free ones when taken)
#            GRPC_HOST, HTTP_HOST  bind addresses (default 127.0.0.1); LOG_LEVEL (default info);
#            AUTH_MODE    off by default here (the quick start only; the gateway itself defaults to api-key):
#                         the log says so. AUTH_MODE=api-key: a fresh API key is made for this run and
#                         printed, or with your own API_KEY_HASHES set KCACHE_API_KEY to one of its keys.
#            RELAY_PORT   the gateway's internal relay port (default: a free one); RELAY_HOST and
#                         RELAY_ADVERTISE_HOST default to 127.0.0.1
#            METRICS_PORT worker i (from 1) serves /metrics on METRICS_PORT+i-1 (default: free ports);
#                         METRICS_HOST defaults to 127.0.0.1. Every port chosen is logged.
#            REDIS_PREFIX and the apps' other variables pass through to them.
#   out:     the demo's text, its summary line and the API examples on stdout; progress on stderr;
#            the apps' logs in a temp dir (removed after a clean stop, kept and named otherwise).
#   exit:    0 after --exit-after-demo or Ctrl-C/SIGTERM with everything stopped cleanly; 1 otherwise.
# Redis and the apps run in their own sessions (setsid), so Ctrl-C reaches only this script, which
# stops the workers and the gateway (SIGTERM, SIGKILL after 20 s) and then Redis.
# While serving, the script supervises the workers as a process manager would: a worker that exits is
# logged and started again after a backoff (1 s, doubling to 30 s; back to 1 s once one ran 60 s), and
# the stack keeps serving meanwhile. The gateway or Redis exiting still stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "quickstart: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh

is_exit_after_demo=false
is_install_allowed=true
num_workers=2
while [ "$#" -gt 0 ]; do
  case "$1" in
    --exit-after-demo) is_exit_after_demo=true ;;
    --no-install) is_install_allowed=false ;;
    --workers)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--workers expects a positive integer"
      num_workers=$2
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# --- processes and their cleanup ---------------------------------------------------------------------
run_dir=''
app_pids=()
app_names=()
app_started_at=()
is_clean=true
is_forced=false

# The apps and Redis get SIGTERM; whatever is left after 20 s (or a second Ctrl-C) gets SIGKILL.
stop_all() {
  trap 'is_forced=true' INT TERM
  local i pid status
  for pid in "${app_pids[@]}"; do [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true; done
  local give_up_at=$((SECONDS + 20))
  for i in "${!app_pids[@]}"; do
    pid=${app_pids[$i]}
    [ -n "$pid" ] || continue # a worker waiting to be restarted
    while kill -0 "$pid" 2>/dev/null && ! $is_forced && [ "$SECONDS" -lt "$give_up_at" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "${app_names[$i]} (pid $pid) did not stop; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" 2>/dev/null || status=$?
    if [ "$status" -ne 0 ]; then
      log "${app_names[$i]} exited with status $status"
      is_clean=false
    fi
  done
  app_pids=()
  stop_redis
}

on_exit() {
  local status=$?
  [ "$status" -eq 0 ] || is_clean=false
  stop_all
  if [ -n "$run_dir" ]; then
    if $is_clean; then
      rm -rf "$run_dir"
    else
      log "logs kept in $run_dir"
    fi
  fi
  if $is_clean; then
    log "stopped"
    exit 0
  fi
  exit 1
}
trap on_exit EXIT
trap 'log "stopping (Ctrl-C again to kill)"; exit 0' INT TERM

# start_app NAME ENV... -- CMD...: runs CMD in its own session with ENV, output appended to
# $run_dir/NAME.log. Starting a NAME again (a restart) replaces its pid.
start_app() {
  local name=$1 session=()
  shift
  local env=()
  while [ "$1" != "--" ]; do
    env+=("$1")
    shift
  done
  shift
  if command -v setsid >/dev/null; then session=(setsid); fi
  env "${env[@]}" "${session[@]}" "$@" >>"$run_dir/$name.log" 2>&1 &
  local pid=$! i
  for i in "${!app_names[@]}"; do
    if [ "${app_names[$i]}" = "$name" ]; then
      app_pids[i]=$pid
      app_started_at[i]=$SECONDS
      return
    fi
  done
  app_pids+=("$pid")
  app_names+=("$name")
  app_started_at+=("$SECONDS")
}

start_worker() {
  # A restarted worker keeps its metrics port.
  start_app "worker-$1" "${common_env[@]}" WORKER_ID="quickstart-worker-$1-$$" METRICS_HOST="${METRICS_HOST:-127.0.0.1}" \
    METRICS_PORT="${metrics_ports[$(($1 - 1))]}" -- node apps/worker/dist/main.js
}

# Restarts workers that exited, each after its backoff; dies (check_apps_alive) when another app exited.
declare -A restart_at=() restart_delay=()
supervise_workers() {
  local i name pid status ran delay
  for i in "${!app_pids[@]}"; do
    name=${app_names[$i]}
    pid=${app_pids[$i]}
    [[ $name == worker-* ]] || continue
    if [ -z "$pid" ]; then
      if [ "$SECONDS" -ge "${restart_at[$name]}" ]; then
        start_worker "${name#worker-}"
        log "$name restarted (pid ${app_pids[$i]})"
      fi
      continue
    fi
    kill -0 "$pid" 2>/dev/null && continue
    status=0
    wait "$pid" 2>/dev/null || status=$?
    ran=$((SECONDS - app_started_at[i]))
    delay=${restart_delay[$name]:-1}
    if [ "$ran" -ge 60 ]; then delay=1; fi
    log "$name (pid $pid) exited with status $status after $ran s; restarting it in $delay s, the others keep serving (log: $run_dir/$name.log)"
    app_pids[i]=""
    restart_at[$name]=$((SECONDS + delay))
    restart_delay[$name]=$((delay * 2 > 30 ? 30 : delay * 2))
  done
  check_apps_alive
}

# Dies with the log tail of the first app that is no longer running.
check_apps_alive() {
  local i
  for i in "${!app_pids[@]}"; do
    if [ -n "${app_pids[$i]}" ] && ! kill -0 "${app_pids[$i]}" 2>/dev/null; then
      log "${app_names[$i]} exited; the end of its log:"
      tail -n 30 "$run_dir/${app_names[$i]}.log" >&2 || true
      exit 1
    fi
  done
}

# GET over bash's /dev/tcp (curl may be missing): prints the status code and the body's first line.
http_get() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS=' ' read -r -t 2 _ code _ <&3 || exit 1
    while IFS= read -r -t 2 line <&3 && [ "${line%$'\r'}" != '' ]; do :; done
    IFS= read -r -t 2 body <&3 || true
    echo "$code $body"
  ) 2>/dev/null
}

is_port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The variable's value if set, else the default port if nothing listens there, else a free port.
pick_port() {
  local value=$1 default=$2
  if [ -n "$value" ]; then
    echo "$value"
  elif ! is_port_taken "$default"; then
    echo "$default"
  else
    free_port
  fi
}

# --- 1. Node, dependencies, build --------------------------------------------------------------------
command -v node >/dev/null || die "Node.js >= 20 is required (https://nodejs.org, or Debian/Ubuntu: NodeSource's nodejs package)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required; this is $(node --version)"

if ! stale_reason=$(node scripts/quickstart/deps-fresh.js 2>&1); then
  $is_install_allowed || die "dependencies are not installed as package-lock.json says ($stale_reason); run npm ci"
  log "installing dependencies with npm ci ($stale_reason)"
  npm ci --no-audit --no-fund >&2
fi
log "building (tsc -b tsconfig.build.json)"
node_modules/.bin/tsc -b tsconfig.build.json

# --- 2. Redis and the model --------------------------------------------------------------------------
if [ -n "${REDIS_URL:-}" ]; then
  log "using REDIS_URL=$REDIS_URL"
else
  start_redis
fi

model=$(node -e "require('@kcache-serve/kcache').resolveModelSpec(process.env.MODEL || undefined).then(
  (spec) => console.log(spec), (e) => { console.error(e.message); process.exit(1); })") || die "no model (set MODEL to a model folder or spec)"
log "model: $model"

# --- 3. API key, gateway and workers -----------------------------------------------------------------
api_key=''
export AUTH_MODE=${AUTH_MODE:-off}
if [ "$AUTH_MODE" = off ]; then
  log "authentication is OFF for this local quick start (AUTH_MODE=api-key turns it on; the gateway's own default is on)"
elif [ -n "${API_KEY_HASHES:-}" ]; then
  api_key=${KCACHE_API_KEY:-}
  [ -n "$api_key" ] || die "API_KEY_HASHES is set: set KCACHE_API_KEY to one of its keys for the demo"
else
  api_key="kq-$(node -p "require('node:crypto').randomBytes(18).toString('base64url')")"
  API_KEY_HASHES="quickstart:$(node -p "require('node:crypto').createHash('sha256').update(process.argv[1]).digest('hex')" "$api_key")"
  export API_KEY_HASHES
  log "made an API key for this run (printed with the examples below)"
fi
export KCACHE_API_KEY=$api_key
auth_header=${api_key:+"authorization: Bearer $api_key"}

run_dir=$(mktemp -d -t kcache-quickstart.XXXXXX)
grpc_port=$(pick_port "${PORT:-}" 50051)
http_port=$(pick_port "${HTTP_PORT:-}" 8080)
# Free ports are picked here rather than by the apps (port 0), so that they can be logged before start.
taken_ports=" $grpc_port $http_port "
distinct_free_port() {
  local port
  port=$(free_port)
  while [[ $taken_ports == *" $port "* ]]; do port=$(free_port); done
  taken_ports+="$port "
  echo "$port"
}
relay_port=${RELAY_PORT:-$(distinct_free_port)}
metrics_ports=()
for i in $(seq 1 "$num_workers"); do
  if [ -n "${METRICS_PORT:-}" ]; then metrics_ports+=($((METRICS_PORT + i - 1))); else metrics_ports+=("$(distinct_free_port)"); fi
done
common_env=(REDIS_URL="$REDIS_URL" MODEL="$model" LOG_LEVEL="${LOG_LEVEL:-info}" SHUTDOWN_GRACE_MS="${SHUTDOWN_GRACE_MS:-5000}")

log "starting the gateway (gRPC $grpc_port, HTTP $http_port, relay $relay_port) and $num_workers workers (metrics ports ${metrics_ports[*]}); logs in $run_dir"
start_app gateway "${common_env[@]}" PORT="$grpc_port" GRPC_HOST="${GRPC_HOST:-127.0.0.1}" \
  HTTP_PORT="$http_port" HTTP_HOST="${HTTP_HOST:-127.0.0.1}" RELAY_PORT="$relay_port" \
  RELAY_HOST="${RELAY_HOST:-127.0.0.1}" RELAY_ADVERTISE_HOST="${RELAY_ADVERTISE_HOST:-127.0.0.1}" -- node apps/gateway/dist/main.js
for i in $(seq 1 "$num_workers"); do start_worker "$i"; done

# Ready: /readyz answers 200 and counts every worker's heartbeat.
give_up_at=$((SECONDS + 120))
until [[ $(http_get "$http_port" /readyz) =~ ^200\ .*\"numWorkers\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge "$num_workers" ]; do
  check_apps_alive
  [ "$SECONDS" -lt "$give_up_at" ] || die "the gateway was not ready after 120 s (see $run_dir)"
  sleep 0.2
done
log "ready"

# --- 4. Demo and how to call the API -----------------------------------------------------------------
node apps/loadgen/dist/demo.js --target "127.0.0.1:$grpc_port" || die "the demo request failed"

cat <<EOF

kcache-serve is running: gateway gRPC 127.0.0.1:$grpc_port, HTTP http://127.0.0.1:$http_port, $num_workers workers, model $model
${api_key:+API key for this run: $api_key (the clients below also read it from KCACHE_API_KEY)
}
  # gRPC, server streaming (reflection is on, so grpcurl needs no .proto):
  grpcurl -plaintext ${auth_header:+-H '$auth_header' }-d '{"prompt": "Once upon a time", "max_new_tokens": 64}' 127.0.0.1:$grpc_port kcache.v1.Generation/Generate
  # HTTP, OpenAI-style completions as server-sent events:
  curl -N http://127.0.0.1:$http_port/v1/completions ${auth_header:+-H '$auth_header' }-H 'content-type: application/json' \\
    -d '{"prompt": "Once upon a time", "max_tokens": 64, "stream": true}'
  # health, readiness, Prometheus metrics:
  curl http://127.0.0.1:$http_port/readyz; curl -s http://127.0.0.1:$http_port/metrics | grep ^kcache_gateway
  # each worker's metrics (ports ${metrics_ports[*]}):
  curl -s http://127.0.0.1:${metrics_ports[0]}/metrics | grep ^kcache_worker
  # the demo client again, and a load test:
  node apps/loadgen/dist/demo.js --target 127.0.0.1:$grpc_port ${api_key:+--api-key $api_key }--prompt "The little dog"
  npx kcache load --target 127.0.0.1:$grpc_port ${api_key:+--api-key $api_key }--concurrency 8 --duration 10

EOF

if $is_exit_after_demo; then
  log "stopping after the demo (--exit-after-demo)"
  exit 0
fi
log "serving; Ctrl-C stops"
while true; do
  sleep 0.5
  supervise_workers
  if [ -n "$redis_pid" ] && ! kill -0 "$redis_pid" 2>/dev/null; then die "redis-server exited"; fi
done
