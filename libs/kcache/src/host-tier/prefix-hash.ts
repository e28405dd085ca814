import { createHash } from 'node:crypto';
import { AttentionConfig } from '../attention/attention-config';
import { ModelWeights } from '../model/model-weights';
import { BlockHash } from './prefix-index';

/**
 * sha256 of the model: its name, config and every weight byte. Two workers hash a prefix to the
 * same blocks only when this matches. (~1 s for a 110M model.)
 */
export function modelFingerprint(name: string, weights: ModelWeights): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ name, config: weights.config }));
  const add = (tensor: Float32Array) => hash.update(new Uint8Array(tensor.buffer, tensor.byteOffset, tensor.byteLength));
  add(weights.tokenEmbedding);
  for (const layer of weights.layers) {
    for (const tensor of [layer.attentionNorm, layer.wq, layer.wk, layer.wv, layer.wo, layer.ffnNorm, layer.w1, layer.w2, layer.w3]) add(tensor);
  }
  add(weights.finalNorm);
  if (weights.classifier !== weights.tokenEmbedding) add(weights.classifier);
  for (const biases of weights.qkvBiases ?? []) for (const tensor of [biases.bq, biases.bk, biases.bv]) add(tensor);
  return hash.digest('hex');
}

/** What makes a block's contents depend on more than its tokens: the model, the block size, the attention parameters. */
export function prefixNamespace(input: {
  readonly modelFingerprint: string;
  readonly blockSize: number;
  readonly attention: AttentionConfig;
  readonly prefixKeys: 'spill' | 'recompute';
}): Buffer {
  const a = input.attention;
  const parameters = a.mode === 'kcache' ? { topN: a.topN, denseLayers: a.denseLayers, renormalize: a.renormalize } : {};
  const key = JSON.stringify({ v: 1, model: input.modelFingerprint, blockSize: input.blockSize, mode: a.mode, ...parameters, keys: input.prefixKeys });
  return createHash('sha256').update(key).digest();
}

/**
 * Chained content hashes of the first numBlocks full blocks of tokenIds: block i's hash covers
 * the namespace and every token of blocks 0..i, so equal hashes mean equal prefixes.
 */
export function chainBlockHashes(namespace: Buffer, tokenIds: readonly number[], numBlocks: number, blockSize: number): BlockHash[] {
  const hashes: BlockHash[] = [];
  const tokens = new Uint32Array(blockSize);
  let previous = namespace;
  for (let b = 0; b < numBlocks; b++) {
    for (let t = 0; t < blockSize; t++) tokens[t] = tokenIds[b * blockSize + t];
    previous = createHash('sha256').update(previous).update(new Uint8Array(tokens.buffer)).digest();
    const words = new Uint32Array(4);
    for (let w = 0; w < 4; w++) words[w] = previous.readUInt32LE(4 * w);
    hashes.push(words);
  }
  return hashes;
}
