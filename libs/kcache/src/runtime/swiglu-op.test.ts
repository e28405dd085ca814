import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeOrt } from '../ort-native/native-ort';
import { GraphBuilder } from './graph-builder';
import { swiGluGate } from './kcache-ops';

/** The com.kcache SwiGlu operator alone, on the CPU provider through the kcache_ort addon, against the gate computed here in float64. */
function run(rows: number, width: number, gateUp: Float32Array): Float32Array {
  const g = new GraphBuilder('swiglu_op');
  g.input('gate_up', 'float32', ['rows', 'width']);
  g.output(swiGluGate(g, 'gate_up'), 'out', 'float32', ['rows', 'hidden']);
  const native = NativeOrt.load();
  const session = native.session(g.toBytes(), { provider: 'cpu', intraOpNumThreads: 1, pagedAttention: true });
  try {
    const out = new Float32Array(rows * Math.floor(width / 2));
    session.bind({ gate_up: native.hostTensor(gateUp, 'float32', [rows, width]) }, { out: native.hostTensor(out, 'float32', [rows, width / 2]) });
    session.run();
    return out;
  } finally {
    session.release();
  }
}

describe('SwiGlu (the CPU kernel, through the addon)', () => {
  it('out[r, i] = silu(gate[r, i]) · up[r, i], the gate the first half of each row and up the second', () => {
    const [rows, hidden] = [3, 5];
    const gateUp = Float32Array.from({ length: rows * 2 * hidden }, (_, i) => Math.sin(i * 1.7) * 4);
    const out = run(rows, 2 * hidden, gateUp);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < hidden; i++) {
        const gate = gateUp[r * 2 * hidden + i];
        const want = (gate / (1 + Math.exp(-gate))) * gateUp[r * 2 * hidden + hidden + i];
        assert.ok(Math.abs(out[r * hidden + i] - want) < 1e-5, `[${r}, ${i}]: ${out[r * hidden + i]} vs ${want}`);
      }
    }
  });

  it('refuses an odd width, naming the input', () => {
    assert.throws(() => run(2, 5, new Float32Array(10)), /SwiGlu: gate_up must be \[rows, 2 x hidden\]/);
  });
});
