import type { onnx as P } from "onnx-proto"
import { attribute, DType, GraphBuilder, onnxProto, readCounts, subgraphs } from "./graph.js"
import { halfToFloat32 } from "./half.js"

const ELEMENT_TYPES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
  16: "bfloat16"
}

/** A graph's inputs and outputs as a session reports them, read from the file without a session. */
export interface GraphIo {
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
  readonly inputMetadata: ReadonlyArray<{ readonly name: string; readonly isTensor: boolean; readonly type?: string }>
  readonly outputMetadata: ReadonlyArray<{ readonly name: string; readonly isTensor: boolean; readonly type?: string }>
}

/** Decodes a model file's bytes (its weights may be external) and lists its inputs and outputs. */
export const readGraph = (bytes: Uint8Array): { readonly proto: P.ModelProto; readonly io: GraphIo } => {
  const proto = onnxProto().ModelProto.decode(bytes)
  return { proto, io: graphIo(proto) }
}

/** A decoded model's inputs and outputs as a session reports them. */
export const graphIo = (proto: P.ModelProto): GraphIo => {
  const graph = proto.graph
  if (graph === null || graph === undefined) throw new Error("the file has no graph")
  // Before IR 4, initializers were listed among the inputs too.
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ""))
  const meta = (v: P.IValueInfoProto) => {
    const tensor = v.type?.tensorType
    return {
      name: v.name ?? "",
      isTensor: tensor !== null && tensor !== undefined,
      type: ELEMENT_TYPES[tensor?.elemType ?? 0] ?? `type ${tensor?.elemType}`
    }
  }
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? "")).map(meta)
  const outputs = (graph.output ?? []).map(meta)
  return {
    inputNames: inputs.map((v) => v.name),
    outputNames: outputs.map((v) => v.name),
    inputMetadata: inputs,
    outputMetadata: outputs
  }
}

/** Names of the inputs and outputs that the rewritten graph uses instead of the export's. */
export const pastInput = (layer: number, kind: "key" | "value"): string => `fastcot.past.${layer}.${kind}`
export const newOutput = (layer: number, kind: "key" | "value"): string => `fastcot.new.${layer}.${kind}`
export const LAST_LOGITS = "fastcot.last_logits"

/**
 * How 4-bit products compute: `int8` quantizes each product's activations to 8 bits per block and
 * multiplies in integers (onnxruntime's `accuracy_level` 4, as llama.cpp's q4 × q8 products do);
 * `as-exported` keeps what the file says. Exports made with the common quantization scripts'
 * defaults leave `accuracy_level` unset, which onnxruntime computes in float32: on a CPU, the
 * integer kernels are faster (bench/onnx.bench.mjs), at the cost of rounding the
 * activations.
 */
export type Q4Compute = "int8" | "as-exported"

/**
 * How float16 files compute. `float32` turns every float16 tensor of the graph into float32 when
 * the session is created (weights through a `Cast` that onnxruntime folds at load, the KV cache
 * and the logits as float32 inputs and outputs); `as-exported` keeps float16 arithmetic; `auto`
 * (the default) is `float32` when the widened weights fit in a quarter of the machine's memory
 * (see `widenFits`), else `as-exported`. Common CPUs have no float16 arithmetic: onnxruntime's
 * float16 4-bit products run slower than its float32 ones there (q4f16, bench/onnx.bench.mjs;
 * fp16's plain products about the same, onnxruntime widens those weights itself), while float32
 * is as precise or more. The cost is memory: the float16
 * weights are held as float32, twice their size (4-bit products keep their 4-bit weights: only
 * their scales widen, so a q4f16 file grows little).
 */
export type F16Compute = "auto" | "float32" | "as-exported"

/** Bytes of float16 initializers in a graph and its subgraphs (inline or external). */
export const float16Bytes = (proto: P.ModelProto): number => {
  let bytes = 0
  const walk = (graph: P.IGraphProto): void => {
    for (const t of graph.initializer ?? []) {
      if (t.dataType !== DType.float16) continue
      const length = (t.externalData ?? []).find((e) => e.key === "length")?.value
      bytes +=
        length !== undefined && length !== null
          ? Number(length)
          : (t.dims ?? []).reduce((n: number, d) => n * Number(d), 1) * 2
    }
    for (const node of graph.node ?? []) for (const sub of subgraphs(node)) walk(sub)
  }
  if (proto.graph !== null && proto.graph !== undefined) walk(proto.graph)
  return bytes
}

