import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FinishReason, TokenEvent } from '@kcache-serve/proto';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { RequestStream, StreamEvent } from './request-stream';

function open(): { stream: RequestStream; events: StreamEvent[]; ended: RequestStream[] } {
  const events: StreamEvent[] = [];
  const ended: RequestStream[] = [];
  const stream = new RequestStream('r', 3, Buffer.alloc(32), (e) => events.push(e), new GatewayMetrics(async () => 0), (s) => ended.push(s));
  return { stream, events, ended };
}

const token = (index: number): TokenEvent => ({ index, tokenId: 100 + index, text: `t${index}`, logprob: undefined, topLogprobs: [] });
const indices = (events: StreamEvent[]) => events.flatMap((e) => (e.$case === 'token' ? [e.value.index] : []));

describe('RequestStream', () => {
  it('forwards tokens in index order, holding back those after a gap', () => {
    const { stream, events } = open();
    stream.acceptToken(token(0));
    stream.acceptToken(token(2));
    assert.deepEqual(indices(events), [0]);
    stream.acceptToken(token(1));
    assert.deepEqual(indices(events), [0, 1, 2]);
  });

  it('drops indices already forwarded (a resumed attempt repeating them)', () => {
    const { stream, events } = open();
    for (const i of [0, 1, 2, 1, 2, 3, 0]) stream.acceptToken(token(i));
    assert.deepEqual(indices(events), [0, 1, 2, 3]);
  });

  it('ends once: one final with usage counting forwarded tokens, nothing after', () => {
    const { stream, events, ended } = open();
    stream.acceptToken(token(0));
    stream.markStarted();
    stream.finish(FinishReason.FINISH_REASON_EOS);
    stream.finish(FinishReason.FINISH_REASON_LENGTH);
    stream.acceptToken(token(1));
    stream.fail(new Error('late'));
    assert.equal(events.length, 2);
    const final = events[1];
    assert.ok(final.$case === 'final');
    assert.equal(final.value.finishReason, FinishReason.FINISH_REASON_EOS);
    assert.deepEqual(final.value.usage, { promptTokens: 3, completionTokens: 1 });
    assert.deepEqual(ended, [stream]);
  });

  it('abandon ends silently', () => {
    const { stream, events, ended } = open();
    stream.abandon();
    stream.acceptToken(token(0));
    assert.deepEqual(events, []);
    assert.ok(stream.isAbandoned && stream.ended);
    assert.equal(ended.length, 1);
  });
});
