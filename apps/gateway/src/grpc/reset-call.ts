import { constants, ServerHttp2Stream } from 'node:http2';

/**
 * Ends a server call at once with RST_STREAM (default ENHANCE_YOUR_CALM, which clients report as
 * RESOURCE_EXHAUSTED). grpc-js has no public way to do this: a status waits behind unsent messages, and a
 * client that reads nothing never lets them go. So this walks grpc-js 1.14's internals — the handler's
 * call (`.call`), then `.nextCall` through the interceptors to the base call holding the HTTP/2 `.stream`.
 * Returns false when the stream is not found (then the caller falls back to a status).
 */
export function resetCall(call: object, code: number = constants.NGHTTP2_ENHANCE_YOUR_CALM): boolean {
  let node = (call as { call?: unknown }).call;
  for (let depth = 0; node !== null && typeof node === 'object' && depth < 16; depth++) {
    const stream = (node as { stream?: unknown }).stream;
    if (isHttp2Stream(stream)) {
      if (!stream.closed && !stream.destroyed) stream.close(code);
      return true;
    }
    node = (node as { nextCall?: unknown }).nextCall;
  }
  return false;
}

function isHttp2Stream(value: unknown): value is ServerHttp2Stream {
  return value !== null && typeof value === 'object' && 'rstCode' in value && typeof (value as ServerHttp2Stream).close === 'function';
}
