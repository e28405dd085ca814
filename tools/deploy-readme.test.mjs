// deploy/README.md says what the files do: every path it names exists, and its commands name the namespace,
// Secret, variables and components that the manifests and the compose file use.
//   in:  deploy/README.md, deploy/k8s, deploy/docker-compose.yml
//   out: node:test results.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderOverlay } from './kustomize-lite.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(repoRoot, 'deploy/README.md'), 'utf8');
const commands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');

describe('deploy/README.md', () => {
  it('every path in its table exists under deploy/', () => {
    const paths = [...readme.matchAll(/^\| `([^`|]+)`(?:, `([^`|]+)`)? \|/gm)].flatMap((m) => [m[1], m[2]]).filter((p) => p && p.includes('/'));
    assert.ok(paths.length >= 5, `paths found: ${paths.join(', ')}`);
    for (const path of paths) assert.ok(existsSync(join(repoRoot, 'deploy', path)), `deploy/${path}`);
  });

  it('the paths its commands use exist', () => {
    const used = [...commands.matchAll(/(deploy\/[\w./-]+)/g)].map((m) => m[1]);
    assert.ok(used.length >= 5);
    for (const path of used) assert.ok(existsSync(join(repoRoot, path)), path);
  });

  it('compose: the variable the command sets is the one the compose file requires', () => {
    const compose = readFileSync(join(repoRoot, 'deploy/docker-compose.yml'), 'utf8');
    const required = [...compose.matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]);
    assert.ok(required.length > 0);
    for (const variable of required) assert.match(commands, new RegExp(`${variable}=`), `the README sets ${variable}`);
    const { services } = parse(compose, { merge: true });
    assert.deepEqual(Object.keys(services).sort(), ['gateway', 'redis', 'worker']);
    assert.equal(services.worker.deploy.replicas, 2);
    assert.match(readme, /Redis \(AOF\), one gateway, two workers/);
  });

  it('kubernetes: the Secret command names the dev namespace and the Secret and key the gateway reads', () => {
    const dev = renderOverlay(join(repoRoot, 'deploy/k8s/overlays/dev'));
    const namespace = dev.find((o) => o.kind === 'Namespace').metadata.name;
    const gateway = dev.find((o) => o.kind === 'Deployment' && o.metadata.name === 'gateway');
    const secretRef = gateway.spec.template.spec.containers[0].env.find((e) => e.valueFrom?.secretKeyRef).valueFrom.secretKeyRef;
    const create = /kubectl -n (\S+) create secret generic (\S+) \\\n\s+--from-literal=(\w+)=/.exec(commands);
    assert.ok(create, 'a kubectl create secret command');
    assert.deepEqual(create.slice(1), [namespace, secretRef.name, secretRef.key]);
    assert.ok(dev.some((o) => o.kind === 'ServiceMonitor'), 'the apply command warns of the ServiceMonitor CRD: the overlay has ServiceMonitors');
  });
});
