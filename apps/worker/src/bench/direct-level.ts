import type { GenerationEngine, GenerationRequest } from '@kcache-serve/kcache';
import { LevelResult, runClosedLoop } from './latency-levels';

/**
 * A closed-loop level submitted straight to an engine in this process (no gateway, queue or relay): the
 * serving benchmarks' baseline. With the engine configured as a worker's, serving ÷ direct is the serving
 * path's overhead.
 */
export function directLevel(engine: GenerationEngine, concurrency: number, numRequests: number, request: (i: number) => GenerationRequest): Promise<LevelResult> {
  return runClosedLoop(concurrency, numRequests, (i, onToken) => {
    return new Promise((resolve) => {
      let numTokens = 0;
      engine.submit(request(i), (event) => {
        if (event.type === 'token') {
          numTokens++;
          onToken();
        } else resolve({ numTokens, isError: event.error !== undefined });
      });
    });
  });
}
