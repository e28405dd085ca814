#!/usr/bin/env node
'use strict';
/**
 * The host work of a decode step's input tables, without a GPU: DecodeInputs.build for the ~110M model at a
 * batch and context (default 32, 512; full attention), per slice-table layout the backends use:
 *   per-layer tables        kv_slices, a table per layer (host-arenas and resident backends)
 *   layer views             k_slices / v_slices_device shared by every layer (native backend on cpu)
 *   layer views + in arena  the same with the current row in the arena (native backend on cuda)
 * Prints the best time of a build over 5 rounds and the bytes of the inputs (what a GPU run uploads).
 *   node scripts/device/decode-inputs-cost.js <appRoot> [batch] [context]
 */
const path = require('node:path');

const [appRoot = '.', batchArg = '32', contextArg = '512'] = process.argv.slice(2);
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const { syntheticModelConfig } = require(path.join(dist, 'model/synthetic-models.js'));
const { KvArenas } = require(path.join(dist, 'runtime/kv-arenas.js'));
const { DecodeInputs } = require(path.join(dist, 'runtime/decode-inputs.js'));
const { graphVariantOf } = require(path.join(dist, 'runtime/graph-variant.js'));

const config = syntheticModelConfig('llama-110m');
const batch = Number(batchArg);
const context = Number(contextArg);
const blockSize = 16;
const blocksPerSequence = Math.ceil((context + 1) / blockSize);
// Only the tables are built: K and device V need no memory (a stand-in buffer each).
const arenas = new KvArenas(config, blockSize, { kIds: batch * blocksPerSequence, deviceVIds: batch * blocksPerSequence, hostVIds: 1 }, undefined, undefined, (floats, space) => new Float32Array(space === 'hostV' ? floats : 16));
const variant = graphVariantOf({ mode: 'full' }, config.numLayers);
const ids = (b) => Array.from({ length: blocksPerSequence }, (_, i) => b * blocksPerSequence + i);
const items = Array.from({ length: batch }, (_, b) => ({ tokenId: 3, position: context, blocks: { kBlockIds: ids(b), deviceVBlockIds: ids(b), hostVBlockIds: [] } }));

for (const [name, options] of [['per-layer tables', {}], ['layer views', { layerArenaViews: true }], ['layer views + in arena', { layerArenaViews: true, currentRowInArena: true }]]) {
  const inputs = new DecodeInputs(config, arenas, options);
  const runs = 300;
  let best = Infinity;
  let bytes = 0;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < runs; i++) {
      const buffers = inputs.acquire();
      const built = inputs.build(buffers, items, variant, 0);
      bytes = Object.values(built).reduce((sum, tensor) => sum + tensor.data.byteLength, 0);
      inputs.release(buffers);
    }
    best = Math.min(best, (performance.now() - start) / runs);
  }
  process.stdout.write(`${name.padEnd(24)} ${(best * 1000).toFixed(0).padStart(5)} µs a build, ${(bytes / 1024).toFixed(0)} KiB of inputs (batch ${batch}, context ${context})\n`);
}