/** `auto`'s rule: the float32 copies (twice the float16 bytes) fit in a quarter of `totalMemory`. */
export const widenFits = (f16Bytes: number, totalMemory: number): boolean =>
  f16Bytes > 0 && 2 * f16Bytes <= totalMemory / 4

/** A small float16 tensor's values as float32 (raw bytes, or bits in int32_data as ONNX allows). */
const widenInline = (t: P.ITensorProto): void => {
  const raw = t.rawData
  const bits =
    raw !== null && raw !== undefined && raw.byteLength > 0
      ? new Uint16Array(new Uint8Array(raw).buffer)
      : Uint16Array.from(t.int32Data ?? [])
  t.dataType = DType.float
  t.rawData = new Uint8Array(halfToFloat32(bits).buffer)
  t.int32Data = []
}

/**
 * Makes a float16 graph compute in float32 (see `F16Compute`): small float16 initializers and
 * constants are widened in place, larger ones (weights, possibly in external data) are renamed
 * and read through a `Cast` to float32 under their old name, which onnxruntime folds into a
 * float32 initializer when the session is created; `Cast`s to float16 cast to float32 instead;
 * float16 graph inputs, outputs and value infos become float32. Subgraphs are walked too.
 * Returns how many tensors were widened (0: the graph had no float16 tensor).
 */
export const computeInFloat32 = (proto: P.ModelProto): number => {
  let widened = 0
  const widenValue = (v: P.IValueInfoProto): void => {
    const tensor = v.type?.tensorType
    if (tensor !== null && tensor !== undefined && tensor.elemType === DType.float16) tensor.elemType = DType.float
  }
  const walk = (graph: P.IGraphProto): void => {
    const casts: Array<P.INodeProto> = []
    for (const t of graph.initializer ?? []) {
      if (t.dataType !== DType.float16) continue
      widened++
      const external = (t.dataLocation ?? 0) === onnxProto().TensorProto.DataLocation.EXTERNAL
      if (!external && (t.rawData?.byteLength ?? 0) < 1024 && (t.int32Data ?? []).length < 512) {
        widenInline(t)
        continue
      }
      const name = t.name ?? ""
      t.name = `fastcot/f16/${name}`
      casts.push({
        opType: "Cast",
        domain: "",
        name: `fastcot/f16/cast/${name}`,
        input: [t.name],
        output: [name],
        attribute: [attribute("to", DType.float)]
      })
    }
    for (const node of graph.node ?? []) {
      for (const sub of subgraphs(node)) walk(sub)
      for (const a of node.attribute ?? []) {
        if (node.opType === "Cast" && (node.domain ?? "") === "" && a.name === "to" && Number(a.i) === DType.float16)
          a.i = DType.float
        if (a.t !== null && a.t !== undefined && a.t.dataType === DType.float16) {
          widenInline(a.t)
          widened++
        }
      }
    }
    graph.node = [...casts, ...(graph.node ?? [])]
    // Before IR 4, initializers were listed among the inputs too: the Cast makes those names now.
    const cast = new Set(casts.map((c) => c.output![0]!))
    graph.input = (graph.input ?? []).filter((v) => !cast.has(v.name ?? ""))
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) widenValue(v)
  }
  if (proto.graph !== null && proto.graph !== undefined) walk(proto.graph)
  return widened
}

/**
 * Sets `accuracy_level` 4 (integer arithmetic) on every 4-bit product (`com.microsoft`
 * MatMulNBits with float32 scales, so float32 activations) whose level is unset or 0; a level the
 * export chose is kept. Returns how many products changed.
 */
