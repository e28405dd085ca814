#!/usr/bin/env bash
# Regenerates libs/proto/src/gen from libs/proto/proto with buf + ts-proto (both pinned in the root lockfile).
# Usage: generate.sh [OUTPUT_BASE]   (default: libs/proto; the output goes to OUTPUT_BASE/src/gen)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
out_base="${1:-$here}"
export PATH="$root/node_modules/.bin:$PATH"
cd "$here"
buf lint
if [ "$out_base" = "$here" ]; then rm -rf src/gen; fi
buf generate --template buf.gen.yaml --output "$out_base"
