import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadGreedyOracle, repoRoot, stories260kDir } from '../testing/reference-data';

const bin = join(repoRoot(), 'libs', 'kcache', 'bin', 'kcache.js');
const kcache = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

describe('kcache CLI', () => {
  it('generate --json gives the reference tokens for an oracle prompt, in both attention modes', () => {
    const record = loadGreedyOracle()[0];
    for (const attention of [['--attention', 'full'], ['--attention', 'kcache', '--top-n', '512']]) {
      const run = kcache('generate', '--model', stories260kDir(), '--prompt', record.prompt, '--max-new-tokens', '512', ...attention, '--json');
      assert.equal(run.status, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.deepEqual(result.promptTokenIds, record.prompt_token_ids);
      assert.deepEqual(result.tokenIds, record.generated_token_ids);
      assert.equal(result.finishReason, 'eos');
      assert.equal(typeof result.text, 'string');
    }
  });

  it('errors are one clear line and a non-zero exit, never a stack trace', () => {
    const cases: Array<[string[], RegExp]> = [
      [['generate', '--model', '/no/such/model', '--prompt', 'x'], /no\/such\/model/],
      [['generate', '--model', stories260kDir(), '--prompt', 'x', '--bogus'], /bogus/],
      [['generate', '--model', stories260kDir(), '--prompt', 'x', '--max-new-tokens', '0'], /max_new_tokens/],
      [['generate', '--model', stories260kDir(), '--prompt', 'once '.repeat(600)], /longer|more than the model context/],
      [['generate', '--model', stories260kDir(), '--prompt', 'x', '--attention', 'sparse'], /attention/],
      [['nonsense'], /unknown command/],
    ];
    for (const [args, pattern] of cases) {
      const run = kcache(...args);
      assert.notEqual(run.status, 0, args.join(' '));
      assert.match(run.stderr, pattern);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('export-model writes a synthetic model in the llama2.c format that loads back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcache-export-'));
    const out = join(dir, 'tiny.bin');
    const run = kcache('export-model', '--model', 'synthetic:tiny', '--out', out, '--tokenizer-out', join(dir, 'tok512.bin'));
    assert.equal(run.status, 0, run.stderr);
    assert.ok(statSync(out).size > 28);
    const again = kcache('generate', '--model', out, '--prompt', 'hello', '--max-new-tokens', '4', '--json');
    const direct = kcache('generate', '--model', 'synthetic:tiny', '--prompt', 'hello', '--max-new-tokens', '4', '--json');
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).tokenIds, JSON.parse(direct.stdout).tokenIds);
  });

  it('convert turns stories260K into a Hugging Face folder that generates the reference tokens', () => {
    const record = loadGreedyOracle()[0];
    const dir = join(mkdtempSync(join(tmpdir(), 'kcache-convert-')), 'hf');
    const run = kcache('convert', '--from', stories260kDir(), '--to', dir);
    assert.equal(run.status, 0, run.stderr);
    const generated = kcache('generate', '--model', dir, '--prompt', record.prompt, '--max-new-tokens', '512', '--json');
    assert.equal(generated.status, 0, generated.stderr);
    assert.deepEqual(JSON.parse(generated.stdout).tokenIds, record.generated_token_ids);
    assert.notEqual(kcache('convert', '--from', stories260kDir(), '--to', dir).status, 0, 'refuses to overwrite');
  });
});
