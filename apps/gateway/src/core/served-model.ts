import { HfTokenizer, loadModel, ModelConfig, Tokenizer } from '@kcache-serve/kcache/light';
import { PromptTokenizer } from './prompt-tokenizer';

/** What the gateway needs of the model: its limits and its tokenizer (no weights are kept). */
export interface ServedModel {
  readonly name: string;
  readonly config: ModelConfig;
  readonly tokenizer: PromptTokenizer;
}

export function loadServedModel(spec: string): ServedModel {
  const model = loadModel(spec);
  return { name: model.name, config: model.weights.config, tokenizer: promptTokenizerOf(model.tokenizer) };
}

/** encodeChat only where the model has a chat template (a Hugging Face or GGUF tokenizer may have none; llama2.c never). */
export function promptTokenizerOf(tokenizer: Tokenizer): PromptTokenizer {
  const encode = (text: string) => tokenizer.encode(text);
  const encodeChat = tokenizer.encodeChat?.bind(tokenizer);
  const hasChatTemplate = encodeChat !== undefined && !(tokenizer instanceof HfTokenizer && tokenizer.chatTemplate === null);
  return hasChatTemplate ? { encode, encodeChat } : { encode };
}
