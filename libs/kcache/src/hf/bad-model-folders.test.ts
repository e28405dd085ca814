import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { loadModel } from '../formats/model-source';
import { repoRoot } from '../testing/reference-data';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';

const fixtures = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf');
const SHARDED = 'mistral-sharded-bf16';
const SINGLE = 'qwen2-bias-tied-f16';

/** Rewrites a safetensors file's JSON header (data untouched; offsets are relative to the data). */
function editHeader(path: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): void {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  edit(header);
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(path, Buffer.concat([length, text, bytes.subarray(8 + headerLength)]));
}

function editJson(path: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json);
  writeFileSync(path, JSON.stringify(json));
}

describe('bad Hugging Face folders fail at load with a clear message', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcache-bad-hf-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let count = 0;
  const copy = (name: string): string => {
    const dir = join(scratch, `${name}-${count++}`);
    cpSync(join(fixtures, name), dir, { recursive: true });
    return dir;
  };
  const fails = (dir: string, errorClass: new (...args: never[]) => Error, pattern: RegExp): void => {
    assert.throws(() => loadModel(dir), (error: unknown) => {
      assert.ok(error instanceof errorClass, `${String(error)} is a ${errorClass.name}`);
      assert.match((error as Error).message, pattern);
      return true;
    });
  };

  it('the untouched fixtures load', () => {
    assert.equal(loadModel(copy(SHARDED)).weights.config.numLayers, 3);
    assert.equal(loadModel(copy(SINGLE)).weights.config.numLayers, 2);
  });

  it('missing shard', () => {
    const dir = copy(SHARDED);
    unlinkSync(join(dir, 'model-00002-of-00004.safetensors'));
    fails(dir, ModelNotFoundError, /missing weights file model-00002-of-00004\.safetensors/);
  });

  it('no weights at all', () => {
    const dir = copy(SINGLE);
    unlinkSync(join(dir, 'model.safetensors'));
    fails(dir, ModelNotFoundError, /missing weights file model\.safetensors/);
  });

  it('truncated safetensors header', () => {
    const dir = copy(SINGLE);
    truncateSync(join(dir, 'model.safetensors'), 100);
    fails(dir, ModelFormatError, /model\.safetensors: truncated or invalid safetensors header: it claims \d+ bytes, the file has 92/);
    truncateSync(join(dir, 'model.safetensors'), 5);
    fails(dir, ModelFormatError, /truncated safetensors file: 5 bytes/);
  });

  it('truncated tensor data', () => {
    const dir = copy(SINGLE);
    const path = join(dir, 'model.safetensors');
    truncateSync(path, readFileSync(path).length - 1000);
    fails(dir, ModelFormatError, /truncated file: tensor \S+ ends at data byte \d+, the file holds \d+ data bytes/);
  });

  it('corrupt header JSON', () => {
    const dir = copy(SINGLE);
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    bytes.write('\u0000\u0000', 20, 'latin1');
    writeFileSync(path, bytes);
    fails(dir, ModelFormatError, /safetensors header is not valid UTF-8 JSON/);
  });

  it('unknown dtype', () => {
    const dir = copy(SINGLE);
    editHeader(join(dir, 'model.safetensors'), (header) => {
      header['model.norm.weight'].dtype = 'F8_E4M3';
    });
    fails(dir, ModelFormatError, /tensor model\.norm\.weight has dtype "F8_E4M3", not supported \(supported: F32, F16, BF16\)/);
  });

  it('data_offsets that do not match the shape', () => {
    const dir = copy(SINGLE);
    editHeader(join(dir, 'model.safetensors'), (header) => {
      header['model.norm.weight'].shape = [65];
    });
    fails(dir, ModelFormatError, /tensor model\.norm\.weight \(F16 \[65\]\) needs 130 bytes, data_offsets \[\d+, \d+\] hold 128/);
  });

  it('shapes that do not match config.json', () => {
    const dir = copy(SHARDED);
    editJson(join(dir, 'config.json'), (config) => {
      config.intermediate_size = 100;
    });
    fails(dir, ModelFormatError, /tensor model\.layers\.0\.mlp\.\w+_proj\.weight has shape \[(96,64|64,96)\], config\.json implies \[(100,64|64,100)\]/);
  });

  it('a tensor the config needs is missing', () => {
    const dir = copy(SINGLE);
    editHeader(join(dir, 'model.safetensors'), (header) => {
      delete header['model.layers.1.self_attn.k_proj.bias'];
    });
    fails(dir, ModelFormatError, /tensor model\.layers\.1\.self_attn\.k_proj\.bias \[16\] is missing/);
  });

  it('an index that names a tensor its shard does not have', () => {
    const dir = copy(SHARDED);
    editJson(join(dir, 'model.safetensors.index.json'), (index) => {
      const map = index.weight_map as Record<string, string>;
      map['model.norm.weight'] = map['model.norm.weight'] === 'model-00001-of-00004.safetensors' ? 'model-00002-of-00004.safetensors' : 'model-00001-of-00004.safetensors';
    });
    fails(dir, ModelFormatError, /puts model\.norm\.weight in model-0000\d-of-00004\.safetensors, but that shard's header does not have it/);
  });

  it('unsupported architectures and options name the field and value', () => {
    const cases: Array<[(config: Record<string, unknown>) => void, RegExp]> = [
      [(c) => (c.architectures = ['GPT2LMHeadModel']), /architectures \["GPT2LMHeadModel"\] is not supported/],
      [(c) => ((c.rope_parameters as Record<string, unknown>).rope_type = 'yarn'), /rope_parameters\.rope_type "yarn" is not supported/],
      [(c) => (c.hidden_act = 'gelu'), /hidden_act "gelu" is not supported/],
      [(c) => (c.head_dim = 32), /head_dim 32 is not supported/],
      [(c) => (c.num_key_value_heads = 3), /not divisible/],
      [(c) => (c.quantization_config = { quant_method: 'gptq' }), /quantization_config is set/],
    ];
    for (const [edit, pattern] of cases) {
      const dir = copy(SHARDED);
      editJson(join(dir, 'config.json'), edit);
      fails(dir, ModelFormatError, pattern);
    }
  });

  it('missing or unusable tokenizer files', () => {
    const dir = copy(SINGLE);
    unlinkSync(join(dir, 'tokenizer.json'));
    fails(dir, TokenizerFormatError, /missing tokenizer\.json/);
    const other = copy(SINGLE);
    editJson(join(other, 'tokenizer.json'), (json) => {
      (json.model as Record<string, unknown>).type = 'WordPiece';
    });
    fails(other, TokenizerFormatError, /model\.type "WordPiece" is not supported/);
  });
});
