import { Server, ServerDuplexStream, status as Status } from '@grpc/grpc-js';

/** The slice of grpc-js's Server this relies on: its handler lookup by method path (grpc-js 1.14, pinned). */
interface HandlerLookup {
  _retrieveHandler(path: string): unknown;
}

/**
 * grpc-js answers a call to a method no service registered with UNIMPLEMENTED before any interceptor runs,
 * so a caller without an API key could learn which methods exist. This routes such calls to a handler that
 * answers UNIMPLEMENTED itself, so they pass the server's interceptors (the API key check) first, like every
 * other call. The handler is a bidi one: it fits unary and streaming calls alike and reads no message.
 */
export function answerUnknownMethodsBehindInterceptors(server: Server): void {
  const lookup = server as unknown as HandlerLookup;
  if (typeof lookup._retrieveHandler !== 'function') {
    throw new Error('@grpc/grpc-js no longer has Server._retrieveHandler: unknown methods would bypass the API key check');
  }
  const retrieveRegistered = lookup._retrieveHandler.bind(server);
  lookup._retrieveHandler = (path: string) => retrieveRegistered(path) ?? unimplementedHandler(path);
}

function unimplementedHandler(path: string) {
  return {
    type: 'bidi',
    path,
    func: (call: ServerDuplexStream<Buffer, Buffer>) => call.emit('error', { code: Status.UNIMPLEMENTED, details: `the server does not implement the method ${path}` }),
    serialize: (message: Buffer) => message,
    deserialize: (bytes: Buffer) => bytes,
  };
}
