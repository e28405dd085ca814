import { ServiceDefinition } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { checkInt32Ranges, INT32_FIELDS_BY_METHOD } from './int32-ranges';

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

/**
 * The service with each method's request decoder returning MalformedRequest instead of throwing. Methods
 * in INT32_FIELDS_BY_METHOD first have their int32 fields range-checked: an out-of-range value gives a
 * MalformedRequest whose cause is the InvalidArgumentError naming the field.
 */
export function lenientDecoding<S extends ServiceDefinition>(service: S): S {
  const methods = Object.entries(service).map(([name, method]) => {
    const decode = method.requestDeserialize;
    const int32Fields = INT32_FIELDS_BY_METHOD[method.path];
    const lenient = (bytes: Buffer): unknown => {
      if (int32Fields !== undefined) {
        try {
          checkInt32Ranges(bytes, int32Fields);
        } catch (error) {
          if (error instanceof InvalidArgumentError) return new MalformedRequest(error);
          // Bytes that do not parse: the decoder says so below.
        }
      }
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
