#!/usr/bin/env node
'use strict';
/**
 * The node_modules folders the product needs at run time: the root package.json's `dependencies`, and
 * theirs, recursively (optional ones when installed), resolved as Node does (nested node_modules first).
 *   node scripts/device/runtime-modules.js
 * Prints one folder per line, relative to the repository root (e.g. node_modules/@grpc/grpc-js, or a nested
 * node_modules/a/node_modules/b). Exits 1 naming a dependency that is not installed.
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');

function resolvePackage(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) return null;
  }
}

const found = new Set();
const missing = [];
function visit(dir) {
  if (found.has(dir)) return;
  found.add(dir);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const optional = manifest.optionalDependencies ?? {};
  for (const name of Object.keys({ ...manifest.dependencies, ...optional })) {
    const resolved = resolvePackage(name, dir);
    if (resolved !== null) visit(resolved);
    else if (!(name in optional)) missing.push(`${name} (needed by ${manifest.name})`);
  }
}

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const name of Object.keys(manifest.dependencies)) {
  const resolved = resolvePackage(name, root);
  if (resolved === null) missing.push(`${name} (needed by ${manifest.name})`);
  else visit(resolved);
}
if (missing.length > 0) {
  console.error(`runtime-modules: not installed: ${missing.join(', ')} (run npm ci)`);
  process.exit(1);
}
process.stdout.write([...found].map((dir) => path.relative(root, dir)).sort().join('\n') + '\n');
