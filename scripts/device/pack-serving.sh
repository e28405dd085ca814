#!/usr/bin/env bash
# Packs, for scripts/device/pack-gpu.sh --serving, what the gateway and the worker need on the GPU machine
# beside the app the bundle already carries, as one xz tar (paths relative to the app's root):
#   apps/gateway, apps/worker, libs/proto: package.json and dist (libs/proto also its .proto files),
#   the workspace links node_modules/@kcache-serve/{gateway,worker,proto},
#   node_modules: scripts/device/runtime-modules.js's folders, less those the app tar has (the arguments),
#     without docs, tests, source maps, type declarations and TypeScript sources,
#   redis/redis-server and redis/lib: Debian's redis-server binary (it picks its mode from its name: the
#     package's redis-server is a link to redis-check-rdb) and every shared library it needs beyond glibc,
#     libstdc++ and libgcc (checked here: each needed name is found in the packages or is one of those).
# The .deb files are fetched once with apt-get download (Debian's archive) into .cache/redis.
# Usage: bash scripts/device/pack-serving.sh OUT.tar.xz [node_modules/PATH already packed ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
shift
packed=("$@")

# Redis and its libraries, from Debian packages (redis-tools holds the binary; its Depends and libsystemd0's).
debs=(redis-server redis-tools libatomic1 libjemalloc2 liblzf1 libssl3 libsystemd0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1)
cache=.cache/redis
mkdir -p "$cache/debs"
if ! ls "$cache"/debs/redis-tools_*.deb >/dev/null 2>&1; then
  lists=$PWD/$cache/apt-lists   # amd64 package lists of its own, whatever this machine's architecture
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  mkdir -p "$lists/partial"
  (cd "$cache/debs" && apt-get $o download "${debs[@]}" >/dev/null 2>&1) ||
    { apt-get $o update >/dev/null && (cd "$cache/debs" && apt-get $o download "${debs[@]}" >/dev/null); }
fi
# The packages unpacked side by side; the binary and the library folders are found in them, whatever their layout.
tree=$cache/unpacked
rm -rf "$tree" "$cache/redis" && mkdir -p "$tree" "$cache/redis/lib"
for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$tree"; done
binary=$(find "$tree" -type f -name redis-check-rdb | head -n 1)
[ -n "$binary" ] || { echo "pack-serving: redis-tools holds no redis-check-rdb" >&2; exit 1; }
cp "$binary" "$cache/redis/redis-server"
dpkg-deb -f "$cache"/debs/redis-tools_*.deb Version >"$cache/redis/VERSION"
mapfile -t libdirs < <(find "$tree" -name '*.so*' -printf '%h\n' | sort -u)
base='^(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux-x86-64)\.so'
queue=("$cache/redis/redis-server")
while [ ${#queue[@]} -gt 0 ]; do
  file=${queue[0]}
  queue=("${queue[@]:1}")
  for lib in $(objdump -p "$file" | awk '/NEEDED/ { print $2 }'); do
    [[ $lib =~ $base ]] && continue
    [ -e "$cache/redis/lib/$lib" ] && continue
    src=
    for d in "${libdirs[@]}"; do [ -z "$src" ] && [ -e "$d/$lib" ] && src=$d/$lib; done
    [ -n "$src" ] || { echo "pack-serving: redis-server needs $lib, which none of ${debs[*]} holds" >&2; exit 1; }
    cp -L "$src" "$cache/redis/lib/$lib"
    queue+=("$cache/redis/lib/$lib")
  done
done

# The runtime node_modules, less what the app tar already holds.
modules=()
while read -r dir; do
  keep=true
  for p in "${packed[@]}"; do [[ $dir == "$p" || $dir == "$p"/* ]] && keep=false; done
  $keep && modules+=("$dir")
done < <(node scripts/device/runtime-modules.js)

tar -c -I 'xz -T0 -6' -f "$out" \
  --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.ts' --exclude='*.md' \
  --exclude='*.markdown' --exclude='*.test.js' --exclude='*.tsbuildinfo' \
  --exclude='node_modules/*/test' --exclude='node_modules/*/tests' --exclude='node_modules/*/__tests__' \
  --exclude='node_modules/*/docs' --exclude='node_modules/*/doc' --exclude='node_modules/*/example' --exclude='node_modules/*/examples' \
  --exclude='node_modules/*/.github' \
  package.json apps/gateway/package.json apps/gateway/dist apps/worker/package.json apps/worker/dist \
  libs/proto/package.json libs/proto/dist libs/proto/proto \
  node_modules/@kcache-serve/gateway node_modules/@kcache-serve/worker node_modules/@kcache-serve/proto "${modules[@]}" \
  -C "$cache" redis
echo "pack-serving: $out: $(stat -c %s "$out") bytes, ${#modules[@]} node_modules folders, redis $(cat "$cache/redis/VERSION") with $(ls "$cache/redis/lib" | tr '\n' ' ')"
