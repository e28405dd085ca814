import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../formats/model-source';
import { InvalidRequestError } from '../request/invalid-request-error';
import { repoRoot, stories260kDir } from '../testing/reference-data';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';
import { ChatTemplate } from './chat-template';

const fixture = (name: string) => join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', name);

describe('chat templates', () => {
  it("a template's raise_exception becomes InvalidRequestError on messages", () => {
    const tokenizer = loadModel(fixture('llama-gqa-llama3rope-tied-f32')).tokenizer;
    assert.ok(tokenizer.encodeChat);
    const twoUsers = [
      { role: 'user', content: 'hi' },
      { role: 'user', content: 'again' },
    ];
    assert.throws(() => tokenizer.encodeChat!(twoUsers), (error: unknown) => {
      return error instanceof InvalidRequestError && error.field === 'messages' && /roles must alternate/.test(error.message);
    });
  });

  it('renders special tokens and the generation prompt switch', () => {
    const template = new ChatTemplate("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content | trim }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}", { bos_token: '<s>' });
    const messages = [{ role: 'user', content: '  hello ' }];
    assert.equal(template.render(messages), '<s>[user] hello\n[assistant]');
    assert.equal(template.render(messages, { addGenerationPrompt: false }), '<s>[user] hello\n');
    assert.throws(() => new ChatTemplate('{% for %}', {}), TokenizerFormatError);
  });

  it('llama2.c tokenizers have no chat template', () => {
    assert.equal(loadModel(stories260kDir()).tokenizer.encodeChat, undefined);
  });
});
