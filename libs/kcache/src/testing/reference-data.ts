import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from '../model/repo-root';

export { repoRoot };

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
