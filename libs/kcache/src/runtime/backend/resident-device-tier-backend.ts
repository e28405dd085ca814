import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../../model/model-config';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { compactBlocks } from '../compact-past';
import { providerError } from '../execution-provider';
import { IO } from '../graph-io';
import { GraphVariant, hasDenseLayer } from '../graph-variant';
import { KvArenas } from '../kv-arenas';
import { int64Tensor, Int64Builder } from '../row-tables';
import { DeviceArenaMirror } from './device-arena-mirror';
import { BackendGraphOptions, CompiledGraph, DecodeLogits, ExecutionBackend, GraphInputs, GraphKind, PrefillChunk } from './execution-backend';
import { KvWriteBack, KvWriteTarget, NewKvRows, packedNewKv, separateNewKv } from './kv-write-back';
import { asGraphSession, compileOrtNodeGraph, OrtNodeSessionSettings } from './ort-node-graph';

/**
 * The device tier (K, exact layers' V) kept in the provider's memory between steps
 * (DeviceArenaMirror, made at the first run that needs it); TopN layers' host-tier V gathered on the
 * host (decode reads it as uint16 halves, see buildDecodeGraph's hostVAsHalves); prefill fed only its
 * own sequence's past. The host arenas stay the source of truth. The default for GPU providers through
 * onnxruntime-node; on the CPU provider (tests) the copy is a second host buffer, so a missed row shows.
 */
export class ResidentDeviceTierBackend implements ExecutionBackend {
  readonly graphOptions: BackendGraphOptions = { hostVAsHalves: true };
  readonly hasResidentDeviceTier = true;
  private readonly writeBack: KvWriteBack;
  private mirror: Promise<DeviceArenaMirror> | null = null;
  private createdMirror: DeviceArenaMirror | null = null;
  /** The TopN layers' host-V arenas as uint16 halves (the same bytes), per variant. */
  private readonly hostVInputs = new Map<string, GraphInputs>();

  constructor(
    private readonly config: ModelConfig,
    readonly arenas: KvArenas,
    private readonly settings: OrtNodeSessionSettings,
    isHostVBlockReadOnly?: (blockId: number) => boolean,
  ) {
    this.writeBack = new KvWriteBack(arenas, isHostVBlockReadOnly);
  }

  get provider(): OrtNodeSessionSettings['provider'] {
    return this.settings.provider;
  }

  compile(graph: Uint8Array, kind: GraphKind): Promise<CompiledGraph> {
    return compileOrtNodeGraph(graph, kind, this.settings);
  }

  async runDecode(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, rows: readonly KvWriteTarget[]): Promise<DecodeLogits> {
    const session = asGraphSession(graph);
    const mirror = await this.deviceMirror();
    await mirror.flush();
    mirror.addFeeds(inputs, hasDenseLayer(variant));
    Object.assign(inputs, this.hostVInputsOf(variant));
    const results = await session.run(inputs);
    const packed = results[IO.logitsAndKv].data as Float32Array; // [batch, packedRowWidth]
    const newKv = packedNewKv(packed, this.config, this.arenas.headDim);
    for (let b = 0; b < rows.length; b++) this.write(mirror, newKv, variant, rows[b].blocks, rows[b].position, b);
    return { logits: packed, rowStride: newKv.rowStride };
  }

  async runPrefill(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, chunk: PrefillChunk): Promise<Float32Array> {
    this.addCompactPast(inputs, variant, chunk.blocks, chunk.numPastBlocks);
    const results = await asGraphSession(graph).run(inputs);
    const newKv = separateNewKv(results[IO.newK].data as Float32Array, results[IO.newV].data as Float32Array, this.config, this.arenas.headDim);
    const mirror = await this.deviceMirror();
    for (let i = 0; i < chunk.numRows; i++) this.write(mirror, newKv, variant, chunk.blocks, chunk.startPosition + i, i);
    return results[IO.logits].data as Float32Array;
  }

  async runScore(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant): Promise<Float32Array> {
    this.addCompactPast(inputs, variant, NO_BLOCKS, 0);
    const results = await asGraphSession(graph).run(inputs);
    return results[IO.logits].data as Float32Array;
  }

  cachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    // Before the copy exists there is nothing to update: it is made from the host arenas.
    const mirror = this.createdMirror;
    if (!mirror) return;
    for (let position = from; position < to; position++) mirror.recordPosition(blocks, variant.isDenseLayer, position);
  }

  async reload(): Promise<void> {
    if (this.mirror) await (await this.mirror).reload();
  }

  async release(): Promise<void> {
    if (this.mirror) await (await this.mirror.catch(() => null))?.release();
    this.mirror = null;
    this.createdMirror = null;
    this.hostVInputs.clear();
  }

  private write(mirror: DeviceArenaMirror, newKv: NewKvRows, variant: GraphVariant, blocks: SequenceBlocks, position: number, row: number): void {
    this.writeBack.write(newKv, variant, blocks, position, row);
    mirror.recordPosition(blocks, variant.isDenseLayer, position);
  }

  private deviceMirror(): Promise<DeviceArenaMirror> {
    if (!this.mirror) {
      const provider = this.settings.provider;
      this.mirror = DeviceArenaMirror.create(this.arenas, provider, this.settings.numThreads)
        .then((mirror) => (this.createdMirror = mirror))
        .catch((error) => {
          this.mirror = null;
          throw providerError(provider, error);
        });
    }
    return this.mirror;
  }

  private hostVInputsOf(variant: GraphVariant): GraphInputs {
    let inputs = this.hostVInputs.get(variant.key);
    if (!inputs) {
      const d = this.arenas.headDim;
      const halvesView = (arena: Float32Array) => new ort.Tensor('uint16', new Uint16Array(arena.buffer, arena.byteOffset, 2 * arena.length), [arena.length / d, 2 * d]);
      inputs = {};
      for (let layer = 0; layer < variant.isDenseLayer.length; layer++) if (!variant.isDenseLayer[layer]) inputs[IO.vArena(layer)] = halvesView(this.arenas.hostV[layer]);
      this.hostVInputs.set(variant.key, inputs);
    }
    return inputs;
  }

  /**
   * Prefill's past as compact copies of the sequence's own blocks (compactBlocks), with block tables
   * 0..numBlocks-1, instead of the whole arenas.
   */
  private addCompactPast(inputs: GraphInputs, variant: GraphVariant, blocks: SequenceBlocks, numBlocks: number): void {
    const a = this.arenas;
    const slice = a.blockSize * a.headDim;
    const floatsPerBlock = a.rowsPerBlock * a.headDim;
    const identity = new Int64Builder(numBlocks);
    for (let i = 0; i < numBlocks; i++) identity.set(i, i);
    for (const name of [IO.kBlocks, IO.vBlocksDevice, IO.vBlocksHost]) if (inputs[name]) inputs[name] = int64Tensor(identity, [numBlocks]);
    const compact = (arena: Float32Array, ids: readonly number[]) => {
      const values = compactBlocks(arena, ids, numBlocks, floatsPerBlock);
      return new ort.Tensor('float32', values, [values.length / slice, slice]);
    };
    variant.isDenseLayer.forEach((dense, layer) => {
      inputs[IO.kArena(layer)] = compact(a.k[layer], blocks.kBlockIds);
      inputs[IO.vArena(layer)] = dense ? compact(a.deviceV[layer], blocks.deviceVBlockIds) : compact(a.hostV[layer], blocks.hostVBlockIds);
    });
  }
}

const NO_BLOCKS: SequenceBlocks = { kBlockIds: [], deviceVBlockIds: [], hostVBlockIds: [] };
