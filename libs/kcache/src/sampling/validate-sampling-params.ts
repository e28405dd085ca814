import { InvalidRequestError } from './sampling-errors';
import { SamplingParams } from './sampling-params';

/** Throws InvalidRequestError (field: 'temperature' | 'topK' | 'topP' | 'seed') unless p is usable. */
export function validateSamplingParams(p: SamplingParams): void {
  if (typeof p !== 'object' || p === null) {
    throw new InvalidRequestError('sampling params must be an object', 'sampling');
  }
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new InvalidRequestError(`temperature must be a finite number >= 0, got ${p.temperature}`, 'temperature');
  }
  if (typeof p.topK !== 'number' || !Number.isSafeInteger(p.topK) || p.topK < 0) {
    throw new InvalidRequestError(`topK must be an integer >= 0 (0 disables), got ${p.topK}`, 'topK');
  }
  if (typeof p.topP !== 'number' || !(p.topP > 0 && p.topP <= 1)) {
    throw new InvalidRequestError(`topP must be in (0, 1] (1 disables), got ${p.topP}`, 'topP');
  }
  if (typeof p.seed !== 'number' || !Number.isSafeInteger(p.seed)) {
    throw new InvalidRequestError(`seed must be a safe integer, got ${p.seed}`, 'seed');
  }
}
