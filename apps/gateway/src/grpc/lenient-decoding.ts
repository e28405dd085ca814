import { ServiceDefinition } from '@grpc/grpc-js';

/**
 * A request message that did not decode (truncated, wrong wire types, invalid UTF-8 in a string). grpc-js
 * would answer such bytes with INTERNAL; with lenientDecoding the handler gets this instead and answers
 * INVALID_ARGUMENT, which is what they are.
 */
export class MalformedRequest {
  constructor(readonly cause: unknown) {}
}

export function isMalformed(request: unknown): request is MalformedRequest {
  return request instanceof MalformedRequest;
}

/** The service with each method's request decoder returning MalformedRequest instead of throwing. */
export function lenientDecoding<S extends ServiceDefinition>(service: S): S {
  const methods = Object.entries(service).map(([name, method]) => {
    const decode = method.requestDeserialize;
    const lenient = (bytes: Buffer): unknown => {
      try {
        return decode(bytes);
      } catch (error) {
        return new MalformedRequest(error);
      }
    };
    return [name, { ...method, requestDeserialize: lenient }];
  });
  return Object.fromEntries(methods) as S;
}
