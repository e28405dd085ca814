import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@kcache-serve/kcache/testing';
import { describeMachine } from './machine-info';

/** Writes `bench/results/<name>.json` with the machine and commit beside the rows; returns the path. */
export function saveBenchResults(name: string, settings: object, rows: readonly object[]): string {
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  const body = { benchmark: name, date: new Date().toISOString(), machine: describeMachine(), settings, rows };
  writeFileSync(path, JSON.stringify(body, null, 2) + '\n');
  return path;
}

/** A plain-text table: one header row, aligned columns. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: readonly string[]) => r.map((cell, c) => cell.padStart(widths[c])).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
