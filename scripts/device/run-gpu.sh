#!/usr/bin/env bash
# On the lent GPU machine (no Node there), from the repository root, after scripts/device/pack-gpu.sh here:
#   run(command: "bash scripts/device/run-gpu.sh [stage...]", carry: [".gpu-bundle", ".gl"])
# Stages (default: all, in this order): probe oracle bench-webgpu-110m bench-cpu bench-webgpu-stories profile
#   probe         GPU, cores, Node; a one-node graph on the WebGPU provider
#   oracle        stories260K oracle match, full and kcache N=512, --ep webgpu (+ logits vs CPU)
#   bench-webgpu-110m / bench-webgpu-stories   bench:engine --ep webgpu --only llama-110m / stories260K
#   bench-cpu     bench:engine on the CPU of the same machine (all cores), the ~110M rows
#   profile       onnxruntime node profile of 110M decode steps on webgpu: time per provider / op
#   budget        bench:kcache --ep webgpu: KCache vs full at a fixed GPU device-tier budget, ~110M model (not in the default list)
#   ops           which ops the WebGPU provider runs itself; a GPU-resident arena's ScatterND; a CPU-side gather (gpu-ops-probe.js; not in the default list)
# Results under $OUT (8 files at most come back): machine.txt, oracle.log, bench-webgpu.log, bench-cpu.log,
# engine-webgpu-110m.json, engine-webgpu-stories.json, engine-cpu.json, profile.log. KCACHE_GPU_DEADLINE (seconds, default 510) bounds the whole script.
set -uo pipefail
repo=$PWD
OUT=${OUT:-/tmp/kcache-gpu-out}
mkdir -p "$OUT"
deadline=${KCACHE_GPU_DEADLINE:-510}
app=/tmp/kcache-app
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(probe oracle bench-webgpu-110m bench-cpu bench-webgpu-stories profile)

# The loader debs unpack into / (as the device README says); KCACHE_GPU_SKIP_DEBS=1 skips that (dry runs elsewhere).
if [ -z "${KCACHE_GPU_SKIP_DEBS:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
rm -rf "$app" && mkdir -p "$app/bin"
python3 - "$repo/.gpu-bundle" "$app" <<'PY'
import lzma, os, shutil, sys, tarfile
bundle, app = sys.argv[1], sys.argv[2]
with lzma.open(os.path.join(bundle, 'node.xz')) as src, open(os.path.join(app, 'bin', 'node'), 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(app, 'bin', 'node'), 0o755)
with tarfile.open(os.path.join(bundle, 'app.tar.xz'), 'r:xz') as tar:
    tar.extractall(app)
PY
export PATH="$app/bin:$PATH" KCACHE_SHARED_DIR="$app/shared"

status=0
# step NAME LIMIT_S LOG COMMAND...: runs COMMAND under the smaller of LIMIT_S and the time left.
step() {
  local name=$1 limit=$2 log=$3; shift 3
  local left=$((deadline - SECONDS - 5))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 10 ]; then echo "== $name: skipped, no time left" | tee -a "$OUT/$log"; return; fi
  echo "== $name (limit ${limit}s)" | tee -a "$OUT/$log"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: rc $rc, $((SECONDS - t0)) s" | tee -a "$OUT/$log"
  [ "$rc" -eq 0 ] || status=1
}

for stage in "${stages[@]}"; do
  case $stage in
    probe)
      { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)"; echo "node: $(node --version)";
        ldconfig -p | grep libvulkan; } 2>&1 | tee -a "$OUT/machine.txt"
      step probe 60 machine.txt node scripts/device/gpu-check.js "$app" probe webgpu ;;
    oracle) step oracle 120 oracle.log node scripts/device/gpu-check.js "$app" oracle webgpu ;;
    bench-webgpu-110m)
      rm -f "$app/bench/results/engine-webgpu.json"
      step bench-webgpu-110m 200 bench-webgpu.log node "$app/libs/kcache-bench/dist/bench/bench-engine.js" --ep webgpu --only llama-110m
      cp "$app/bench/results/engine-webgpu.json" "$OUT/engine-webgpu-110m.json" 2>/dev/null ;;
    bench-webgpu-stories)
      rm -f "$app/bench/results/engine-webgpu.json"
      step bench-webgpu-stories 120 bench-webgpu.log node "$app/libs/kcache-bench/dist/bench/bench-engine.js" --ep webgpu --only stories260K
      cp "$app/bench/results/engine-webgpu.json" "$OUT/engine-webgpu-stories.json" 2>/dev/null ;;
    bench-cpu)
      rm -f "$app/bench/results/engine.json"
      step bench-cpu 120 bench-cpu.log node "$app/libs/kcache-bench/dist/bench/bench-engine.js" --ep cpu --only llama-110m
      cp "$app/bench/results/engine.json" "$OUT/engine-cpu.json" 2>/dev/null ;;
    profile) step profile 100 profile.log node scripts/device/gpu-check.js "$app" profile webgpu ;;
    ops) step ops 120 ops.log node scripts/device/gpu-ops-probe.js "$app" webgpu ;;
    budget)
      step budget 300 budget.log node "$app/libs/kcache-bench/dist/bench/kcache-throughput.js" --ep webgpu --out "$OUT" ;;
    *) echo "unknown stage $stage"; status=2 ;;
  esac
done
exit $status
