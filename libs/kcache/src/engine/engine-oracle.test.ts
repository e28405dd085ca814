import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { loadModel, LoadedModel } from '../formats/model-source';
import { GREEDY } from '../sampling/sampling-params';
import { loadGreedyOracle, OracleRecord, stories260kDir } from '../testing/reference-data';
import { createEngine } from './create-engine';
import { generate } from './generate';
import { GenerationRequest } from './generation-request';
import { LlmEngine } from './llm-engine';

const KCACHE_512: AttentionConfig = { mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false };
const oracle = loadGreedyOracle();
let model: LoadedModel;

function greedyRequest(record: OracleRecord, attention: AttentionConfig): GenerationRequest {
  return {
    requestId: record.id,
    promptTokenIds: record.prompt_token_ids,
    maxNewTokens: 512,
    sampling: GREEDY,
    stopTokenIds: [],
    stopStrings: [],
    attention,
    priority: 0,
    logprobs: false,
  };
}

/** Tokens must equal the reference up to the first near tie (where fp32 order may flip the pick). */
function assertMatchesOracle(tokenIds: readonly number[], record: OracleRecord): void {
  const promptLength = record.prompt_token_ids.length;
  const firstTie = Math.min(...record.near_ties.map((pos) => pos - promptLength + 1), Infinity);
  const expected = record.generated_token_ids;
  if (firstTie === Infinity) {
    assert.deepEqual(tokenIds, expected, `${record.id}: generated tokens differ from the reference`);
  } else {
    assert.deepEqual(tokenIds.slice(0, firstTie), expected.slice(0, firstTie), `${record.id}: differs before its near tie`);
  }
}

async function runAll(engine: LlmEngine, attention: AttentionConfig, records: readonly OracleRecord[]) {
  return Promise.all(records.map((r) => generate(engine, greedyRequest(r, attention))));
}

/** Long oracle prompts in a device tier too small for them together: the engine preempts, and tokens stay the reference's. */
async function assertPreemptionKeepsReferenceTokens(backend: { nativeBackend?: boolean }): Promise<void> {
  for (const attention of [FULL_ATTENTION, KCACHE_512]) {
    // 5 layers · 32 floats · 4 B · 16 tokens = 10 KiB per K block: 48 blocks hold ~768 positions.
    const engine = await createEngine(
      { model: stories260kDir(), numThreads: 1, ...backend, deviceCapacityBytes: 48 * 10240 * (attention.mode === 'full' ? 2 : 1), hostCapacityBytes: 1 << 20 },
      model,
    );
    const records = oracle.filter((r) => r.generated_token_ids.length > 150).slice(0, 4);
    const results = await runAll(engine, attention, records);
    assert.ok(engine.stats().numPreemptions > 0, `${attention.mode}: expected preemptions`);
    results.forEach((result, i) => assertMatchesOracle(result.tokenIds, records[i]));
    await engine.close();
  }
}

