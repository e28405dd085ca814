import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The repository root: the nearest folder above this file whose package.json is the workspace root. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'kcache-serve') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('kcache-serve repository root not found above ' + __dirname);
    dir = parent;
  }
}

/** Reference data beside the checkout (`../shared`), or KCACHE_SHARED_DIR. Tests only. */
export function sharedDir(): string {
  return process.env.KCACHE_SHARED_DIR ?? resolve(repoRoot(), '..', 'shared');
}

export function stories260kDir(): string {
  return join(sharedDir(), 'models', 'stories260K');
}

export interface OracleStep {
  readonly pos: number;
  readonly token: number;
  readonly top5: ReadonlyArray<readonly [number, number]>;
}

export interface OracleRecord {
  readonly id: string;
  readonly prompt: string;
  readonly prompt_token_ids: readonly number[];
  readonly generated_token_ids: readonly number[];
  readonly generated_text: string;
  readonly stop_reason: 'bos' | 'seq_len';
  readonly final_pos: number;
  readonly near_ties: readonly number[];
  readonly steps: readonly OracleStep[];
  readonly prefill_steps: readonly OracleStep[];
}

export function loadGreedyOracle(): readonly OracleRecord[] {
  const file = join(sharedDir(), 'oracle', 'stories260K-greedy.json');
  return JSON.parse(readFileSync(file, 'utf8')).prompts as OracleRecord[];
}
