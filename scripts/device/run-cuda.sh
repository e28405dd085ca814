#!/usr/bin/env bash
# On the lent GPU machine (no Node, no network there), after `bash scripts/device/pack-gpu.sh --cuda [--serving]` here.
# The CUDA provider is larger than one run's carry, so it goes over in parts, one run each, back to back
# (the machine keeps /tmp while it is warm, 30 s between runs):
#   run(command: "bash scripts/device/run-cuda.sh", carry: [".gpu-bundle"])        Node, the app and part 0
#   run(command: "bash scripts/device/run-cuda.sh", carry: [".gpu-chunk1"])        part 1
#   run(command: "bash scripts/device/run-cuda.sh", carry: [".gpu-chunk2"])        part 2
#   run(command: "bash scripts/device/run-cuda.sh oracle", carry: [".gpu-chunk3"]) last part, then the stages
# Every run stores the carried parts in /tmp/kcache-cuda; once all are there the provider files are installed
# next to onnxruntime-node's libonnxruntime.so.1 (sha256 checked against .gpu-bundle/cuda-provider.txt).
# Stages (run only once everything is staged):
#   check         scripts/device/cuda-check.js: the addon on CUDA (provider, in-place arenas, engine replay vs CPU)
#   step          scripts/device/cuda-step-bench.js: the ~110M decode step, CPU vs CUDA (copied / bound feeds), roofline
#   oracle        scripts/device/cuda-engine-oracle.js: the engine on the native CUDA backend, stories260K oracle
#                 (12 prompts batched, full and kcache N=512, exact tokens) and teacher-forced logits vs the CPU (1e-4)
#   paged-check   kcache_paged_attention_check: the PagedDecodeAttention CUDA kernels against their CPU version on
#                 random cases (exact and TopN, GQA, padding, ties, V in device and in pinned host memory), then
#                 their time and GB/s at the ~110M shapes (paged-check.log, paged-attention-check.json)
#   bench-engine  bench:engine --ep cuda, ~110M decode steps at context 512, batch 1 and 32, with the fraction of
#                 the HBM roofline, with each decode attention of KCACHE_BENCH_KERNELS (default onnx,paged,paged-graphs:
#                 the onnx operators' graph, the PagedDecodeAttention kernel, and that graph as CUDA graphs, in one run) (KCACHE_BENCH_CONTEXTS,
#                 KCACHE_BENCH_BATCHES override)
#   bench-cpu     the same rows on the machine's CPU (onnxruntime-node), for the comparison in one run
#   bench-kcache  bench:kcache --ep cuda: KCache vs full at a fixed GPU budget, contexts 2048..32768
#                 (KCACHE_KCACHE_CONTEXTS overrides, e.g. 2048,8192; KCACHE_BUDGET_SEQUENCES: the budget in
#                 full-attention sequences of 2048 positions, default 16; KCACHE_KCACHE_KERNEL=onnx measures the onnx
#                 operators' graph instead of the PagedDecodeAttention kernel; KCACHE_HOST_HUGE_PAGES=1: host V in
#                 transparent huge pages; KCACHE_CUDA_GRAPHS=1: each decode shape a CUDA graph; results under
#                 kcache[-huge][-graphs]/)
#   profile       scripts/device/cuda-step-profile.js: onnxruntime's per-node profile of the ~110M decode step on the
#                 native CUDA backend (context 512, batch 32): kernels per step and time by operator
#   profile-kcache  the same profile at context 8192 (KCACHE_PROFILE_CONTEXT): full at batch 4, kcache (TopN 64,
#                 host-tier V) at batch 4 and 8 (the fixed-budget benchmark's batches there), to see where a
#                 kcache step's time goes as its batch doubles (run vs time outside it)
#   serving       scripts/device/cuda-serving.sh (needs `pack-gpu.sh --cuda --serving`): Redis, the gateway and one
#                 worker on EXECUTION_PROVIDER=cuda; a Python grpcio client checks the 12 stories260K oracle prompts
#                 (full and kcache N=512) and runs 32 streams x 128 tokens; beside it the worker's engine driven
#                 directly. KCACHE_SERVING_EP=cpu (onnxruntime-node) or native-cpu (the native backend, the
#                 CUDA worker's code path) runs it on the CPU provider (no CUDA provider needed);
#                 KCACHE_SERVING_* (see the script) change the load.
#   profile-ab    the same profile for each decode graph on this machine: the decode graph that writes the current row into
#                 the arena before it reads the past (currentRowInArena), the one that keeps it apart (the default), and the first
#                 with its exact layers as MultiHeadAttention nodes (fusedAttention, off by default), and the one whose
#                 attention is the PagedDecodeAttention kernel (pagedAttention); KCACHE_PROFILE_GRAPHS picks
# Results under $OUT: machine.txt, <stage>.log and the stages' JSON.
# KCACHE_STAGE_DIR (default /tmp/kcache-cuda) is where the app is unpacked and the parts are kept.
set -uo pipefail
repo=$PWD
OUT=${OUT:-/tmp/kcache-cuda-out}
mkdir -p "$OUT"
stage_dir=${KCACHE_STAGE_DIR:-/tmp/kcache-cuda}
app=$stage_dir/app
mkdir -p "$stage_dir/parts"

