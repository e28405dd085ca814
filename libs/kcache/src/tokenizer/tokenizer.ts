export interface EncodeOptions {
  /**
   * Add the tokens the model expects before a text (default true). llama2.c: BOS. Hugging Face:
   * whatever the tokenizer's post-processor adds (BOS for Llama and Mistral, nothing for Qwen2).
   */
  readonly bos?: boolean;
  /** Append EOS (default false). */
  readonly eos?: boolean;
}

/**
 * What the engine needs from a tokenizer. decodeTokenBytes gives one token's raw bytes (a token
 * may hold part of a UTF-8 character), so a stream of tokens can be turned into text incrementally.
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  encode(text: string, options?: EncodeOptions): number[];
  /** UTF-8 text of `tokens`, control tokens skipped; `previousToken` is the token before tokens[0]. */
  decode(tokens: readonly number[], previousToken?: number | null): string;
  decodeTokenBytes(prevToken: number | null, token: number): Uint8Array;
  /** Tokens that mark structure (BOS, EOS, chat markers) and add no text. */
  isControlToken(token: number): boolean;
  /**
   * A conversation through the model's chat template, encoded; absent when the tokenizer has no
   * template (llama2.c). Throws InvalidRequestError when the template rejects the messages.
   */
  encodeChat?(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
}

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, so the model writes the reply (default true). */
  readonly addGenerationPrompt?: boolean;
  /** Further template variables (tools, documents, …). */
  readonly variables?: Readonly<Record<string, unknown>>;
}
