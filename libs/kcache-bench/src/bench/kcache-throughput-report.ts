import { KcacheMachine, markdownTable } from './kcache-results';
import { ChartPanel, renderChartsSvg } from './kcache-svg-chart';
import { ModeRow, NativeBackendChoices, ThroughputRun } from './kcache-throughput-run';

/** The native backend's choices as bench:kcache flags, and what each means in the report. */
export const NATIVE_BACKEND_FLAGS: ReadonlyArray<{ readonly key: keyof NativeBackendChoices; readonly flag: string; readonly means: string }> = [
  { key: 'pagedAttention', flag: '--paged-attention', means: 'decode attention in the PagedDecodeAttention kernel' },
  { key: 'hostTierHugePages', flag: '--host-huge-pages', means: 'host V in transparent huge pages' },
  { key: 'cudaGraphs', flag: '--cuda-graphs', means: 'each decode shape a CUDA graph' },
];

export interface ThroughputSettings extends NativeBackendChoices {
  readonly quick: boolean;
  readonly topN: number;
  readonly denseLayers: number;
  readonly renormalize: boolean;
  readonly blockSize: number;
  readonly numReps: number;
  readonly maxNumSeqs: number;
  /** onnxruntime execution provider the steps ran on (absent in results from before it was recorded: cpu). */
  readonly executionProvider?: string;
  /** The steps ran through onnxruntime's C API (the native backend: arenas bound in place, rows written by the graph). */
  readonly nativeBackend?: boolean;
  /** Decode attention was the addon's PagedDecodeAttention operator. */
}

const MIB = 1024 * 1024;

/** The Markdown body of the "KCache vs full" section: what `npm run bench:kcache` prints. */
export function throughputMarkdown(run: ThroughputRun, settings: ThroughputSettings, machine: KcacheMachine, date: string, svgPath: string | null): string {
  const parts: string[] = [];
  const ep = settings.executionProvider ?? 'cpu';
  const chosen = NATIVE_BACKEND_FLAGS.filter((c) => settings[c.key]);
  const how = settings.nativeBackend
    ? ` -- --ep ${ep}${ep === 'cpu' ? ' --native-backend' : ''}${chosen.map((c) => ` ${c.flag}`).join('')} (onnxruntime's ${ep} execution provider through its C API, arenas bound in place${chosen.map((c) => `, ${c.means}`).join('')})`
    : ep !== 'cpu'
      ? ` -- --ep ${ep} (onnxruntime's ${ep} execution provider, resident device tier)`
      : '';
  const suffix = settings.nativeBackend && ep === 'cpu' ? '-native-cpu' : ep !== 'cpu' ? `-${ep}` : '';
  parts.push(
    `Measured by \`npm run bench:kcache\`${settings.quick ? ' --quick' : ''}${how} on ${date.slice(0, 10)}: ${machine.gpu ? `${machine.gpu}; ` : ''}${machine.cpuModel}, ${machine.numCores} cores, ` +
      `${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, onnxruntime ${machine.onnxruntime}, commit ${machine.gitCommit?.slice(0, 10) ?? 'unknown'}` +
      `${machine.gitDirty ? ' (with uncommitted changes)' : ''}; 1-min load average ${machine.loadAverageStart.toFixed(2)} before the run ` +
      `(${machine.loadAverageEnd.toFixed(2)} at its end, its own threads included). Raw numbers: \`bench/results/kcache-throughput${settings.quick ? '-quick' : ''}${suffix}.json\`.`,
  );
  parts.push(
    `KCache: N=${settings.topN}, ${settings.denseLayers} dense layers, ${settings.renormalize ? 'renormalised' : 'unnormalised'}; ` +
      `fp32 K/V in blocks of ${settings.blockSize} positions. Per model one device-tier budget, sized so that \`full\` holds ` +
      run.models.map((m) => `${m.numFullSequencesAtReference} sequences of ${m.referenceContext} positions (${m.model}: ${(m.budgetBytes / MIB).toFixed(1)} MiB)`).join(', ') +
      `. At each context, each mode admits as many sequences of that length as the KV cache manager allows under the budget; ` +
      `their blocks are filled with random K/V (decode cost does not depend on the values, so no prefill is run) and each ` +
      `repetition times greedy decode steps ending at the context length, both modes in alternating order, in one process. ` +
      `Medians of ${settings.numReps} repetitions. stories260K was trained to 512 positions: its longer contexts measure speed only.`,
  );

  const byteRatios = [...new Set(run.ratios.map((r) => r.deviceBytesPerTokenRatio.toFixed(2)))].join(', ');
  const at2048 = run.ratios.filter((r) => r.context === 2048).map((r) => `${r.model} ${r.throughputRatio.toFixed(2)}×`);
  parts.push(
    `**Summary.** Device-tier bytes per cached token, kcache ÷ full: ${byteRatios} (target ≤ 0.52). ` +
      (at2048.length > 0 ? `Decode throughput at a fixed budget, kcache ÷ full, at context 2048: ${at2048.join(', ')} (target ≥ 1.6; the paper reports about 1.4). ` : '') +
      `Crossover (the shortest measured context from which kcache stays at least as fast as full): ` +
      [...new Set(run.ratios.map((r) => r.model))].map((model) => `${model} ${crossoverContext(run, model) ?? 'none measured'}`).join(', ') +
      '.',
  );
  parts.push('### Throughput at a fixed device-tier budget');
  parts.push(
    markdownTable(
      ['model', 'context', 'admitted full / kcache', 'tok/s full', 'tok/s kcache', 'kcache/full', 'device B/token full / kcache', 'host B/token kcache', 'device MiB/seq full / kcache', 'host MiB/seq kcache'],
      run.ratios.map((r) => {
        const [full, kcache] = rowsOf(run, r.model, r.context);
        return [
          r.model,
          r.context,
          `${full.numSequences} / ${kcache.numSequences}`,
          full.tokensPerSecond.toFixed(1),
          kcache.tokensPerSecond.toFixed(1),
          `**${r.throughputRatio.toFixed(2)}×**`,
          `${full.deviceBytesPerToken} / ${kcache.deviceBytesPerToken} (${r.deviceBytesPerTokenRatio.toFixed(2)}×)`,
          kcache.hostBytesPerToken,
          `${(full.deviceBytesPerSequence / MIB).toFixed(2)} / ${(kcache.deviceBytesPerSequence / MIB).toFixed(2)}`,
          (kcache.hostBytesPerSequence / MIB).toFixed(2),
        ];
      }),
      [false, true, true, true, true, true, true, true, true, true],
    ),
  );
  const hostReads = run.rows.filter((r) => r.mode === 'kcache' && r.hostVBytesReadPerToken !== undefined);
  if (hostReads.length > 0) {
    parts.push('### Host-tier V read by KCache');
    parts.push('TopN V rows a decode step reads from host memory (at most min(N, context + 1) per query head and TopN layer), per generated token, and that traffic over the measured step.');
    parts.push(
      markdownTable(
        ['model', 'context', 'batch', 'KiB/token', 'GB/s'],
        hostReads.map((r) => [r.model, r.context, r.numSequences, (r.hostVBytesReadPerToken / 1024).toFixed(0), r.hostVGBPerSecond.toFixed(2)]),
        [false, true, true, true, true],
      ),
    );
  }
  if (svgPath) parts.push(`![Decode throughput vs context at a fixed device-tier budget](${svgPath})`);

  parts.push('### Same batch, no budget');
  parts.push('Both modes run full\'s admitted batch: does the smaller attention read alone make a step faster?');
  parts.push(
    markdownTable(
      ['model', 'context', 'batch', 'ms/step full', 'ms/step kcache', 'full ÷ kcache'],
      run.unconstrained.map((u) => [u.model, u.context, u.batchSize, u.fullMsPerStep.toFixed(2), u.kcacheMsPerStep.toFixed(2), `${u.speedup.toFixed(2)}×`]),
      [false, true, true, true, true, true],
    ),
  );

  const profiled = run.rows.filter((r) => r.stepSplit !== null);
  if (profiled.length > 0) {
    parts.push('### Where a decode step goes');
    parts.push(
      'onnxruntime per-node profile of a few steps at the admitted batch (a second runner over the same cache, so its times ' +
        'include profiling overhead). *V gather*: fetching V rows and the index arithmetic only it uses; *attention*: the rest of ' +
        'the attention sublayer (K gather, scores, softmax, TopN selection, weighted sum); *projections/MLP*: everything else; ' +
        '*outside kernels*: feeds, appending the new K/V to the arenas, onnxruntime overhead. ms per step.',
    );
    parts.push(
      markdownTable(
        ['model', 'context', 'mode', 'batch', 'ms/step (profiled)', 'projections/MLP', 'attention', 'of which TopN', 'V gather', 'outside kernels'],
        profiled.map((r) => {
          const s = r.stepSplit!;
          const topK = s.kernelMsByOp['attention.TopK'] ?? 0;
          return [
            r.model,
            r.context,
            r.mode,
            s.batchSize,
            s.msPerStep.toFixed(2),
            s.kernelMs.projectionsMlp.toFixed(2),
            s.kernelMs.attention.toFixed(2),
            r.mode === 'kcache' ? topK.toFixed(2) : '–',
            s.kernelMs.vGather.toFixed(2),
            (s.overheadMs + s.kernelMs.other).toFixed(2),
          ];
        }),
        [false, true, false, true, true, true, true, true, true, true],
      ),
    );
  }
  return parts.join('\n\n') + '\n';
}

