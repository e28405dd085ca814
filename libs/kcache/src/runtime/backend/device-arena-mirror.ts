import * as ort from 'onnxruntime-node';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { ExecutionProviderName, providerSessionOptions } from '../execution-provider';
import { GraphBuilder } from '../graph-builder';
import { IO } from '../graph-io';
import { GraphSession } from '../graph-session';
import { ArenaGroup, KvArenas, placeInGroups } from '../kv-arenas';
import { Int64Builder } from '../row-tables';

/** The device-tier arenas: K of every layer and V of the exact layers. */
type DeviceArenaKind = 'k' | 'deviceV';

/**
 * The device tier kept where the provider computes: a copy of each K and device-V arena group
 * (KvArenas.kGroups, deviceVGroups) in the provider's memory (a gpu-buffer tensor for a GPU
 * provider), fed to the decode graph as it is, so a step no longer uploads the arenas.
 *
 * The host arenas stay the source of truth (preemption, the node's host tier and prefill read them).
 * Every row written there is recorded here and, before the next decode, written into the copy
 * with one ScatterND run per group whose output is the copy itself (onnxruntime's pre-allocated
 * output: the kernel sees input and output in the same buffer and writes only the new rows).
 * Only the new rows cross: per decode step, one row per layer, KV head and sequence.
 */
export class DeviceArenaMirror {
  private readonly pending: Record<DeviceArenaKind, number[][]>;
  /** Per kind and layer: the layer's group and the group row where the layer's arena starts. */
  private readonly placement: Record<DeviceArenaKind, Array<{ group: number; firstRow: number }>>;
  private readonly numKvHeads: number;

  private constructor(
    private readonly arenas: KvArenas,
    private readonly groups: Record<DeviceArenaKind, readonly ArenaGroup[]>,
    private readonly tensors: Record<DeviceArenaKind, ort.Tensor[]>,
    private readonly scatter: GraphSession,
    private readonly copyIn: (group: ArenaGroup) => Promise<ort.Tensor>,
    private readonly sessions: readonly GraphSession[],
  ) {
    this.pending = { k: groups.k.map(() => []), deviceV: groups.deviceV.map(() => []) };
    const rowsPerLayer = { k: arenas.kIdsPerLayer * arenas.rowsPerBlock, deviceV: arenas.deviceVIdsPerLayer * arenas.rowsPerBlock };
    const place = (kind: DeviceArenaKind) =>
      arenas.k.map((_, layer) => {
        const { group, indexInGroup } = placeInGroups(groups[kind], layer);
        return { group, firstRow: indexInGroup * rowsPerLayer[kind] };
      });
    this.placement = { k: place('k'), deviceV: place('deviceV') };
    this.numKvHeads = arenas.rowsPerBlock / arenas.blockSize;
  }

  /**
   * Copies the arena groups to the provider. On the CPU provider (tests, and checking this path
   * without a GPU) the copy is a second host buffer, so a missed row shows up as a wrong result.
   */
  static async create(arenas: KvArenas, provider: ExecutionProviderName, numThreads: number): Promise<DeviceArenaMirror> {
    const base: ort.InferenceSession.SessionOptions = { intraOpNumThreads: numThreads, interOpNumThreads: 1, logSeverityLevel: 3, ...providerSessionOptions(provider) };
    const onGpu = provider !== 'cpu';
    const shape = ['slices', arenas.blockSize, arenas.headDim];
    const scatter = await GraphSession.create(scatterGraph(shape), base, !onGpu);
    const upload = onGpu ? await GraphSession.create(identityGraph(shape), { ...base, preferredOutputLocation: 'gpu-buffer' }, false) : null;
    const copyIn = async (group: ArenaGroup): Promise<ort.Tensor> => {
      const dims = [group.buffer.length / (arenas.blockSize * arenas.headDim), arenas.blockSize, arenas.headDim];
      if (!upload) return new ort.Tensor('float32', group.buffer.slice(), dims);
      const results = await upload.run({ x: new ort.Tensor('float32', group.buffer, dims) });
      return results.y as ort.Tensor;
    };
    const groups = { k: arenas.kGroups, deviceV: arenas.deviceVGroups };
    const tensors = { k: [] as ort.Tensor[], deviceV: [] as ort.Tensor[] };
    for (const kind of ['k', 'deviceV'] as const) for (const group of groups[kind]) tensors[kind].push(await copyIn(group));
    return new DeviceArenaMirror(arenas, groups, tensors, scatter, copyIn, upload ? [scatter, upload] : [scatter]);
  }

