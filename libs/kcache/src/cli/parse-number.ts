import { UsageError } from './cli-errors';

export function parseIntegerFlag(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) throw new UsageError(`--${name} expects an integer, got '${text}'`);
  return value;
}

export function parseFloatFlag(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} expects a number, got '${text}'`);
  return value;
}
