import { NativeSession, NativeTensor } from '../../ort-native/native-ort';
import { CompiledGraph } from './execution-backend';

/** A graph the native backend compiled: an addon session, and what its decode runs left bound. */
export class NativeGraph implements CompiledGraph {
  /** What decode runs left bound (a binding stays until replaced): a run binds only the names whose tensor changed. */
  private readonly bound = new Map<string, NativeTensor>();

  constructor(
    readonly session: NativeSession,
    private readonly profiled: boolean,
  ) {}

  /**
   * Binds what differs from the last run's tensors, then runs (decode: its tables and arenas are read in place).
   * graphId: the CUDA graph of this run's shapes (NativeSession.run).
   */
  runKeepingBindings(inputs: Record<string, NativeTensor>, outputs: Record<string, NativeTensor>, graphId?: number): void {
    const changedInputs = changed(this.bound, inputs);
    const changedOutputs = changed(this.bound, outputs, 'output:');
    if (Object.keys(changedInputs).length > 0 || Object.keys(changedOutputs).length > 0) {
      try {
        this.session.bind(changedInputs, changedOutputs);
      } catch (error) {
        // Part of it may be bound: forget every binding, so the next run binds everything again.
        this.bound.clear();
        this.session.clear();
        throw error;
      }
      for (const [name, tensor] of Object.entries(changedInputs)) this.bound.set(name, tensor);
      for (const [name, tensor] of Object.entries(changedOutputs)) this.bound.set(`output:${name}`, tensor);
    }
    this.session.run(graphId);
  }

  /** Binds everything anew (prefill: host inputs, which the provider copies when they are bound), then runs. */
  runBindingAll(inputs: Record<string, NativeTensor>, outputs: Record<string, NativeTensor>): void {
    this.bound.clear();
    this.session.clear();
    this.session.bind(inputs, outputs);
    this.session.run();
  }

  endProfiling(): void {
    if (this.profiled) this.session.endProfiling();
  }

  async release(): Promise<void> {
    this.session.release();
  }
}

/** The graph as this backend compiled it (a graph of another backend is refused). */
export function nativeGraph(graph: CompiledGraph): NativeGraph {
  if (!(graph instanceof NativeGraph)) throw new TypeError('the graph was compiled by another execution backend');
  return graph;
}

/** The entries of `next` whose tensor is not the one `bound` holds under prefix + name. */
function changed(bound: ReadonlyMap<string, NativeTensor>, next: Record<string, NativeTensor>, prefix = ''): Record<string, NativeTensor> {
  const out: Record<string, NativeTensor> = {};
  for (const [name, tensor] of Object.entries(next)) if (bound.get(prefix + name) !== tensor) out[name] = tensor;
  return out;
}
