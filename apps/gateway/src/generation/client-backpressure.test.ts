import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientBackpressure } from './client-backpressure';

describe('ClientBackpressure', () => {
  it('trips once more than maxBufferedEvents are written while congested', () => {
    let numTrips = 0;
    const backpressure = new ClientBackpressure({ maxBufferedEvents: 3, timeoutMs: 60_000 }, () => numTrips++);
    for (let i = 0; i < 10; i++) backpressure.wrote(true);
    backpressure.wrote(false); // congested: 1 buffered
    backpressure.wrote(false);
    backpressure.wrote(true);
    assert.equal(numTrips, 0);
    backpressure.wrote(false); // 4 > 3
    backpressure.wrote(false);
    assert.equal(numTrips, 1);
  });

  it('a drain resets the count; dispose stops the timer', async () => {
    let numTrips = 0;
    const backpressure = new ClientBackpressure({ maxBufferedEvents: 2, timeoutMs: 30 }, () => numTrips++);
    backpressure.wrote(false);
    backpressure.wrote(false);
    backpressure.drained();
    backpressure.wrote(false);
    backpressure.wrote(false);
    assert.equal(numTrips, 0);
    backpressure.dispose();
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(numTrips, 0);
  });

  it('trips when a congested client does not drain within timeoutMs', async () => {
    let numTrips = 0;
    const backpressure = new ClientBackpressure({ maxBufferedEvents: 100, timeoutMs: 30 }, () => numTrips++);
    backpressure.wrote(false);
    assert.equal(backpressure.isCongested, true);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(numTrips, 1);
  });
});
