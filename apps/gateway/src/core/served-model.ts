import { loadModel, ModelConfig } from '@kcache-serve/kcache';
import { PromptTokenizer } from '../generation/request-validator';

/** What the gateway needs of the model: its limits and its tokenizer (no weights are kept). */
export interface ServedModel {
  readonly name: string;
  readonly config: ModelConfig;
  readonly tokenizer: PromptTokenizer;
}

export function loadServedModel(spec: string): ServedModel {
  const model = loadModel(spec);
  return { name: model.name, config: model.weights.config, tokenizer: model.tokenizer };
}
