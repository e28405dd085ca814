#!/usr/bin/env bash
# The serving run (scripts/device/run-cuda.sh's `serving` stage): Redis, the gateway and one worker on this
# machine, driven by a gRPC client that shares no code with the project (serving-client.py, Python grpcio; where
# no python3 imports grpc, serving-client.js on the bundle's @grpc/grpc-js),
# beside the same worker's engine driven directly in one process (serving-direct.js).
#   bash scripts/device/cuda-serving.sh <appRoot> <outDir> [cuda|cpu|native-cpu]
# (native-cpu: EXECUTION_PROVIDER=cpu with NATIVE_BACKEND=true, the CUDA worker's code path on the CPU provider)
# <appRoot> is the unpacked bundle of `pack-gpu.sh --serving` (bin/node, apps/, libs/, node_modules/, redis/,
# shared/). Steps: 1. direct: the worker's engine alone on the machine; 2. Redis, gateway (API key auth, a key
# made up for the run), worker (EXECUTION_PROVIDER=<provider>), until /readyz answers 200; 3. the client:
# schema through reflection, the 12 stories260K oracle prompts in full and kcache N=512 (exact tokens), then
# the load run. Environment (defaults): KCACHE_SERVING_CONCURRENCY (32), KCACHE_SERVING_REQUESTS (128),
# KCACHE_SERVING_TOKENS (128), KCACHE_SERVING_ATTENTION (full), KCACHE_SERVING_MODEL (the bundle's
# stories260K; the oracle check needs it), KCACHE_PYTHON (a python3 that imports grpc; KCACHE_PYTHON=none
# forces the Node client), KCACHE_SERVING_ORACLE (another oracle file), KCACHE_REDIS_PORT,
# NUM_THREADS (worker and direct engine; unset: the engine's choice).
# Writes <outDir>/serving-<provider>.json (client, direct, ratio), serving-direct-<provider>.json,
# serving-client-<provider>.json and the processes' logs (serving-<provider>-*.log). Exits 1 if a check fails.
set -uo pipefail
app=$(cd "${1:?appRoot}" && pwd)
out=$(mkdir -p "${2:?outDir}" && cd "$2" && pwd)
ep=${3:-cuda}
here=$(cd "$(dirname "$0")" && pwd)
concurrency=${KCACHE_SERVING_CONCURRENCY:-32}
requests=${KCACHE_SERVING_REQUESTS:-128}
tokens=${KCACHE_SERVING_TOKENS:-128}
attention=${KCACHE_SERVING_ATTENTION:-full}
model=${KCACHE_SERVING_MODEL:-$app/shared/models/stories260K}
oracle=${KCACHE_SERVING_ORACLE:-$app/shared/oracle/stories260K-greedy.json}
log() { echo "serving: $*"; }
fail() { echo "serving: $*" >&2; exit 1; }

for f in "$app/apps/gateway/dist/main.js" "$app/apps/worker/dist/main.js" "$app/redis/redis-server" "$oracle"; do
  [ -e "$f" ] || fail "$f is missing: pack with 'bash scripts/device/pack-gpu.sh --cuda --serving' and carry .gpu-bundle"
done
command -v node >/dev/null || export PATH="$app/bin:$PATH"

# A python3 that imports grpc: the image's torch venv, then whatever python3 is on PATH.
python=
candidates=(/opt/torch/.venv/bin/python3 /opt/torch/.venv/bin/python python3 /usr/bin/python3 /usr/local/bin/python3 python3.12 python3.11)
[ -n "${KCACHE_PYTHON:-}" ] && candidates=("$KCACHE_PYTHON" "${candidates[@]}")
[ "${KCACHE_PYTHON:-}" = none ] && candidates=()
for candidate in "${candidates[@]}"; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import grpc, grpc.aio' 2>/dev/null; then python=$(command -v "$candidate"); break; fi
done
if [ -n "$python" ]; then
  log "client: serving-client.py on $python (grpcio $("$python" -c 'import grpc; print(grpc.__version__)'))"
  client=("$python" "$here/serving-client.py")
else
  log "client: no python3 here imports grpc (tried KCACHE_PYTHON, /opt/torch/.venv/bin/python3, python3 on PATH, /usr/bin/python3);" \
    "falling back to serving-client.js (@grpc/grpc-js from the bundle, the gateway's own gRPC library)"
  client=(node "$here/serving-client.js" --app "$app")
  python=$(command -v python3) || fail "no python3 here (the stage's helpers need one)"
fi
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Redis: the bundle's Debian build. Libraries the image lacks are taken from redis/lib, and only those, so
# the image's own copies (libssl, libsystemd, ...) are used where it has them.
redis_libs=$(mktemp -d)
for _ in 1 2 3 4 5 6; do
  missing=$(LD_LIBRARY_PATH=$redis_libs ldd "$app/redis/redis-server" 2>/dev/null | awk '/not found/ { print $1 }')
  [ -z "$missing" ] && break
  for lib in $missing; do
    [ -e "$app/redis/lib/$lib" ] || fail "redis-server needs $lib, which neither this image nor the bundle has"
    cp "$app/redis/lib/$lib" "$redis_libs/"
  done
done
[ -n "$(ls "$redis_libs")" ] && log "redis-server uses the bundle's $(ls "$redis_libs" | tr '\n' ' ')"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$redis_libs" "${redis_dir:-}"
}
trap cleanup EXIT

