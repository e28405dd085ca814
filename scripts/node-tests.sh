#!/usr/bin/env bash
# Runs node:test over every *.test.js / *.test.mjs found under the given files or directories.
# Node 20's --test takes explicit paths (no globs), so the files are found here.
#   in:  paths (dirs or files); env TEST_CONCURRENCY (default 1), TEST_REPORTER (default spec)
#   out: node --test's exit status; 0 with a notice when no test files exist yet.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 <dir-or-file>..." >&2
  exit 2
fi

files=()
for path in "$@"; do
  if [ -f "$path" ]; then
    files+=("$path")
  elif [ -d "$path" ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done < <(
      find "$path" -path '*/node_modules' -prune -o -type f \( -name '*.test.js' -o -name '*.test.mjs' \) -print0 | sort -z
    )
  fi
done

if [ "${#files[@]}" -eq 0 ]; then
  echo "node-tests: no *.test.js files under: $* (build first?)"
  exit 0
fi

exec node --test \
  --test-concurrency="${TEST_CONCURRENCY:-1}" \
  --test-reporter="${TEST_REPORTER:-spec}" \
  "${files[@]}"
