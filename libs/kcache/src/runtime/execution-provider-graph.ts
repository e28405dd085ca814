import { onnx } from 'onnx-proto';
import { ExecutionProviderName } from './execution-provider';

const CONTRIB_DOMAIN = 'com.microsoft';

/**
 * The graph as a provider runs it best. CPU (and CUDA) get the bytes unchanged. For WebGPU, the
 * contrib op FusedMatMul, which onnxruntime's WebGPU provider has no kernel for, becomes
 * Transpose + MatMul + Mul: left as it is, it runs on the CPU provider, and every layer's gathered
 * past K is copied back to the host (a GPU sync per layer and step).
 */
export function graphForProvider(graph: Uint8Array, provider: ExecutionProviderName): Uint8Array {
  if (provider !== 'webgpu') return graph;
  const model = onnx.ModelProto.decode(graph);
  if (!replaceFusedMatMul(model.graph!)) return graph;
  return onnx.ModelProto.encode(model).finish();
}

/**
 * FusedMatMul(A, B, transB = 1, alpha) with 4-D operands (as every engine graph uses it) becomes
 * Mul(MatMul(A, Transpose(B, [0, 1, 3, 2])), alpha). Other forms are left to the CPU provider.
 * Returns whether anything was replaced.
 */
function replaceFusedMatMul(graph: onnx.IGraphProto): boolean {
  const nodes: onnx.INodeProto[] = [];
  let replaced = 0;
  for (const node of graph.node ?? []) {
    const attrs = new Map((node.attribute ?? []).map((a) => [a.name, a]));
    const intAttr = (name: string) => Number(attrs.get(name)?.i ?? 0);
    const plain =
      node.domain === CONTRIB_DOMAIN &&
      node.opType === 'FusedMatMul' &&
      intAttr('transA') === 0 &&
      intAttr('transB') === 1 &&
      intAttr('transBatchA') === 0 &&
      intAttr('transBatchB') === 0 &&
      [...attrs.keys()].every((name) => ['alpha', 'transA', 'transB', 'transBatchA', 'transBatchB'].includes(name!));
    if (!plain) {
      nodes.push(node);
      continue;
    }
    const alpha = attrs.get('alpha')?.f ?? 1;
    const id = `${node.name || 'FusedMatMul'}_ep${replaced++}`;
    const [a, b] = node.input!;
    const output = node.output![0];
    nodes.push({ opType: 'Transpose', input: [b], output: [`${id}_bT`], name: `${id}_transpose`, attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1, 3, 2] }] });
    if (alpha === 1) {
      nodes.push({ opType: 'MatMul', input: [a, `${id}_bT`], output: [output], name: `${id}_matmul` });
    } else {
      graph.initializer!.push({ name: `${id}_alpha`, dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [alpha] });
      nodes.push({ opType: 'MatMul', input: [a, `${id}_bT`], output: [`${id}_product`], name: `${id}_matmul` });
      nodes.push({ opType: 'Mul', input: [`${id}_product`, `${id}_alpha`], output: [output], name: `${id}_scale` });
    }
  }
  graph.node = nodes;
  return replaced > 0;
}
