import { writeFileSync } from 'node:fs';
import { formatSoakReport, runSoak } from './soak-run';
import { parseSoakOptions, SOAK_USAGE, SoakUsageError } from './soak-options';

/**
 * `npm run soak -- --duration 10m`: runs the soak (soak-run.ts) and prints its report.
 * Exit: 0 when no outcome was unexpected, no token was lost or repeated, nothing crashed, the gateway's
 * RSS grew at most --max-rss-growth percent and Redis holds no more keys than after the warm-up (give or
 * take the requests in flight); 1 otherwise; 2 for bad arguments.
 */
async function main(): Promise<number> {
  let options;
  try {
    options = parseSoakOptions(process.argv.slice(2));
  } catch (error) {
    const isUsage = error instanceof SoakUsageError || String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    if (!isUsage) throw error;
    process.stderr.write(`soak: ${(error as Error).message}\n${SOAK_USAGE}\n`);
    return 2;
  }
  const report = await runSoak(options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${formatSoakReport(report)}\n`);
  if (options.reportPath !== undefined) writeFileSync(options.reportPath, `${JSON.stringify({ options, report }, null, 2)}\n`);
  // The gateway lives through the whole run and holds every client's state: its RSS is the leak signal.
  // Workers are restarted every --restart-every, so their figures are mostly warm-up; Redis is judged by
  // what it holds (its RSS also grows while BullMQ's event stream fills up to its cap).
  const gateway = report.rss.find((r) => r.process === 'gateway');
  const isRssOver = gateway?.growthPercent !== null && gateway?.growthPercent !== undefined && gateway.growthPercent > options.maxRssGrowthPercent;
  if (isRssOver) process.stderr.write(`soak: gateway RSS grew ${gateway.growthPercent}% (limit ${options.maxRssGrowthPercent}%)\n`);
  const [start, end] = [report.redisData.find((d) => d.at === 'start'), report.redisData.find((d) => d.at === 'end')];
  const isRedisLeaking = start !== undefined && end !== undefined && end.numKeys > start.numKeys + 2 * options.numClients;
  if (isRedisLeaking) process.stderr.write(`soak: Redis keys grew from ${start.numKeys} to ${end.numKeys}\n`);
  const isClean = report.numUnexpected === 0 && report.numLostTokens === 0 && report.numDuplicatedTokens === 0 && report.numCrashes === 0;
  return isClean && !isRssOver && !isRedisLeaking ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
