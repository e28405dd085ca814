import * as ort from 'onnxruntime-node';
import type { Binding } from 'onnxruntime-node/dist/binding';

type Results = ort.InferenceSession.OnnxValueMapType;

/**
 * A compiled graph, run either way onnxruntime-node can:
 * - direct: through the package's native binding (onnxruntime-node/dist/binding, the class that
 *   InferenceSession.run itself calls), synchronously. InferenceSession.run defers that same call to
 *   setImmediate and checks and wraps feeds and results in JavaScript; measured on stories260K that
 *   costs ~25 us per run (event-loop turns, promise hops), a tenth of a decode step.
 * - public: InferenceSession (asynchronous). Used for GPU providers, and when the binding cannot be
 *   loaded (it is not part of the package's public API; onnxruntime-node is pinned to an exact version).
 * Either way a run blocks the thread while onnxruntime computes, as onnxruntime-node's run always does;
 * a direct run also never yields to the event loop, so a loop of runs must yield itself.
 */
export class GraphSession {
  private constructor(
    private readonly direct: Binding.InferenceSession | null,
    private readonly publicSession: ort.InferenceSession | null,
    /** Every output, requested on each direct run. */
    private readonly fetches: Record<string, null>,
  ) {}

  static async create(graph: Uint8Array, options: ort.InferenceSession.SessionOptions, allowDirect: boolean): Promise<GraphSession> {
    const binding = allowDirect ? nativeBinding() : null;
    if (binding) {
      const session = new binding.InferenceSession();
      session.loadModel(graph.buffer as ArrayBuffer, graph.byteOffset, graph.byteLength, options);
      const fetches = Object.fromEntries(session.outputMetadata.map((m) => [m.name, null]));
      return new GraphSession(session, null, fetches);
    }
    return new GraphSession(null, await ort.InferenceSession.create(graph, options), {});
  }

  /** True when runs are synchronous (the native binding). */
  get isDirect(): boolean {
    return this.direct !== null;
  }

  /**
   * Every output of the graph (a direct run always computes them all). `into` names outputs to write
   * into given tensors instead of new ones (onnxruntime's pre-allocated outputs; the tensor may be a
   * feed of the same run, which an in-place kernel such as ScatterND then updates without a copy).
   */
  run(feeds: Record<string, ort.Tensor>, into?: Record<string, ort.Tensor>): Results | Promise<Results> {
    if (this.direct) return this.direct.run(feeds, into ? { ...this.fetches, ...into } : this.fetches, {}) as Results;
    return into ? this.publicSession!.run(feeds, into) : this.publicSession!.run(feeds);
  }

  endProfiling(): void {
    if (this.direct) this.direct.endProfiling();
    else this.publicSession!.endProfiling();
  }

  async release(): Promise<void> {
    if (this.direct) this.direct.dispose();
    else await this.publicSession!.release();
  }
}

let loadedBinding: typeof import('onnxruntime-node/dist/binding').binding | null | undefined;

/** onnxruntime-node's native binding, initialized as its backend initializes it; null if it cannot be loaded. */
function nativeBinding(): typeof import('onnxruntime-node/dist/binding').binding | null {
  if (loadedBinding === undefined) {
    try {
      const module = require('onnxruntime-node/dist/binding') as typeof import('onnxruntime-node/dist/binding');
      module.initOrt();
      const prototype = module.binding.InferenceSession.prototype as Partial<Binding.InferenceSession>;
      const complete = ['loadModel', 'run', 'endProfiling', 'dispose'].every((name) => typeof prototype[name as keyof Binding.InferenceSession] === 'function');
      loadedBinding = complete ? module.binding : null;
    } catch {
      loadedBinding = null;
    }
  }
  return loadedBinding;
}
