import { InvalidRequestError } from '@kcache-serve/kcache/light';
import { ChatMessage } from '@kcache-serve/proto';
import { ChatEncoder } from '../core/prompt-tokenizer';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { MAX_BYTES_PER_TOKEN } from './max-bytes-per-token';

/** The roles of OpenAI's chat API, which chat templates are written for. */
export const CHAT_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

export interface ConversationLimits {
  readonly maxChatMessages: number;
  readonly maxChatMessageBytes: number;
  /** Content bytes of all messages together. */
  readonly maxTotalBytes: number;
  readonly maxPromptTokens: number;
}

const MAX_QUOTED_ROLE_LENGTH = 32;

/**
 * GenerateRequest.messages → prompt token ids: sizes and roles are checked before the template runs
 * (rendering and tokenizing block the event loop), then the model's chat template renders the conversation
 * and the tokenizer encodes it. Throws InvalidArgumentError naming `messages` or `messages[i].role|content`;
 * messages never quote content.
 */
export class ConversationEncoder {
  constructor(
    private readonly encodeChat: ChatEncoder | null,
    private readonly limits: ConversationLimits,
  ) {}

  /** Everything checkable without the template: that there is one, message count, roles, bytes. */
  check(messages: readonly ChatMessage[]): void {
    if (this.encodeChat === null) throw noChatTemplate();
    if (messages.length > this.limits.maxChatMessages) {
      throw new InvalidArgumentError('messages', `${messages.length} messages is above this server's limit of ${this.limits.maxChatMessages}`);
    }
    let numBytes = 0;
    for (const [i, message] of messages.entries()) {
      if (!CHAT_ROLES.includes(message.role)) {
        const role = message.role.slice(0, MAX_QUOTED_ROLE_LENGTH);
        throw new InvalidArgumentError(`messages[${i}].role`, `'${role}' is not one of ${CHAT_ROLES.join(', ')}`);
      }
      const numMessageBytes = Buffer.byteLength(message.content, 'utf8');
      if (numMessageBytes > this.limits.maxChatMessageBytes) {
        throw new InvalidArgumentError(`messages[${i}].content`, `${numMessageBytes} bytes is above this server's limit of ${this.limits.maxChatMessageBytes}`);
      }
      numBytes += numMessageBytes;
    }
    if (numBytes > this.limits.maxTotalBytes) {
      throw new InvalidArgumentError('messages', `${numBytes} bytes of content is above this server's limit of ${this.limits.maxTotalBytes}`);
    }
    if (numBytes > this.limits.maxPromptTokens * MAX_BYTES_PER_TOKEN) {
      throw new InvalidArgumentError('messages', `${numBytes} bytes of content cannot fit ${this.limits.maxPromptTokens} tokens`);
    }
  }

  /** The rendered conversation's token ids; call check() first. */
  encode(messages: readonly ChatMessage[], addGenerationPrompt: boolean): number[] {
    if (this.encodeChat === null) throw noChatTemplate();
    let tokenIds: number[];
    try {
      tokenIds = this.encodeChat(messages, { addGenerationPrompt });
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      throw new InvalidArgumentError('messages', error.reason, { cause: error });
    }
    if (tokenIds.length === 0) throw new InvalidArgumentError('messages', 'the chat template rendered them to no tokens');
    if (tokenIds.length > this.limits.maxPromptTokens) {
      throw new InvalidArgumentError('messages', `${tokenIds.length} tokens is above the limit of ${this.limits.maxPromptTokens}`);
    }
    return tokenIds;
  }
}

function noChatTemplate(): InvalidArgumentError {
  return new InvalidArgumentError('messages', 'the model has no chat template; send prompt or prompt_token_ids instead');
}
