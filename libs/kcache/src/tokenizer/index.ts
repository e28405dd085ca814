export { Llama2cTokenizer, MIN_LLAMA2C_VOCAB_SIZE } from './llama2c-tokenizer';
export { ChatMessage, ChatTemplateOptions, EncodeOptions, Tokenizer } from './tokenizer';
export { Llama2cVocabulary, parseLlama2cVocabulary, serializeLlama2cVocabulary } from './llama2c-vocabulary';
export { StreamingDetokenizer } from './streaming-detokenizer';
export { createSyntheticTokenizer } from './synthetic-tokenizer';
export { TokenizerFormatError } from './tokenizer-errors';
