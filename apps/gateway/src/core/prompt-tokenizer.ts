import { ChatMessage } from '@kcache-serve/proto';

/** A tokenizer's chat side; absent when the model has no chat template. */
export type ChatEncoder = (messages: readonly ChatMessage[], options: { readonly addGenerationPrompt: boolean }) => number[];

/** What the gateway needs of the served model's tokenizer. */
export interface PromptTokenizer {
  encode(text: string): number[];
  /** Absent when the model has no chat template. */
  readonly encodeChat?: ChatEncoder;
}
