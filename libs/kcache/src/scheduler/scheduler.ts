import assert from 'node:assert/strict';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { DuplicateRequestIdError } from '../request/duplicate-request-id-error';
import { SchedulerConfigError } from './scheduler-errors';
import { RejectedSequence, ScheduledChunk, SchedulerOutput } from './scheduler-output';
import { Sequence, compareSchedulingOrder } from './sequence';

export interface SchedulerOptions {
  /** Most sequences running (holding blocks) at once. */
  readonly maxNumSeqs: number;
  /** Token budget per step: the sum of numNewTokens. Long prompts are chunked to it. */
  readonly maxNumBatchedTokens: number;
  /** Model context; a sequence with more tokens is rejected. */
  readonly maxModelLen: number;
  /**
   * Recompute generated tokens (after a preemption or a resume on another worker) one per step, as the
   * decode steps that first produced them did, instead of in prefill chunks. Prefill rounds differently
   * in the last bits, which can flip a sampled token; replaying by decode continues bit for bit.
   * Default false (chunks).
   */
  readonly replayGeneratedByDecode?: boolean;
}

/**
 * One token-budget loop per step (vLLM v1): running sequences first, in scheduling order, each
 * getting min(numTokens - numComputedTokens, budget left) new tokens; a running sequence that
 * cannot get blocks preempts (by recompute) the last running sequence in scheduling order, itself
 * included. Then, unless something was preempted this step, waiting sequences are admitted in
 * scheduling order while the budget, maxNumSeqs and blocks for their first chunk allow; positions a
 * prefix cache holds for an admitted sequence count as computed. The engine runs the step, samples,
 * calls commit() with the sampled tokens, and finish() when a stop condition hits.
 */
export class Scheduler {
  private readonly opts: SchedulerOptions;
  /** Both sorted by compareSchedulingOrder. */
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly sequencesById = new Map<string, Sequence>();
  private pendingRejected: RejectedSequence[] = [];

