import type * as ort from 'onnxruntime-node';
import { GraphSession } from '../runtime/graph-session';
import type { NativeDtype, NativeOrt, NativeSessionOptions } from '../ort-native/native-ort';

/** One graph run as the engine made it: the graph's bytes, its feeds and what it returned (host copies). */
export interface RecordedRun {
  readonly graph: Uint8Array;
  readonly feeds: Readonly<Record<string, ort.Tensor>>;
  readonly outputs: Readonly<Record<string, ort.Tensor>>;
}

/**
 * Runs `work` (an engine generating, say) with every synchronous GraphSession run recorded, feeds and
 * outputs copied as they were at the time of the run. For checks that replay the engine's real graph
 * runs on another path (the addon, another provider) and compare the outputs.
 */
export async function recordGraphRuns(work: () => Promise<void>, maxRuns = Infinity): Promise<RecordedRun[]> {
  const runs: RecordedRun[] = [];
  const graphs = new WeakMap<GraphSession, Uint8Array>();
  const create = GraphSession.create.bind(GraphSession);
  const run = GraphSession.prototype.run;
  GraphSession.create = async (graph, options, allowDirect) => {
    const session = await create(graph, options, allowDirect);
    graphs.set(session, graph.slice());
    return session;
  };
  GraphSession.prototype.run = function (this: GraphSession, feeds, into) {
    const snapshot = copyTensors(feeds);
    const results = run.call(this, feeds, into);
    const graph = graphs.get(this);
    if (graph && !(results instanceof Promise) && runs.length < maxRuns) {
      runs.push({ graph, feeds: snapshot, outputs: copyTensors(results as Record<string, ort.Tensor>) });
    }
    return results;
  };
  try {
    await work();
  } finally {
    GraphSession.create = create;
    GraphSession.prototype.run = run;
  }
  return runs;
}

/**
 * Replays a recorded run through the addon: every feed bound from host memory, every output bound to a
 * host buffer of the recorded shape, one run. Returns the outputs (data as the addon wrote them).
 * A feed that the same run also writes (an in-place output) gets the recorded feed, as it had.
 */
export function replayOnNative(native: NativeOrt, recorded: RecordedRun, options: NativeSessionOptions): Record<string, ort.Tensor> {
  const session = native.session(recorded.graph, options);
  try {
    const inputs = Object.fromEntries(
      Object.entries(recorded.feeds).map(([name, t]) => [name, native.hostTensor(copyData(t), dtypeOf(t), t.dims)]),
    );
    const outputData = Object.fromEntries(Object.entries(recorded.outputs).map(([name, t]) => [name, emptyLike(t)]));
    const outputs = Object.fromEntries(
      Object.entries(recorded.outputs).map(([name, t]) => [name, native.hostTensor(outputData[name], dtypeOf(t), t.dims)]),
    );
    session.bind(inputs, outputs);
    session.run();
    return Object.fromEntries(
      Object.entries(recorded.outputs).map(([name, t]) => [name, { ...t, data: outputData[name], dims: t.dims, type: t.type } as unknown as ort.Tensor]),
    );
  } finally {
    session.release();
  }
}

type Data = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array | Float64Array;

function dtypeOf(t: ort.Tensor): NativeDtype {
  const type = t.type as string;
  if (type === 'float32' || type === 'int64' || type === 'int32' || type === 'uint16' || type === 'uint8' || type === 'bool' || type === 'float64' || type === 'float16') return type;
  throw new RangeError(`a recorded tensor of type ${type} cannot be replayed`);
}

function copyData(t: ort.Tensor): Data {
  return (t.data as Data).slice();
}

function emptyLike(t: ort.Tensor): Data {
  const data = t.data as Data;
  return new (data.constructor as new (n: number) => Data)(data.length);
}

function copyTensors(tensors: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [name, { type: t.type, dims: [...t.dims], data: copyData(t) } as unknown as ort.Tensor]),
  );
}
