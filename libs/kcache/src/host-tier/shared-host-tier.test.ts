import assert from 'node:assert/strict';
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEngine } from '../engine/create-engine';
import { stories260kDir } from '../testing/reference-data';
import { HostTierConfigError, HostTierFormatError, HostTierSpaceError } from './host-tier-errors';
import { ResolvedSharedHostTierOptions, resolveSharedHostTierOptions } from './host-tier-options';
import { loadNativeShm } from './native-shm';
import { SharedHostTier, TierModelShape } from './shared-host-tier';
import { TierHolderConfig } from '../testing/host-tier/tier-holder';
import { tierFilePath } from './tier-file';

// One layer block: 1 head · 4 positions · 4 floats · 4 bytes = 64 bytes; a block (2 layers, V only) = 128 bytes.
const SHAPE: TierModelShape = { blockSize: 4, numLayers: 2, numKvHeads: 1, headDim: 4 };
const BLOCK_BYTES = 128;
const ALL_V = { vLayers: [true, true], keys: false };
const hash = (n: number) => Uint32Array.of(n, n * 31 + 1, n * 7 + 3, 99);

let directory: string;
const opened: SharedHostTier[] = [];

function options(overrides: Partial<ResolvedSharedHostTierOptions> = {}): ResolvedSharedHostTierOptions {
  return resolveSharedHostTierOptions({ kind: 'shared', directory, name: 'unit', capacityBytes: 10 * BLOCK_BYTES, leaseMs: 200, prefixKeys: 'recompute', ...overrides }, 0);
}

function open(overrides: Partial<ResolvedSharedHostTierOptions> = {}, shape: TierModelShape = SHAPE): SharedHostTier {
  const tier = SharedHostTier.open(options(overrides), shape);
  opened.push(tier);
  return tier;
}

function reserveOrFail(tier: SharedHostTier, numBlocks: number, hashes: Uint32Array[] = []): number[] {
  const result = tier.reserve(numBlocks, hashes);
  assert.ok('hitIds' in result, `reserve(${numBlocks}) did not fit`);
  return result.hitIds;
}

/** A child process that attaches to the tier and waits to be killed; resolves with its first message. */
function startHolder(config: Omit<TierHolderConfig, 'options' | 'shape'>): Promise<{ kill: () => void; message: { type: string; ids?: number[] } }> {
  const child = fork(join(__dirname, '..', 'testing', 'host-tier', 'tier-holder.js'), [JSON.stringify({ ...config, options: options(), shape: SHAPE })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    child.once('message', (message: { type: string; ids?: number[] }) => {
      child.removeAllListeners('exit');
      resolve({ kill: () => child.kill('SIGKILL'), message });
    });
  });
}