export const useInt8Activations = (proto: P.ModelProto): number => {
  let changed = 0
  // Subgraphs too (a merged decoder keeps its layers inside an If's branches); a subgraph sees
  // its outer graphs' initializers.
  const walk = (graph: P.IGraphProto, outerFloats: ReadonlySet<string>): void => {
    const floats = new Set(outerFloats)
    const inits = new Set<string>()
    for (const t of graph.initializer ?? []) {
      inits.add(t.name ?? "")
      if (t.dataType === DType.float) floats.add(t.name ?? "")
    }
    // Float16 scales widened by `computeInFloat32`: a Cast to float32 of an initializer.
    for (const n of graph.node ?? []) {
      const to = (n.attribute ?? []).find((a) => a.name === "to")
      if (
        n.opType === "Cast" &&
        (n.domain ?? "") === "" &&
        Number(to?.i) === DType.float &&
        inits.has(n.input?.[0] ?? "")
      )
        floats.add(n.output?.[0] ?? "")
    }
    for (const node of graph.node ?? []) {
      for (const sub of subgraphs(node)) walk(sub, floats)
      if (node.opType !== "MatMulNBits" || node.domain !== "com.microsoft") continue
      const bits = (node.attribute ?? []).find((a) => a.name === "bits")
      if (bits !== undefined && Number(bits.i ?? 4) !== 4) continue
      if (!floats.has(node.input?.[2] ?? "")) continue
      const level = (node.attribute ?? []).find((a) => a.name === "accuracy_level")
      if (level !== undefined && Number(level.i ?? 0) !== 0) continue
      if (level !== undefined) level.i = 4
      else (node.attribute ??= []).push(attribute("accuracy_level", 4))
      changed++
    }
  }
  if (proto.graph !== null && proto.graph !== undefined) walk(proto.graph, new Set())
  return changed
}

/**
 * Rewrites a decoder graph so that a generation step moves only what it must across the
 * JavaScript boundary. onnxruntime-node copies every output it returns into a new JavaScript
 * buffer, so with the export's own signature each step copies (and allocates) the whole KV cache
 * out and the prefill copies logits for every prompt position. Three edits at the graph's inputs
 * and outputs, so they apply to any graph with the standard KV-cache signature:
 *
 * - each `past_key_values.N.*` input is renamed (`pastInput`), in the export's layout: the caller
 *   keeps one buffer per tensor with room for more positions than are in use, passes all of it
 *   (the unused positions masked out by `attention_mask`, as left padding is) and writes each
 *   step's new positions into it, so the runtime reads the cache in place and the cache has the
 *   same shape for many steps;
 * - each `present.N.*` output is replaced by its new positions only (a Slice after the past
 *   length), so a decode step returns one position per layer instead of the whole cache;
 * - `logits` is replaced by the logits of the last position (all the sampler reads); and where
 *   `logits` comes straight from a matrix product (the LM head), that product is fed only the
 *   last position (the one edit that looks inside, at the node that makes `logits`; see
 *   `sliceHeadInput`).
 *
 * The export's arithmetic is untouched (its Concat and attention run as before, in the runtime's
 * own memory), but for a dynamically quantized LM head, whose activation scale then comes from the
 * last row alone; tests check that logits and tokens equal the unmodified graph's.
 */
