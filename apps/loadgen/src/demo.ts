#!/usr/bin/env node
// Entry of the quick-start demo client: `node apps/loadgen/dist/demo.js --help`.
import { demoCommand } from './demo/demo-command';

demoCommand(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
