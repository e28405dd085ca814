// Renders each kustomize overlay under deploy/k8s/overlays and checks the objects against the apps'
// contract: ports 50051 (gRPC) / 8080 (gateway HTTP) / 9090 (worker metrics), probes on /healthz and
// /readyz, AOF Redis, the autoscaler pointing at the worker on kcache_gateway_queue_depth. Also checks
// deploy/docker-compose.yml against the same contract.
//   in:  deploy/k8s, deploy/docker-compose.yml; a renderer on PATH (`kustomize` or `kubectl`), else
//        tools/kustomize-lite.mjs (the subset of kustomize these overlays use)
//   out: node:test results.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderOverlay, rendererName } from './kustomize-lite.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const overlaysDir = join(repoRoot, 'deploy/k8s/overlays');

/** The apps' defaults (apps/gateway and apps/worker config); every deploy file must agree. */
const APP = {
  grpcPort: 50051,
  httpPort: 8080,
  metricsPort: 9090,
  hostTierDir: '/dev/shm/kcache',
  healthPath: '/healthz',
  readyPath: '/readyz',
  queueDepthMetric: 'kcache_gateway_queue_depth',
};

const render = (overlay) => renderOverlay(join(overlaysDir, overlay));

const find = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const envOf = (container) => Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
const portOf = (container, name) => container.ports.find((p) => p.name === name)?.containerPort;

function assertHttpProbe(probe, path, portName, what) {
  assert.ok(probe?.httpGet, `${what}: httpGet probe`);
  assert.equal(probe.httpGet.path, path, `${what}: probe path`);
  assert.equal(probe.httpGet.port, portName, `${what}: probe port`);
}

