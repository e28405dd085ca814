import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

// scripts/device/paged-check-json.js: the kernel check's printout (run-cuda.sh stage paged-check) as result JSON.
const script = join(import.meta.dirname, '..', 'scripts', 'device', 'paged-check-json.js');
const recorded = join(import.meta.dirname, '..', 'bench', 'results', 'paged-attention-check-h100.log');

function convert(log) {
  const dir = mkdtempSync(join(tmpdir(), 'paged-check-json-'));
  try {
    writeFileSync(join(dir, 'check.log'), log);
    const run = spawnSync(process.execPath, [script, join(dir, 'check.log'), join(dir, 'out.json')], { encoding: 'utf8', env: { ...process.env, KCACHE_COMMIT: 'abc1234' } });
    return { status: run.status, stderr: run.stderr, json: run.status === 0 ? JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('paged-check-json: the PagedDecodeAttention check printout as result JSON', () => {
  it('reads the recorded H100 run: the card, 119 comparisons passed, the timing rows', () => {
    const { status, json } = convert(readFileSync(recorded, 'utf8'));
    assert.equal(status, 0);
    assert.match(json.machine.gpu, /^NVIDIA H100/);
    assert.equal(json.machine.commit, 'abc1234');
    assert.deepEqual(json.comparisons, { total: 119, failed: 0, failures: [] });
    assert.equal(json.timing.length, 7);
    const first = json.timing[0];
    assert.deepEqual([first.attention, first.batch, first.context, first.vIn, first.usPerCall, first.gigabytesPerSecond], ['exact', 32, 512, 'device', 46, 2190.4]);
  });

  it('keeps the failing comparisons, and refuses a log that never reached its verdict', () => {
    const failing = ['device 0: NVIDIA H200, 132 SMs, compute 9.0', 'FAIL top64         d64  g1 bs16 B8  H3  ctx512   mask=full v=device  max|cuda-cpu| 0.5  deterministic', 'FAILED: 1 of 1 comparisons failed', ''].join('\n');
    const { json } = convert(failing);
    assert.equal(json.comparisons.failed, 1);
    assert.equal(json.comparisons.failures.length, 1);
    const cut = convert('device 0: NVIDIA H200\nPASS exact ...\n');
    assert.equal(cut.status, 1);
    assert.match(cut.stderr, /no verdict line/);
  });
});