# 1. The worker's engine driven directly, alone on the machine (same environment as the worker below).
case $ep in
  cuda | cpu) worker_env=(EXECUTION_PROVIDER="$ep") ;;
  native-cpu) worker_env=(EXECUTION_PROVIDER=cpu NATIVE_BACKEND=true) ;;
  *) fail "provider $ep: expected cuda, cpu or native-cpu" ;;
esac
worker_env+=(MODEL="$model" LOG_LEVEL=warn)
[ -n "${NUM_THREADS:-}" ] && worker_env+=(NUM_THREADS="$NUM_THREADS")
log "direct: the worker's engine on $ep, $concurrency streams, $requests requests x $tokens tokens"
env "${worker_env[@]}" timeout 300 node "$here/serving-direct.js" "$app" "$out/serving-direct-$ep.json" \
  --concurrency "$concurrency" --requests "$requests" --max-new-tokens "$tokens" --attention "$attention" 2>&1 | tee "$out/serving-$ep-direct.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "the direct run failed (serving-$ep-direct.log)"

# 2. Redis, gateway, worker.
redis_port=${KCACHE_REDIS_PORT:-$(free_port)}
redis_dir=$(mktemp -d)
LD_LIBRARY_PATH=$redis_libs "$app/redis/redis-server" --port "$redis_port" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly no \
  >"$out/serving-$ep-redis.log" 2>&1 &
pids+=($!)
grpc_port=$(free_port) http_port=$(free_port) relay_port=$(free_port) metrics_port=$(free_port)
api_key=serving-run-$RANDOM$RANDOM
key_hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
common=(REDIS_URL="redis://127.0.0.1:$redis_port" MODEL="$model" LOG_LEVEL=warn)
env "${common[@]}" PORT="$grpc_port" GRPC_HOST=127.0.0.1 HTTP_PORT="$http_port" HTTP_HOST=127.0.0.1 RELAY_PORT="$relay_port" \
  AUTH_MODE=api-key API_KEY_HASHES="serving:$key_hash" node "$app/apps/gateway/dist/main.js" >"$out/serving-$ep-gateway.log" 2>&1 &
pids+=($!)
env "${common[@]}" "${worker_env[@]}" WORKER_ID="$ep-worker" METRICS_HOST=127.0.0.1 METRICS_PORT="$metrics_port" \
  node "$app/apps/worker/dist/main.js" >"$out/serving-$ep-worker.log" 2>&1 &
pids+=($!)
ready=false
for _ in $(seq 1 240); do
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { tail -n 20 "$out"/serving-"$ep"-*.log; fail "a process exited during start-up (logs above)"; }; done
  code=$("$python" -c "import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception as e: print(getattr(e, 'code', 0))" "http://127.0.0.1:$http_port/readyz")
  [ "$code" = 200 ] && { ready=true; break; }
  sleep 0.5
done
$ready || { tail -n 20 "$out"/serving-"$ep"-*.log; fail "the gateway's /readyz did not answer 200 within 120 s"; }
log "ready: redis :$redis_port, gateway gRPC :$grpc_port (HTTP :$http_port), worker on $ep (metrics :$metrics_port)"

# 3. The client.
timeout 420 "${client[@]}" --target "127.0.0.1:$grpc_port" --api-key "$api_key" --oracle "$oracle" \
  --out "$out/serving-client-$ep.json" --concurrency "$concurrency" --requests "$requests" --max-new-tokens "$tokens" --attention "$attention" \
  2>&1 | tee "$out/serving-$ep-client.log"
status=${PIPESTATUS[0]}
batch_max=$("$python" -c "import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines():
    if line.startswith('kcache_worker_batch_size_max '): print(line.split()[-1])" "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null)

# Both sides in one file, with the ratio.
"$python" - "$out" "$ep" "${batch_max:-}" "${KCACHE_COMMIT:-unknown}" <<'PY' || status=1
import json, os, platform, subprocess, sys
out, ep, batch_max, commit = sys.argv[1:5]
client = json.load(open(os.path.join(out, f'serving-client-{ep}.json')))
direct = json.load(open(os.path.join(out, f'serving-direct-{ep}.json')))
try:
    gpu = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version', '--format=csv,noheader'], capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = ''
load = client['load']
report = {'benchmark': 'serving-device', 'executionProvider': ep, 'commit': commit, 'gpu': gpu or None, 'cores': os.cpu_count(),
          'host': platform.platform(), 'workerBatchSizeMax': float(batch_max) if batch_max else None, 'client': client, 'direct': direct,
          'servingOverDirectTokensPerSecond': load['tokensPerSecond'] / direct['tokensPerSecond'],
          'addedTtftP50Ms': load['ttftMs']['p50'] - direct['ttftMs']['p50']}
json.dump(report, open(os.path.join(out, f'serving-{ep}.json'), 'w'), indent=2)
print(f"\n{'path':8} {'tok/s':>8} {'TTFT p50':>10} {'TTFT p99':>10} {'ITL p50':>9}  ({ep}, c={load['concurrency']}, {load['numRequests']} x {load['maxNewTokens']} tokens{', ' + gpu if gpu else ''})")
for name, r in (('serving', load), ('direct', direct)):
    print(f"{name:8} {r['tokensPerSecond']:8.0f} {r['ttftMs']['p50']:8.1f}ms {r['ttftMs']['p99']:8.1f}ms {r['interTokenMs']['p50']:7.2f}ms")
print(f"serving / direct tokens/s: {report['servingOverDirectTokensPerSecond']:.2f}, worker batch max {batch_max or '?'}")
PY
[ "$status" -eq 0 ] && log "passed" || log "FAILED (see serving-$ep-*.log)"
exit "$status"
