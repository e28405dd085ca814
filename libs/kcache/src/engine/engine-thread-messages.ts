import { ModelConfig } from '../model/model-config';
import { TierCapacity } from '../memory/tier-capacity';
import { EngineOptions } from './engine-options';
import { EngineStats } from './generation-engine';
import { GenerationEvent, GenerationRequest } from './generation-request';

/** What ThreadedEngine hands the thread at start (worker_threads workerData). */
export interface EngineThreadData {
  readonly options: EngineOptions;
}

/** Caller → engine thread. */
export type ToEngineThread =
  | { readonly type: 'submit'; readonly request: GenerationRequest }
  | { readonly type: 'cancel'; readonly requestId: string }
  | { readonly type: 'close' };

/** Engine thread → caller. Events of one request keep their order across messages. */
export type FromEngineThread =
  | {
      readonly type: 'ready';
      readonly modelConfig: ModelConfig;
      readonly capacity: TierCapacity;
      readonly maxNumSeqs: number;
      readonly stats: EngineStats;
    }
  | { readonly type: 'startFailed'; readonly name: string; readonly message: string }
  | { readonly type: 'events'; readonly events: readonly GenerationEvent[]; readonly stats?: EngineStats }
  | { readonly type: 'stats'; readonly stats: EngineStats }
  | { readonly type: 'closed'; readonly stats: EngineStats };
