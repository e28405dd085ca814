import { parentPort, workerData } from 'node:worker_threads';
import { createEngine } from './create-engine';
import { EngineThreadData, FromEngineThread, ToEngineThread } from './engine-thread-messages';
import { GenerationEvent } from './generation-request';
import { LlmEngine } from './llm-engine';

/**
 * The engine thread of ThreadedEngine: owns an LlmEngine and its decode loop, so that the caller's
 * event loop stays free for I/O while a step computes. The events of one step leave as one message.
 */

/**
 * Stats ride along with events whenever the batch's make-up changed (a sequence joined, waits or left) and
 * otherwise at most this often (token counters), and go on their own when idle.
 */
const STATS_INTERVAL_MS = 20;

function post(message: FromEngineThread): void {
  parentPort!.postMessage(message);
}

function serve(engine: LlmEngine): void {
  let events: GenerationEvent[] = [];
  let isFlushQueued = false;
  let lastStatsMs = 0;
  let lastPosted = { running: -1, waiting: -1 };
  const stats = () => {
    lastStatsMs = performance.now();
    const s = engine.stats();
    lastPosted = { running: s.numRunning, waiting: s.numWaiting };
    return s;
  };
  const hasBatchChanged = () => {
    const now = engine.numSequences;
    return now.running !== lastPosted.running || now.waiting !== lastPosted.waiting;
  };
  // Events emitted during a step are sent when the step's synchronous part ends.
  const flush = () => {
    isFlushQueued = false;
    const batch = events;
    const withStats = hasBatchChanged() || performance.now() - lastStatsMs >= STATS_INTERVAL_MS;
    events = [];
    post({ type: 'events', events: batch, ...(withStats ? { stats: stats() } : {}) });
  };
  const onEvent = (event: GenerationEvent) => {
    events.push(event);
    if (!isFlushQueued) {
      isFlushQueued = true;
      queueMicrotask(flush);
    }
  };
  const statsTimer = setInterval(() => {
    if (hasBatchChanged() || performance.now() - lastStatsMs >= STATS_INTERVAL_MS) post({ type: 'stats', stats: stats() });
  }, STATS_INTERVAL_MS * 5);

  parentPort!.on('message', (message: ToEngineThread) => {
    switch (message.type) {
      case 'submit':
        try {
          engine.submitValidated(message.request, onEvent);
        } catch (error) {
          // ThreadedEngine.submit validated the fields and ran the same capacity check; whatever still fails here
          // ends the request.
          const { requestId, promptTokenIds } = message.request;
          const reason = error instanceof Error ? error.message : String(error);
          onEvent({ type: 'finish', requestId, reason: 'cancelled', promptTokens: promptTokenIds.length, completionTokens: 0, error: reason });
        }
        break;
      case 'cancel':
        engine.cancel(message.requestId);
        break;
      case 'close':
        clearInterval(statsTimer);
        void engine.close().then(() => {
          if (events.length > 0) flush();
          post({ type: 'closed', stats: engine.stats() });
          parentPort!.close();
        });
        break;
    }
  });
  post({ type: 'ready', modelConfig: engine.modelConfig, capacity: engine.kv.capacity, maxNumSeqs: engine.options.maxNumSeqs, stats: stats() });
}

if (parentPort) {
  const { options } = workerData as EngineThreadData;
  createEngine(options).then(serve, (error: unknown) => {
    const e = error instanceof Error ? error : new Error(String(error));
    post({ type: 'startFailed', name: e.name, message: e.message });
  });
}
