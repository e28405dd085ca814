// Every object of every overlay under deploy/k8s/overlays passes its published schema, offline
// (tools/k8s-schema-models.mjs: kubernetes-models for Kubernetes' own kinds, @kubernetes-models/keda for the
// ScaledObject, @kubernetes-models/prometheus-operator for the ServiceMonitor), and has no field that its kind
// lacks (tools/k8s-unknown-fields.mjs, as `kubectl apply`'s strict field validation). A kind without a schema
// fails the test, and for every rendered kind broken copies of a real object are refused, so both checks bite.
//   in:  deploy/k8s (rendered with kustomize, kubectl kustomize or tools/kustomize-lite.mjs)
//   out: node:test results.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UnknownKindError, modelClassFor, schemaErrors } from './k8s-schema-models.mjs';
import { UnknownFieldChecker } from './k8s-unknown-fields.mjs';
import { renderOverlay, rendererName } from './kustomize-lite.mjs';

const overlaysDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy/k8s/overlays');
const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const rendered = new Map(overlays.map((overlay) => [overlay, renderOverlay(join(overlaysDir, overlay))]));
const unknownFields = new UnknownFieldChecker([...rendered.values()].flat());
const nameOf = (o) => `${o.kind}/${o.metadata?.name}`;
const firstContainer = (o) => o.spec.template.spec.containers[0];

/**
 * Per kind, mistakes the schema must refuse: each breaks a copy of a rendered object and returns the message
 * (field path first) that the validator must give. Every rendered kind needs one.
 */
const BROKEN = {
  Namespace: [['a label value that is a number', (o) => { o.metadata.labels = { ...o.metadata.labels, tier: 1 }; return '/metadata/labels/tier must be string'; }]],
  ConfigMap: [['an unquoted number as a value', (o) => { o.data.PORT = 50051; return '/data/PORT must be string'; }]],
  Service: [['a port given as a string', (o) => { o.spec.ports[0].port = String(o.spec.ports[0].port); return '/spec/ports/0/port must be integer'; }]],
  PersistentVolumeClaim: [['accessModes not a list', (o) => { o.spec.accessModes = o.spec.accessModes[0]; return '/spec/accessModes must be array'; }]],
  Deployment: [
    ['a container port given as a string', (o) => {
      const port = firstContainer(o).ports[0];
      port.containerPort = String(port.containerPort);
      return '/spec/template/spec/containers/0/ports/0/containerPort must be integer';
    }],
    ['an env value that is a number', (o) => { firstContainer(o).env[0].value = 8080; return '/spec/template/spec/containers/0/env/0/value must be string'; }],
    ['no selector', (o) => { delete o.spec.selector; return '/spec must have required property selector'; }],
    ['an imagePullPolicy outside its enum', (o) => { firstContainer(o).imagePullPolicy = 'always'; return '/spec/template/spec/containers/0/imagePullPolicy must be equal to one of the allowed values'; }],
  ],
  StatefulSet: [['a storage request that is not a quantity', (o) => {
    o.spec.volumeClaimTemplates[0].spec.resources.requests.storage = 'lots';
    return '/spec/volumeClaimTemplates/0/spec/resources/requests/storage must match format "quantity"';
  }]],
  PodDisruptionBudget: [['a selector without its matchLabels map', (o) => { o.spec.selector.matchLabels = ['app']; return '/spec/selector/matchLabels must be object'; }]],
  HorizontalPodAutoscaler: [['no maxReplicas', (o) => { delete o.spec.maxReplicas; return '/spec must have required property maxReplicas'; }]],
  ScaledObject: [
    ['minReplicaCount given as a string', (o) => { o.spec.minReplicaCount = '2'; return '/spec/minReplicaCount must be integer'; }],
    ['a trigger without its type', (o) => { delete o.spec.triggers[0].type; return '/spec/triggers/0 must have required property type'; }],
  ],
  ServiceMonitor: [['a scrape interval that is not a duration', (o) => { o.spec.endpoints[0].interval = 'often'; return '/spec/endpoints/0/interval must match pattern'; }]],
};