  constructor(
    opts: SchedulerOptions,
    private readonly kv: KvCacheManager,
  ) {
    for (const field of ['maxNumSeqs', 'maxNumBatchedTokens', 'maxModelLen'] as const) {
      const value = opts[field];
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new SchedulerConfigError(`${field} must be a positive integer, got ${value}`, field);
      }
    }
    this.opts = {
      maxNumSeqs: opts.maxNumSeqs,
      maxNumBatchedTokens: opts.maxNumBatchedTokens,
      maxModelLen: opts.maxModelLen,
      replayGeneratedByDecode: opts.replayGeneratedByDecode ?? false,
    };
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0 || this.pendingRejected.length > 0;
  }

  getSequence(requestId: string): Sequence | undefined {
    return this.sequencesById.get(requestId);
  }

  /** Queues seq. One that can never run is reported in the next schedule()'s rejected list instead. */
  addSequence(seq: Sequence): void {
    if (this.sequencesById.has(seq.requestId)) throw new DuplicateRequestIdError(seq.requestId);
    assert.equal(seq.status, 'waiting', `request '${seq.requestId}' added with status ${seq.status}`);
    assert.equal(seq.numComputedTokens, 0);
    assert.equal(seq.blocks.kBlockIds.length, 0);
    const reason = this.rejectionReason(seq);
    if (reason !== null) {
      seq.status = 'finished';
      this.pendingRejected.push({ requestId: seq.requestId, reason });
      return;
    }
    this.sequencesById.set(seq.requestId, seq);
    insertSorted(this.waiting, seq);
  }

  schedule(): SchedulerOutput {
    const scheduled: ScheduledChunk[] = [];
    const preempted: string[] = [];
    const rejected = this.pendingRejected;
    this.pendingRejected = [];
    let budget = this.opts.maxNumBatchedTokens;

    for (let i = 0; i < this.running.length && budget > 0; ) {
      const seq = this.running[i];
      const numNewTokens = this.numNewTokens(seq, budget);
      if (numNewTokens <= 0) {
        i++; // sampled token omitted at commit: waits for the engine's finish()
        continue;
      }
      const numTokensTotal = seq.numComputedTokens + numNewTokens;
      if (this.kv.covers(seq, numTokensTotal)) {
        // Most decode steps: the sequence's blocks already hold the new position.
        scheduled.push(this.chunk(seq, numNewTokens));
        budget -= numNewTokens;
        i++;
        continue;
      }
      let isSelfPreempted = false;
      while (!this.kv.canAllocate(seq, numTokensTotal)) {
        // The last running sequence is the lowest priority, latest arrival; it is not yet scheduled.
        const victim = this.running[this.running.length - 1];
        this.preemptLast();
        preempted.push(victim.requestId);
        if (victim === seq) {
          isSelfPreempted = true;
          break;
        }
      }
      if (isSelfPreempted) break;
      this.kv.allocate(seq, numTokensTotal);
      scheduled.push(this.chunk(seq, numNewTokens));
      budget -= numNewTokens;
      i++;
    }

    // Admitting right after a preemption would only thrash; the preempted retry next step.
    while (preempted.length === 0 && this.waiting.length > 0 && budget > 0 && this.running.length < this.opts.maxNumSeqs) {
      const seq = this.waiting[0];
      const numNewTokens = this.numNewTokens(seq, budget);
      const numTokensTotal = seq.numComputedTokens + numNewTokens;
      assert.ok(numNewTokens > 0, `waiting request '${seq.requestId}' has nothing to compute`);
      if (!this.kv.fitsCapacity(seq.attention, numTokensTotal)) {
        this.waiting.shift();
        this.sequencesById.delete(seq.requestId);
        seq.status = 'finished';
        rejected.push({ requestId: seq.requestId, reason: this.tooBigReason(seq, numTokensTotal) });
        continue;
      }
      if (!this.kv.canAllocate(seq, numTokensTotal)) break;
      const chunkSize = this.admitCachedPrefix(seq, numNewTokens, budget);
      if (chunkSize === 0) break;
      this.kv.allocate(seq, seq.numComputedTokens + chunkSize);
      this.waiting.shift();
      seq.status = 'running';
      insertSorted(this.running, seq);
      scheduled.push(this.chunk(seq, chunkSize));
      budget -= chunkSize;
    }

    const numBatchedTokens = this.opts.maxNumBatchedTokens - budget;
    assert.ok(this.running.length <= this.opts.maxNumSeqs);
    return { scheduled, preempted, rejected, numBatchedTokens };
  }

  /**
   * Applies a step's results: each still-running scheduled sequence advances numComputedTokens by
   * numNewTokens (a prompt chunk tells the KV cache manager, for prefix caching), and a last chunk
   * appends its sampled token. The engine may omit from sampledTokenIds a request it has just
   * finished or cancelled.
   */
  commit(output: SchedulerOutput, sampledTokenIds: ReadonlyMap<string, number>): void {
    for (const item of output.scheduled) {
      const seq = item.sequence;
      if (seq.status !== 'running' || this.sequencesById.get(seq.requestId) !== seq) continue;
      if (seq.numComputedTokens !== item.startPosition) assert.fail(`request '${seq.requestId}': commit out of step`);
      seq.numComputedTokens += item.numNewTokens;
      assert.ok(seq.numComputedTokens <= seq.numTokens);
      assert.ok(seq.numComputedTokens <= seq.blocks.kBlockIds.length * this.kv.blockSize);
      if (item.startPosition < seq.numPromptTokens) this.kv.noteComputed(seq, seq.numComputedTokens);
      if (!item.isLastChunk) continue;
      const tokenId = sampledTokenIds.get(seq.requestId);
      if (tokenId !== undefined) seq.appendToken(tokenId);
    }
  }

  /**
   * Prefix caching at admission (vLLM's): the positions a prefix cache holds for seq (canAllocate
   * reserved them) count as computed, allocate restores them, and the first chunk starts after them.
   * Returns the first chunk's size, or 0 when the blocks for it do not fit now.
   */
  private admitCachedPrefix(seq: Sequence, numNewTokens: number, budget: number): number {
    const numCached = this.kv.numCachedTokens(seq);
    if (numCached === 0) return numNewTokens;
    seq.numComputedTokens = numCached;
    const chunkSize = this.numNewTokens(seq, budget);
    if (this.kv.canAllocate(seq, numCached + chunkSize)) return chunkSize;
    seq.numComputedTokens = 0;
    return 0;
  }

  /** Frees seq's blocks and marks it finished (a stop condition hit). null when unknown. */
  finish(requestId: string): Sequence | null {
    return this.remove(requestId);
  }

  /** Frees seq's blocks and removes it from the queues (cancelled). null when unknown. */
  abort(requestId: string): Sequence | null {
    return this.remove(requestId);
  }

  private remove(requestId: string): Sequence | null {
    const seq = this.sequencesById.get(requestId);
    if (seq === undefined) return null;
    const queue = seq.status === 'running' ? this.running : this.waiting;
    const index = queue.indexOf(seq);
    assert.ok(index >= 0, `request '${requestId}' missing from its ${seq.status} queue`);
    queue.splice(index, 1);
    this.kv.free(seq);
    this.sequencesById.delete(requestId);
    seq.status = 'finished';
    return seq;
  }

  private preemptLast(): void {
    const seq = this.running.pop();
    assert.ok(seq !== undefined);
    this.kv.free(seq);
    seq.numComputedTokens = 0;
    seq.status = 'waiting';
    seq.numPreemptions++;
    insertSorted(this.waiting, seq);
  }

  /** The next chunk's size: what is left, within budget; with replayGeneratedByDecode, prompt and generated tokens never share a chunk and generated ones go one at a time. */
  private numNewTokens(seq: Sequence, budget: number): number {
    const numLeft = Math.min(seq.numTokens - seq.numComputedTokens, budget);
    if (!this.opts.replayGeneratedByDecode) return numLeft;
    const numPromptLeft = seq.numPromptTokens - seq.numComputedTokens;
    return Math.min(numLeft, numPromptLeft > 0 ? numPromptLeft : 1);
  }

  private chunk(seq: Sequence, numNewTokens: number): ScheduledChunk {
    const startPosition = seq.numComputedTokens;
    return { sequence: seq, startPosition, numNewTokens, isLastChunk: startPosition + numNewTokens === seq.numTokens };
  }

  private rejectionReason(seq: Sequence): string | null {
    if (seq.numTokens > this.opts.maxModelLen) {
      return `${seq.numTokens} tokens exceed maxModelLen ${this.opts.maxModelLen}`;
    }
    // Every position the sequence may ever compute must fit the tiers with nothing else running,
    // or it would preempt everything, then itself, forever.
    const numTokensMax = Math.max(seq.numTokens, Math.min(seq.maxTotalTokens, this.opts.maxModelLen));
    return this.kv.fitsCapacity(seq.attention, numTokensMax) ? null : this.tooBigReason(seq, numTokensMax);
  }

  private tooBigReason(seq: Sequence, numTokens: number): string {
    const perToken = this.kv.bytesPerToken(seq.attention);
    const numPositions = this.kv.blocksNeeded(numTokens) * this.kv.blockSize;
    return (
      `${numTokens} tokens need ${numPositions * perToken.deviceBytes} device bytes and ` +
      `${numPositions * perToken.hostBytes} host bytes; capacity is ${this.kv.deviceCapacityBytes} and ` +
      `${this.kv.hostCapacityBytes}`
    );
  }
}

function insertSorted(queue: Sequence[], seq: Sequence): void {
  let lo = 0;
  let hi = queue.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareSchedulingOrder(queue[mid], seq) <= 0) lo = mid + 1;
    else hi = mid;
  }
  queue.splice(lo, 0, seq);
}
