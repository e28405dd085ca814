import { GatewayConnection } from './gateway-client';
import { UsageError } from './usage-error';

export function parseIntFlag(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) throw new UsageError(`--${name} expects an integer, got '${text}'`);
  if (value < min) throw new UsageError(`--${name} must be >= ${min}, got ${value}`);
  return value;
}

export function parseNumberFlag(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} expects a number, got '${text}'`);
  if (value < min) throw new UsageError(`--${name} must be >= ${min}, got ${value}`);
  return value;
}

/** `host:port` (IPv6 as `[::1]:port`), as @grpc/grpc-js takes it. */
export function parseTarget(text: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(text)) throw new UsageError(`--target expects host:port, got '${text}'`);
  return text;
}

/** Runs a command body: usage errors (ours and node:util parseArgs') → one line and the usage, exit 2. */
export async function withUsage(command: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const isUsage = error instanceof UsageError || String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    if (!isUsage) throw error;
    process.stderr.write(`${command}: ${(error as Error).message}\n${usage}\n`);
    return 2;
  }
}

/** The values of CONNECTION_FLAGS → a GatewayConnection. */
export function parseConnection(
  values: { target: string; 'api-key'?: string; tls: boolean; 'ca-file'?: string },
  env: NodeJS.ProcessEnv = process.env,
): GatewayConnection {
  if (values['ca-file'] !== undefined && !values.tls) throw new UsageError('--ca-file needs --tls');
  const apiKey = values['api-key'] ?? env.KCACHE_API_KEY ?? null;
  return { target: parseTarget(values.target), apiKey: apiKey === '' ? null : apiKey, isTls: values.tls, caFile: values['ca-file'] ?? null };
}
