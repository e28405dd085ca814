import type * as ort from 'onnxruntime-node';
import { ExecutionProviderName, providerError, providerSessionOptions } from '../execution-provider';
import { graphForProvider } from '../execution-provider-graph';
import { GraphSession } from '../graph-session';
import { CompiledGraph, GraphKind } from './execution-backend';

/** Session settings of the onnxruntime-node backends. */
export interface OrtNodeSessionSettings {
  readonly provider: ExecutionProviderName;
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. */
  readonly numThreads: number;
  /** Writes onnxruntime's per-node profile (JSON) with this file prefix (and the graph kind). */
  readonly profileFilePrefix?: string;
}

/**
 * A graph as an onnxruntime-node session on the provider. CPU runs go straight to the native
 * binding (synchronous, see GraphSession); GPU providers use the public API.
 */
export async function compileOrtNodeGraph(graph: Uint8Array, kind: GraphKind, settings: OrtNodeSessionSettings): Promise<GraphSession> {
  const provider = settings.provider;
  try {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: settings.numThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(settings.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: `${settings.profileFilePrefix}_${kind}` } : {}),
      ...providerSessionOptions(provider),
    };
    return await GraphSession.create(graphForProvider(graph, provider), sessionOptions, provider === 'cpu');
  } catch (error) {
    throw providerError(provider, error);
  }
}

/** A graph this backend family compiled (compileOrtNodeGraph), to run. */
export function asGraphSession(graph: CompiledGraph): GraphSession {
  if (!(graph instanceof GraphSession)) throw new TypeError('the graph was compiled by another execution backend');
  return graph;
}
