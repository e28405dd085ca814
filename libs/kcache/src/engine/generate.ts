import { GenerationEngine } from './generation-engine';
import { FinishEvent, GenerationRequest, TokenEvent } from './generation-request';

export interface GenerationResult {
  readonly tokenIds: number[];
  readonly text: string;
  readonly logprobs: number[];
  readonly finish: FinishEvent;
}

/** Submits one request and collects its events. Rejects if the engine refuses the request. */
export function generate(engine: GenerationEngine, request: GenerationRequest): Promise<GenerationResult> {
  return new Promise((resolve, reject) => {
    const tokens: TokenEvent[] = [];
    try {
      engine.submit(request, (event) => {
        if (event.type === 'token') tokens.push(event);
        else
          resolve({
            tokenIds: tokens.map((t) => t.tokenId),
            text: tokens.map((t) => t.text).join(''),
            logprobs: tokens.flatMap((t) => (t.logprob === undefined ? [] : [t.logprob])),
            finish: event,
          });
      });
    } catch (error) {
      reject(error);
    }
  });
}
