import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The secret that lets one job write into one client stream over the Relay.
 *
 * A gateway makes one per queued job (RELAY_CAPABILITY_BYTES random bytes, base64url in
 * GenerationJobData.relayCapability); the worker running the job sends it, decoded, with every relay
 * event; the gateway accepts an event for a stream only when it carries that stream's capability. Anyone
 * who can read the queue (Redis) can read it: the relay is as safe as Redis is.
 */
export const RELAY_CAPABILITY_BYTES = 32;

/** base64url of RELAY_CAPABILITY_BYTES bytes (no padding). */
export const RELAY_CAPABILITY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newRelayCapability(): string {
  return randomBytes(RELAY_CAPABILITY_BYTES).toString('base64url');
}

export function relayCapabilityBytes(capability: string): Buffer {
  return Buffer.from(capability, 'base64url');
}

/** Constant time in the contents; a wrong length (not secret: every capability has the same) is false at once. */
export function isSameRelayCapability(presented: Uint8Array, expected: Uint8Array): boolean {
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
