import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEngine } from '../engine/create-engine';
import { EngineOptions } from '../engine/engine-options';
import { generate } from '../engine/generate';
import { loadModel, LoadedModel } from '../formats/model-source';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { SharedHostTierOptions } from './host-tier-options';
import { greedyRequest, KCACHE_32, sharedPrefixPrompts } from '../testing/host-tier/tier-prompts';
import { TierWorker, WorkerResult } from '../testing/host-tier/tier-worker-client';

// Child processes, each running the engine on stories260K attached to one shared host tier.
const PREFIX_LENGTH = 256;
const PREFIX_BLOCKS = PREFIX_LENGTH / 16;
let model: LoadedModel;
let directory: string;
let sharedPrompts: number[][];
let oraclePrompts: number[][];
/** Tokens of the in-process host tier, by prompt (maxNewTokens 120). */
const expected = new Map<string, number[]>();
const workers: TierWorker[] = [];

function engineOptions(hostTier: Omit<SharedHostTierOptions, 'kind'> | null): EngineOptions {
  return {
    model: stories260kDir(),
    numThreads: 1,
    defaultAttention: KCACHE_32,
    ...(hostTier ? { hostTier: { kind: 'shared', directory, capacityBytes: 64 << 20, leaseMs: 500, ...hostTier } } : {}),
  };
}

async function startWorker(hostTier: Omit<SharedHostTierOptions, 'kind'>): Promise<TierWorker> {
  const worker = await TierWorker.start({ engine: engineOptions(hostTier) });
  workers.push(worker);
  return worker;
}

function assertExpected(result: WorkerResult, prompt: readonly number[]): void {
  assert.equal(result.error, undefined, `${result.requestId}: ${result.error}`);
  assert.deepEqual(result.tokenIds, expected.get(prompt.join(',')), `${result.requestId}: tokens differ from the in-process host tier`);
}

