// Start-up, placement, autoscaling and scraping of every overlay under deploy/k8s/overlays: workers get a
// startupProbe (they load a model first), gateways and workers are spread over nodes, an autoscaled
// Deployment has no spec.replicas, workers scale on load as well as on queue depth, and the Prometheus
// series those queries read are scraped (a ServiceMonitor per metrics Service).
//   in:  deploy/k8s (rendered with kustomize, kubectl kustomize or tools/kustomize-lite.mjs)
//   out: node:test results.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderOverlay, rendererName } from './kustomize-lite.mjs';

const overlaysDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy/k8s/overlays');
const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const find = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);

/** The metrics each autoscaler query reads, by the app that serves them. */
const GATEWAY_METRIC = 'kcache_gateway_queue_depth';
const WORKER_LOAD_METRICS = ['kcache_worker_active_jobs', 'kcache_worker_sequence_capacity'];

for (const overlay of overlays) {
  describe(`k8s overlay ${overlay} (${rendererName}): start-up, placement, autoscaling, scraping`, () => {
    const objects = renderOverlay(join(overlaysDir, overlay));
    const worker = find(objects, 'Deployment', 'worker');
    const gateway = find(objects, 'Deployment', 'gateway');

    it('workers have a startupProbe on /healthz that allows minutes for the model to load', () => {
      const container = worker.spec.template.spec.containers[0];
      const probe = container.startupProbe;
      assert.equal(probe?.httpGet?.path, '/healthz');
      assert.equal(probe.httpGet.port, 'metrics');
      assert.ok(probe.periodSeconds * probe.failureThreshold >= 120, 'at least two minutes to start');
      assert.equal(container.livenessProbe.initialDelaySeconds ?? 0, 0, 'the startupProbe holds liveness back, not a delay');
    });

    for (const [name, deployment] of [['gateway', gateway], ['worker', worker]]) {
      it(`${name} pods are spread over nodes (topology spread or pod anti-affinity on their own label)`, () => {
        const pod = deployment.spec.template.spec;
        const labels = deployment.spec.template.metadata.labels;
        const selects = (selector) => Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v) && Object.keys(selector?.matchLabels ?? {}).length > 0;
        const spread = (pod.topologySpreadConstraints ?? []).some((c) => c.topologyKey === 'kubernetes.io/hostname' && selects(c.labelSelector));
        const antiAffinity = [
          ...(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
          ...(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => p.podAffinityTerm),
        ].some((term) => term.topologyKey === 'kubernetes.io/hostname' && selects(term.labelSelector));
        assert.ok(spread || antiAffinity, `${name}: no spread over kubernetes.io/hostname`);
      });
    }

    it('a Deployment that an HPA or KEDA scales has no spec.replicas', () => {
      const targets = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject').map((o) => o.spec.scaleTargetRef.name);
      assert.ok(targets.length > 0, 'an autoscaler');
      for (const name of targets) assert.equal(find(objects, 'Deployment', name).spec.replicas, undefined, `Deployment/${name} spec.replicas`);
    });

    it('workers scale on their load (jobs over capacity) as well as on queue depth', () => {
      const scaledObject = objects.find((o) => o.kind === 'ScaledObject');
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
      if (scaledObject) {
        const queries = scaledObject.spec.triggers.map((t) => t.metadata.query);
        assert.ok(queries.some((q) => q.includes(GATEWAY_METRIC)), 'a queue-depth trigger');
        const load = scaledObject.spec.triggers.find((t) => WORKER_LOAD_METRICS.every((m) => t.metadata.query.includes(m)));
        assert.ok(load, 'a load trigger');
        assert.ok(Number(load.metadata.threshold) > 0 && Number(load.metadata.threshold) <= 1, 'load threshold in workers, at most 1');
      } else {
        const names = hpa.spec.metrics.map((m) => m.external?.metric?.name).filter(Boolean);
        assert.deepEqual(names.sort(), [GATEWAY_METRIC, 'kcache_worker_load']);
      }
    });

    it('a ServiceMonitor scrapes /metrics of the gateway and the worker Services on their metrics ports', () => {
      const monitors = objects.filter((o) => o.kind === 'ServiceMonitor');
      for (const [serviceName, port] of [['gateway', 'http'], ['worker-metrics', 'metrics']]) {
        const service = find(objects, 'Service', serviceName);
        assert.ok(service.spec.ports.some((p) => p.name === port), `${serviceName} has port ${port}`);
        const monitor = monitors.find((m) => Object.entries(m.spec.selector.matchLabels).every(([k, v]) => service.metadata.labels?.[k] === v));
        assert.ok(monitor, `a ServiceMonitor selects Service/${serviceName}`);
        assert.ok(monitor.spec.endpoints.some((e) => e.port === port && e.path === '/metrics'), `${monitor.metadata.name} scrapes ${port}/metrics`);
        assert.equal(monitor.metadata.namespace, service.metadata.namespace);
      }
    });
  });
}