/** Per kind, misspelt fields (which the schemas let through) that the unknown-field check must name. */
const MISSPELT = {
  Namespace: [(o) => { o.metadata.label = { tier: 'a' }; return '/metadata/label'; }],
  ConfigMap: [(o) => { o.datta = { PORT: '50051' }; return '/datta'; }],
  Service: [(o) => { o.spec.ports[0].targetport = 'http'; return '/spec/ports/0/targetport'; }],
  PersistentVolumeClaim: [(o) => { o.spec.resources.request = { storage: '1Gi' }; return '/spec/resources/request'; }],
  Deployment: [
    (o) => { o.spec.replica = 2; return '/spec/replica'; },
    (o) => { o.spec.template.spec.topologySpreadConstraint = []; return '/spec/template/spec/topologySpreadConstraint'; },
    (o) => { firstContainer(o).securityContext.capabilities.dorp = ['ALL']; return '/spec/template/spec/containers/0/securityContext/capabilities/dorp'; },
  ],
  StatefulSet: [(o) => { o.spec.volumeClaimTemplates[0].spec.storageClass = 'fast'; return '/spec/volumeClaimTemplates/0/spec/storageClass'; }],
  PodDisruptionBudget: [(o) => { o.spec.minAvailble = 1; return '/spec/minAvailble'; }],
  HorizontalPodAutoscaler: [(o) => { o.spec.metrics[0].external.metric.nam = 'x'; return '/spec/metrics/0/external/metric/nam'; }],
  ScaledObject: [
    (o) => { o.spec.trigers = []; return '/spec/trigers'; },
    (o) => { o.spec.triggers[0].metdata = {}; return '/spec/triggers/0/metdata'; },
  ],
  ServiceMonitor: [(o) => { o.spec.endpoints[0].intervall = '15s'; return '/spec/endpoints/0/intervall'; }],
};

describe('the schema lookup', () => {
  const noSchema = {
    'a CRD group without a models package': { apiVersion: 'example.com/v1', kind: 'Widget' },
    'an unknown kind of a known group': { apiVersion: 'apps/v1', kind: 'Widget' },
    'a kind under the wrong group': { apiVersion: 'v1', kind: 'Deployment' },
    'a version that does not exist': { apiVersion: 'apps/v9', kind: 'Deployment' },
    'a part of an object, not a kind': { apiVersion: 'apps/v1', kind: 'DeploymentSpec' },
    'no apiVersion': { kind: 'Deployment' },
  };
  for (const [what, object] of Object.entries(noSchema)) {
    it(`fails on ${what}, never skips it`, async () => {
      await assert.rejects(modelClassFor(object), UnknownKindError);
      await assert.rejects(schemaErrors(object), UnknownKindError);
    });
  }

  it('the unknown-field check fails on a kind without a type as well', () => {
    assert.throws(() => new UnknownFieldChecker([noSchema['a CRD group without a models package']]), UnknownKindError);
    assert.throws(() => new UnknownFieldChecker([noSchema['an unknown kind of a known group']]), UnknownKindError);
  });

  it('finds the KEDA and Prometheus Operator kinds', async () => {
    assert.equal((await modelClassFor({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject' })).kind, 'ScaledObject');
    assert.equal((await modelClassFor({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor' })).kind, 'ServiceMonitor');
  });
});

for (const overlay of overlays) {
  describe(`k8s overlay ${overlay} (${rendererName}) against the published schemas`, () => {
    const objects = rendered.get(overlay);

    for (const object of objects) {
      it(`${nameOf(object)} (${object.apiVersion}) passes its schema and has no unknown field`, async () => {
        assert.deepEqual(await schemaErrors(object), []);
        assert.deepEqual(unknownFields.check(object), []);
      });
    }

    it('every rendered kind has mistakes that the checks must refuse', () => {
      const kinds = [...new Set(objects.map((o) => o.kind))];
      assert.deepEqual(kinds.filter((kind) => !BROKEN[kind]), [], 'add cases to BROKEN');
      assert.deepEqual(kinds.filter((kind) => !MISSPELT[kind]), [], 'add cases to MISSPELT');
    });

    for (const object of objects) {
      for (const [what, breakIt] of BROKEN[object.kind] ?? []) {
        it(`${nameOf(object)} with ${what} is refused`, async () => {
          const broken = structuredClone(object);
          const expected = breakIt(broken);
          const errors = await schemaErrors(broken);
          assert.ok(errors.some((e) => e.startsWith(expected)), `expected "${expected}", got ${JSON.stringify(errors)}`);
        });
      }
      for (const misspell of MISSPELT[object.kind] ?? []) {
        const broken = structuredClone(object);
        const field = misspell(broken);
        it(`${nameOf(object)} with the unknown field ${field} is refused, though its schema passes it`, async () => {
          assert.deepEqual(await schemaErrors(broken), [], 'the schemas are open: unknown fields pass them');
          const found = unknownFields.check(broken);
          assert.ok(found.some((e) => e.startsWith(`${field} is not a field of `)), `expected ${field}, got ${JSON.stringify(found)}`);
        });
      }
    }
  });
}