describe('SharedHostTier', () => {
  beforeEach(() => {
    directory = mkdtempSync('/dev/shm/kcache-tier-test-');
  });
  afterEach(() => {
    for (const tier of opened.splice(0)) tier.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('reserves, allocates and releases blocks with exact node-wide accounting', () => {
    const tier = open();
    assert.equal(tier.numBlocks, 10);
    assert.equal(tier.blockBytes, BLOCK_BYTES);
    reserveOrFail(tier, 4);
    assert.equal(tier.stats().reservedBytes, 4 * BLOCK_BYTES);
    const ids = tier.allocate(3);
    assert.deepEqual(ids, [0, 1, 2], 'lowest ids first');
    assert.equal(tier.stats().usedBytes, 3 * BLOCK_BYTES);
    assert.equal(tier.stats().reservedBytes, BLOCK_BYTES);
    const refused = tier.reserve(7, []);
    assert.ok('failedAtEpoch' in refused, '3 used + 1 reserved + 7 > 10');
    assert.equal(tier.reserveMore(6), true);
    tier.release(ids, 7);
    assert.equal(tier.epoch > refused.failedAtEpoch, true, 'a release moves the epoch');
    assert.deepEqual({ used: tier.stats().usedBytes, reserved: tier.stats().reservedBytes }, { used: 0, reserved: 0 });
  });

  it('two attachments (two worker slots) share blocks, data and one capacity', () => {
    const a = open();
    const b = open();
    assert.notEqual(a.slot, b.slot);
    reserveOrFail(a, 6);
    const [id] = a.allocate(1);
    a.v[1].fill(3.5, id * 16, (id + 1) * 16);
    assert.equal(b.v[1][id * 16 + 5], 3.5, 'the other attachment reads the bytes in place');
    assert.ok('failedAtEpoch' in b.reserve(5, []), '1 used + 5 reserved by a: 5 more do not fit');
    reserveOrFail(b, 4);
    assert.equal(b.stats().numLiveWorkers, 2);
    a.close();
    assert.equal(b.stats().usedBytes, 0, 'closing gives back blocks and reservations');
    assert.equal(b.stats().reservedBytes, 4 * BLOCK_BYTES);
  });

  it('prefix index: a published block is found by its hash, equal bytes are stored once, different bytes are not merged', () => {
    const a = open();
    const b = open();
    reserveOrFail(a, 2);
    const [x, y] = a.allocate(2);
    a.v[0].fill(1, x * 16, (x + 1) * 16);
    a.v[0].fill(2, y * 16, (y + 1) * 16);
    assert.deepEqual(a.publish([{ id: x, hash: hash(1) }, { id: y, hash: hash(2) }], ALL_V), [x, y]);
    assert.equal(a.isSealed(x), true);
    assert.deepEqual(reserveOrFail(b, 4, [hash(1), hash(2), hash(3)]), [x, y], 'hits stop at the first miss; 2 more reserved');
    assert.deepEqual({ lookups: b.stats().prefixLookups, hits: b.stats().prefixHits }, { lookups: 3, hits: 2 });
    assert.equal(b.stats().usedBytes, 2 * BLOCK_BYTES, 'hits add no block');
    // b computed the same block as x itself: publishing it swaps to x and frees its own.
    const [own] = b.allocate(1);
    b.v[0].fill(1, own * 16, (own + 1) * 16);
    b.v[1].set(a.v[1].subarray(x * 16, (x + 1) * 16), own * 16);
    assert.deepEqual(b.publish([{ id: own, hash: hash(1) }], ALL_V), [x]);
    assert.equal(b.stats().numDedupedBlocks, 1);
    const [other] = b.allocate(1);
    b.v[0].fill(9, other * 16, (other + 1) * 16);
    assert.deepEqual(b.publish([{ id: other, hash: hash(2) }], ALL_V), [other], 'same hash, other bytes: stays private');
    assert.equal(b.isSealed(other), false);
  });

  it('cached blocks no one holds stay findable, and are evicted (clock) when space runs out', () => {
    const tier = open();
    reserveOrFail(tier, 10);
    const ids = tier.allocate(10);
    tier.publish(ids.slice(0, 4).map((id, i) => ({ id, hash: hash(i) })), ALL_V);
    tier.release(ids, 0);
    assert.deepEqual({ used: tier.stats().usedBytes, evictable: tier.stats().evictableBytes }, { used: 0, evictable: 4 * BLOCK_BYTES });
    assert.deepEqual(reserveOrFail(tier, 1, [hash(0)]), [ids[0]], 'still a hit after release');
    reserveOrFail(tier, 9);
    const fresh = tier.allocate(9);
    assert.equal(new Set([...fresh, ids[0]]).size, 10);
    assert.equal(tier.stats().numEvictions, 3, 'the 3 unheld cached blocks were taken');
    assert.ok('failedAtEpoch' in tier.reserve(1, []));
  });

  it("a killed worker's blocks and reservation are reclaimed once its lease runs out", async () => {
    const tier = open();
    const holder = await startHolder({ mode: 'hold', numBlocks: 5 });
    assert.equal(tier.stats().usedBytes, 5 * BLOCK_BYTES);
    holder.kill();
    const killedAt = performance.now();
    while (tier.stats().usedBytes > 0) {
      assert.ok(performance.now() - killedAt < 2000, 'not reclaimed within 2 s (lease 200 ms)');
      await sleep(20);
    }
    const stats = tier.stats();
    assert.equal(stats.numReclaimedWorkers, 1);
    assert.equal(stats.numReclaimedBlocks, 5);
    assert.equal(stats.numLiveWorkers, 1);
    assert.equal(stats.evictableBytes, BLOCK_BYTES, 'its published block stays cached, held by no one');
    assert.deepEqual(reserveOrFail(tier, 10, [Uint32Array.of(7, 7, 7, 7)]).length, 1);
  });

  it('a lock holder killed mid-change leaves the state dirty; the next holder repairs it', async () => {
    const tier = open();
    reserveOrFail(tier, 3);
    const mine = tier.allocate(3);
    const holder = await startHolder({ mode: 'die-in-lock', numBlocks: 0 });
    holder.kill();
    await sleep(50);
    reserveOrFail(tier, 7); // waits for the lock, finds it dirty, rebuilds the free stack
    assert.equal(tier.repairs, 1);
    const rest = tier.allocate(7);
    assert.equal(new Set([...mine, ...rest]).size, 10, 'the rebuilt free stack holds exactly the free blocks');
    assert.equal(tier.stats().usedBytes, 10 * BLOCK_BYTES);
  });

  it('start-up errors: capacity 0 or below a block, missing directory, foreign, corrupt, truncated or mismatched files, no room', () => {
    assert.throws(() => open({ capacityBytes: 0 }), HostTierConfigError);
    assert.throws(() => open({ capacityBytes: BLOCK_BYTES - 1 }), (e: Error) => e instanceof HostTierSpaceError && /below one block/.test(e.message));
    assert.throws(() => open({ directory: join(directory, 'missing') }), HostTierConfigError);
    const path = tierFilePath(directory, 'unit');

    writeFileSync(path, 'not a tier at all\n'.repeat(1000));
    assert.throws(() => open(), (e: Error) => e instanceof HostTierFormatError && /is not a kcache host tier/.test(e.message));
    rmSync(path);

    open().close();
    const original = readFileSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, 20); // a header byte (blockSize)
    closeSync(fd);
    assert.throws(() => open(), (e: Error) => e instanceof HostTierFormatError && /corrupt/.test(e.message));
    writeFileSync(path, original.subarray(0, original.length - 4096));
    assert.throws(() => open(), (e: Error) => e instanceof HostTierFormatError && /truncated/.test(e.message));
    writeFileSync(path, original);
    assert.throws(() => open({}, { ...SHAPE, blockSize: 8 }), (e: Error) => e instanceof HostTierFormatError && /blockSize 4 \(this worker: 8\)/.test(e.message));
    assert.throws(() => open({ capacityBytes: 20 * BLOCK_BYTES }), (e: Error) => e instanceof HostTierFormatError && /numBlocks 10 \(this worker: 20\)/.test(e.message));

    const free = loadNativeShm().freeBytes(directory);
    assert.throws(() => open({ name: 'huge', capacityBytes: 2 * free }), (e: Error) => e instanceof HostTierSpaceError && /only \d+ are free/.test(e.message));
  });

  it('a file size limit (EFBIG from fallocate) is a clear start-up error, and no temporary is left behind', () => {
    const script = `
      const { SharedHostTier } = require(${JSON.stringify(join(__dirname, 'shared-host-tier.js'))});
      try { SharedHostTier.open(${JSON.stringify(options({ name: 'limited', capacityBytes: 1 << 22 }))}, ${JSON.stringify(SHAPE)}); console.log('opened'); }
      catch (e) { console.log(e.name + ': ' + e.message); }`;
    // SIGXFSZ ignored (inherited through exec), so the limit shows as EFBIG.
    const out = execFileSync('bash', ['-c', `trap '' XFSZ; ulimit -f 1024; exec "${process.execPath}" -e "$0"`, script]).toString();
    assert.match(out, /^HostTierSpaceError: host tier needs \d+ bytes/);
    assert.deepEqual(execFileSync('ls', [directory]).toString(), '');
  });

  it('engine start-up with a shared tier of capacity 0 or a foreign file fails with the named error', async () => {
    await assert.rejects(createEngine({ model: stories260kDir(), hostTier: { kind: 'shared', directory, name: 'e', capacityBytes: 0 } }), HostTierConfigError);
    writeFileSync(tierFilePath(directory, 'e'), Buffer.alloc(1 << 16, 1));
    await assert.rejects(createEngine({ model: stories260kDir(), hostTier: { kind: 'shared', directory, name: 'e', capacityBytes: 1 << 20 } }), HostTierFormatError);
  });
});
