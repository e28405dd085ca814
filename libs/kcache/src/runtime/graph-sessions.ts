import { ModelConfig } from '../model/model-config';
import { CompiledGraph, ExecutionBackend, GraphKind } from './backend/execution-backend';
import { buildDecodeGraph, DecodeArenaGroups } from './decode-graph';
import { GraphVariant } from './graph-variant';
import { placeInGroups } from './kv-arenas';
import { GraphWeights } from './layer-weights-layout';
import { buildPrefillGraph } from './prefill-graph';

type VariantGraphs = Partial<Record<GraphKind, CompiledGraph>>;

/** The compiled graphs of a runner: built on first use per graph variant and kind, compiled by the backend, kept. */
export class GraphSessions {
  private readonly graphs = new Map<string, VariantGraphs>();

  constructor(
    private readonly weights: GraphWeights,
    private readonly backend: ExecutionBackend,
    private readonly blockSize: number,
    private readonly profiling: boolean,
  ) {}

  private get config(): ModelConfig {
    return this.weights.config;
  }

  /** The graph if compiled already (the hot path: no promise). */
  cached(variant: GraphVariant, kind: GraphKind): CompiledGraph | undefined {
    return this.graphs.get(variant.key)?.[kind];
  }

  async get(variant: GraphVariant, kind: GraphKind): Promise<CompiledGraph> {
    let entry = this.graphs.get(variant.key);
    if (!entry) {
      entry = {};
      this.graphs.set(variant.key, entry);
    }
    let graph = entry[kind];
    if (!graph) {
      graph = await this.backend.compile(this.build(variant, kind), kind);
      entry[kind] = graph;
    }
    return graph;
  }

  async release(): Promise<void> {
    for (const graphs of this.graphs.values()) {
      for (const graph of Object.values(graphs)) {
        if (this.profiling) graph.endProfiling();
        await graph.release();
      }
    }
    this.graphs.clear();
  }

  private build(variant: GraphVariant, kind: GraphKind): Uint8Array {
    if (kind === 'decode' || kind === 'decodeByCopy') {
      return buildDecodeGraph(this.weights, variant, this.blockSize, {
        appendCurrentByCopy: kind === 'decodeByCopy',
        arenaGroups: this.decodeArenaGroups(),
        hostVAsHalves: this.backend.graphOptions.hostVAsHalves,
        writeKvInPlace: this.backend.graphOptions.writeKvInPlace ?? false,
        layerArenaViews: this.backend.graphOptions.layerArenaViews ?? false,
        currentRowInArena: this.backend.graphOptions.currentRowInArena ?? false,
        fusedAttention: this.backend.graphOptions.fusedAttention ?? false,
        pagedAttention: this.backend.graphOptions.pagedAttention ?? false,
      });
    }
    return buildPrefillGraph(this.weights, variant, this.blockSize, { allLogits: kind === 'score' });
  }

  /** Each layer's arena group, for the decode graph. */
  private decodeArenaGroups(): DecodeArenaGroups {
    const arenas = this.backend.arenas;
    const layers = Array.from({ length: this.config.numLayers }, (_, layer) => layer);
    return {
      k: layers.map((layer) => placeInGroups(arenas.kGroups, layer).group),
      deviceV: layers.map((layer) => placeInGroups(arenas.deviceVGroups, layer).group),
    };
  }
}