export const rewriteDecoder = (
  proto: P.ModelProto,
  layers: number,
  source?: { readonly bytes: Uint8Array; readonly location: string }
): Uint8Array => {
  const P = onnxProto()
  const graph = proto.graph
  if (graph === null || graph === undefined) throw new Error("the model has no graph")
  // Weights stored in the file itself are not copied into the new bytes: they become external
  // data that points into the original file (ONNX external data is any file, offset and length),
  // so the rewritten graph is small and the runtime reads the weights from the file as before.
  if (source !== undefined) {
    for (const t of graph.initializer ?? []) {
      const raw = t.rawData
      if (raw === null || raw === undefined || raw.byteLength < 1024 || raw.buffer !== source.bytes.buffer) continue
      t.externalData = [
        { key: "location", value: source.location },
        { key: "offset", value: String(raw.byteOffset - source.bytes.byteOffset) },
        { key: "length", value: String(raw.byteLength) }
      ]
      t.dataLocation = P.TensorProto.DataLocation.EXTERNAL
      t.rawData = new Uint8Array(0)
    }
  }
  const g = new GraphBuilder(undefined, "fastcot/")
  const i64 = DType.int64
  const inputs = graph.input ?? []
  const outputs = graph.output ?? []
  const byName = (list: ReadonlyArray<P.IValueInfoProto>, name: string) => {
    const v = list.find((x) => x.name === name)
    if (v === undefined) throw new Error(`the graph has no ${name}`)
    return v
  }
  const dimsOf = (v: P.IValueInfoProto): Array<P.TensorShapeProto.IDimension> => v.type?.tensorType?.shape?.dim ?? []

  // Past inputs: renamed, through an Identity (which the runtime removes at load).
  for (let l = 0; l < layers; l++) {
    for (const kind of ["key", "value"] as const) {
      const original = byName(inputs, `past_key_values.${l}.${kind}`)
      const renamed = pastInput(l, kind)
      g.node("Identity", [renamed], {}, { outputs: [original.name!] })
      original.name = renamed
    }
  }
  // The past length (axis 2), where new positions start in `present`.
  const pastLength = g.op("Gather", [g.op("Shape", [pastInput(0, "key")]), g.const([2], i64, false)], { axis: 0 })
  const end = g.const([Number.MAX_SAFE_INTEGER], i64, false)
  const seqAxis = g.const([2], i64, false)
  const tailBuilder = new GraphBuilder(undefined, "fastcot/tail/")
  for (let l = 0; l < layers; l++) {
    for (const kind of ["key", "value"] as const) {
      const present = byName(outputs, `present.${l}.${kind}`)
      const name = newOutput(l, kind)
      tailBuilder.node("Slice", [present.name!, pastLength, end, seqAxis], {}, { outputs: [name] })
      present.name = name
      const dims = dimsOf(present)
      if (dims.length === 4) dims[2] = { dimParam: "new_sequence_length" }
    }
  }
  const logits = byName(outputs, "logits")
  const logitDims = dimsOf(logits)
  const logitRank = logitDims.length
  if (logitRank !== 0 && logitRank !== 3)
    throw new Error(`\`logits\` has rank ${logitRank}; this runtime reads (batch, sequence, vocab)`)
  const last = g.const([-1], i64, false)
  const seqOfLogits = g.const([1], i64, false)
  tailBuilder.node("Slice", ["logits", last, end, seqOfLogits], {}, { outputs: [LAST_LOGITS] })
  // Better still, the LM head sees only the last position: when `logits` comes straight from a
  // matrix product (through Identity or Cast at most), the hidden states are sliced before it, so
  // a prefill of S tokens skips S - 1 rows of the largest product in the model.
  sliceHeadInput(graph, last, end, seqOfLogits)
  const nodes = graph.node ?? []
  logits.name = LAST_LOGITS
  if (logitRank === 3) logitDims[1] = { dimValue: 1 }

  // Nodes stay in topological order: the new inputs' transposes first, the output slices last.
  graph.node = [...g.nodes, ...nodes, ...tailBuilder.nodes]
  graph.initializer = [...(graph.initializer ?? []), ...g.initializers]
  // Value infos of the renamed tensors no longer describe graph inputs/outputs: drop stale ones.
  const renamed = new Set<string>(["logits"])
  for (let l = 0; l < layers; l++)
    for (const kind of ["key", "value"]) renamed.add(`present.${l}.${kind}`).add(`past_key_values.${l}.${kind}`)
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !renamed.has(v.name ?? ""))
  return P.ModelProto.encode(proto).finish()
}

/**
 * Packs the matrix products that read the same input into one: a layer's query, key and value
 * projections, and its gate and up projections, become one product each whose weights are the
 * members' weights side by side (a `Concat` of the initializers, which onnxruntime folds into one
 * weight when the session is created), followed by a `Split` that gives each member's output its
 * own name back. Every output column is computed as before (same input, same weights, and for
 * dynamically quantized or 4-bit products with integer activations the same activation
 * quantization, which depends on the input alone), so the results are the same to float rounding
 * (a float product may sum in other blocks: last-bit differences); a decode step runs fewer,
 * larger products, with fewer thread-pool dispatches and activation quantizations. Measured (see
 * the README): q4 1.05-1.08x decoding at 8-16 threads, int8 0.98-1.12x, nothing sure at 2, for more resident memory
 * and a longer load, so the runtime does it only when asked (`LoadOptions.packProducts`).
 *
 * Packs float `MatMul` with a 2-D weight initializer, `com.microsoft` `DynamicQuantizeMatMul` with
 * per-column scales (and zero points, if any) and `MatMulNBits` whose attributes other than `N`
 * agree; products with a bias or group index input are left alone. Only the top-level graph is
 * packed (a merged decoder's `If` branches are not). Returns how many products were packed away.
 */
