import { performance } from 'node:perf_hooks';
import { Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { FinalEvent, GenerateRequest, GenerateResponse, GenerationClient } from '@kcache-serve/proto';

/** `PROTOCOL`: the stream ended OK but broke the API's promise (index gap, no or two FinalEvents). */
export type StreamStatus = keyof typeof Status | 'PROTOCOL';

/** What one Generate stream did, as the client saw it. Times in ms from the call. */
export interface TimedStream {
  readonly status: StreamStatus;
  /** Token events received (also for a stream that failed part way). */
  readonly numTokens: number;
  readonly ttftMs: number | null;
  /** Gaps between consecutive token events: numTokens - 1 of them. */
  readonly interTokenMs: readonly number[];
  readonly totalMs: number;
  readonly final: FinalEvent | null;
  /** Error details or the protocol break, for the first few failures a caller may print. */
  readonly detail: string | null;
}

/** Runs one Generate to its end and times it; never rejects. */
export function timedStream(
  client: GenerationClient,
  request: GenerateRequest,
  deadlineMs: number,
  metadata: Metadata,
  onToken?: (text: string) => void,
): Promise<TimedStream> {
  return new Promise((resolve) => {
    const startMs = performance.now();
    let lastTokenMs: number | null = null;
    let ttftMs: number | null = null;
    const interTokenMs: number[] = [];
    let numTokens = 0;
    let final: FinalEvent | null = null;
    let protocolError: string | null = null;
    const call = client.generate(request, metadata, { deadline: Date.now() + deadlineMs });
    call.on('data', (response: GenerateResponse) => {
      const event = response.event;
      if (event?.$case === 'token') {
        const nowMs = performance.now();
        if (lastTokenMs === null) ttftMs = nowMs - startMs;
        else interTokenMs.push(nowMs - lastTokenMs);
        lastTokenMs = nowMs;
        if (event.value.index !== numTokens) protocolError ??= `token index ${event.value.index}, expected ${numTokens}`;
        if (final !== null) protocolError ??= 'token after the FinalEvent';
        numTokens++;
        onToken?.(event.value.text);
      } else if (event?.$case === 'final') {
        if (final !== null) protocolError ??= 'two FinalEvents';
        final = event.value;
      }
    });
    const finish = (status: StreamStatus, detail: string | null) =>
      resolve({ status, numTokens, ttftMs, interTokenMs, totalMs: performance.now() - startMs, final, detail });
    call.on('error', (error: ServiceError) => finish(statusName(error.code), error.details || error.message));
    call.on('end', () => {
      if (final === null) protocolError ??= 'stream ended without a FinalEvent';
      if (protocolError !== null) finish('PROTOCOL', protocolError);
      else finish('OK', null);
    });
  });
}

export function statusName(code: number): StreamStatus {
  return (Status[code] as keyof typeof Status | undefined) ?? 'UNKNOWN';
}
