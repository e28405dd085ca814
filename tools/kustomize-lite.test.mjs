// tools/kustomize-lite.mjs against a real renderer: where `kustomize` or `kubectl` is on PATH, both render
// every overlay to the same objects (lists of named items compared in name order: strategic merge puts
// patched items first, which changes nothing in Kubernetes). Skipped, with the reason, without one.
//   in:  deploy/k8s/overlays/*; out: node:test results.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderKustomization, renderOverlay, rendererName } from './kustomize-lite.mjs';

const overlaysDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy/k8s/overlays');
const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const skip = rendererName === 'kustomize-lite' ? 'no kustomize or kubectl on PATH to compare with' : false;

function normalized(value) {
  if (Array.isArray(value)) {
    const items = value.map(normalized);
    return items.every((item) => item && typeof item === 'object' && 'name' in item) ? items.sort((a, b) => String(a.name).localeCompare(String(b.name))) : items;
  }
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalized(v)]));
}

const byKindAndName = (objects) => Object.fromEntries(objects.map((o) => [`${o.kind}/${o.metadata.name}`, normalized(o)]));

describe(`kustomize-lite renders as ${rendererName} does`, { skip }, () => {
  for (const overlay of overlays) {
    it(`overlay ${overlay}`, () => {
      const dir = join(overlaysDir, overlay);
      assert.deepEqual(byKindAndName(renderKustomization(dir)), byKindAndName(renderOverlay(dir)));
    });
  }
});
