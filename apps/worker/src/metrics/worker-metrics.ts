import type { GenerationEngine } from '@kcache-serve/kcache';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * Worker metrics, read from engine.stats() at scrape time (plus a sampler for the peak batch size, which a
 * scrape every few seconds would miss), with Node's and the process's default metrics. Only counters and
 * gauges that sum across workers: rates come from rate() over the counters (tokens/s is
 * rate(kcache_worker_generated_tokens_total), the prefix hit rate rate(hits) / rate(lookups)). Batch sharing
 * shows as generated_tokens_total / engine_steps_total > 1 and in kcache_worker_batch_size_max.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly sampler: NodeJS.Timeout;
  private maxBatchSize = 0;

  constructor(
    private readonly engine: GenerationEngine,
    numActiveJobs: () => number,
    sampleIntervalMs = 100,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const stats = () => engine.stats();
    new Gauge({ name: 'kcache_worker_active_jobs', help: 'BullMQ jobs this worker is processing', registers, collect() { this.set(numActiveJobs()); } });
    new Gauge({ name: 'kcache_worker_running_sequences', help: 'Sequences in the engine batch', registers, collect() { this.set(stats().numRunning); } });
    new Gauge({ name: 'kcache_worker_waiting_sequences', help: 'Sequences admitted to the engine but not running', registers, collect() { this.set(stats().numWaiting); } });
    new Gauge({
      name: 'kcache_worker_sequence_capacity',
      help: 'Jobs this worker could run at once now: the ones running plus the engine\'s free slots (kcache_worker_active_jobs over this is its load)',
      registers,
      collect() { this.set(numActiveJobs() + engine.numFreeSlots()); },
    });
    new Gauge({ name: 'kcache_worker_batch_size', help: 'Sequences in the last decode step', registers, collect() { this.set(stats().lastBatchSize); } });
    const self = this;
    new Gauge({ name: 'kcache_worker_batch_size_max', help: 'Largest decode batch seen (sampled)', registers, collect() { this.set(self.maxBatchSize); } });
    new Gauge({ name: 'kcache_worker_kv_used_bytes', help: 'KV memory in use by tier (device, host)', labelNames: ['tier'], registers,
      collect() {
        const s = stats();
        this.set({ tier: 'device' }, s.device.usedBytes);
        this.set({ tier: 'host' }, s.host.usedBytes);
      },
    });
    new Gauge({ name: 'kcache_worker_kv_capacity_bytes', help: 'KV memory capacity by tier (device, host)', labelNames: ['tier'], registers,
      collect() {
        const s = stats();
        this.set({ tier: 'device' }, s.device.capacityBytes);
        this.set({ tier: 'host' }, s.host.capacityBytes);
      },
    });
    new Gauge({ name: 'kcache_worker_kv_cache_usage_ratio', help: 'KV memory in use over capacity by tier, 0..1 (as vllm:gpu_cache_usage_perc)', labelNames: ['tier'], registers,
      collect() {
        const s = stats();
        this.set({ tier: 'device' }, ratio(s.device.usedBytes, s.device.capacityBytes));
        this.set({ tier: 'host' }, ratio(s.host.usedBytes, s.host.capacityBytes));
      },
    });
    // The node's shared host tier (HOST_TIER=shared): node-wide figures, the same from every worker of the node
    // (aggregate them with max by node, not sum); absent without a shared tier.
    const hostTierGauge = (name: string, help: string, read: (tier: NonNullable<ReturnType<typeof stats>['hostTier']>) => number) =>
      new Gauge({ name, help, registers, collect() { const tier = stats().hostTier; if (tier) this.set(read(tier)); } });
    hostTierGauge('kcache_host_tier_used_bytes', 'Shared host tier bytes in blocks some live worker holds, node-wide', (t) => t.usedBytes);
    hostTierGauge('kcache_host_tier_reserved_bytes', 'Shared host tier bytes promised to admitted sequences, not yet taken, node-wide', (t) => t.reservedBytes);
    hostTierGauge('kcache_host_tier_evictable_bytes', 'Shared host tier bytes of prefix blocks no one holds (kept for hits), node-wide', (t) => t.evictableBytes);
    hostTierGauge('kcache_host_tier_capacity_bytes', 'Shared host tier capacity, node-wide', (t) => t.capacityBytes);
    hostTierGauge('kcache_host_tier_shared_blocks', 'Prefix blocks held by at least one sequence (stored once however many use them), node-wide', (t) => t.numSharedBlocks);
    hostTierGauge('kcache_host_tier_live_workers', 'Workers attached to the node\'s shared host tier', (t) => t.numLiveWorkers);
    monotonic(registers, 'kcache_host_tier_prefix_lookups_total', 'Prefix block lookups, node-wide as seen by this worker (hit rate: rate(hits) / rate(lookups))', () => stats().hostTier?.prefixLookups ?? 0);
    monotonic(registers, 'kcache_host_tier_prefix_hits_total', 'Prefix block lookups that hit, node-wide as seen by this worker', () => stats().hostTier?.prefixHits ?? 0);
    monotonic(registers, 'kcache_host_tier_reclaimed_blocks_total', 'Blocks of dead workers reclaimed (node-wide count as seen by this worker)', () => stats().hostTier?.numReclaimedBlocks ?? 0);
    monotonic(registers, 'kcache_worker_host_v_rows_gathered_total', 'V rows KCache attention read from the host tier (rate() gives rows/s)', () => stats().numHostVRowsGathered ?? 0);
    monotonic(registers, 'kcache_worker_generated_tokens_total', 'Tokens generated by the engine (rate() gives tokens/s)', () => stats().numGeneratedTokens);
    monotonic(registers, 'kcache_worker_engine_steps_total', 'Engine steps run', () => stats().numSteps);
    monotonic(registers, 'kcache_worker_preemptions_total', 'Sequences preempted for lack of KV memory', () => stats().numPreemptions);
    this.sampler = setInterval(() => this.sample(), sampleIntervalMs);
    this.sampler.unref();
  }

  close(): void {
    clearInterval(this.sampler);
  }

  private sample(): void {
    this.maxBatchSize = Math.max(this.maxBatchSize, this.engine.stats().lastBatchSize);
  }
}

function ratio(used: number, capacity: number): number {
  return capacity > 0 ? used / capacity : 0;
}

/** A counter mirroring an engine total (which only grows). */
function monotonic(registers: Registry[], name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const value = read();
      if (value > seen) this.inc(value - seen);
      seen = Math.max(seen, value);
    },
  });
}
