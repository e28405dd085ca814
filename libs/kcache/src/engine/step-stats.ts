import { StepPlan } from '../runtime/step-plan';
import { SchedulerOutput } from '../scheduler/scheduler-output';

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
