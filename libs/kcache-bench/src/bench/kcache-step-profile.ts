import { readFileSync } from 'node:fs';
import { onnx } from 'onnx-proto';

/**
 * Where a decode step's time goes, from onnxruntime's per-node profile:
 * - vGather: fetching V rows (the arena Gather, the row-index arithmetic only it uses, and the
 *   reshapes/concats that only move the fetched rows);
 * - attention: the rest of the attention sublayer (K gather, scores, softmax, TopN, P·V);
 * - projectionsMlp: everything else (embedding, norms, rotary, QKV/Wo projections, MLP, classifier);
 * - other: kernels whose node name is not in the graph (should stay near 0).
 */
export type StepCategory = 'projectionsMlp' | 'attention' | 'vGather' | 'other';

/** Graph inputs that only the attention sublayers read. */
const NON_ATTENTION_INPUTS = new Set(['tokens', 'positions']);
const MOVE_OPS = new Set(['Reshape', 'Concat', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity']);

/**
 * Category of every node of a (serialized, unoptimized) graph built by this project, by data flow:
 * attention = nodes fed by the attention-only inputs (arenas, masks, row tables, top_n), up to the
 * output projection (a MatMul with an `l*_wo_t` weight), plus nodes whose outputs only attention uses.
 */
export function classifyGraphNodes(graphBytes: Uint8Array): Map<string, StepCategory> {
  const graph = onnx.ModelProto.decode(graphBytes).graph!;
  const nodes = graph.node!;
  const graphOutputs = new Set(graph.output!.map((o) => o.name!));
  const consumers = new Map<string, number[]>();
  nodes.forEach((node, i) => {
    for (const input of node.input!) consumers.set(input, [...(consumers.get(input) ?? []), i]);
  });
  const consumersOf = (i: number) => nodes[i].output!.flatMap((o) => consumers.get(o) ?? []);
  const feedsGraphOutput = (i: number) => nodes[i].output!.some((o) => graphOutputs.has(o));
  const isOutputProjection = (i: number) => nodes[i].opType === 'MatMul' && nodes[i].input!.some((x) => /^l\d+_wo_t$/.test(x));

  const attention = new Set<number>();
  const stack = graph.input!.map((v) => v.name!).filter((name) => !NON_ATTENTION_INPUTS.has(name)).flatMap((name) => consumers.get(name) ?? []);
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (attention.has(i) || isOutputProjection(i)) continue;
    attention.add(i);
    stack.push(...consumersOf(i));
  }
  closeBackward(nodes.length, attention, consumersOf, feedsGraphOutput);

  const vGather = new Set<number>();
  nodes.forEach((node, i) => {
    if (node.opType === 'Gather' && /^v_arena_/.test(node.input![0])) vGather.add(i);
  });
  for (let i = 0; i < nodes.length; i++) {
    // Forward: data movement of rows already fetched (nodes are in topological order).
    if (!vGather.has(i) && MOVE_OPS.has(nodes[i].opType!) && nodes[i].input!.some((x) => vGather.has(producerIndex(nodes, x)))) vGather.add(i);
  }
  closeBackward(nodes.length, vGather, consumersOf, feedsGraphOutput, attention);

  const categories = new Map<string, StepCategory>();
  nodes.forEach((node, i) => categories.set(node.name!, vGather.has(i) ? 'vGather' : attention.has(i) ? 'attention' : 'projectionsMlp'));
  return categories;
}

/** Adds to `set` every node (within `universe`, if given) whose outputs are used only by nodes of `set`. */
function closeBackward(
  numNodes: number,
  set: Set<number>,
  consumersOf: (i: number) => number[],
  feedsGraphOutput: (i: number) => boolean,
  universe?: Set<number>,
): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = numNodes - 1; i >= 0; i--) {
      if (set.has(i) || (universe && !universe.has(i)) || feedsGraphOutput(i)) continue;
      const users = consumersOf(i);
      if (users.length > 0 && users.every((u) => set.has(u))) {
        set.add(i);
        changed = true;
      }
    }
  }
}

const producerCache = new WeakMap<onnx.INodeProto[], Map<string, number>>();

function producerIndex(nodes: onnx.INodeProto[], value: string): number {
  let producers = producerCache.get(nodes);
  if (!producers) {
    producers = new Map();
    nodes.forEach((node, i) => node.output!.forEach((o) => producers!.set(o, i)));
    producerCache.set(nodes, producers);
  }
  return producers.get(value) ?? -1;
}

export interface StepProfile {
  /** Runs measured (the first runs of the file, warm-ups, are skipped). */
  readonly numRuns: number;
  /**
   * The run with the median kernel total (robust to a run slowed by other work on the machine):
   * its kernel time by category, ms.
   */
  readonly kernelMs: Readonly<Record<StepCategory, number>>;
  /** The same run by category and operator type, ms (e.g. attention.TopK). */
  readonly kernelMsByOp: Readonly<Record<string, number>>;
  /** onnxruntime's model_run time of that run, ms (its kernels plus onnxruntime's overhead). */
  readonly modelRunMs: number;
  /** Mean model_run time over the measured runs, ms. */
  readonly meanModelRunMs: number;
}

interface TraceEvent {
  readonly cat: string;
  readonly name: string;
  readonly ts: number;
  readonly dur: number;
  readonly args?: { readonly op_name?: string };
}

interface RunTotals {
  readonly modelRunUs: number;
  readonly kernelUs: Record<StepCategory, number>;
  readonly byOpUs: Record<string, number>;
  totalUs: number;
}

/** Sums an onnxruntime profile (JSON trace) by node category for each run after the first `numWarmUpRuns`. */
export function summarizeProfile(profilePath: string, categories: ReadonlyMap<string, StepCategory>, numWarmUpRuns = 1): StepProfile {
  const events = JSON.parse(readFileSync(profilePath, 'utf8')) as TraceEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const measured = runs.slice(numWarmUpRuns);
  if (measured.length === 0) throw new Error(`${profilePath}: no run after ${numWarmUpRuns} warm-up run(s)`);
  const totals: RunTotals[] = measured.map((r) => ({ modelRunUs: r.dur, kernelUs: { projectionsMlp: 0, attention: 0, vGather: 0, other: 0 }, byOpUs: {}, totalUs: 0 }));
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const run = measured.findIndex((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
    if (run < 0) continue;
    // Fused nodes keep the first node's name, followed by "/FusionName/".
    const nodeName = e.name.slice(0, -'_kernel_time'.length).split('/')[0];
    const category = categories.get(nodeName) ?? 'other';
    const t = totals[run];
    t.kernelUs[category] += e.dur;
    const opKey = `${category}.${e.args?.op_name ?? 'unknown'}`;
    t.byOpUs[opKey] = (t.byOpUs[opKey] ?? 0) + e.dur;
    t.totalUs += e.dur;
  }
  const median = [...totals].sort((a, b) => a.totalUs - b.totalUs)[Math.floor((totals.length - 1) / 2)];
  const ms = (us: number) => us / 1000;
  return {
    numRuns: measured.length,
    kernelMs: {
      projectionsMlp: ms(median.kernelUs.projectionsMlp),
      attention: ms(median.kernelUs.attention),
      vGather: ms(median.kernelUs.vGather),
      other: ms(median.kernelUs.other),
    },
    kernelMsByOp: Object.fromEntries(Object.entries(median.byOpUs).map(([op, us]) => [op, ms(us)])),
    modelRunMs: ms(median.modelRunUs),
    meanModelRunMs: ms(totals.reduce((sum, t) => sum + t.modelRunUs, 0) / totals.length),
  };
}
