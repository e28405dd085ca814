// Every pod of every overlay under deploy/k8s/overlays passes the Pod Security "restricted" profile
// (tools/pod-security-restricted.mjs), so a namespace labelled pod-security.kubernetes.io/enforce=restricted
// admits them; and the checker itself refuses what the profile refuses.
//   in:  deploy/k8s (rendered with kustomize, kubectl kustomize or tools/kustomize-lite.mjs)
//   out: node:test results.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderOverlay, rendererName } from './kustomize-lite.mjs';
import { restrictedViolations } from './pod-security-restricted.mjs';

const overlaysDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy/k8s/overlays');
const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

/** A pod the restricted profile admits. */
const admitted = () => ({
  securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [{ name: 'app', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
  volumes: [{ name: 'tmp', emptyDir: {} }],
});

describe('the restricted profile checker', () => {
  it('admits a pod with the restricted settings', () => {
    assert.deepEqual(restrictedViolations(admitted()), []);
  });

  const refused = {
    'no seccomp profile': (p) => delete p.securityContext.seccompProfile,
    'seccomp Unconfined on the container': (p) => (p.containers[0].securityContext.seccompProfile = { type: 'Unconfined' }),
    'capabilities not dropped': (p) => delete p.containers[0].securityContext.capabilities,
    'a capability added': (p) => (p.containers[0].securityContext.capabilities.add = ['SYS_ADMIN']),
    'privilege escalation unset': (p) => delete p.containers[0].securityContext.allowPrivilegeEscalation,
    'runAsNonRoot unset': (p) => delete p.securityContext.runAsNonRoot,
    'runAsUser 0': (p) => (p.containers[0].securityContext.runAsUser = 0),
    'privileged': (p) => (p.containers[0].securityContext.privileged = true),
    'hostNetwork': (p) => (p.hostNetwork = true),
    'a hostPort': (p) => (p.containers[0].ports = [{ containerPort: 80, hostPort: 80 }]),
    'a hostPath volume': (p) => p.volumes.push({ name: 'host', hostPath: { path: '/' } }),
    'an init container without the settings': (p) => (p.initContainers = [{ name: 'init' }]),
    'an unsafe sysctl': (p) => (p.securityContext.sysctls = [{ name: 'kernel.msgmax', value: '1' }]),
  };
  for (const [what, change] of Object.entries(refused)) {
    it(`refuses ${what}`, () => {
      const pod = admitted();
      change(pod);
      assert.notDeepEqual(restrictedViolations(pod), []);
    });
  }
});

for (const overlay of overlays) {
  describe(`k8s overlay ${overlay} (${rendererName}) under Pod Security "restricted"`, () => {
    const objects = renderOverlay(join(overlaysDir, overlay));
    const workloads = objects.filter((o) => o.spec?.template?.spec);

    it('the namespace enforces the restricted profile', () => {
      const namespace = objects.find((o) => o.kind === 'Namespace');
      assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    });

    it('renders the gateway, worker and Redis workloads', () => {
      assert.deepEqual(workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort(), ['Deployment/gateway', 'Deployment/worker', 'StatefulSet/redis']);
    });

    for (const workload of workloads) {
      it(`${workload.kind}/${workload.metadata.name}: every container passes`, () => {
        assert.deepEqual(restrictedViolations(workload.spec.template.spec), []);
      });
    }
  });
}
