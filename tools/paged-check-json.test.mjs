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

  it('reads the timing rows of V spread over layer arenas, in huge pages and with flat scores; step-row and SwiGlu lines count as comparisons', () => {
    const log = [
      'device 0: NVIDIA H200, 132 SMs, compute 9.0',
      'PASS step rows    d64  g1 B5 H3 writes k2 v1 v=host  max|cuda-cpu| 0',
      'PASS swiglu       rows 32 hidden 2048  max|cuda-cpu| (relative) 1.2e-07',
      'PASS top64         d64  g1 bs16 B8  H12 ctx8192  mask=full v=host x12      140.3 us    202.90 MB   1446.6 GB/s  (K 201.33 MB, V 1.57 MB, 2139 calls, max|cuda-cpu| 1.23e-08)',
      'PASS top64         d64  g1 bs16 B8  H12 ctx8192  mask=full v=host-thp x12      120.0 us    202.90 MB   1690.8 GB/s  (K 201.33 MB, V 1.57 MB, 2139 calls, max|cuda-cpu| 1.23e-08)',
      'PASS top64         d64  g1 bs16 B8  H12 ctx8192  mask=full v=host flat    150.0 us    202.90 MB   1352.7 GB/s  (K 201.33 MB, V 1.57 MB, 2139 calls, max|cuda-cpu| 1.23e-08)',
      'OK: 0 of 5 comparisons failed',
      '',
    ].join('\n');
    const { status, json } = convert(log);
    assert.equal(status, 0);
    assert.deepEqual(json.timing.map((t) => [t.vIn, t.usPerCall]), [['host x12', 140.3], ['host-thp x12', 120], ['host flat', 150]]);
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
