#!/usr/bin/env node
'use strict';
// The engine's own commands (generate, convert, export-model, ...). The `kcache` command users run
// (apps/loadgen/bin/kcache.js) adds `load`, which speaks gRPC and so is no part of this library.
const cli = require('../dist/cli/main.js');

cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`kcache: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
