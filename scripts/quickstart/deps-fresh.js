#!/usr/bin/env node
// Is node_modules what `npm ci` installs from package-lock.json? (Run from the repository root.)
//   out: exit 0 and nothing when it is; exit 1 and one line on stderr saying why not.
// Compares the lockfile with npm's own record of the installed tree (node_modules/.package-lock.json):
// every package the lockfile lists must be there at the same version and on disk, every workspace link
// too; optional packages (other platforms' binaries) may be missing.
'use strict';
const { existsSync, readFileSync } = require('node:fs');

function stale(reason) {
  process.stderr.write(`${reason}\n`);
  process.exit(1);
}

if (!existsSync('node_modules')) stale('node_modules is missing');
if (!existsSync('node_modules/.package-lock.json')) stale('node_modules has no .package-lock.json (not installed by npm 7+)');
const wanted = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages ?? {};
const installed = JSON.parse(readFileSync('node_modules/.package-lock.json', 'utf8')).packages ?? {};

for (const [path, entry] of Object.entries(wanted)) {
  if (!path.startsWith('node_modules/')) continue; // the root and the workspace folders themselves
  const have = installed[path];
  if (!have || !existsSync(path)) {
    if (entry.optional) continue;
    stale(`${path} is missing`);
  }
  if (entry.link ? have.resolved !== entry.resolved : have.version !== entry.version) {
    stale(`${path} is ${have.version ?? have.resolved}, the lockfile wants ${entry.version ?? entry.resolved}`);
  }
}
