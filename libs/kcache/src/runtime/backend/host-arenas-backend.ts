import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../../model/model-config';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { IO } from '../graph-io';
import { GraphVariant, hasDenseLayer } from '../graph-variant';
import { KvArenas } from '../kv-arenas';
import { BackendGraphOptions, CompiledGraph, DecodeLogits, ExecutionBackend, GraphInputs, GraphKind, PrefillChunk } from './execution-backend';
import { KvWriteBack, KvWriteTarget, packedNewKv, separateNewKv } from './kv-write-back';
import { asGraphSession, compileOrtNodeGraph, OrtNodeSessionSettings } from './ort-node-graph';

/**
 * The cpu backend, the plain fast path: the arenas are JavaScript memory that onnxruntime's CPU
 * provider reads in place (each arena wrapped once as an input tensor, nothing copied), and new K/V
 * rows are copied into them after each run. (On a GPU provider onnxruntime would upload every arena
 * each run: ResidentDeviceTierBackend is the one for those.)
 */
export class HostArenasBackend implements ExecutionBackend {
  readonly graphOptions: BackendGraphOptions = { hostVAsHalves: false };
  readonly hasResidentDeviceTier = false;
  /** The arenas as input tensors, per variant and graph kind. */
  private readonly arenaInputs = new Map<string, GraphInputs>();
  private readonly writeBack: KvWriteBack;

  constructor(
    private readonly config: ModelConfig,
    readonly arenas: KvArenas,
    private readonly settings: OrtNodeSessionSettings,
    isHostVBlockReadOnly?: (blockId: number) => boolean,
  ) {
    this.writeBack = new KvWriteBack(arenas, isHostVBlockReadOnly);
  }

  compile(graph: Uint8Array, kind: GraphKind): Promise<CompiledGraph> {
    return compileOrtNodeGraph(graph, kind, this.settings);
  }

  get provider(): OrtNodeSessionSettings['provider'] {
    return this.settings.provider;
  }

  runDecode(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, rows: readonly KvWriteTarget[]): DecodeLogits | Promise<DecodeLogits> {
    Object.assign(inputs, this.arenaInputsOf(variant, 'decode'));
    const results = asGraphSession(graph).run(inputs);
    return results instanceof Promise ? results.then((r) => this.writeDecodeRows(r, variant, rows)) : this.writeDecodeRows(results, variant, rows);
  }

  private writeDecodeRows(results: ort.InferenceSession.OnnxValueMapType, variant: GraphVariant, rows: readonly KvWriteTarget[]): DecodeLogits {
    const packed = results[IO.logitsAndKv].data as Float32Array; // [batch, packedRowWidth]
    const newKv = packedNewKv(packed, this.config, this.arenas.headDim);
    for (let b = 0; b < rows.length; b++) this.writeBack.write(newKv, variant, rows[b].blocks, rows[b].position, b);
    return { logits: packed, rowStride: newKv.rowStride };
  }

  async runPrefill(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, chunk: PrefillChunk): Promise<Float32Array> {
    Object.assign(inputs, this.arenaInputsOf(variant, 'prefill'));
    const results = await asGraphSession(graph).run(inputs);
    const newKv = separateNewKv(results[IO.newK].data as Float32Array, results[IO.newV].data as Float32Array, this.config, this.arenas.headDim);
    for (let i = 0; i < chunk.numRows; i++) this.writeBack.write(newKv, variant, chunk.blocks, chunk.startPosition + i, i);
    return results[IO.logits].data as Float32Array;
  }

  async runScore(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant): Promise<Float32Array> {
    Object.assign(inputs, this.arenaInputsOf(variant, 'score'));
    const results = await asGraphSession(graph).run(inputs);
    return results[IO.logits].data as Float32Array;
  }

  cachedRowsWritten(_blocks: SequenceBlocks, _variant: GraphVariant, _from: number, _to: number): void {
    // The graphs read the host arenas themselves.
  }

  async reload(): Promise<void> {
    // Nothing is copied anywhere.
  }

  async release(): Promise<void> {
    this.arenaInputs.clear();
  }

  /**
   * The arenas as input tensors (wrapping them; nothing is copied), cached per graph. Prefill's
   * arenas are viewed as [numIds · Hkv, blockSize · d]; decode reads K and device V by arena group
   * (one input per buffer of several layers) as [slices, blockSize, d], and the TopN V as rows [·, d].
   */
  private arenaInputsOf(variant: GraphVariant, kind: 'decode' | 'prefill' | 'score'): GraphInputs {
    const key = `${variant.key}/${kind}`;
    let tensors = this.arenaInputs.get(key);
    if (!tensors) {
      const a = this.arenas;
      const d = a.headDim;
      const slice = a.blockSize * d;
      const view = (arena: Float32Array, width: number) => new ort.Tensor('float32', arena, [arena.length / width, width]);
      const blocksView = (arena: Float32Array) => new ort.Tensor('float32', arena, [arena.length / slice, a.blockSize, d]);
      const inputs: GraphInputs = {};
      if (kind === 'decode') {
        a.kGroups.forEach((group, i) => (inputs[IO.kArenaGroup(i)] = blocksView(group.buffer)));
        if (hasDenseLayer(variant)) a.deviceVGroups.forEach((group, i) => (inputs[IO.vArenaDeviceGroup(i)] = blocksView(group.buffer)));
        variant.isDenseLayer.forEach((dense, layer) => {
          if (!dense) inputs[IO.vArena(layer)] = view(a.hostV[layer], d);
        });
      } else {
        variant.isDenseLayer.forEach((dense, layer) => {
          inputs[IO.kArena(layer)] = view(a.k[layer], slice);
          inputs[IO.vArena(layer)] = view(dense ? a.deviceV[layer] : a.hostV[layer], slice);
        });
      }
      tensors = inputs;
      this.arenaInputs.set(key, tensors);
    }
    return tensors;
  }
}
