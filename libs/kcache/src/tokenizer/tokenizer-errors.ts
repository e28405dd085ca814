/** Tokenizer bytes that do not hold a valid llama2.c vocabulary. */
export class TokenizerFormatError extends Error {
  override readonly name = 'TokenizerFormatError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
