import { TokenizerFormatError } from './tokenizer-errors';

/** Contents of a llama2.c tokenizer file; record i is token id i. */
export interface Llama2cVocabulary {
  readonly maxTokenLength: number;
  /** Raw piece bytes (UTF-8 text for SentencePiece vocabularies; byte tokens are the text `<0xHH>`). */
  readonly pieces: readonly Uint8Array[];
  readonly scores: Float32Array;
}

/**
 * Layout: int32 max_token_length, then vocabSize records of
 * { float32 score, int32 byteLength, byteLength raw bytes }, little-endian. The count is not stored.
 */
export function parseLlama2cVocabulary(bytes: Uint8Array, vocabSize: number, source: string): Llama2cVocabulary {
  if (!Number.isSafeInteger(vocabSize) || vocabSize <= 0) {
    throw new TokenizerFormatError(`${source}: vocab size must be a positive integer, got ${vocabSize}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (offset: number, count: number, what: string): void => {
    if (offset + count > bytes.byteLength) {
      throw new TokenizerFormatError(
        `${source}: truncated file: ${what} needs bytes ${offset}..${offset + count}, file has ${bytes.byteLength}`,
      );
    }
  };
  need(0, 4, 'max_token_length');
  const maxTokenLength = view.getInt32(0, true);
  const pieces: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    need(offset, 8, `record ${id} header`);
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    if (length < 0) throw new TokenizerFormatError(`${source}: record ${id} has negative length ${length}`);
    offset += 8;
    need(offset, length, `record ${id} piece`);
    pieces.push(new Uint8Array(bytes.subarray(offset, offset + length)));
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw new TokenizerFormatError(
      `${source}: ${bytes.byteLength - offset} trailing bytes after ${vocabSize} records (wrong vocab size?)`,
    );
  }
  return { maxTokenLength, pieces, scores };
}

export function serializeLlama2cVocabulary(vocabulary: Llama2cVocabulary): Uint8Array {
  const totalBytes = vocabulary.pieces.reduce((sum, piece) => sum + 8 + piece.byteLength, 4);
  const bytes = new Uint8Array(totalBytes);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, vocabulary.maxTokenLength, true);
  let offset = 4;
  vocabulary.pieces.forEach((piece, id) => {
    view.setFloat32(offset, vocabulary.scores[id], true);
    view.setInt32(offset + 4, piece.byteLength, true);
    bytes.set(piece, offset + 8);
    offset += 8 + piece.byteLength;
  });
  return bytes;
}