const overlays = readdirSync(overlaysDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

it('has dev and prod overlays', () => {
  assert.deepEqual(overlays, ['dev', 'prod']);
});

for (const overlay of overlays) {
  describe(`k8s overlay ${overlay} (${rendererName})`, () => {
    const objects = render(overlay);

    it('renders the expected kinds in one namespace', () => {
      const kinds = new Set(objects.map((o) => o.kind));
      for (const kind of ['Namespace', 'ConfigMap', 'StatefulSet', 'Deployment', 'Service', 'PodDisruptionBudget']) {
        assert.ok(kinds.has(kind), `missing ${kind}`);
      }
      const ns = objects.find((o) => o.kind === 'Namespace').metadata.name;
      for (const o of objects.filter((o) => o.kind !== 'Namespace')) {
        assert.equal(o.metadata.namespace, ns, `${o.kind}/${o.metadata.name} namespace`);
      }
    });

    it('runs Redis as a StatefulSet with AOF and a volume for /data', () => {
      const redis = find(objects, 'StatefulSet', 'redis');
      assert.ok(redis, 'StatefulSet/redis');
      const args = redis.spec.template.spec.containers[0].args.join(' ');
      assert.match(args, /--appendonly yes/);
      assert.match(args, /--maxmemory-policy noeviction/);
      assert.equal(redis.spec.volumeClaimTemplates[0].metadata.name, 'data');
      const service = find(objects, 'Service', 'redis');
      assert.equal(service.spec.ports[0].port, 6379);
      const config = find(objects, 'ConfigMap', 'kcache-config');
      assert.equal(new URL(config.data.REDIS_URL).hostname, 'redis', 'REDIS_URL points at the redis Service');
    });

    it('exposes the gateway on gRPC 50051 and HTTP 8080 with /healthz and /readyz', () => {
      const gateway = find(objects, 'Deployment', 'gateway');
      const container = gateway.spec.template.spec.containers[0];
      assert.equal(portOf(container, 'grpc'), APP.grpcPort);
      assert.equal(portOf(container, 'http'), APP.httpPort);
      const env = envOf(container);
      assert.equal(env.PORT, String(APP.grpcPort));
      assert.equal(env.HTTP_PORT, String(APP.httpPort));
      assertHttpProbe(container.readinessProbe, APP.readyPath, 'http', 'gateway readiness');
      assertHttpProbe(container.livenessProbe, APP.healthPath, 'http', 'gateway liveness');
      const service = find(objects, 'Service', 'gateway');
      const servicePorts = Object.fromEntries(service.spec.ports.map((p) => [p.name, p.port]));
      assert.deepEqual(servicePorts, { grpc: APP.grpcPort, http: APP.httpPort });
    });

    it('runs workers with probes on 9090 and the host tier on a memory emptyDir', () => {
      const worker = find(objects, 'Deployment', 'worker');
      const pod = worker.spec.template.spec;
      const container = pod.containers[0];
      assert.equal(portOf(container, 'metrics'), APP.metricsPort);
      const env = envOf(container);
      assert.equal(env.METRICS_PORT, String(APP.metricsPort));
      assert.equal(env.HOST_TIER, 'shared');
      assert.equal(env.HOST_TIER_DIR, APP.hostTierDir);
      assertHttpProbe(container.readinessProbe, APP.readyPath, 'metrics', 'worker readiness');
      assertHttpProbe(container.livenessProbe, APP.healthPath, 'metrics', 'worker liveness');
      const mount = container.volumeMounts.find((m) => m.mountPath === APP.hostTierDir);
      assert.ok(mount, 'a volume is mounted at HOST_TIER_DIR');
      const volume = pod.volumes.find((v) => v.name === mount.name);
      assert.equal(volume.emptyDir?.medium, 'Memory');
      assert.ok(pod.terminationGracePeriodSeconds >= 60, 'workers get time to drain');
    });

    it('sets requests, grace periods and /models on every workload; PDBs select real pods', () => {
      const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
      for (const w of workloads) {
        const pod = w.spec.template.spec;
        assert.equal(typeof pod.terminationGracePeriodSeconds, 'number', `${w.metadata.name} grace period`);
        for (const c of pod.containers) {
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${w.metadata.name}/${c.name} requests`);
        }
        if (w.kind === 'Deployment') {
          const models = pod.containers[0].volumeMounts.find((m) => m.mountPath === '/models');
          assert.ok(models?.readOnly, `${w.metadata.name} mounts /models read-only`);
          assert.equal(envOf(pod.containers[0]).MODEL ?? find(objects, 'ConfigMap', 'kcache-config').data.MODEL,
            '/models/stories260K');
        }
      }
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
      assert.deepEqual(pdbs.map((p) => p.metadata.name).sort(), ['gateway', 'worker']);
      for (const pdb of pdbs) {
        const target = find(objects, 'Deployment', pdb.metadata.name);
        for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) {
          assert.equal(target.spec.template.metadata.labels[k], v, `PDB ${pdb.metadata.name} selects ${k}`);
        }
      }
    });

    it('autoscales the worker Deployment on kcache_gateway_queue_depth', () => {
      const scaledObject = objects.find((o) => o.kind === 'ScaledObject');
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
      assert.ok(Boolean(scaledObject) !== Boolean(hpa), 'exactly one of KEDA ScaledObject and HPA');
      if (scaledObject) {
        assert.equal(scaledObject.apiVersion, 'keda.sh/v1alpha1');
        assert.equal(scaledObject.spec.scaleTargetRef.name, 'worker');
        const trigger = scaledObject.spec.triggers[0];
        assert.equal(trigger.type, 'prometheus');
        assert.match(trigger.metadata.query, new RegExp(APP.queueDepthMetric));
      } else {
        assert.equal(hpa.apiVersion, 'autoscaling/v2');
        assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
        assert.equal(hpa.spec.scaleTargetRef.name, 'worker');
        assert.ok(hpa.spec.metrics.some((m) => m.external?.metric?.name === APP.queueDepthMetric));
      }
    });
  });
}

describe('docker compose', () => {
  const compose = parse(readFileSync(join(repoRoot, 'deploy/docker-compose.yml'), 'utf8'), { merge: true });

  it('runs redis with appendonly, a gateway and two workers', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['gateway', 'redis', 'worker']);
    assert.match(compose.services.redis.command.join(' '), /--appendonly yes/);
    assert.equal(compose.services.worker.deploy.replicas, 2);
  });

  it('uses the app ports and env', () => {
    const { gateway, worker } = compose.services;
    assert.deepEqual(gateway.ports.map(String).sort(), [`${APP.grpcPort}:${APP.grpcPort}`, `${APP.httpPort}:${APP.httpPort}`]);
    assert.equal(gateway.environment.PORT, String(APP.grpcPort));
    assert.equal(gateway.environment.HTTP_PORT, String(APP.httpPort));
    assert.equal(worker.environment.METRICS_PORT, String(APP.metricsPort));
    assert.equal(worker.environment.HOST_TIER_DIR, APP.hostTierDir);
    for (const service of [gateway, worker]) {
      assert.equal(new URL(service.environment.REDIS_URL).hostname, 'redis');
      assert.ok(service.volumes.some((v) => v.target === '/models' && v.read_only));
    }
  });

  it('shares one tmpfs volume between the workers at HOST_TIER_DIR', () => {
    const mount = compose.services.worker.volumes.find((v) => v.target === APP.hostTierDir);
    assert.ok(mount, 'worker mounts HOST_TIER_DIR');
    assert.equal(compose.volumes[mount.source].driver_opts.type, 'tmpfs');
  });

  it('builds from Dockerfiles that exist, with the repository root as context', () => {
    for (const name of ['gateway', 'worker']) {
      const { context, dockerfile } = compose.services[name].build;
      const contextDir = join(repoRoot, 'deploy', context);
      assert.equal(contextDir, repoRoot);
      assert.ok(existsSync(join(contextDir, dockerfile)), dockerfile);
    }
  });
});
