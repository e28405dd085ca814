// The shared host tier must fit the memory volume it lives on, in every shipped deployment: each k8s
// overlay (rendered) and docker compose. The tier's file size comes from the engine's own layout code
// (libs/kcache/dist, so run after the build) for the model the manifests serve (stories260K) and the
// worker's variables as the manifests set them, with the apps' defaults where they are unset.
//   in:  deploy/k8s/overlays/*, deploy/docker-compose.yml, libs/kcache/dist, ../shared/models/stories260K
//   out: node:test results.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderOverlay } from './kustomize-lite.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { computeLayout, blockBytesOf } = require(join(repoRoot, 'libs/kcache/dist/host-tier/tier-layout.js'));
const { loadModel } = require(join(repoRoot, 'libs/kcache/dist/formats/model-source.js'));
const { headDimOf } = require(join(repoRoot, 'libs/kcache/dist/model/model-config.js'));
const { stories260kDir } = require(join(repoRoot, 'libs/kcache/dist/testing/reference-data.js'));

const MIB = 1024 * 1024;
/** The apps' defaults (libs/kcache engine-options and host-tier-options, apps/worker worker-config). */
const DEFAULTS = { hostCapacityBytes: 2048 * MIB, blockSize: 16, maxWorkers: 64, prefixKeys: 'spill' };

const config = loadModel(stories260kDir()).weights.config;

/** Bytes of the tier file a worker creates with these environment variables. */
function tierFileBytes(env) {
  const capacityBytes = Number(env.HOST_TIER_CAPACITY_BYTES ?? env.HOST_CAPACITY_BYTES ?? DEFAULTS.hostCapacityBytes);
  const shape = {
    blockSize: Number(env.BLOCK_SIZE ?? DEFAULTS.blockSize),
    numLayers: config.numLayers,
    numKvHeads: config.numKvHeads,
    headDim: headDimOf(config),
    maxWorkers: Number(env.HOST_TIER_MAX_WORKERS ?? DEFAULTS.maxWorkers),
    hasKeys: (env.HOST_TIER_PREFIX_KEYS ?? DEFAULTS.prefixKeys) === 'spill',
  };
  return computeLayout({ ...shape, numBlocks: Math.floor(capacityBytes / blockBytesOf(shape)) }).fileBytes;
}

/** Kubernetes quantities (512Mi, 2Gi, 1G, plain bytes) and tmpfs sizes (1g, 512m: powers of 1024). */
function bytesOf(quantity) {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T|m|g|t)?$/.exec(String(quantity));
  assert.ok(match, `unreadable size ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const tmpfsUnit = { m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
  return Number(match[1]) * (unit[match[2]] ?? tmpfsUnit[match[2]] ?? 1);
}

const overlaysDir = join(repoRoot, 'deploy/k8s/overlays');
const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

describe('the shared host tier fits its volume', () => {
  it('the default tier (2 GiB) needs more than 2 GiB, so a 2Gi volume needs HOST_TIER_CAPACITY_BYTES', () => {
    assert.ok(tierFileBytes({}) > bytesOf('2Gi'), String(tierFileBytes({})));
  });

  for (const overlay of overlays) {
    it(`k8s overlay ${overlay}: tier file <= /dev/shm emptyDir sizeLimit < memory limit`, () => {
      const worker = renderOverlay(join(overlaysDir, overlay)).find((o) => o.kind === 'Deployment' && o.metadata.name === 'worker');
      const pod = worker.spec.template.spec;
      const container = pod.containers.find((c) => c.name === 'worker');
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.HOST_TIER, 'shared');
      const mount = container.volumeMounts.find((m) => m.mountPath === env.HOST_TIER_DIR);
      const volume = pod.volumes.find((v) => v.name === mount.name);
      const sizeLimit = bytesOf(volume.emptyDir.sizeLimit);
      const needed = tierFileBytes(env);
      assert.ok(needed <= sizeLimit, `${overlay}: the tier needs ${needed} bytes, the volume holds ${sizeLimit}: set HOST_TIER_CAPACITY_BYTES`);
      // a memory emptyDir counts against the container's memory limit, beside the process itself
      assert.ok(sizeLimit < bytesOf(container.resources.limits.memory), `${overlay}: sizeLimit ${sizeLimit} vs memory limit`);
    });
  }

  it('docker compose: tier file <= the tmpfs the workers share', () => {
    const compose = parse(readFileSync(join(repoRoot, 'deploy/docker-compose.yml'), 'utf8'), { merge: true });
    const worker = compose.services.worker;
    assert.equal(worker.environment.HOST_TIER, 'shared');
    const mount = worker.volumes.find((v) => v.target === worker.environment.HOST_TIER_DIR);
    const size = /(?:^|,)size=([^,]+)/.exec(compose.volumes[mount.source].driver_opts.o)?.[1];
    const needed = tierFileBytes(worker.environment);
    assert.ok(needed <= bytesOf(size), `compose: the tier needs ${needed} bytes, the tmpfs holds ${bytesOf(size)}: set HOST_TIER_CAPACITY_BYTES`);
  });
});
