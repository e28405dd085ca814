#!/usr/bin/env node
'use strict';
const cli = require('../dist/cli/main.js');

// `kcache load` lives in apps/loadgen (@kcache-serve/loadgen): it speaks gRPC, which this engine package
// must not depend on. When that workspace package is installed, its command is registered here and
// loaded only when `load` runs; without it, `kcache load` is an unknown command.
// The require is optional and run-time only: it is no build dependency of this package, so it is kept out
// of the Nx project graph (nx-ignore-next-line) and of the boundary rule (an app may never be imported).
if (isInstalled('@kcache-serve/loadgen/package.json')) {
  const loadUsage =
    'usage: kcache load --target host:port [--concurrency C] [--duration S] [--prompt-len L] [--max-new-tokens M] [--json]  (kcache load --help: every flag)';
  // eslint-disable-next-line @nx/enforce-module-boundaries -- nx-ignore-next-line: optional plugin, see above
  cli.registerCommand('load', (argv) => require('@kcache-serve/loadgen').loadCommand(argv), loadUsage);
}

cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`kcache: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

function isInstalled(request) {
  try {
    require.resolve(request);
    return true;
  } catch {
    return false;
  }
}