describe('stories260K engine against the reference generations', () => {
  before(() => {
    model = loadModel(stories260kDir());
  });

  for (const [name, attention] of [
    ['full', FULL_ATTENTION],
    ['kcache N=512', KCACHE_512],
  ] as const) {
    it(`${name}: every oracle prompt, batched together, gives the reference tokens and stop reason`, async () => {
      const engine = await createEngine({ model: stories260kDir(), defaultAttention: attention, numThreads: 1 }, model);
      const results = await runAll(engine, attention, oracle);
      results.forEach((result, i) => {
        assertMatchesOracle(result.tokenIds, oracle[i]);
        assert.equal(result.finish.reason, oracle[i].stop_reason === 'bos' ? 'eos' : 'length', oracle[i].id);
        assert.equal(result.text, model.tokenizer.decode(result.tokenIds, oracle[i].prompt_token_ids.at(-1)!));
      });
      assert.equal(engine.stats().device.usedBytes, 0, 'every block returns to the pool');
      await engine.close();
    });
  }

  for (const [name, attention, graph] of [
    ['full', FULL_ATTENTION, {}],
    ['kcache N=512', KCACHE_512, {}],
    ['full, current row written into the arena first', FULL_ATTENTION, { currentRowInArena: true }],
    ['kcache N=512, current row written into the arena first', KCACHE_512, { currentRowInArena: true }],
    ['full, the PagedDecodeAttention kernel', FULL_ATTENTION, { pagedAttention: true }],
    ['kcache N=512, the PagedDecodeAttention kernel', KCACHE_512, { pagedAttention: true }],
  ] as const) {
    it(`native backend on the CPU provider (the CUDA path), ${name}: every oracle prompt, batched, gives the reference tokens`, async () => {
      const engine = await createEngine({ model: stories260kDir(), defaultAttention: attention, numThreads: 1, nativeBackend: true, ...graph }, model);
      const results = await runAll(engine, attention, oracle);
      results.forEach((result, i) => {
        assertMatchesOracle(result.tokenIds, oracle[i]);
        assert.equal(result.finish.reason, oracle[i].stop_reason === 'bos' ? 'eos' : 'length', oracle[i].id);
      });
      assert.equal(engine.stats().device.usedBytes, 0, 'every block returns to the pool');
      await engine.close();
    });
  }

  it('native backend: preemption by recompute, in a device tier too small for the batch, keeps the reference tokens', async () => {
    await assertPreemptionKeepsReferenceTokens({ nativeBackend: true });
  });

  it('batch invariance: prompts alone, together, and joining mid-way give identical tokens', async () => {
    const engine = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
    const alone = [];
    for (const record of oracle.slice(0, 4)) alone.push((await generate(engine, greedyRequest(record, FULL_ATTENTION))).tokenIds);
    const early = oracle.slice(0, 6).map((r) => generate(engine, greedyRequest(r, FULL_ATTENTION)));
    await new Promise((resolve) => setTimeout(resolve, 30)); // the first ones are decoding by now
    const late = oracle.slice(6).map((r) => generate(engine, greedyRequest(r, FULL_ATTENTION)));
    const together = await Promise.all([...early, ...late]);
    together.forEach((result, i) => assertMatchesOracle(result.tokenIds, oracle[i]));
    alone.forEach((tokens, i) => assert.deepEqual(tokens, together[i].tokenIds));
    await engine.close();
  });

  it('preemption by recompute: a device tier too small for the batch preempts, and outputs stay identical', async () => {
    await assertPreemptionKeepsReferenceTokens({});
  });

  it('seeded sampling gives the same tokens alone and in a batch', async () => {
    const engine = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
    const sampled = (r: OracleRecord, seed: number): GenerationRequest => ({
      ...greedyRequest(r, FULL_ATTENTION),
      requestId: `${r.id}-s${seed}`,
      maxNewTokens: 60,
      sampling: { temperature: 0.9, topK: 40, topP: 0.95, seed },
      logprobs: true,
    });
    const alone = await generate(engine, sampled(oracle[0], 7));
    const batch = await Promise.all([sampled(oracle[0], 7), sampled(oracle[1], 7), sampled(oracle[0], 8)].map((r) => generate(engine, r)));
    assert.deepEqual(batch[0].tokenIds, alone.tokenIds);
    assert.notDeepEqual(batch[2].tokenIds, alone.tokenIds, 'another seed samples another continuation');
    assert.equal(alone.logprobs.length, alone.tokenIds.length);
    assert.ok(alone.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)));
    await engine.close();
  });

  it('a resumed seeded stream continues exactly where it left off (generated tokens replayed by decode)', async () => {
    for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 16, denseLayers: 1, renormalize: true } as const]) {
      const engine = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
      const request = (suffix: string, resumeTokenIds?: number[]): GenerationRequest => ({
        ...greedyRequest(oracle[2], attention),
        requestId: `${oracle[2].id}-${suffix}`,
        maxNewTokens: 300,
        sampling: { temperature: 1, topK: 0, topP: 1, seed: 11 },
        logprobs: true,
        resumeTokenIds,
      });
      const wholeResult = await generate(engine, request('whole'));
      const whole = wholeResult.tokenIds;
      assert.ok(whole.length > 200, `${attention.mode}: a long stream (${whole.length} tokens)`);
      // Resumed alongside other traffic, as on a worker that takes over a job.
      const others = [generate(engine, request('other-a')), generate(engine, { ...request('other-b'), promptTokenIds: oracle[5].prompt_token_ids })];
      for (const cut of [1, 57, 200]) {
        const rest = await generate(engine, request(`from-${cut}`, whole.slice(0, cut)));
        assert.deepEqual(rest.tokenIds, whole.slice(cut), `${attention.mode}: resumed at ${cut}`);
        // Bit for bit: recomputing in prefill chunks instead gives logprobs that differ in the last bits.
        assert.deepEqual(rest.logprobs, wholeResult.logprobs.slice(cut), `${attention.mode}: logprobs resumed at ${cut}`);
      }
      await Promise.all(others);
      await engine.close();
    }
  });

  it('preemption by recompute keeps seeded sampled streams identical', async () => {
    const sampled = (r: OracleRecord, seed: number): GenerationRequest => ({
      ...greedyRequest(r, FULL_ATTENTION),
      requestId: `${r.id}-p${seed}`,
      maxNewTokens: 250,
      sampling: { temperature: 1, topK: 0, topP: 1, seed },
    });
    const records = oracle.slice(0, 6);
    const roomy = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
    const expected = await Promise.all(records.map((r, i) => generate(roomy, sampled(r, i))));
    await roomy.close();
    const tight = await createEngine({ model: stories260kDir(), numThreads: 1, deviceCapacityBytes: 48 * 10240 * 2 }, model);
    const actual = await Promise.all(records.map((r, i) => generate(tight, sampled(r, i))));
    assert.ok(tight.stats().numPreemptions > 0, 'expected preemptions');
    actual.forEach((result, i) => assert.deepEqual(result.tokenIds, expected[i].tokenIds, records[i].id));
    await tight.close();
  });

  it('cancel stops a request within one step and frees its blocks', async () => {
    const engine = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
    const events: string[] = [];
    const done = new Promise<void>((resolve) =>
      engine.submit({ ...greedyRequest(oracle[0], FULL_ATTENTION), requestId: 'to-cancel' }, (e) => {
        events.push(e.type === 'finish' ? `finish:${e.reason}` : 'token');
        if (e.type === 'token' && events.length === 3) assert.equal(engine.cancel('to-cancel'), true);
        if (e.type === 'finish') resolve();
      }),
    );
    await done;
    assert.equal(events.at(-1), 'finish:cancelled');
    assert.ok(events.length <= 5, `at most one more token after cancel, got ${events.length - 1} tokens`);
    assert.equal(engine.stats().device.usedBytes, 0);
    assert.equal(engine.cancel('to-cancel'), false);
    await engine.close();
  });
});