export const packProducts = (proto: P.ModelProto): number => {
  const graph = proto.graph
  if (graph === null || graph === undefined) return 0
  const defaultOpset = Number((proto.opsetImport ?? []).find((o) => (o.domain ?? "") === "")?.version ?? 13)
  const inits = new Map<string, P.ITensorProto>()
  for (const t of graph.initializer ?? []) inits.set(t.name ?? "", t)
  const dims = (name: string | undefined): Array<number> | undefined => {
    const t = name === undefined ? undefined : inits.get(name)
    return t === undefined ? undefined : (t.dims ?? []).map(Number)
  }
  const attrs = (n: P.INodeProto): Record<string, number> =>
    Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? "", Number(a.i ?? 0)]))
  const inputs = (n: P.INodeProto) => (n.input ?? []).map((x) => x ?? "")
  const present = (n: P.INodeProto, i: number) => (inputs(n)[i] ?? "") !== ""

  /** A product that can be packed: its group key, output width N, and per-input concat axes. */
  interface Candidate {
    readonly node: P.INodeProto
    readonly index: number
    readonly key: string
    readonly n: number
    readonly axes: ReadonlyArray<number>
  }
  const candidate = (node: P.INodeProto, index: number): Candidate | undefined => {
    const ins = inputs(node)
    const x = ins[0]
    if (x === undefined || x === "" || (node.output ?? []).length !== 1) return undefined
    const domain = node.domain ?? ""
    if (node.opType === "MatMul" && domain === "" && ins.length === 2) {
      const w = dims(ins[1])
      const t = inits.get(ins[1]!)
      if (w?.length !== 2 || t === undefined) return undefined
      return { node, index, key: `MatMul|${x}|${w[0]}|${t.dataType}`, n: w[1]!, axes: [1] }
    }
    if (node.opType === "DynamicQuantizeMatMul" && domain === "com.microsoft") {
      if (present(node, 4)) return undefined // bias
      const w = dims(ins[1])
      const t = inits.get(ins[1]!)
      const s = dims(ins[2])
      if (w?.length !== 2 || t === undefined || s?.length !== 1 || s[0] !== w[1]) return undefined
      const zp = present(node, 3)
      if (zp && dims(ins[3])?.[0] !== w[1]) return undefined
      return { node, index, key: `DQMM|${x}|${w[0]}|${t.dataType}|${zp}`, n: w[1]!, axes: zp ? [1, 0, 0] : [1, 0] }
    }
    if (node.opType === "MatMulNBits" && domain === "com.microsoft") {
      if (present(node, 4) || present(node, 5)) return undefined // group index, bias
      const a = attrs(node)
      const n = a["N"]
      const b = dims(ins[1])
      const s = dims(ins[2])
      if (n === undefined || b?.[0] !== n || s === undefined || (s.length === 2 ? s[0] !== n : s.length !== 1))
        return undefined
      const zp = present(node, 3)
      if (zp && !inits.has(ins[3]!)) return undefined
      const rest = Object.entries(a)
        .filter(([k]) => k !== "N")
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(",")
      return {
        node,
        index,
        key: `NBits|${x}|${rest}|${b.slice(1).join("x")}|${s.length}|${zp}`,
        n,
        axes: zp ? [0, 0, 0] : [0, 0]
      }
    }
    return undefined
  }

  const nodes = graph.node ?? []
  const groups = new Map<string, Array<Candidate>>()
  nodes.forEach((node, i) => {
    const c = candidate(node, i)
    if (c !== undefined) groups.set(c.key, [...(groups.get(c.key) ?? []), c])
  })
  const g = new GraphBuilder(undefined, "fastcot/pack/")
  const replaced = new Map<number, Array<P.INodeProto>>()
  const dropped = new Set<number>()
  let packed = 0
  for (const members of groups.values()) {
    if (members.length < 2) continue
    const first = members[0]!
    const before = g.nodes.length
    const weights = first.axes.map((axis, k) =>
      g.op(
        "Concat",
        members.map((m) => inputs(m.node)[k + 1]!),
        { axis }
      )
    )
    const total = members.reduce((sum, m) => sum + m.n, 0)
    const packedAttrs = (first.node.attribute ?? []).map((a) => (a.name === "N" ? { ...a, i: total } : a))
    const [wide] = g.node(
      first.node.opType!,
      [inputs(first.node)[0]!, ...weights],
      {},
      { domain: first.node.domain ?? "" }
    )
    const product = g.nodes[g.nodes.length - 1]!
    product.attribute = packedAttrs
    const widths = members.map((m) => m.n)
    const outputs = members.map((m) => m.node.output![0]!)
    if (defaultOpset >= 13) g.node("Split", [wide!, g.const(widths, DType.int64, false)], { axis: -1 }, { outputs })
    else g.node("Split", [wide!], { axis: -1, split: widths }, { outputs })
    replaced.set(first.index, g.nodes.slice(before))
    for (const m of members.slice(1)) dropped.add(m.index)
    packed += members.length - 1
  }
  if (packed === 0) return 0
  // Each group's nodes take its first member's place: the shared input exists there, and every
  // consumer of any member's output comes after that member, so after the first one too.
  graph.node = nodes.flatMap((node, i) => (dropped.has(i) ? [] : (replaced.get(i) ?? [node])))
  graph.initializer = [...(graph.initializer ?? []), ...g.initializers]
  return packed
}

