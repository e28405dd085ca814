import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FULL_ATTENTION } from '@kcache-serve/kcache/dist/attention/attention-config';
import { loadModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { buildDecodeGraph } from '@kcache-serve/kcache/dist/runtime/decode-graph';
import { graphVariantOf } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { GraphWeights } from '@kcache-serve/kcache/dist/runtime/layer-weights-layout';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { updateMarkdownSection } from './kcache-results';
import { classifyGraphNodes } from './kcache-step-profile';
import { niceTicks } from './kcache-svg-chart';
import { benchKcacheThroughput, KcacheThroughputResults } from './kcache-throughput';

/** `npm run bench:kcache -- --quick`, in process: the JSON it writes and the memory invariants. */
describe('bench:kcache --quick', () => {
  let dir: string;
  let results: KcacheThroughputResults;
  let saved: KcacheThroughputResults;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcache-throughput-'));
    results = await benchKcacheThroughput({ quick: true, resultsDir: dir, writeDocs: false });
    saved = JSON.parse(readFileSync(join(dir, 'kcache-throughput-quick.json'), 'utf8'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the result as JSON: machine, settings, one row per model, context and mode, the printed Markdown', () => {
    assert.equal(saved.benchmark, 'kcache-throughput');
    for (const key of ['cpuModel', 'numCores', 'memoryBytes', 'gitCommit', 'loadAverageStart', 'loadAverageEnd'] as const) assert.ok(key in saved.machine, key);
    assert.equal(saved.settings.quick, true);
    assert.ok(saved.settings.models.length > 0);
    assert.equal(saved.markdown, results.markdown);
    assert.equal(saved.rows.length, 2 * saved.ratios.length);
    assert.equal(saved.unconstrained.length, saved.ratios.length);
    for (const row of saved.rows) {
      assert.ok(row.numSequences > 0 && row.tokensPerSecond > 0 && row.msPerStep > 0);
      assert.equal(row.tokensPerSecondPerRep.length, saved.settings.numReps);
      assert.ok(row.stepSplit !== null);
      for (const ms of Object.values(row.stepSplit!.kernelMs)) assert.ok(ms >= 0);
      assert.ok(row.stepSplit!.kernelMs.attention > 0 && row.stepSplit!.kernelMs.vGather > 0 && row.stepSplit!.kernelMs.projectionsMlp > 0);
      assert.equal(row.stepSplit!.kernelMs.other, 0, 'every profiled kernel maps to a node of the graph');
    }
    assert.match(saved.markdown, /\| model \| context \| admitted full \/ kcache \|/);
  });

  it('kcache keeps exactly the K bytes in the device tier, V in the host tier; full keeps both in the device tier', () => {
    for (const row of saved.rows) {
      if (row.mode === 'kcache') {
        assert.equal(row.deviceBytesPerSequence, row.kBytesPerSequence);
        assert.equal(row.hostBytesPerSequence, row.kBytesPerSequence);
      } else {
        assert.equal(row.deviceBytesPerSequence, 2 * row.kBytesPerSequence);
        assert.equal(row.hostBytesPerSequence, 0);
      }
      assert.ok(row.numSequences * row.deviceBytesPerSequence <= row.budgetBytes);
    }
    for (const ratio of saved.ratios) {
      assert.equal(ratio.deviceBytesPerTokenRatio, 0.5);
      assert.ok(ratio.admittedRatio >= 2, `kcache admits twice as many: ${ratio.admittedRatio}`);
    }
  });
});

/** The same on the native backend (what `--ep cuda` runs), on the CPU provider: each block filled once, the device tier reloaded. */
describe('bench:kcache --quick --native-backend', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcache-throughput-native-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('measures both modes at each context and reports the host-tier V bytes read per token and their rate', async () => {
    const results = await benchKcacheThroughput({ quick: true, resultsDir: dir, nativeBackend: true, contexts: [96, 160] });
    const saved: KcacheThroughputResults = JSON.parse(readFileSync(join(dir, 'kcache-throughput-quick-native-cpu.json'), 'utf8'));
    assert.equal(saved.settings.nativeBackend, true);
    assert.deepEqual(saved.ratios.map((r) => r.context), [96, 160]);
    for (const row of results.rows) {
      assert.ok(row.numSequences > 0 && row.tokensPerSecond > 0);
      if (row.mode === 'kcache') {
        // stories260K: 5 TopN layers, 8 query heads, min(64, context + 1) rows of 8 floats per token.
        assert.equal(row.hostVBytesReadPerToken, 5 * 8 * 64 * 8 * 4);
        assert.ok(row.hostVGBPerSecond > 0);
      } else {
        assert.equal(row.hostVBytesReadPerToken, 0);
      }
    }
    assert.match(results.markdown, /--native-backend \(onnxruntime's cpu execution provider through its C API/);
    assert.match(results.markdown, /Crossover \(the shortest measured context from which kcache stays at least as fast as full\): stories260K (96|160|none measured)\./);
    assert.match(results.markdown, /### Host-tier V read by KCache[\s\S]*\| stories260K \| 96 \| \d+ \| 80 \|/);
  });
});

describe('step profile classification', () => {
  it('puts V-arena gathers in vGather, TopK in attention and the projections in projectionsMlp', () => {
    const model = loadModel(stories260kDir());
    const weights = new GraphWeights(model.weights);
    for (const attention of [FULL_ATTENTION, { mode: 'kcache' as const, topN: 8, denseLayers: 1, renormalize: false }]) {
      for (const appendCurrentByCopy of [false, true]) {
        const variant = graphVariantOf(attention, model.weights.config.numLayers);
        const categories = classifyGraphNodes(buildDecodeGraph(weights, variant, 16, { appendCurrentByCopy }));
        const byOp = (op: string) => [...categories.entries()].filter(([name]) => name.startsWith(`n_${op}_`)).map(([, c]) => c);
        assert.ok(byOp('TopK').every((c) => c === 'attention'));
        assert.ok(byOp('Softmax').every((c) => c === 'attention'));
        assert.ok(byOp('SkipSimplifiedLayerNormalization').every((c) => c === 'projectionsMlp'));
        const counts = { projectionsMlp: 0, attention: 0, vGather: 0, other: 0 };
        for (const c of categories.values()) counts[c]++;
        assert.ok(counts.vGather >= model.weights.config.numLayers, JSON.stringify(counts));
      }
    }
  });
});

describe('report helpers', () => {
  it('updateMarkdownSection replaces one section and keeps the others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcache-doc-'));
    const path = join(dir, 'benchmarks.md');
    writeFileSync(path, '# Benchmarks\n\n## Engine\n\nengine text\n\n## KCache vs full\n\nold\n\n### sub\n\nold sub\n\n## Serving\n\nserving text\n');
    updateMarkdownSection(path, 'KCache vs full', 'new body');
    updateMarkdownSection(path, 'Quality', 'quality body');
    assert.equal(readFileSync(path, 'utf8'), '# Benchmarks\n\n## Engine\n\nengine text\n\n## KCache vs full\n\nnew body\n\n## Serving\n\nserving text\n\n## Quality\n\nquality body\n');
    rmSync(dir, { recursive: true, force: true });
  });

  it('niceTicks covers the range with round steps', () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    const ticks = niceTicks(0.93, 1);
    assert.ok(ticks[0] <= 0.93 && ticks[ticks.length - 1] >= 1);
  });
});
