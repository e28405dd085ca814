import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { benchmarksDocPath, currentLoadAverage, defaultResultsDir, describeKcacheMachine, KcacheMachine, updateMarkdownSection, writeJsonResult } from '../bench/kcache-results';
import { loadModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { loadGreedyOracle, stories260kDir } from '@kcache-serve/kcache/testing';
import { QualityPlan, QualityRun, runQualityEval } from './quality-eval';
import { qualityMarkdown, qualitySvg } from './quality-report';
import { flagValue } from '../bench/flag-value';

/**
 * `npm run eval:kcache [-- --quick] [-- --no-docs] [-- --out DIR]`: quality of KCache against full
 * attention (see quality-eval.ts). Prints a Markdown report, writes
 * bench/results/kcache-quality[-quick].json and, for a full run, the "Quality" section of
 * docs/benchmarks.md and docs/img/kcache-quality.svg.
 */
export interface KcacheQualityOptions {
  readonly quick: boolean;
  readonly resultsDir?: string;
  /** Default: true unless quick. */
  readonly writeDocs?: boolean;
  readonly log?: (line: string) => void;
}

export interface KcacheQualityResults extends QualityRun {
  readonly benchmark: 'kcache-quality';
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: KcacheMachine;
  readonly settings: { readonly quick: boolean; readonly plan: unknown };
  readonly markdown: string;
}

export const QUALITY_SECTION_TITLE = 'Quality';
const SVG_NAME = 'kcache-quality.svg';

export function qualityPlan(quick: boolean): QualityPlan {
  if (quick) {
    return {
      reference: { numTexts: 4, minLength: 200, maxLength: 512, topNs: [8, 64] },
      stories: {
        textLength: 128,
        maxTexts: 2,
        grid: { topNs: [8, 128], denseLayers: [0, 1], renormalize: [false, true] },
        greedy: { numPrompts: 2, promptLength: 64, maxNewTokens: 32 },
        mass: { cap: 64, taus: [0.9], fixedTopNs: [64], renormalize: [false] },
      },
      synthetic: { name: 'stories260k-shape (synthetic)', model: () => loadModel('synthetic:stories260k-shape'), numTexts: 1, textLength: 64, grid: { topNs: [8, 64], denseLayers: [0], renormalize: [false] }, numThreads: 1 },
    };
  }
  return {
    reference: { numTexts: 4, minLength: 200, maxLength: 512, topNs: [8, 16, 32, 64] },
    stories: {
      textLength: 512,
      maxTexts: 8,
      grid: { topNs: [8, 16, 32, 64, 128], denseLayers: [0, 1, 2], renormalize: [false, true] },
      greedy: { numPrompts: 8, promptLength: 256, maxNewTokens: 256 },
      mass: { cap: 64, taus: [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999], fixedTopNs: [8, 16, 32, 64], renormalize: [false, true] },
    },
    synthetic: { name: 'llama-110m (synthetic)', model: () => loadModel('synthetic:llama-110m'), numTexts: 3, textLength: 512, grid: { topNs: [8, 16, 32, 64, 128], denseLayers: [0, 1, 2], renormalize: [false, true] }, numThreads: 0 },
  };
}

export async function evalKcacheQuality(options: KcacheQualityOptions): Promise<KcacheQualityResults> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const machine = describeKcacheMachine();
  const date = new Date().toISOString();
  const plan = qualityPlan(options.quick);
  const storiesDir = stories260kDir();
  const run = await runQualityEval(plan, loadModel(storiesDir), loadGreedyOracle(), storiesDir, log);
  machine.loadAverageEnd = currentLoadAverage();

  const writeDocs = options.writeDocs ?? !options.quick;
  const docPath = benchmarksDocPath();
  const svgPath = join(dirname(docPath), 'img', SVG_NAME);
  const markdown = qualityMarkdown(run, machine, date, options.quick, writeDocs ? relative(dirname(docPath), svgPath) : null);
  const { synthetic, ...rest } = plan;
  const results: KcacheQualityResults = {
    benchmark: 'kcache-quality',
    date,
    durationSeconds: (performance.now() - started) / 1000,
    machine,
    settings: { quick: options.quick, plan: { ...rest, synthetic: synthetic && { ...synthetic, model: undefined } } },
    ...run,
    markdown,
  };
  writeJsonResult(options.resultsDir ?? defaultResultsDir(), options.quick ? 'kcache-quality-quick' : 'kcache-quality', results);
  if (writeDocs) {
    mkdirSync(dirname(svgPath), { recursive: true });
    writeFileSync(svgPath, qualitySvg(run));
    updateMarkdownSection(docPath, QUALITY_SECTION_TITLE, markdown);
  }
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const results = await evalKcacheQuality({
    quick: args.includes('--quick'),
    resultsDir: flagValue(args, '--out'),
    writeDocs: args.includes('--no-docs') ? false : undefined,
    log: (line) => process.stderr.write(`  ${line}\n`),
  });
  process.stdout.write(results.markdown);
  process.stderr.write(`eval:kcache done in ${results.durationSeconds.toFixed(0)} s\n`);
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`eval:kcache failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
