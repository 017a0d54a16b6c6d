import { float32ToHalf } from "./half.js"
import { createRequire } from "node:module"
import type { onnx as P } from "onnx-proto"

type OnnxNamespace = typeof P
let namespace: OnnxNamespace | undefined
/**
 * onnx-proto (CommonJS, with protobufjs), loaded when a graph is first read or written (the model
 * builder, and a local model's load), so importing the core does not pay for it.
 */
export const onnxProto = (): OnnxNamespace =>
  (namespace ??= (createRequire(import.meta.url)("onnx-proto") as { onnx: OnnxNamespace }).onnx)

/** ONNX element types used by the builder (TensorProto.DataType's numbers in onnx.proto). */
export const DType = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  float16: 10,
  bool: 9
} as const
export type DType = (typeof DType)[keyof typeof DType]

export type AttrValue =
  number | ReadonlyArray<number> | string | { readonly float: number } | { readonly tensor: P.ITensorProto }

/** A graph input or output: a name, an element type and dims (numbers or symbolic names). */
export interface ValueInfo {
  readonly name: string
  readonly type: DType
  readonly dims: ReadonlyArray<number | string>
}

type Data = Float32Array | Int8Array | Uint8Array | Uint16Array | BigInt64Array

/**
 * Writes an ONNX graph node by node. Initializers are either inlined (small models) or appended to
 * an external-data sink (a `model.onnx_data` file) so that models over protobuf's 2 GB limit work.
 */
export class GraphBuilder {
  readonly nodes: Array<P.INodeProto> = []
  readonly initializers: Array<P.ITensorProto> = []
  private counter = 0
  private readonly constants = new Map<string, string>()

  constructor(
    /**
     * Where large tensors go: `write` appends a tensor's bytes, given in pieces it writes (or
     * copies) before taking the next, and returns the offset of the first.
     */
    private readonly external?: {
      readonly location: string
      readonly write: (pieces: Iterable<Uint8Array>) => number
      readonly minBytes: number
    },
    /** Prefixes every generated name (nodes added to another graph must not collide with its names). */
    private readonly prefix = ""
  ) {}

  fresh(hint: string): string {
    return `/${this.prefix}${hint}_${this.counter++}`
  }

  node(
    op: string,
    inputs: ReadonlyArray<string>,
    attrs: Record<string, AttrValue> = {},
    opts: { domain?: string; outputs?: number | ReadonlyArray<string> } = {}
  ): Array<string> {
    const outs =
      typeof opts.outputs === "object"
        ? [...opts.outputs]
        : Array.from({ length: opts.outputs ?? 1 }, () => this.fresh(op))
    this.nodes.push({
      opType: op,
      name: this.fresh(`${op}_node`),
      input: [...inputs],
      output: outs,
      domain: opts.domain ?? "",
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v))
    })
    return outs
  }

  /** One-output shorthand. */
  op(op: string, inputs: ReadonlyArray<string>, attrs: Record<string, AttrValue> = {}, domain?: string): string {
    return this.node(op, inputs, attrs, domain === undefined ? {} : { domain })[0]!
  }

  tensor(name: string, type: DType, dims: ReadonlyArray<number>, data: Data): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    return this.tensorInPieces(name, type, dims, bytes.byteLength, [bytes])
  }

  /**
   * An initializer of `byteLength` bytes given in pieces (views the producer may reuse for the
   * next piece): a large one goes to the external data piece by piece, never whole in memory;
   * otherwise the pieces are joined and inlined. Throws when the pieces add up to another length.
   */
  tensorInPieces(
    name: string,
    type: DType,
    dims: ReadonlyArray<number>,
    byteLength: number,
    pieces: Iterable<Uint8Array>
  ): string {
    const t: P.ITensorProto = { name, dataType: type, dims: [...dims] }
    let seen = 0
    const counted = function* () {
      for (const piece of pieces) {
        seen += piece.byteLength
        if (seen > byteLength) break
        yield piece
      }
    }
    if (this.external !== undefined && byteLength >= this.external.minBytes) {
      const offset = this.external.write(counted())
      t.dataLocation = onnxProto().TensorProto.DataLocation.EXTERNAL
      t.externalData = [
        { key: "location", value: this.external.location },
        { key: "offset", value: String(offset) },
        { key: "length", value: String(byteLength) }
      ]
    } else {
      const joined = new Uint8Array(byteLength)
      for (const piece of counted()) joined.set(piece, seen - piece.byteLength)
      t.rawData = joined
    }
    if (seen !== byteLength) throw new RangeError(`tensor ${name}: ${byteLength} bytes expected, ${seen} given`)
    this.initializers.push(t)
    return name
  }

  /** A shared scalar or 1-D constant initializer. */
  const(values: ReadonlyArray<number>, type: DType = DType.float, scalar = values.length === 1): string {
    const key = `${type}:${scalar}:${values.join(",")}`
    const known = this.constants.get(key)
    if (known !== undefined) return known
    const name = this.fresh("const")
    const dims = scalar ? [] : [values.length]
    const data =
      type === DType.int64
        ? BigInt64Array.from(values.map((v) => BigInt(v)))
        : type === DType.bool
          ? Uint8Array.from(values)
          : type === DType.float16
            ? float32ToHalf(values)
            : Float32Array.from(values)
    this.tensor(name, type, dims, data)
    this.constants.set(key, name)
    return name
  }

  model(args: {
    inputs: ReadonlyArray<ValueInfo>
    outputs: ReadonlyArray<ValueInfo>
    name: string
    producer: string
    opset: number
  }): Uint8Array {
    const proto: P.IModelProto = {
      irVersion: 8,
      producerName: args.producer,
      producerVersion: "1",
      opsetImport: [
        { domain: "", version: args.opset },
        { domain: "com.microsoft", version: 1 }
      ],
      graph: {
        name: args.name,
        node: this.nodes,
        initializer: this.initializers,
        input: args.inputs.map(valueInfo),
        output: args.outputs.map(valueInfo)
      }
    }
    return onnxProto().ModelProto.encode(onnxProto().ModelProto.create(proto)).finish()
  }
}

const valueInfo = (v: ValueInfo): P.IValueInfoProto => ({
  name: v.name,
  type: {
    tensorType: {
      elemType: v.type,
      shape: { dim: v.dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) }
    }
  }
})

/** The subgraphs a node holds in its attributes (an `If`'s branches, a `Loop`'s body). */
export const subgraphs = (node: P.INodeProto): Array<P.IGraphProto> =>
  (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])])

/**
 * How many times each name is read: by the nodes, by nodes inside their subgraphs (which read
 * their outer graph's names without listing them as inputs), and as a graph output.
 */
export const readCounts = (
  nodes: ReadonlyArray<P.INodeProto>,
  outputs: ReadonlyArray<P.IValueInfoProto>
): Map<string, number> => {
  const counts = new Map<string, number>()
  const count = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1)
  const walk = (ns: ReadonlyArray<P.INodeProto>): void => {
    for (const n of ns) {
      for (const i of n.input ?? []) count(i ?? "")
      for (const sub of subgraphs(n)) walk(sub.node ?? [])
    }
  }
  walk(nodes)
  for (const o of outputs) count(o.name ?? "")
  return counts
}

/** A node attribute, typed by its value. */
export const attribute = (name: string, v: AttrValue): P.IAttributeProto => {
  const T = onnxProto().AttributeProto.AttributeType
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v }
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) }
  if ("float" in v) return { name, type: T.FLOAT, f: v.float }
  if ("tensor" in v) return { name, type: T.TENSOR, t: v.tensor }
  return { name, type: T.INTS, ints: [...v] }
}