/**
 * Feeds the LM head only the last position's hidden state: a Slice is put before the product that
 * makes `logits` (reached through Identity or Cast). Float and 4-bit products (`MatMul`,
 * `MatMulNBits`) compute row by row, so this is exact. A dynamically quantized product
 * (`DynamicQuantizeMatMul`, or `DynamicQuantizeLinear` → `MatMulInteger` → `Cast` → `Mul` as
 * onnxruntime's dynamic quantization writes it) takes its activation scale over all the rows it
 * is given: sliced, the first token's logits are computed as every decode step computes its own,
 * from its row alone (the same kind of difference as between a prefill and the cache). Returns the
 * product's op type, or undefined when nothing was sliced.
 */
export const sliceHeadInput = (graph: P.IGraphProto, last: string, end: string, axis: string): string | undefined => {
  const nodes = graph.node ?? []
  const producer = new Map<string, number>()
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => producer.set(o, i)))
  const readers = readCounts(nodes, graph.output ?? [])
  const onlyReadOnce = (n: P.INodeProto) => (n.output ?? []).every((o) => o === "" || (readers.get(o) ?? 0) <= 1)
  const is = (n: P.INodeProto | undefined, op: string, domain = ""): boolean =>
    n?.opType === op && (n.domain ?? "") === domain
  let at = producer.get("logits")
  while (at !== undefined && (is(nodes[at], "Identity") || is(nodes[at], "Cast")))
    at = producer.get(nodes[at]!.input?.[0] ?? "")
  if (at === undefined) return undefined
  const head = nodes[at]!
  /** The node whose first input becomes the sliced hidden states. */
  let target: P.INodeProto | undefined
  if (
    is(head, "MatMul") ||
    is(head, "MatMulNBits", "com.microsoft") ||
    is(head, "DynamicQuantizeMatMul", "com.microsoft")
  )
    target = head
  else if (is(head, "Mul")) {
    // Mul(Cast(MatMulInteger(q, W, zq, …)), scale), q and zq from one DynamicQuantizeLinear read by nothing else.
    const from = (name: string | null | undefined) => (name ? nodes[producer.get(name) ?? -1] : undefined)
    for (const side of head.input ?? []) {
      const cast = from(side)
      const product = is(cast, "Cast") ? from(cast!.input?.[0]) : undefined
      const quantize = is(product, "MatMulInteger") ? from(product!.input?.[0]) : undefined
      if (
        quantize === undefined ||
        !is(quantize, "DynamicQuantizeLinear") ||
        !onlyReadOnce(cast!) ||
        !onlyReadOnce(product!)
      )
        continue
      const [q, scale, zero] = quantize.output ?? []
      // The quantized rows, their zero point and their scale feed this product alone.
      if (readers.get(q ?? "") !== 1 || (readers.get(zero ?? "") ?? 0) > 1 || (readers.get(scale ?? "") ?? 0) > 1)
        continue
      target = quantize
      break
    }
  }
  if (target === undefined || target.input?.[0] === undefined) return undefined
  const b = new GraphBuilder(undefined, "fastcot/head/")
  const [sliced] = b.node("Slice", [target.input[0], last, end, axis], {}, { outputs: ["fastcot.last_hidden"] })
  target.input[0] = sliced!
  nodes.splice(nodes.indexOf(target), 0, ...b.nodes)
  graph.node = nodes
  return head.opType ?? undefined
}
