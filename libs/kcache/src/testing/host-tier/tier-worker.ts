/**
 * A worker process for the multi-process tests and benchmark: an engine attached to a shared host
 * tier, driven over Node's IPC channel. Start it with fork(thisFile, [JSON of TierWorkerConfig]).
 *   in:  { type: 'generate', request }       → out { type: 'first-token', requestId } then { type: 'result', requestId, tokenIds, reason, error? }
 *        { type: 'generate-batch', requests } → the same per request, plus { type: 'batch-started', stats } once every request has a token
 *        { type: 'stats', id }               → out { type: 'stats', id, stats }
 *        { type: 'close' }                    → out { type: 'closed' }, then exits
 *   out at start: { type: 'ready', pid, slot } or { type: 'start-error', name, message }
 */
import { createEngine } from '../../engine/create-engine';
import { EngineOptions } from '../../engine/engine-options';
import { GenerationRequest } from '../../engine/generation-request';
import { LlmEngine } from '../../engine/llm-engine';

export interface TierWorkerConfig {
  readonly engine: EngineOptions;
}

export type TierWorkerMessage =
  | { readonly type: 'generate'; readonly request: GenerationRequest }
  | { readonly type: 'generate-batch'; readonly requests: readonly GenerationRequest[] }
  | { readonly type: 'stats'; readonly id: number }
  | { readonly type: 'close' };

const send = (message: object) => process.send?.(message);

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as TierWorkerConfig;
  let engine: LlmEngine;
  try {
    engine = await createEngine(config.engine);
  } catch (error) {
    const e = error as Error;
    send({ type: 'start-error', name: e.name, message: e.message });
    process.exit(1);
  }
  const submit = (request: GenerationRequest, onFirstToken: () => void) => {
    const tokenIds: number[] = [];
    try {
      engine.submit(request, (event) => {
        if (event.type === 'token') {
          if (tokenIds.length === 0) {
            send({ type: 'first-token', requestId: request.requestId });
            onFirstToken();
          }
          tokenIds.push(event.tokenId);
        } else {
          send({ type: 'result', requestId: request.requestId, tokenIds, reason: event.reason, error: event.error });
        }
      });
    } catch (error) {
      send({ type: 'result', requestId: request.requestId, tokenIds, reason: 'rejected', error: (error as Error).message });
    }
  };
  process.on('message', (message: TierWorkerMessage) => {
    if (message.type === 'generate') submit(message.request, () => undefined);
    else if (message.type === 'generate-batch') {
      let numStarted = 0;
      for (const request of message.requests) {
        submit(request, () => {
          if (++numStarted === message.requests.length) send({ type: 'batch-started', stats: engine.stats() });
        });
      }
    } else if (message.type === 'stats') send({ type: 'stats', id: message.id, stats: engine.stats() });
    else if (message.type === 'close') {
      void engine.close().then(() => {
        send({ type: 'closed' });
        process.disconnect();
      });
    }
  });
  send({ type: 'ready', pid: process.pid, slot: engine.stats().hostTier?.slot ?? null });
}

void main();