/** The shortest context from which every measured ratio is >= 1, or null when the longest one is below 1. */
function crossoverContext(run: ThroughputRun, model: string): number | null {
  const ratios = run.ratios.filter((r) => r.model === model).sort((a, b) => a.context - b.context);
  let crossover: number | null = null;
  for (const r of ratios) {
    if (r.throughputRatio >= 1) crossover ??= r.context;
    else crossover = null;
  }
  return crossover;
}

function rowsOf(run: ThroughputRun, model: string, context: number): [ModeRow, ModeRow] {
  const full = run.rows.find((r) => r.model === model && r.context === context && r.mode === 'full')!;
  const kcache = run.rows.find((r) => r.model === model && r.context === context && r.mode === 'kcache')!;
  return [full, kcache];
}

/** Throughput vs context, one panel per model, both modes. */
export function throughputSvg(run: ThroughputRun, topN: number): string {
  const panels: ChartPanel[] = run.models.map((m) => {
    const rows = run.rows.filter((r) => r.model === m.model);
    const series = (mode: 'full' | 'kcache') => rows.filter((r) => r.mode === mode).map((r) => [r.context, r.tokensPerSecond] as const);
    return {
      title: `${m.model}: budget ${(m.budgetBytes / MIB).toFixed(1)} MiB`,
      xLabel: 'context (positions)',
      yLabel: 'decode tokens/s',
      isLogX: true,
      yMin: 0,
      legend: 'top-right',
      series: [
        { name: 'full', points: series('full') },
        { name: `kcache N=${topN}`, points: series('kcache') },
      ],
    };
  });
  return renderChartsSvg(panels);
}
