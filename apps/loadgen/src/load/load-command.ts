import { createGenerationClient } from '../cli/gateway-client';
import { withUsage } from '../cli/parse-flags';
import { runLoad } from './closed-loop';
import { LOAD_USAGE, parseLoadArgs } from './load-options';
import { formatLoadReport, formatProgress, summarizeLoad } from './load-report';
import { ProgressLine } from './progress-line';

/**
 * `kcache load`: a closed-loop load test of a gateway over gRPC.
 *   out: the report on stdout (text, or one JSON object with --json); progress on stderr each second.
 *   exit: 0 when every request completed, 1 when some failed, 2 on a usage error.
 * Ctrl-C ends the run early (requests in flight finish and are reported); a second one exits at once.
 */
export function loadCommand(argv: string[]): Promise<number> {
  return withUsage('kcache load', LOAD_USAGE, async () => {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(LOAD_USAGE + '\n');
      return 0;
    }
    const options = parseLoadArgs(argv);
    const client = createGenerationClient(options);
    const progress = new ProgressLine(process.stderr);
    const stop = new AbortController();
    const onSigint = () => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
      progress.clear();
      process.stderr.write('kcache load: stopping; waiting for the requests in flight (Ctrl-C again to quit now)\n');
    };
    process.on('SIGINT', onSigint);
    try {
      const samples = await runLoad(client, options, {
        signal: stop.signal,
        onProgress: options.isQuiet ? undefined : (p) => progress.update(formatProgress(p, options.durationS)),
      });
      progress.clear();
      const report = summarizeLoad(options, samples);
      process.stdout.write((options.isJson ? JSON.stringify(report) : formatLoadReport(report)) + '\n');
      return report.numRequestsFailed === 0 ? 0 : 1;
    } finally {
      process.off('SIGINT', onSigint);
      client.close();
    }
  });
}
