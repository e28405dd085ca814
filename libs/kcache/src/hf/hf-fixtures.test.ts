import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { emptySequenceBlocks } from '../memory/sequence-blocks';
import { loadModel } from '../formats/model-source';
import { ModelWeights } from '../model/model-weights';
import { graphVariantOf } from '../runtime/graph-variant';
import { ModelRunner } from '../runtime/model-runner';
import { argmax } from '../sampling/sampler';
import { repoRoot } from '../testing/reference-data';
import { HfTokenizer } from './hf-tokenizer';

/** What make-hf-fixtures.py recorded with transformers (see libs/kcache/scripts/make-hf-fixtures.py). */
interface Reference {
  readonly prompts: ReadonlyArray<{
    readonly prompt_token_ids: number[];
    readonly greedy_token_ids: number[];
    readonly greedy_margins: number[];
    readonly first_step_logits_f32: string;
  }>;
  readonly tokenizer_cases: ReadonlyArray<{ readonly text: string; readonly ids: number[]; readonly ids_with_special: number[] }>;
  readonly chat: { readonly messages: Array<{ role: string; content: string }>; readonly text: string; readonly ids: number[] };
}

const FIXTURES = ['llama-gqa-llama3rope-tied-f32', 'mistral-sharded-bf16', 'qwen2-bias-tied-f16'];
const RELATIVE_TOLERANCE = 1e-4;
/** Greedy steps whose top-1/top-2 margin in transformers is below this may flip under fp32 reordering. */
const NEAR_TIE = 1e-3;

export function hfFixtureDir(name: string): string {
  return join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', name);
}

function readReference(dir: string): Reference {
  return JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
}

function decodeFloats(base64: string): Float32Array {
  return new Float32Array(new Uint8Array(Buffer.from(base64, 'base64')).buffer);
}

/** max |ours - theirs| / max |theirs| over the last prompt position's logits. */
async function firstStepError(weights: ModelWeights, prompt: number[], expected: Float32Array): Promise<number> {
  const c = weights.config;
  const runner = new ModelRunner(weights, { blockSize: 16, arenaCapacity: { kIds: 1, deviceVIds: 1, hostVIds: 1 }, numThreads: 1 });
  try {
    const logits = await runner.score(prompt, graphVariantOf(FULL_ATTENTION, c.numLayers), 0, prompt.length);
    const last = logits.subarray((prompt.length - 1) * c.vocabSize);
    let maxDiff = 0;
    let maxRef = 0;
    expected.forEach((value, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(last[i] - value));
      maxRef = Math.max(maxRef, Math.abs(value));
    });
    return maxDiff / maxRef;
  } finally {
    await runner.release();
  }
}

/** Greedy with the engine's prefill and decode graphs over the paged KV cache. */
async function greedyTokens(weights: ModelWeights, prompt: number[], steps: number): Promise<number[]> {
  const c = weights.config;
  const kv = new KvCacheManager({ model: c, deviceCapacityBytes: 16 << 20, hostCapacityBytes: 16 << 20 });
  const runner = new ModelRunner(weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 });
  const variant = graphVariantOf(FULL_ATTENTION, c.numLayers);
  const seq = { blocks: emptySequenceBlocks(), attention: FULL_ATTENTION };
  kv.allocate(seq, prompt.length + steps);
  const tokens: number[] = [];
  try {
    let logits = await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, 0);
    for (let step = 0; step < steps; step++) {
      tokens.push(argmax(logits));
      if (step + 1 < steps) logits = await runner.decode([{ tokenId: tokens[step], position: prompt.length + step, blocks: seq.blocks }], variant, 0);
    }
  } finally {
    kv.free(seq);
    await runner.release();
  }
  return tokens;
}

for (const name of FIXTURES) {
  describe(`Hugging Face fixture ${name} against transformers`, () => {
    const dir = hfFixtureDir(name);
    const reference = readReference(dir);
    const model = loadModel(dir);
    const tokenizer = model.tokenizer as HfTokenizer;

    it(`first-step logits are within ${RELATIVE_TOLERANCE} relative of transformers'`, async () => {
      for (const prompt of reference.prompts) {
        const error = await firstStepError(model.weights, prompt.prompt_token_ids, decodeFloats(prompt.first_step_logits_f32));
        assert.ok(error < RELATIVE_TOLERANCE, `prompt of ${prompt.prompt_token_ids.length} tokens: relative error ${error}`);
      }
    });

    it('greedy tokens are identical to transformers', async () => {
      for (const prompt of reference.prompts) {
        const nearTie = prompt.greedy_margins.findIndex((margin) => margin < NEAR_TIE);
        const steps = nearTie < 0 ? prompt.greedy_token_ids.length : nearTie + 1;
        assert.ok(steps >= 8, 'the fixture should have few near ties');
        const tokens = await greedyTokens(model.weights, prompt.prompt_token_ids, steps);
        assert.deepEqual(tokens, prompt.greedy_token_ids.slice(0, steps));
      }
    });

    it("encodes every test string as tokenizers (Rust) encodes the fixture's tokenizer.json", () => {
      for (const testCase of reference.tokenizer_cases) {
        assert.deepEqual(tokenizer.encode(testCase.text, { bos: false }), testCase.ids, JSON.stringify(testCase.text));
        assert.deepEqual(tokenizer.encode(testCase.text), testCase.ids_with_special, JSON.stringify(testCase.text));
        assert.equal(tokenizer.decode(testCase.ids), testCase.text, JSON.stringify(testCase.text));
      }
    });

    it("renders the chat template as transformers' apply_chat_template", () => {
      assert.ok(tokenizer.chatTemplate, 'the fixture has a chat template');
      assert.equal(tokenizer.chatTemplate.render(reference.chat.messages, { addGenerationPrompt: true }), reference.chat.text);
      assert.deepEqual(tokenizer.encodeChat(reference.chat.messages, { addGenerationPrompt: true }), reference.chat.ids);
    });
  });
}

describe('the fixtures are sensitive to what they test', () => {
  it('dropping llama3 rope scaling or the q/k/v biases moves the logits far outside the tolerance', async () => {
    for (const [name, strip] of [
      ['llama-gqa-llama3rope-tied-f32', (w: ModelWeights): ModelWeights => ({ ...w, config: { ...w.config, ropeScaling: null } })],
      ['qwen2-bias-tied-f16', (w: ModelWeights): ModelWeights => ({ ...w, qkvBiases: undefined })],
    ] as const) {
      const dir = hfFixtureDir(name);
      const prompt = readReference(dir).prompts[1];
      const error = await firstStepError(strip(loadModel(dir).weights), prompt.prompt_token_ids, decodeFloats(prompt.first_step_logits_f32));
      assert.ok(error > 100 * RELATIVE_TOLERANCE, `${name}: relative error ${error} without the feature`);
    }
  });

  it('the stories260K folder our converter writes gives the oracle tokens in transformers too', () => {
    const recorded = JSON.parse(readFileSync(join(hfFixtureDir('.'), 'stories260K-transformers.json'), 'utf8')) as {
      results: Array<{ id: string; tokens_match: boolean; encode_matches: boolean }>;
    };
    assert.equal(recorded.results.length, 12);
    for (const result of recorded.results) assert.ok(result.tokens_match && result.encode_matches, result.id);
  });
});
