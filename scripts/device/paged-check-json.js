#!/usr/bin/env node
'use strict';
/**
 * The PagedDecodeAttention kernel check's printout (kcache_paged_attention_check, run-cuda.sh stage paged-check)
 * as result JSON: the card, every comparison's outcome, and the timing rows.
 *   node scripts/device/paged-check-json.js <paged-check.log> <out.json>
 * The commit comes from KCACHE_COMMIT (the bundle's), when set. Exits 1 when the log has no verdict line.
 */
const fs = require('node:fs');

const [logPath, outPath] = process.argv.slice(2);
const lines = fs.readFileSync(logPath, 'utf8').split('\n');
const device = lines.find((l) => l.startsWith('device '));
const verdict = lines.find((l) => /^(OK|FAILED): \d+ of \d+ comparisons failed/.test(l));
if (!verdict) {
  process.stderr.write(`paged-check-json: ${logPath} has no verdict line (the check did not finish)\n`);
  process.exit(1);
}
const [, failed, total] = verdict.match(/(\d+) of (\d+)/);
const comparisons = lines.filter((l) => /^(PASS|FAIL) /.test(l));
const timing = [];
for (const line of comparisons) {
  // v= is where V lies, then the case's marks: "host", "host x12" (12 layer arenas), "host-thp x12", "host flat".
  const m = line.match(/^(PASS|FAIL) (\S+)\s+d(\d+)\s+g(\d+) bs(\d+)\s+B(\d+)\s+H(\d+)\s+ctx(\d+)\s+mask=(\S+) v=(.+?)\s+([\d.]+) us\s+([\d.]+) MB\s+([\d.]+) GB\/s/);
  if (!m) continue;
  timing.push({
    passed: m[1] === 'PASS', attention: m[2], headDim: +m[3], group: +m[4], blockSize: +m[5], batch: +m[6], kvHeads: +m[7],
    context: +m[8], vIn: m[10], usPerCall: +m[11], megabytesRead: +m[12], gigabytesPerSecond: +m[13],
  });
}
const result = {
  benchmark: 'paged-attention-check',
  machine: { gpu: device ? device.replace(/^device \d+: /, '') : 'unknown', commit: process.env.KCACHE_COMMIT || 'unknown' },
  comparisons: { total: +total, failed: +failed, failures: comparisons.filter((l) => l.startsWith('FAIL')) },
  timing,
};
fs.writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`paged-check-json: ${total - failed}/${total} comparisons passed, ${timing.length} timing rows → ${outPath}\n`);
