#!/usr/bin/env node
'use strict';
// `kcache`: the engine library's commands (generate, convert, export-model, ...) plus `load`, the gRPC load
// generator of this app. The engine library speaks no gRPC, so the command that adds `load` lives here.
const cli = require('@kcache-serve/kcache/dist/cli/main');

const loadUsage =
  'usage: kcache load --target host:port [--concurrency C] [--duration S] [--prompt-len L] [--max-new-tokens M] [--json]  (kcache load --help: every flag)';
cli.registerCommand('load', (argv) => require('../dist/index.js').loadCommand(argv), loadUsage);

cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`kcache: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
