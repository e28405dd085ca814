import { Template } from '@huggingface/jinja';
import { InvalidRequestError } from '../request/invalid-request-error';
import { ChatMessage, ChatTemplateOptions } from '../tokenizer/tokenizer';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';

/**
 * A tokenizer's Jinja chat template, rendered as transformers' apply_chat_template renders it:
 * `messages`, `add_generation_prompt` and the special tokens' text (`bos_token`, `eos_token`, …)
 * are variables; raise_exception and strftime_now are built in.
 */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly specialTokens: Readonly<Record<string, string>>,
  ) {
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new TokenizerFormatError(`chat template does not parse: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /** Throws InvalidRequestError (field `messages`) when the template rejects the conversation. */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    try {
      return this.template.render({
        ...this.specialTokens,
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new InvalidRequestError('messages', `the chat template rejected them: ${message}`, { cause: error });
    }
  }
}