if [ -d .gpu-bundle ]; then
  rm -rf "$app" && mkdir -p "$app/bin"
  python3 - "$repo/.gpu-bundle" "$app" <<'PY'
import lzma, os, shutil, sys, tarfile
bundle, app = sys.argv[1], sys.argv[2]
with lzma.open(os.path.join(bundle, 'node.xz')) as src, open(os.path.join(app, 'bin', 'node'), 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(app, 'bin', 'node'), 0o755)
for name in ('app.tar.xz', 'serving.tar.xz'):  # serving.tar.xz: only from `pack-gpu.sh --serving`
    if os.path.exists(os.path.join(bundle, name)):
        with tarfile.open(os.path.join(bundle, name), 'r:xz') as tar:
            tar.extractall(app)
PY
  cp .gpu-bundle/cuda-provider.txt "$stage_dir/"
  cp .gpu-bundle/commit.txt "$stage_dir/" 2>/dev/null || true
  echo "unpacked the app: $(ls "$app")"
fi
for part in .gpu-bundle/part.* .gpu-chunk*/part.*; do [ -f "$part" ] && cp "$part" "$stage_dir/parts/" && echo "stored $part"; done

ort_dir=$app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if [ ! -f "$ort_dir/libonnxruntime_providers_cuda.so" ] && [ -f "$stage_dir/cuda-provider.txt" ]; then
  read -r name sha parts <"$stage_dir/cuda-provider.txt"
  have=$(ls "$stage_dir/parts" | wc -l)
  if [ "$have" -eq "$parts" ]; then
    cat "$stage_dir"/parts/part.* >"$stage_dir/$name"
    echo "$sha  $stage_dir/$name" | sha256sum -c - || exit 1
    tar -xzf "$stage_dir/$name" -C "$stage_dir" package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
    mv "$stage_dir"/package/Plugins/Linux/x64/*.so "$ort_dir/"
    rm -rf "$stage_dir/$name" "$stage_dir/parts" "$stage_dir/package"
    echo "installed the CUDA provider in $ort_dir"
  else
    echo "parts: $have of $parts"
  fi
fi

[ $# -gt 0 ] || exit 0
serving_ep=${KCACHE_SERVING_EP:-cuda}
if [ "$*" != serving ] || [ "$serving_ep" = cuda ]; then
  [ -f "$ort_dir/libonnxruntime_providers_cuda.so" ] || { echo "the CUDA provider is not staged yet"; exit 1; }
fi
nvidia=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$nvidia/cu13/lib:$nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}"
export PATH="$app/bin:$PATH" KCACHE_SHARED_DIR="$app/shared"
[ -f "$stage_dir/commit.txt" ] && export KCACHE_COMMIT=$(cat "$stage_dir/commit.txt")
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)"; echo "node: $(node --version)"; } 2>&1 | tee "$OUT/machine.txt"
status=0
for stage in "$@"; do
  case $stage in
    check)
      timeout 480 node scripts/device/cuda-check.js "$app" "$OUT" 2>&1 | tee "$OUT/cuda-check.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    step)
      export KCACHE_GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
      timeout 480 node scripts/device/cuda-step-bench.js "$app" "$OUT" 2>&1 | tee "$OUT/cuda-step-bench.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    paged-check)
      timeout 300 "$app/libs/kcache/native/build/Release/kcache_paged_attention_check" 2>&1 | tee "$OUT/paged-check.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      node scripts/device/paged-check-json.js "$OUT/paged-check.log" "$OUT/paged-attention-check.json" || status=1 ;;
    oracle)
      timeout 300 node scripts/device/cuda-engine-oracle.js "$app" "$OUT" cuda 2>&1 | tee "$OUT/oracle.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    profile)
      timeout 300 node scripts/device/cuda-step-profile.js "$app" "$OUT" cuda 2>&1 | tee "$OUT/profile.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    profile-kcache)
      ctx=${KCACHE_PROFILE_CONTEXT:-8192}
      for run in "full 4" "kcache 4" "kcache 8"; do
        read -r attention batch <<<"$run"
        timeout 240 node scripts/device/cuda-step-profile.js "$app" "$OUT" cuda synthetic:llama-110m "$ctx" "$batch" paged "$attention" 2>&1 | tee -a "$OUT/profile-kcache.log"
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      done ;;
    profile-ab)
      for graph in ${KCACHE_PROFILE_GRAPHS:-in-arena apart fused paged}; do
        timeout 240 node scripts/device/cuda-step-profile.js "$app" "$OUT" cuda synthetic:llama-110m 512 32 "$graph" 2>&1 | tee "$OUT/profile-$graph.log"
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      done ;;
    bench-engine | bench-cpu)
      ep=cuda && [ "$stage" = bench-cpu ] && ep=cpu
      rm -f "$app/bench/results/engine-$ep.json" "$app/bench/results/engine.json"
      timeout 400 node "$app/libs/kcache-bench/dist/bench/bench-engine.js" --ep "$ep" --only llama-110m \
        --contexts "${KCACHE_BENCH_CONTEXTS:-512}" --batch-sizes "${KCACHE_BENCH_BATCHES:-1,32}" \
        $([ "$ep" = cuda ] && echo "--kernels ${KCACHE_BENCH_KERNELS:-onnx,paged,paged-graphs}") 2>&1 | tee "$OUT/$stage.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      cp "$app"/bench/results/engine*.json "$OUT/" 2>/dev/null ;;
    bench-kcache)
      paged_flag=--paged-attention && [ "${KCACHE_KCACHE_KERNEL:-paged}" = onnx ] && paged_flag=
      huge=; [ "${KCACHE_HOST_HUGE_PAGES:-0}" = 1 ] && huge=-huge   # host V in transparent huge pages
      graphs=; [ "${KCACHE_CUDA_GRAPHS:-0}" = 1 ] && graphs=-graphs  # each decode shape a CUDA graph
      mkdir -p "$OUT/kcache$huge$graphs"
      timeout 480 node "$app/libs/kcache-bench/dist/bench/kcache-throughput.js" --ep cuda --out "$OUT/kcache$huge$graphs" $paged_flag \
        ${huge:+--host-huge-pages} ${graphs:+--cuda-graphs} \
        --contexts "${KCACHE_KCACHE_CONTEXTS:-2048,4096,8192,16384,32768}" --budget-sequences "${KCACHE_BUDGET_SEQUENCES:-16}" 2>&1 | tee "$OUT/bench-kcache$huge$graphs.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    serving)
      timeout 560 bash scripts/device/cuda-serving.sh "$app" "$OUT" "$serving_ep" 2>&1 | tee "$OUT/serving.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    *) echo "unknown stage $stage"; status=2 ;;
  esac
done
exit "$status"
