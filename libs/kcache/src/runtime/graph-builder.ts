import { onnx } from 'onnx-proto';

const CONTRIB_DOMAIN = 'com.microsoft';

/** Element types used by the engine's graphs. */
export type ElementType = 'float32' | 'int64' | 'int32' | 'bool' | 'uint16';

const ONNX_TYPE: Record<ElementType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  int32: onnx.TensorProto.DataType.INT32,
  uint16: onnx.TensorProto.DataType.UINT16,
};

/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

type AttributeValue = number | number[] | string | { floats: number[] } | { float: number };

/**
 * A small builder for ONNX graphs: named values, nodes in topological order, initializers
 * stored as raw little-endian bytes. `op()` returns the name of the node's first output.
 */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private nextId = 0;
  /** Operator domains beyond ONNX's and com.microsoft's that the nodes use (e.g. com.kcache), imported at version 1. */
  private readonly extraDomains = new Set<string>();

  constructor(private readonly name: string) {}

  input(name: string, type: ElementType, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Declares `value` a graph output called `name` (renaming the value; no Identity node). */
  output(value: string, name: string, type: ElementType, shape: readonly Dim[]): void {
    if (value !== name) {
      for (const node of this.nodes) {
        node.output = node.output!.map((o) => (o === value ? name : o));
        node.input = node.input!.map((i) => (i === value ? name : i));
      }
    }
    this.outputs.push(valueInfo(name, type, shape));
  }

  /** fp32 initializer. `data` is not copied until serialization. */
  weight(name: string, data: Float32Array, shape: readonly number[]): string {
    assertSize(data.length, shape, name);
    this.initializers.push({
      name,
      dataType: ONNX_TYPE.float32,
      dims: [...shape],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  constFloat(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const name = this.fresh('cf');
    assertSize(values.length, shape, name);
    this.initializers.push({ name, dataType: ONNX_TYPE.float32, dims: [...shape], floatData: [...values] });
    return name;
  }

  constInt(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const name = this.fresh('ci');
    assertSize(values.length, shape, name);
    this.initializers.push({ name, dataType: ONNX_TYPE.int64, dims: [...shape], int64Data: [...values] });
    return name;
  }

  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    return this.opMulti(opType, inputs, 1, attributes, outputName ? [outputName] : undefined)[0];
  }

  /** A contrib operator with several outputs; outputs not wanted get the empty name. */
  contribOpMulti(
    opType: string,
    inputs: readonly string[],
    numOutputs: number,
    attributes: Record<string, AttributeValue>,
    wanted: readonly boolean[],
  ): string[] {
    const names = Array.from({ length: numOutputs }, (_, i) => (wanted[i] ? this.fresh(opType) : ''));
    const outputs = this.opMulti(opType, inputs, numOutputs, attributes, names);
    this.nodes[this.nodes.length - 1].domain = CONTRIB_DOMAIN;
    return outputs;
  }

  /** An onnxruntime contrib operator (domain com.microsoft), e.g. FusedMatMul. */
  contribOp(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}): string {
    const output = this.op(opType, inputs, attributes);
    this.nodes[this.nodes.length - 1].domain = CONTRIB_DOMAIN;
    return output;
  }

  /** An operator of another domain (version 1), e.g. the addon's com.kcache PagedDecodeAttention. */
  domainOpMulti(domain: string, opType: string, inputs: readonly string[], numOutputs: number, attributes: Record<string, AttributeValue> = {}): string[] {
    const outputs = this.opMulti(opType, inputs, numOutputs, attributes);
    this.nodes[this.nodes.length - 1].domain = domain;
    this.extraDomains.add(domain);
    return outputs;
  }

  opMulti(
    opType: string,
    inputs: readonly string[],
    numOutputs: number,
    attributes: Record<string, AttributeValue> = {},
    outputNames?: readonly string[],
  ): string[] {
    const outputs = outputNames ? [...outputNames] : Array.from({ length: numOutputs }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      input: [...inputs],
      output: outputs,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
    return outputs;
  }

  /** Serialized ModelProto (opset 17). */
  toBytes(): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: 8,
      producerName: 'kcache-serve',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: CONTRIB_DOMAIN, version: 1 },
        ...[...this.extraDomains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
    return onnx.ModelProto.encode(model).finish();
  }

  get numNodes(): number {
    return this.nodes.length;
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.nextId++}`;
  }
}

function valueInfo(name: string, type: ElementType, shape: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_TYPE[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.FLOAT, f: value.float };
}

function assertSize(length: number, shape: readonly number[], name: string): void {
  const expected = shape.reduce((a, b) => a * b, 1);
  if (expected !== length) throw new Error(`initializer ${name}: ${length} values for shape [${shape}]`);
}
