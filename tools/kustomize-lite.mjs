// A small kustomize for tests, for machines without `kustomize` or `kubectl`: renders a kustomization
// folder with the features deploy/k8s uses, and fails loudly on any other field.
//   in:  a folder with kustomization.yaml: resources (files or folders), components, namespace,
//        labels (pairs), images (newName/newTag), replicas, patches (JSON 6902 with target, or strategic
//        merge by kind and name, lists of named items merged by name)
//   out: the rendered objects, as plain JS, in resource order.
// renderOverlay uses a real renderer (`kustomize build`, `kubectl kustomize`) when one is on PATH.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'labels', 'images', 'replicas', 'patches']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'StorageClass', 'PersistentVolume']);

function findRenderer() {
  const candidates = [
    { bin: 'kustomize', probe: ['version'], args: (dir) => ['build', dir] },
    { bin: 'kubectl', probe: ['kustomize', '--help'], args: (dir) => ['kustomize', dir] },
  ];
  for (const candidate of candidates) {
    try {
      execFileSync(candidate.bin, candidate.probe, { stdio: 'ignore', timeout: 30_000 });
      return candidate;
    } catch {
      // not installed (ENOENT) or not working: try the next one
    }
  }
  return null;
}

const renderer = findRenderer();
export const rendererName = renderer?.bin ?? 'kustomize-lite';

export function renderOverlay(dir) {
  if (renderer === null) return renderKustomization(dir);
  const yamlText = execFileSync(renderer.bin, renderer.args(dir), { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(yamlText).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`YAML errors in the rendering of ${dir}: ${doc.errors[0].message}`);
    return doc.toJS();
  });
}

export function renderKustomization(dir) {
  const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml: field ${field} is not supported here`);
  }
  let objects = [];
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readObjects(path)));
  }
  for (const component of kustomization.components ?? []) objects = applyComponent(objects, join(dir, component));
  for (const patch of kustomization.patches ?? []) objects = applyPatch(objects, patch, dir);
  if (kustomization.namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = kustomization.namespace;
  }
  for (const { pairs, includeSelectors } of kustomization.labels ?? []) {
    if (includeSelectors) throw new Error(`${dir}: labels.includeSelectors is not supported here`);
    for (const o of objects) o.metadata.labels = { ...o.metadata.labels, ...pairs };
  }
  for (const image of kustomization.images ?? []) for (const o of objects) retag(o, image);
  for (const { name, count } of kustomization.replicas ?? []) {
    const target = objects.find((o) => o.metadata.name === name && o.spec && 'template' in o.spec);
    if (!target) throw new Error(`${dir}: replicas names ${name}, which is not rendered`);
    target.spec.replicas = count;
  }
  return objects;
}

function readObjects(path) {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0].message}`);
      return doc.toJS();
    })
    .filter((o) => o !== null);
}

/** A Component adds its resources to the objects so far, then applies its own patches to them all. */
function applyComponent(objects, dir) {
  const component = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  if (component.kind !== 'Component') throw new Error(`${dir} is not a kustomize Component`);
  const withOwn = [...objects];
  for (const resource of component.resources ?? []) withOwn.push(...readObjects(join(dir, resource)));
  return (component.patches ?? []).reduce((all, patch) => applyPatch(all, patch, dir), withOwn);
}

function applyPatch(objects, { patch, path, target }, dir) {
  const body = parse(patch ?? readFileSync(join(dir, path), 'utf8'));
  const matches = (o, t) => (!t.kind || o.kind === t.kind) && (!t.name || o.metadata.name === t.name);
  if (Array.isArray(body)) {
    if (!target) throw new Error(`${dir}: a JSON 6902 patch needs a target`);
    const hits = objects.filter((o) => matches(o, target));
    if (hits.length === 0) throw new Error(`${dir}: patch target ${JSON.stringify(target)} matches nothing`);
    for (const o of hits) for (const op of body) applyOperation(o, op);
    return objects;
  }
  const selector = target ?? { kind: body.kind, name: body.metadata?.name };
  const hits = objects.filter((o) => matches(o, selector));
  if (hits.length === 0) throw new Error(`${dir}: strategic merge patch for ${JSON.stringify(selector)} matches nothing`);
  return objects.map((o) => (hits.includes(o) ? strategicMerge(o, body) : o));
}

function applyOperation(object, { op, path, value }) {
  const keys = path.split('/').slice(1).map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = keys.pop();
  let parent = object;
  for (const key of keys) {
    parent = parent?.[key];
    if (parent === undefined) throw new Error(`JSON patch ${op} ${path}: no ${key}`);
  }
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (op === 'add') parent.splice(index, 0, value);
    else if (op === 'replace') parent[index] = value;
    else if (op === 'remove') parent.splice(index, 1);
    else throw new Error(`JSON patch op ${op} is not supported here`);
    return;
  }
  if ((op === 'replace' || op === 'remove') && !(last in parent)) throw new Error(`JSON patch ${op} ${path}: no such member`);
  if (op === 'add' || op === 'replace') parent[last] = value;
  else if (op === 'remove') delete parent[last];
  else throw new Error(`JSON patch op ${op} is not supported here`);
}

/** Maps merge key by key; lists of objects with `name` merge item by item on it; other values replace. */
function strategicMerge(base, patch) {
  if (Array.isArray(patch)) {
    if (!Array.isArray(base) || !patch.every((item) => item && typeof item === 'object' && 'name' in item)) return patch;
    const merged = [...base];
    for (const item of patch) {
      const at = merged.findIndex((b) => b?.name === item.name);
      if (at >= 0) merged[at] = strategicMerge(merged[at], item);
      else merged.push(item);
    }
    return merged;
  }
  if (patch === null || typeof patch !== 'object' || base === null || typeof base !== 'object') return patch;
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch)) merged[key] = key in base ? strategicMerge(base[key], value) : value;
  return merged;
}

function retag(object, { name, newName, newTag }) {
  const pod = object.spec?.template?.spec ?? object.spec?.jobTemplate?.spec?.template?.spec;
  for (const container of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
    const [image, tag] = splitImage(container.image);
    if (image === name) container.image = `${newName ?? image}:${newTag ?? tag ?? 'latest'}`;
  }
}

function splitImage(image) {
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}
