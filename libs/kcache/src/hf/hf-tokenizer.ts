import { Tokenizer as TokenizerLibrary } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatMessage, ChatTemplateOptions, EncodeOptions, Tokenizer } from '../tokenizer/tokenizer';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';
import { concatBytes } from '../tokenizer/reference-decoding';
import { byteLevelTokenBytes } from './byte-level';
import { ChatTemplate } from './chat-template';
import { SPM_SPACE } from './tokenizer-json';

export const HF_TOKENIZER_FILE = 'tokenizer.json';
export const HF_TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const HF_CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** How token strings become bytes, read from tokenizer.json's decoder. */
type PieceStyle = { readonly kind: 'byteLevel' } | { readonly kind: 'sentencePiece'; readonly stripLeadingSpace: boolean };

/** Ids the model's config.json gives, used where the tokenizer files name none. */
export interface TokenizerDefaults {
  readonly bosTokenId?: number | null;
  readonly eosTokenIds?: readonly number[];
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * A Hugging Face tokenizer.json (BPE: byte-level as GPT-2 / Llama 3 / Qwen2, or SentencePiece-style
 * with byte fallback as Llama 2 / Mistral), encoded by @huggingface/tokenizers. Token bytes for
 * streaming are derived here from the decoder type; decode() does not apply
 * clean_up_tokenization_spaces.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Every end-of-sequence id (generation_config / config.json may list several). */
  readonly eosIds: readonly number[];
  readonly chatTemplate: ChatTemplate | null;
  private readonly library: TokenizerLibrary;
  private readonly tokens: readonly (string | undefined)[];
  private readonly tokenBytes: readonly Uint8Array[];
  private readonly strippedBytes: readonly Uint8Array[];
  private readonly controlIds: ReadonlySet<number>;
  private readonly stripLeadingSpace: boolean;
  /** tokenizer_config's add_bos_token / add_eos_token, which transformers lets override the post-processor. */
  private readonly addBosOverride: boolean | null;
  private readonly addEosOverride: boolean | null;

