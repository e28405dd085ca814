import { SharedHostVBlocks, SharedHostVStats } from '../host-tier/shared-host-v-blocks';
import { StepPlan } from '../runtime/step-plan';
import { SchedulerOutput } from '../scheduler/scheduler-output';
import { EngineParts } from './engine-parts';
import { EngineStats } from './generation-engine';

/** EngineStats, plus host-V gather figures and, with a shared host tier, its own (host is then node-wide). */
export type LlmEngineStats = EngineStats & { numHostVRowsGathered: number; hostVRowsPerSecond: number; hostTier?: SharedHostVStats };

/** The engine's step counters (EngineStats' numGeneratedTokens, numSteps, numPreemptions, lastBatchSize). */
export class StepStats {
  numGeneratedTokens = 0;
  numSteps = 0;
  numPreemptions = 0;
  /** Decodes in the last step's graph runs. */
  lastBatchSize = 0;
  /** Chunks the last step scheduled (0: nothing could run). */
  numScheduledLastStep = 0;

  recordSchedule(output: SchedulerOutput): void {
    this.numScheduledLastStep = output.scheduled.length;
    this.numSteps++;
    this.numPreemptions += output.preempted.length;
  }

  recordPlan(plan: StepPlan): void {
    let batchSize = 0;
    for (const group of plan.decodeGroups) batchSize += group.items.length;
    this.lastBatchSize = batchSize;
  }

  counters(): { numGeneratedTokens: number; numSteps: number; numPreemptions: number; lastBatchSize: number } {
    return { numGeneratedTokens: this.numGeneratedTokens, numSteps: this.numSteps, numPreemptions: this.numPreemptions, lastBatchSize: this.lastBatchSize };
  }
}

export function llmEngineStats(parts: EngineParts, steps: StepStats, sharedHost: SharedHostVBlocks | null): LlmEngineStats {
  const usage = parts.kv.usage();
  return {
    numRunning: parts.scheduler.numRunning,
    numWaiting: parts.scheduler.numWaiting,
    device: { usedBytes: usage.device.usedBytes, capacityBytes: usage.device.capacityBytes },
    host: { usedBytes: usage.host.usedBytes, capacityBytes: usage.host.capacityBytes },
    ...steps.counters(),
    numHostVRowsGathered: parts.runner.gatherStats.numHostVRows,
    hostVRowsPerSecond: parts.runner.gatherStats.hostVRowsPerSecond,
    ...(sharedHost ? { hostTier: sharedHost.stats() } : {}),
  };
}
