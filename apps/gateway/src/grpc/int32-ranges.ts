import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { InvalidArgumentError } from '../errors/gateway-errors';

/**
 * The int32 fields of a message, by field number: the proto field's name, or a nested message's. A decoder
 * keeps the low 32 bits of a larger varint (2^40 arrives as 0), so the value sent is checked on the bytes.
 */
export interface Int32Fields {
  readonly [fieldNo: number]: string | { readonly fields: Int32Fields };
}

const GENERATE_REQUEST: Int32Fields = {
  4: 'max_new_tokens',
  9: 'priority',
  5: { fields: { 2: 'sampling.top_k' } },
  8: { fields: { 2: 'attention.top_n', 3: 'attention.dense_layers' } },
};

/** Request range checks by gRPC method path (lenientDecoding runs them before decoding). */
export const INT32_FIELDS_BY_METHOD: Readonly<Record<string, Int32Fields>> = {
  '/kcache.v1.Generation/Generate': GENERATE_REQUEST,
};

const TWO_TO_64 = 2n ** 64n;
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/**
 * Throws InvalidArgumentError naming the field when an int32 field's varint is outside int32 (the value
 * sent, read as a 64-bit two's complement integer, is in the message). Bytes that do not parse are left
 * to the decoder: anything else thrown here is not InvalidArgumentError.
 */
export function checkInt32Ranges(bytes: Uint8Array, fields: Int32Fields): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const field = fields[fieldNo];
    if (typeof field === 'string' && wireType === WireType.Varint) {
      const unsigned = BigInt(reader.uint64());
      const value = unsigned >= TWO_TO_64 / 2n ? unsigned - TWO_TO_64 : unsigned;
      if (value < INT32_MIN || value > INT32_MAX) throw new InvalidArgumentError(field, `${value} is out of range: must fit a 32-bit signed integer`);
    } else if (typeof field === 'object' && wireType === WireType.LengthDelimited) {
      checkInt32Ranges(reader.bytes(), field.fields);
    } else {
      reader.skip(wireType, fieldNo);
    }
  }
}
