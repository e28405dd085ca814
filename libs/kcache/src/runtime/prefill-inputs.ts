import * as ort from 'onnxruntime-node';
import { GraphInputs } from './backend/execution-backend';
import { IO } from './graph-io';
import { GraphVariant, hasDenseLayer, hasTopNLayer } from './graph-variant';
import { fillBlockTable, Int64Builder, int64Tensor, scalarInt64Tensor } from './row-tables';
import { PrefillItem } from './run-items';
import { emptySequenceBlocks } from '../memory/sequence-blocks';

/**
 * A prefill chunk's small input tables: tokens, positions, mask (padding of the last past block,
 * causal within the chunk), the past's block tables over the whole arenas, and for TopN layers topN
 * and which rows are generated tokens. numPastBlocks = ceil(startPosition / blockSize).
 */
export function prefillInputs(item: PrefillItem, variant: GraphVariant, topN: number, blockSize: number): GraphInputs {
  const numRows = item.tokenIds.length;
  const start = item.startPosition;
  const numBlocks = Math.ceil(start / blockSize);
  const past = numBlocks * blockSize;
  const numKeys = past + numRows;
  const tokens = new Int64Builder(numRows);
  const positions = new Int64Builder(numRows);
  const mask = new Float32Array(numRows * numKeys);
  const isApproximate = new Uint8Array(numRows);
  for (let i = 0; i < numRows; i++) {
    tokens.set(i, item.tokenIds[i]);
    positions.set(i, start + i);
    mask.fill(-Infinity, i * numKeys + start, i * numKeys + past); // padding of the last past block
    mask.fill(-Infinity, i * numKeys + past + i + 1, (i + 1) * numKeys); // causal
    isApproximate[i] = start + i >= item.numPromptTokens ? 1 : 0;
  }
  const blockTable = (ids: readonly number[]) => {
    const table = new Int64Builder(numBlocks);
    fillBlockTable(table, 0, ids, numBlocks);
    return int64Tensor(table, [numBlocks]);
  };
  const inputs: GraphInputs = {
    [IO.tokens]: int64Tensor(tokens, [numRows]),
    [IO.positions]: int64Tensor(positions, [numRows]),
    [IO.mask]: new ort.Tensor('float32', mask, [numRows, numKeys]),
    [IO.kBlocks]: blockTable(item.blocks.kBlockIds),
  };
  if (hasDenseLayer(variant)) inputs[IO.vBlocksDevice] = blockTable(item.blocks.deviceVBlockIds);
  if (hasTopNLayer(variant)) {
    inputs[IO.vBlocksHost] = blockTable(item.blocks.hostVBlockIds);
    inputs[IO.topN] = scalarInt64Tensor(Math.min(topN, numKeys));
    inputs[IO.isApproximateQuery] = new ort.Tensor('bool', isApproximate, [numRows]);
  }
  return inputs;
}

/**
 * A score run's inputs (the prefill graph with all logits, nothing cached): query rows at positions
 * >= numExactPositions use the variant's TopN selection in its TopN layers. The same tables as a first
 * prefill chunk whose prompt is the exact positions.
 */
export function scoreInputs(tokenIds: readonly number[], variant: GraphVariant, topN: number, numExactPositions: number): GraphInputs {
  return prefillInputs({ tokenIds, startPosition: 0, numPromptTokens: numExactPositions, blocks: emptySequenceBlocks() }, variant, topN, 1);
}