describe('shared host tier across worker processes (stories260K)', () => {
  before(async () => {
    model = loadModel(stories260kDir());
    directory = mkdtempSync('/dev/shm/kcache-workers-test-');
    sharedPrompts = sharedPrefixPrompts(model, PREFIX_LENGTH, 12);
    oraclePrompts = loadGreedyOracle().map((r) => [...r.prompt_token_ids]);
    const engine = await createEngine(engineOptions(null), model);
    const results = await Promise.all([...sharedPrompts, ...oraclePrompts].map((p, i) => generate(engine, greedyRequest(`expected-${i}`, p, 120))));
    [...sharedPrompts, ...oraclePrompts].forEach((p, i) => expected.set(p.join(','), results[i].tokenIds));
    await engine.close();
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    rmSync(directory, { recursive: true, force: true });
  });

  for (const prefixKeys of ['spill', 'recompute'] as const) {
    it(`prefixKeys ${prefixKeys}: blocks written by one worker are read by another; outputs equal the in-process tier token for token`, async () => {
      const name = `share-${prefixKeys}`;
      const [a, b] = await Promise.all([startWorker({ name, prefixKeys }), startWorker({ name, prefixKeys })]);
      assert.notEqual(a.slot, b.slot);
      // a computes the shared prefix and publishes its blocks.
      assertExpected(await a.generate(greedyRequest('owner', sharedPrompts[0], 120)).result, sharedPrompts[0]);
      const jobs: Array<[Promise<WorkerResult>, number[]]> = [];
      sharedPrompts.slice(1).forEach((p, i) => jobs.push([(i % 3 === 0 ? a : b).generate(greedyRequest(`s${i}`, p, 120)).result, p]));
      oraclePrompts.forEach((p, i) => jobs.push([(i % 2 ? a : b).generate(greedyRequest(`o${i}`, p, 120)).result, p]));
      for (const [result, prompt] of jobs) assertExpected(await result, prompt);

      const statsB = (await b.stats()).hostTier!;
      const numOnB = sharedPrompts.slice(1).filter((_, i) => i % 3 !== 0).length;
      assert.ok(statsB.prefixHits >= numOnB * PREFIX_BLOCKS, `b hit ${statsB.prefixHits} prefix blocks`);
      if (prefixKeys === 'spill') assert.ok(statsB.numRestoredBlocks >= numOnB * PREFIX_BLOCKS, 'b copied K back instead of computing the prefix');
      assert.equal(statsB.numLiveWorkers, 2);
      await Promise.all([a.close(), b.close()]);
    });
  }

  it('prefix sharing: 8 requests with one 256-token prefix store its blocks once, and give the tokens of no sharing', async (t) => {
    const prompts = sharedPrompts.slice(0, 8);
    const requests = prompts.map((p, i) => greedyRequest(`p${i}`, p, 120));
    const shared = await startWorker({ name: 'prefix-on' });
    const alone = await startWorker({ name: 'prefix-off', prefixSharing: false });
    const withSharing = shared.generateBatch(requests);
    const without = alone.generateBatch(requests);
    // Taken when the last of the 8 had its first token: every one holds its prompt's blocks.
    const on = (await withSharing.started).hostTier!;
    const off = (await without.started).hostTier!;
    assert.equal(on.numBlockReferences - on.numHeldBlocks, 7 * PREFIX_BLOCKS, 'the 8 sequences hold the 16 prefix blocks once');
    assert.equal(on.usedBytes, on.numHeldBlocks * on.blockBytes, 'accounting: the tier counts each stored block once');
    assert.equal(on.numSharedBlocks >= PREFIX_BLOCKS, true);
    assert.equal(off.numBlockReferences, off.numHeldBlocks, 'without sharing every sequence stores its own');
    t.diagnostic(`blocks held with the 8 running: ${on.numHeldBlocks} shared (${on.numBlockReferences} references), ${off.numHeldBlocks} without sharing`);
    assert.ok(off.numHeldBlocks - on.numHeldBlocks >= 7 * PREFIX_BLOCKS - 8, `held ${off.numHeldBlocks} without sharing, ${on.numHeldBlocks} with`);
    const [resultsOn, resultsOff] = await Promise.all([withSharing.results, without.results]);
    resultsOn.forEach((r, i) => {
      assert.deepEqual(r.tokenIds, resultsOff[i].tokenIds, `${r.requestId}: sharing changed the tokens`);
      assertExpected(r, prompts[i]);
    });
    const after = (await shared.stats()).hostTier!;
    assert.equal(after.usedBytes, 0);
    assert.ok(after.prefixHitRate > 0.8, `hit rate ${after.prefixHitRate}`);
    await Promise.all([shared.close(), alone.close()]);
  });

  it('a full tier: admissions wait (or are rejected when they could never fit), running sequences finish undisturbed', async () => {
    // A block here is 5 layers · 16 positions · 32 kvDim · 4 bytes of V = 10 KiB; the tier holds 30.
    const hostTier = { name: 'full', capacityBytes: 30 * 10240, prefixSharing: false, prefixKeys: 'recompute' as const };
    const [a, b] = await Promise.all([startWorker(hostTier), startWorker(hostTier)]);
    // Each reserves its worst case at admission: ceil((prompt + 120) / 16) blocks, more than 15.
    const prompt = sharedPrompts[1];
    assert.ok(Math.ceil((prompt.length + 120) / 16) > 15 && Math.ceil((sharedPrompts[2].length + 120) / 16) > 15);
    const first = a.generate(greedyRequest('first', prompt, 120));
    await first.started;
    const second = b.generate(greedyRequest('second', sharedPrompts[2], 120));
    const never = await b.generate(greedyRequest('too-big', prompt, 400)).result; // the whole context, 33 blocks: never fits
    assert.equal(never.reason, 'rejected');
    assert.match(never.error ?? '', /more than the memory tiers hold/);
    assertExpected(await first.result, prompt);
    assertExpected(await second.result, sharedPrompts[2]);
    const stats = (await b.stats()).hostTier!;
    assert.ok(stats.numAdmissionWaits > 0, 'the second request waited for the first to finish');
    assert.equal(stats.usedBytes, 0);
    await Promise.all([a.close(), b.close()]);
  });

  it('kill -9 of workers holding blocks, 50 times under load: blocks reclaimed within the lease, no leak, the survivor undisturbed', { timeout: 180_000 }, async (t) => {
    const name = 'kill';
    const leaseMs = 500;
    const survivor = await startWorker({ name, leaseMs });
    const streamPrompts = [...oraclePrompts, ...sharedPrompts];
    let isStreaming = true;
    const streamed: Array<Promise<void>> = [];
    const stream = (async () => {
      for (let i = 0; isStreaming; i++) {
        const batch = [0, 1, 2].map((j) => streamPrompts[(3 * i + j) % streamPrompts.length]);
        const results = batch.map((p, j) => survivor.generate(greedyRequest(`live-${i}-${j}`, p, 120)).result);
        streamed.push(...results.map(async (r, j) => assertExpected(await r, batch[j])));
        await Promise.all(results);
      }
    })();

    let numKilled = 0;
    const killOne = async (v: number) => {
      const victim = await TierWorker.start({ engine: engineOptions({ name, leaseMs }) });
      const jobs = [0, 1].map((j) => victim.generate(greedyRequest(`victim-${v}-${j}`, sharedPrompts[(v + j) % sharedPrompts.length], 200)));
      await Promise.all(jobs.map((job) => job.started)); // it holds prefix and private blocks now
      await sleep(Math.floor(Math.random() * 100));
      await victim.kill();
      numKilled++;
    };
    for (let v = 0; v < 50; v += 3) await Promise.all([v, v + 1, v + 2].filter((i) => i < 50).map(killOne));
    assert.equal(numKilled, 50);

    // Within the lease (plus one reaper period), every victim's blocks are back.
    const lastKillAt = performance.now();
    const deadline = lastKillAt + leaseMs * 2 + 500;
    let stats = (await survivor.stats()).hostTier!;
    while (stats.numReclaimedWorkers < 50 || stats.numLiveWorkers > 1) {
      assert.ok(performance.now() < deadline, `after ${leaseMs * 2 + 500} ms: ${stats.numReclaimedWorkers} workers reclaimed, ${stats.numLiveWorkers} live`);
      await sleep(25);
      stats = (await survivor.stats()).hostTier!;
    }
    // No leak: what is used is what the survivor's live sequences hold.
    assert.equal(stats.usedBytes, stats.numHeldBlocks * stats.blockBytes);
    assert.ok(stats.numReclaimedBlocks > 0);
    t.diagnostic(
      `50 kills: ${stats.numReclaimedBlocks} block references reclaimed, the last victim's ${Math.round(performance.now() - lastKillAt)} ms after its kill ` +
        `(lease ${leaseMs} ms); survivor holds ${stats.numHeldBlocks} blocks = ${stats.usedBytes} used bytes; ${stats.numAdmissionWaits} admission waits`,
    );

    isStreaming = false;
    await stream;
    await Promise.all(streamed); // every survivor request gave the in-process tokens
    assert.ok(streamed.length >= 6, `only ${streamed.length} survivor requests ran`);
    stats = (await survivor.stats()).hostTier!;
    assert.deepEqual({ used: stats.usedBytes, reserved: stats.reservedBytes }, { used: 0, reserved: 0 }, 'idle: nothing used or reserved');
    t.diagnostic(`survivor: ${streamed.length} requests, all equal to the in-process tier`);
    await survivor.close();
  });
});
