import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evalKcacheQuality, KcacheQualityResults } from './kcache-quality';

/** `npm run eval:kcache -- --quick`, in process: the JSON it writes and the invariants it must show. */
describe('eval:kcache --quick', () => {
  let dir: string;
  let results: KcacheQualityResults;
  let saved: KcacheQualityResults;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcache-quality-'));
    results = await evalKcacheQuality({ quick: true, resultsDir: dir, writeDocs: false });
    saved = JSON.parse(readFileSync(join(dir, 'kcache-quality-quick.json'), 'utf8'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the result as JSON: machine, settings, tables and the printed Markdown', () => {
    assert.equal(saved.benchmark, 'kcache-quality');
    assert.ok(!Number.isNaN(Date.parse(saved.date)));
    for (const key of ['cpuModel', 'numCores', 'memoryBytes', 'gitCommit', 'loadAverageStart', 'loadAverageEnd'] as const) assert.ok(key in saved.machine, key);
    assert.equal(saved.settings.quick, true);
    assert.equal(saved.markdown, results.markdown);
    assert.ok(saved.textSets.length >= 2 && saved.textSets.every((s) => s.numTexts === s.lengths.length && s.numTexts > 0));
    assert.ok(saved.grid.length > 0 && saved.mass.length > 0 && saved.exactness.length > 0);
    for (const row of [...saved.grid.map((r) => r.metrics), ...saved.mass.map((r) => r.metrics)]) {
      for (const value of [row.agreement, row.agreementAllRows, row.agreementMeanOfTexts]) assert.ok(value >= 0 && value <= 1);
      assert.ok(row.numPredictions > 0);
      if (row.klDivergence !== null) assert.ok(row.klDivergence >= 0);
    }
    assert.match(saved.markdown, /\| renormalise \| N \| agreement \| reference \|/);
  });

  it('reproduces the float64 reference agreement within 0.5 points', () => {
    assert.ok(saved.reference.rows.length >= 2);
    for (const row of saved.reference.rows) {
      assert.ok(Math.abs(row.agreement - row.referenceAgreement) <= 0.005, `N=${row.topN} renormalise=${row.renormalize}: ${row.agreement} vs ${row.referenceAgreement}`);
    }
  });

  it('N >= context gives agreement 1.0 and perplexity ratio 1.0', () => {
    for (const row of saved.exactness) {
      assert.equal(row.agreement, 1);
      assert.ok(Math.abs(row.perplexityRatio! - 1) < 1e-5, String(row.perplexityRatio));
    }
    const atContext = saved.grid.filter((r) => r.greedy !== null && r.topN >= saved.textSets[1].lengths[0]);
    assert.ok(atContext.length > 0);
    for (const row of atContext) {
      assert.equal(row.metrics.agreement, 1);
      assert.ok(Math.abs(row.metrics.perplexityRatio! - 1) < 1e-5);
      assert.equal(row.greedy!.fractionIdentical, 1);
    }
  });

  it('mass-threshold rows read at most the cap of V rows, and fewer than fixed N at the same cap', () => {
    const fixed = saved.mass.find((r) => r.selection === 'fixed' && r.topN === 64)!;
    for (const row of saved.mass.filter((r) => r.selection === 'mass')) {
      assert.ok(row.meanVRowsPerHead >= 1 && row.meanVRowsPerHead <= row.topN);
      assert.ok(row.meanVRowsPerHead <= fixed.meanVRowsPerHead);
      assert.ok(row.meanVRowsPerKvHead >= row.meanVRowsPerHead);
    }
  });
});
