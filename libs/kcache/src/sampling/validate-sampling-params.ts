import { InvalidRequestError } from '../request/invalid-request-error';
import { SamplingParams } from './sampling-params';

/** How a caller names a sampling field in its errors; by default the field's own name ('topP'). */
export type SamplingFieldName = (field: keyof SamplingParams | 'sampling') => string;

/** Throws InvalidRequestError (field: 'temperature' | 'topK' | 'topP' | 'seed', or as `name` spells them) unless p is usable. */
export function validateSamplingParams(p: SamplingParams, name: SamplingFieldName = (field) => field): void {
  if (typeof p !== 'object' || p === null) {
    throw new InvalidRequestError(name('sampling'), 'must be an object');
  }
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new InvalidRequestError(name('temperature'), `must be a finite number >= 0, got ${p.temperature}`);
  }
  if (typeof p.topK !== 'number' || !Number.isSafeInteger(p.topK) || p.topK < 0) {
    throw new InvalidRequestError(name('topK'), `must be an integer >= 0 (0 disables), got ${p.topK}`);
  }
  if (typeof p.topP !== 'number' || !(p.topP > 0 && p.topP <= 1)) {
    throw new InvalidRequestError(name('topP'), `must be in (0, 1] (1 disables), got ${p.topP}`);
  }
  if (typeof p.seed !== 'number' || !Number.isSafeInteger(p.seed)) {
    throw new InvalidRequestError(name('seed'), `must be a safe integer, got ${p.seed}`);
  }
}
