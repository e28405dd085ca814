// The schema of a Kubernetes object, offline: finds the kubernetes-models class for its apiVersion and kind
// (validators generated from Kubernetes' published OpenAPI spec, and from the KEDA and Prometheus Operator
// CRDs), and validates the object against it.
//   in:  a manifest object ({ apiVersion, kind, ... }) as parsed from YAML
//   out: modelClassFor: the class, or a thrown UnknownKindError naming what has no schema here;
//        schemaErrors: [] when the schema accepts the object, else one message per error, naming the field
//        ("/spec/template/spec/containers/0/ports/0/containerPort must be integer").
// The schemas check types, required fields, enums and formats (quantities, durations). They do not reject
// unknown fields: Kubernetes' OpenAPI objects are open, so a misspelt field passes here
// (tools/k8s-unknown-fields.mjs checks those).

/** npm packages with the models of each CRD API group; every other group is in kubernetes-models. */
const CRD_PACKAGES = {
  'keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

export class UnknownKindError extends Error {
  constructor(apiVersion, kind, cause) {
    super(`no schema for ${apiVersion} ${kind}: add its models package to tools/k8s-schema-models.mjs`, { cause });
    this.name = 'UnknownKindError';
  }
}

/** The module that exports the models of one group/version: "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1. */
export function modelModuleFor(apiVersion, kind = '(any kind)') {
  if (typeof apiVersion !== 'string') throw new UnknownKindError(String(apiVersion), kind);
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  return `${CRD_PACKAGES[group] ?? 'kubernetes-models'}/${apiVersion}`;
}

export async function modelClassFor({ apiVersion, kind }) {
  if (typeof kind !== 'string') throw new UnknownKindError(String(apiVersion), String(kind));
  const path = modelModuleFor(apiVersion, kind);
  let models;
  try {
    models = await import(path);
  } catch (err) {
    throw new UnknownKindError(apiVersion, kind, err);
  }
  const model = models[kind];
  // Only a top-level kind has its apiVersion and kind as statics and a validate function of its own.
  const isKind = typeof model === 'function' && model.apiVersion === apiVersion && model.kind === kind
    && Object.hasOwn(model.prototype, 'validate');
  if (!isKind) throw new UnknownKindError(apiVersion, kind);
  return model;
}

export async function schemaErrors(object) {
  const Model = await modelClassFor(object);
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err; // not a ValidationError: a fault of the validator, not of the object
    return err.errors.map((e) => `${e.instancePath || '/'} ${e.message}`);
  }
}