  constructor(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown> = {}, defaults: TokenizerDefaults = {}, chatTemplateSource: string | null = null) {
    const json = tokenizerJson as { model?: { type?: string; vocab?: unknown; byte_fallback?: boolean }; added_tokens?: unknown; decoder?: unknown };
    if (json?.model?.type !== 'BPE' || typeof json.model.vocab !== 'object' || json.model.vocab === null) {
      throw new TokenizerFormatError(`tokenizer.json: model.type ${JSON.stringify(json?.model?.type)} is not supported (supported: "BPE")`);
    }
    try {
      this.library = new TokenizerLibrary(tokenizerJson as object, tokenizerConfig);
    } catch (error) {
      throw new TokenizerFormatError(`tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const addedTokens = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as Array<{ id: number; content: string; special?: boolean }>;
    const tokens: (string | undefined)[] = [];
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) tokens[id] = token;
    for (const added of addedTokens) tokens[added.id] = added.content;
    this.tokens = tokens;
    this.vocabSize = tokens.length;
    this.controlIds = new Set(addedTokens.filter((t) => t.special === true).map((t) => t.id));

    const style = pieceStyleOf(json.decoder);
    this.stripLeadingSpace = style.kind === 'sentencePiece' && style.stripLeadingSpace;
    const addedIds = new Set(addedTokens.map((t) => t.id));
    const utf8 = new TextEncoder();
    this.tokenBytes = tokens.map((token, id) => {
      if (token === undefined) return new Uint8Array(0);
      if (addedIds.has(id)) return utf8.encode(token);
      if (style.kind === 'byteLevel') return byteLevelTokenBytes(token) ?? utf8.encode(token);
      const byte = json.model!.byte_fallback ? BYTE_PIECE.exec(token) : null;
      return byte ? new Uint8Array([parseInt(byte[1], 16)]) : utf8.encode(token.replaceAll(SPM_SPACE, ' '));
    });
    this.strippedBytes = this.tokenBytes.map((bytes) => (bytes[0] === 0x20 ? bytes.subarray(1) : bytes));

    const idOfSpecial = (field: string): number | null => {
      const value = tokenizerConfig[field];
      const content = typeof value === 'string' ? value : (value as { content?: unknown } | null)?.content;
      if (typeof content !== 'string') return null;
      const id = this.library.token_to_id(content);
      if (id === undefined) throw new TokenizerFormatError(`tokenizer_config.json: ${field} ${JSON.stringify(content)} is not in the vocabulary`);
      return id;
    };
    const eosFromConfig = idOfSpecial('eos_token');
    const eosIds = [...(eosFromConfig !== null ? [eosFromConfig] : []), ...(defaults.eosTokenIds ?? [])];
    this.eosIds = [...new Set(eosIds)];
    if (this.eosIds.length === 0) throw new TokenizerFormatError('no end-of-sequence token: neither tokenizer_config.json eos_token nor config.json eos_token_id is set');
    this.eosId = this.eosIds[0];
    // A tokenizer without BOS (Qwen2) still needs an id here; the model's config names one, else EOS serves.
    this.bosId = idOfSpecial('bos_token') ?? defaults.bosTokenId ?? this.eosId;
    this.addBosOverride = typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token : null;
    this.addEosOverride = typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token : null;

    const template = chatTemplateSource ?? chatTemplateOf(tokenizerConfig);
    const specialText: Record<string, string> = {};
    for (const field of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const value = tokenizerConfig[field];
      const content = typeof value === 'string' ? value : (value as { content?: unknown } | null)?.content;
      if (typeof content === 'string') specialText[field] = content;
    }
    specialText.bos_token ??= this.tokens[this.bosId] ?? '';
    specialText.eos_token ??= this.tokens[this.eosId] ?? '';
    this.chatTemplate = template === null ? null : new ChatTemplate(template, specialText);
  }

  /** tokenizer.json (required), tokenizer_config.json and chat_template.jinja (optional) from `dir`. */
  static fromFolder(dir: string, defaults: TokenizerDefaults = {}): HfTokenizer {
    const jsonPath = join(dir, HF_TOKENIZER_FILE);
    if (!existsSync(jsonPath)) {
      const hint = existsSync(join(dir, 'tokenizer.model')) ? ' (tokenizer.model alone, the SentencePiece protobuf, is not supported)' : '';
      throw new TokenizerFormatError(`${dir}: missing ${HF_TOKENIZER_FILE}${hint}`);
    }
    const configPath = join(dir, HF_TOKENIZER_CONFIG_FILE);
    const templatePath = join(dir, HF_CHAT_TEMPLATE_FILE);
    return new HfTokenizer(
      readJson(jsonPath),
      existsSync(configPath) ? (readJson(configPath) as Record<string, unknown>) : {},
      defaults,
      existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : null,
    );
  }

  /** `bos` (default true): add what the tokenizer adds around a text (its post-processor, or tokenizer_config's add_bos_token). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const withSpecial = options.bos !== false;
    let ids: number[];
    if (this.addBosOverride === null && this.addEosOverride === null) {
      ids = this.library.encode(text, { add_special_tokens: withSpecial }).ids;
    } else {
      ids = this.library.encode(text, { add_special_tokens: false }).ids;
      if (withSpecial && this.addBosOverride === true) ids.unshift(this.bosId);
      if (withSpecial && this.addEosOverride === true) ids.push(this.eosId);
    }
    if (options.eos === true && ids[ids.length - 1] !== this.eosId) ids.push(this.eosId);
    return ids;
  }

  /** The conversation rendered with the chat template, then encoded without adding special tokens (the template has them). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    if (this.chatTemplate === null) throw new TokenizerFormatError('this tokenizer has no chat template');
    return this.encode(this.chatTemplate.render(messages, options), { bos: false });
  }

  /** A SentencePiece-style piece loses its leading space at the start of a text (after nothing, or after BOS). */
  decodeTokenBytes(prevToken: number | null, token: number): Uint8Array {
    if (!Number.isInteger(token) || token < 0) throw new RangeError(`token id ${token} is not a valid id`);
    if (token >= this.tokenBytes.length) return new Uint8Array(0); // padding rows of a larger embedding
    const atStart = prevToken === null || prevToken === this.bosId;
    return this.stripLeadingSpace && atStart ? this.strippedBytes[token] : this.tokenBytes[token];
  }

  isControlToken(token: number): boolean {
    return this.controlIds.has(token);
  }

  decode(tokens: readonly number[], previousToken: number | null = null): string {
    const parts: Uint8Array[] = [];
    let prev = previousToken;
    for (const token of tokens) {
      if (!this.isControlToken(token)) parts.push(this.decodeTokenBytes(prev, token));
      prev = token;
    }
    return new TextDecoder().decode(concatBytes(parts));
  }

  tokenOf(id: number): string | undefined {
    return this.tokens[id];
  }

  idOf(token: string): number | undefined {
    return this.library.token_to_id(token);
  }
}

interface DecoderJson {
  readonly type?: string;
  readonly decoders?: readonly DecoderJson[];
  readonly pattern?: { readonly String?: string };
  readonly content?: string;
  readonly start?: number;
  readonly prepend_scheme?: string;
  readonly add_prefix_space?: boolean;
}

function pieceStyleOf(decoder: unknown): PieceStyle {
  const d = decoder as DecoderJson | null;
  const parts: readonly DecoderJson[] = d?.type === 'Sequence' ? (d.decoders ?? []) : d ? [d] : [];
  if (parts.some((p) => p.type === 'ByteLevel')) return { kind: 'byteLevel' };
  const metaspace = parts.find((p) => p.type === 'Metaspace');
  if (metaspace) {
    const scheme = metaspace.prepend_scheme ?? (metaspace.add_prefix_space === false ? 'never' : 'always');
    return { kind: 'sentencePiece', stripLeadingSpace: scheme !== 'never' };
  }
  const replacesSpaceMarker = parts.some((p) => p.type === 'Replace' && p.pattern?.String === SPM_SPACE && p.content === ' ');
  if (replacesSpaceMarker) return { kind: 'sentencePiece', stripLeadingSpace: parts.some((p) => p.type === 'Strip' && (p.start ?? 0) > 0) };
  throw new TokenizerFormatError(`tokenizer.json: decoder ${JSON.stringify(decoder)?.slice(0, 200)} is not supported (byte-level or SentencePiece-style BPE)`);
}

function chatTemplateOf(config: Record<string, unknown>): string | null {
  const template = config.chat_template;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) {
    const named = template.find((t: { name?: string }) => t?.name === 'default') as { template?: unknown } | undefined;
    return typeof named?.template === 'string' ? named.template : null;
  }
  return null;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TokenizerFormatError(`${path}: cannot read JSON`, { cause: error });
  }
}