  /** The copies as the decode graph's arena-group inputs ([slices, blockSize, d]); device V only when the graph reads it. */
  addFeeds(feeds: Record<string, ort.Tensor>, withDeviceV: boolean): void {
    this.tensors.k.forEach((tensor, i) => (feeds[IO.kArenaGroup(i)] = tensor));
    if (withDeviceV) this.tensors.deviceV.forEach((tensor, i) => (feeds[IO.vArenaDeviceGroup(i)] = tensor));
  }

  /**
   * Notes that `position` of a sequence was written in the host arenas: K of every layer and device
   * V of the exact ones (isDenseLayer), every KV head.
   */
  recordPosition(blocks: SequenceBlocks, isDenseLayer: readonly boolean[], position: number): void {
    const kRow = this.arenas.rowOf(blocks.kBlockIds, position);
    const vRow = isDenseLayer.some((dense) => dense) ? this.arenas.rowOf(blocks.deviceVBlockIds, position) : 0;
    isDenseLayer.forEach((dense, layer) => {
      this.recordRow('k', layer, kRow);
      if (dense) this.recordRow('deviceV', layer, vRow);
    });
  }

  /** Row `row` (KV head 0) of one layer's arena, and the same row of the other heads. */
  private recordRow(kind: DeviceArenaKind, layer: number, row: number): void {
    const { group, firstRow } = this.placement[kind][layer];
    const rows = this.pending[kind][group];
    const blockSize = this.arenas.blockSize;
    for (let h = 0, first = firstRow + row; h < this.numKvHeads; h++) rows.push(first + h * blockSize);
  }

  /** Writes every recorded row into the copy (one run per group with rows). */
  async flush(): Promise<void> {
    const d = this.arenas.headDim;
    const blockSize = this.arenas.blockSize;
    for (const kind of ['k', 'deviceV'] as const) {
      for (let group = 0; group < this.groups[kind].length; group++) {
        const rows = this.pending[kind][group];
        if (rows.length === 0) continue;
        const source = this.groups[kind][group].buffer;
        const index = new Int64Builder(2 * rows.length);
        const values = new Float32Array(rows.length * d);
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i];
          index.set(2 * i, Math.floor(row / blockSize));
          index.set(2 * i + 1, row % blockSize);
          values.set(source.subarray(row * d, (row + 1) * d), i * d);
        }
        this.pending[kind][group] = [];
        const target = this.tensors[kind][group];
        try {
          await this.scatter.run(
            { arena: target, rows: new ort.Tensor('int64', index.values, [rows.length, 2]), values: new ort.Tensor('float32', values, [rows.length, d]) },
            { next: target },
          );
        } catch (error) {
          // Not written: the rows stay pending (ahead of any recorded meanwhile), for the next flush.
          this.pending[kind][group] = rows.concat(this.pending[kind][group]);
          throw error;
        }
      }
    }
  }

  /** Copies every group again (after the host arenas were written wholesale, e.g. by a benchmark). */
  async reload(): Promise<void> {
    for (const kind of ['k', 'deviceV'] as const) {
      for (let group = 0; group < this.groups[kind].length; group++) {
        const old = this.tensors[kind][group];
        this.tensors[kind][group] = await this.copyIn(this.groups[kind][group]);
        if (old.location === 'gpu-buffer') old.dispose();
        this.pending[kind][group] = [];
      }
    }
  }

  async release(): Promise<void> {
    for (const kind of ['k', 'deviceV'] as const) for (const t of this.tensors[kind]) if (t.location === 'gpu-buffer') t.dispose();
    for (const session of this.sessions) await session.release();
  }
}

/** arena [slices, blockSize, d] with rows [m, 2] (slice, position in block) set to values [m, d]. */
function scatterGraph(shape: Array<string | number>): Uint8Array {
  const g = new GraphBuilder('arena_scatter');
  const arena = g.input('arena', 'float32', shape);
  const rows = g.input('rows', 'int64', ['m', 2]);
  const values = g.input('values', 'float32', ['m', shape[2]]);
  g.output(g.op('ScatterND', [arena, rows, values]), 'next', 'float32', shape);
  return g.toBytes();
}

function identityGraph(shape: Array<string | number>): Uint8Array {
  const g = new GraphBuilder('arena_upload');
  g.output(g.op('Identity', [g.input('x', 'float32', shape)]), 'y', 'float32', shape);
  return g.toBytes();
}
