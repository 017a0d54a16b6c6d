import type { onnx as P } from "onnx-proto"
import { attribute, onnxProto, readCounts, subgraphs } from "./graph.js"

/**
 * Rotary position embeddings as exports write them out in plain nodes,
 * `x·cos + rotate_half(x)·sin` with `rotate_half(x) = concat(-x₂, x₁)` (x₁, x₂ the halves of the
 * last axis): six nodes per query and key in every layer (a Split or two Slices, Neg, Concat, two
 * Muls and an Add). onnxruntime's `com.microsoft` `RotaryEmbedding` does the same in one node,
 * reading cos and sin from tables indexed by `position_ids`. A decode step of a Qwen2 model with
 * Qwen2.5-0.5B's shapes runs ~1,200 small nodes around its products, each costing the runtime a
 * few microseconds; this removes 240 of them.
 *
 * The tables are not rebuilt from the config (rope scaling variants differ): the export's own
 * nodes that compute cos and sin from `position_ids` are run once, for every position the model
 * takes (`rotaryTables`), and the fusion is made only when they depend on `position_ids` alone, have
 * the layout `[1, 1, positions, head_dim]` that broadcasts over heads, are float32, and repeat
 * their first half (the rotate-half form). Anything else is left as exported.
 */
export interface RotaryPlan {
  /** Each matched rotary: the node (an Add) it replaces, its input, and its cos/sin pair. */
  readonly matches: ReadonlyArray<{
    readonly add: P.INodeProto
    readonly x: string
    readonly pair: number
    readonly inner: ReadonlyArray<P.INodeProto>
    /**
     * Where Slices cut the halves: whether they cut a head of the given size into its two halves
     * (bounds may be constants or computed from the shape of the rotated tensor). Undefined for a
     * Split into two equal parts.
     */
    readonly cutsHalves: ((headDim: number) => boolean) | undefined
  }>
  /** The distinct (cos, sin) tensors the matches multiply by. */
  readonly pairs: ReadonlyArray<{ readonly cos: string; readonly sin: string }>
  /** A model that computes every pair's cos and sin from `position_ids` ([1, positions], int64). */
  readonly tableModel: Uint8Array
  /**
   * The export's nodes that compute the tables and the Slices' bounds (dropped when the fusion
   * leaves them unread).
   */
  readonly cone: ReadonlySet<P.INodeProto>
}

/** Cos and sin tables of one pair, `[positions, head_dim / 2]` each. */
export interface RotaryTable {
  readonly cos: Float32Array
  readonly sin: Float32Array
  readonly half: number
}

const inputsOf = (n: P.INodeProto): Array<string> => (n.input ?? []).map((x) => x ?? "")
const attr = (n: P.INodeProto, name: string): P.IAttributeProto | undefined =>
  (n.attribute ?? []).find((a) => a.name === name)

/** Finds the rotate-half rotaries of the top-level graph whose cos and sin depend on `position_ids` alone. */
export const findRotary = (proto: P.ModelProto): RotaryPlan | undefined => {
  const graph = proto.graph
  if (graph === null || graph === undefined) return undefined
  const nodes = graph.node ?? []
  const producer = new Map<string, P.INodeProto>()
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n)
  const consumers = readCounts(nodes, graph.output ?? [])
  const inits = new Map<string, P.ITensorProto>()
  for (const t of graph.initializer ?? []) inits.set(t.name ?? "", t)
  const graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? "").filter((n) => !inits.has(n)))
  if (!graphInputs.has("position_ids")) return undefined

  /** A constant's tensor: an initializer, or a Constant node's value. */
  const tensorOf = (name: string): P.ITensorProto | null | undefined => {
    const made = producer.get(name)
    return made === undefined ? inits.get(name) : made.opType === "Constant" ? attr(made, "value")?.t : undefined
  }
  /** The integers of a constant, or undefined. */
  const ints = (name: string): Array<number> | undefined => {
    const t = tensorOf(name)
    if (t === undefined || t === null) return undefined
    if ((t.int64Data ?? []).length > 0) return t.int64Data!.map(Number)
    if ((t.int32Data ?? []).length > 0) return t.int32Data!.map(Number)
    const raw = t.rawData
    if (raw === null || raw === undefined || raw.byteLength === 0) return undefined
    const copy = Uint8Array.from(raw)
    if (t.dataType === 7) return Array.from(new BigInt64Array(copy.buffer), Number)
    if (t.dataType === 6) return Array.from(new Int32Array(copy.buffer))
    return undefined
  }
  const lastAxis = (axis: number | undefined) => axis === -1 || axis === 3
  /**
   * A Slice bound computed from constants and the shape of x (the rotated tensor, rank 4, its last
   * axis the head): a function of the head size (undefined where a value does not follow from it),
   * and the nodes computing it; undefined when the bound reads anything else.
   */
  const shapeBound = (
    name: string,
    x: string
  ):
    | { at: (headDim: number) => ReadonlyArray<number | undefined> | undefined; nodes: Array<P.INodeProto> }
    | undefined => {
    const nodes: Array<P.INodeProto> = []
    const seen = new Set<string>()
    const computable = (n: string): boolean => {
      if (n === "" || seen.has(n)) return true
      seen.add(n)
      const node = producer.get(n)
      if (node === undefined) return constant(n) !== undefined
      if ((node.domain ?? "") !== "" || !SHAPE_OPS.has(node.opType ?? "") || subgraphs(node).length > 0) return false
      nodes.push(node)
      if (node.opType === "Constant") return constant(n) !== undefined
      if (node.opType === "Shape") return inputsOf(node)[0] === x
      return inputsOf(node).every(computable)
    }
    if (!computable(name)) return undefined
    const at = (headDim: number) => {
      const memo = new Map<string, Value | undefined>()
      const value = (n: string): Value | undefined => {
        if (memo.has(n)) return memo.get(n)
        const node = producer.get(n)
        const v =
          node === undefined || node.opType === "Constant"
            ? constant(n)
            : evaluate(
                node,
                inputsOf(node).map((i) => (i === "" ? undefined : value(i))),
                headDim
              )
        memo.set(n, v)
        return v
      }
      return value(name)?.v
    }
    return { at, nodes }
  }
  /** A constant's values and whether they are integers, or undefined. */
  const constant = (name: string): Value | undefined => {
    const whole = ints(name)
    if (whole !== undefined) return { v: whole, int: true }
    const t = tensorOf(name)
    if (t === undefined || t === null) return undefined
    if ((t.floatData ?? []).length > 0) return { v: t.floatData!.map(Number), int: false }
    const raw = t.rawData
    if (raw === null || raw === undefined || raw.byteLength === 0 || t.dataType !== 1) return undefined
    return { v: Array.from(new Float32Array(Uint8Array.from(raw).buffer)), int: false }
  }
  /** The nodes that cut x's last axis into `first` and `second` halves (and, for Slices, the check of their bounds and the nodes computing them), or undefined. */
  const halves = (
    first: string,
    second: string,
    x: string
  ):
    | {
        nodes: Array<P.INodeProto>
        cutsHalves: ((headDim: number) => boolean) | undefined
        bounds: Array<P.INodeProto>
      }
    | undefined => {
    const a = producer.get(first)
    const b = producer.get(second)
    if (a === undefined || b === undefined) return undefined
    if (
      a === b &&
      a.opType === "Split" &&
      (a.domain ?? "") === "" &&
      inputsOf(a)[0] === x &&
      (a.output ?? []).length === 2
    ) {
      if (a.output![0] !== first || a.output![1] !== second) return undefined
      if (!lastAxis(Number(attr(a, "axis")?.i ?? 0))) return undefined
      const sizes = inputsOf(a)[1] ? ints(inputsOf(a)[1]!) : attr(a, "split")?.ints?.map(Number)
      if (sizes !== undefined && (sizes.length !== 2 || sizes[0] !== sizes[1])) return undefined
      return { nodes: [a], cutsHalves: undefined, bounds: [] }
    }
    // Two Slices, x[..., :h] and x[..., h:], with constant bounds or bounds computed from x's
    // shape (as tracing exporters write `x[..., : x.shape[-1] // 2]`): checked at fusion, for the
    // head size the tables give.
    const slice = (n: P.INodeProto) => {
      if (n.opType !== "Slice" || (n.domain ?? "") !== "" || inputsOf(n)[0] !== x) return undefined
      const [, s, e, ax, st] = inputsOf(n)
      const axes = ax ? ints(ax) : attr(n, "axes")?.ints?.map(Number)
      const steps = st ? ints(st) : [1]
      if (axes?.length !== 1 || steps?.length !== 1 || steps[0] !== 1 || !lastAxis(axes[0])) return undefined
      const bound = (input: string | undefined, name: "starts" | "ends") => {
        if (input) return shapeBound(input, x)
        const fixed = attr(n, name)?.ints?.map(Number)
        return fixed === undefined ? undefined : { at: () => fixed, nodes: [] }
      }
      const start = bound(s, "starts")
      const end = bound(e, "ends")
      return start === undefined || end === undefined ? undefined : { start, end }
    }
    const sa = slice(a)
    const sb = slice(b)
    if (sa === undefined || sb === undefined) return undefined
    const one = (v: ReadonlyArray<number | undefined> | undefined) => (v?.length === 1 ? v[0] : undefined)
    const cutsHalves = (headDim: number) => {
      const [s1, e1, s2, e2] = [sa.start, sa.end, sb.start, sb.end].map((b) => one(b.at(headDim)))
      return s1 === 0 && e1 === headDim / 2 && s2 === headDim / 2 && e2 !== undefined && e2 >= headDim
    }
    return { nodes: [a, b], cutsHalves, bounds: [sa, sb].flatMap((c) => [...c.start.nodes, ...c.end.nodes]) }
  }
  /** The other input of a two-input Mul, given one. */
  const other = (mul: P.INodeProto, one: string): string | undefined => {
    const [p, q] = inputsOf(mul)
    return p === one ? q : q === one ? p : undefined
  }

  const pairs: Array<{ cos: string; sin: string }> = []
  const boundNodes = new Set<P.INodeProto>()
  const matches: Array<RotaryPlan["matches"][number]> = []
  for (const add of nodes) {
    if (add.opType !== "Add" || (add.domain ?? "") !== "" || inputsOf(add).length !== 2) continue
    const [m1, m2] = inputsOf(add).map((i) => producer.get(i))
    for (const [xMul, rMul] of [
      [m1, m2],
      [m2, m1]
    ] as const) {
      if (xMul?.opType !== "Mul" || rMul?.opType !== "Mul" || (xMul.domain ?? "") !== "" || (rMul.domain ?? "") !== "")
        continue
      // rMul = Concat(Neg(x₂), x₁) · sin; xMul = x · cos.
      const concat = inputsOf(rMul)
        .map((i) => producer.get(i))
        .find((n) => n?.opType === "Concat" && (n.domain ?? "") === "")
      if (concat === undefined || inputsOf(concat).length !== 2 || !lastAxis(Number(attr(concat, "axis")?.i ?? 0)))
        continue
      const sin = other(rMul, concat.output![0]!)
      const neg = producer.get(inputsOf(concat)[0]!)
      if (sin === undefined || neg?.opType !== "Neg" || (neg.domain ?? "") !== "") continue
      const x2 = inputsOf(neg)[0]!
      const x1 = inputsOf(concat)[1]!
      // x is the tensor the halves are cut from, and xMul's other input is cos.
      const cutter = producer.get(x1)
      const x = cutter === undefined ? undefined : inputsOf(cutter)[0]
      const cos = x === undefined ? undefined : other(xMul, x)
      if (x === undefined || cos === undefined || cos === sin) continue
      const cut = halves(x1, x2, x)
      if (cut === undefined) continue
      const inner = [xMul, rMul, concat, neg, ...cut.nodes]
      // Every intermediate must feed only this rotary.
      const used = (n: P.INodeProto) => (n.output ?? []).reduce((k, o) => k + (consumers.get(o) ?? 0), 0)
      const expected = new Map<P.INodeProto, number>([
        [xMul, 1],
        [rMul, 1],
        [concat, 1],
        [neg, 1],
        ...cut.nodes.map((c): [P.INodeProto, number] => [c, cut.nodes.length === 1 ? 2 : 1])
      ])
      if (inner.some((n) => used(n) !== expected.get(n))) continue
      let pair = pairs.findIndex((p) => p.cos === cos && p.sin === sin)
      if (pair < 0) pair = pairs.push({ cos, sin }) - 1
      matches.push({ add, x, pair, inner, cutsHalves: cut.cutsHalves })
      for (const n of cut.bounds) boundNodes.add(n)
      break
    }
  }
  if (matches.length === 0) return undefined

  // The nodes that compute the tables: ancestors of every cos and sin, from position_ids and
  // constants only.
  const cone = new Set<P.INodeProto>()
  const needed = new Set<string>()
  const stack = pairs.flatMap((p) => [p.cos, p.sin])
  while (stack.length > 0) {
    const name = stack.pop()!
    if (name === "" || needed.has(name)) continue
    needed.add(name)
    if (inits.has(name) || name === "position_ids") continue
    const n = producer.get(name)
    if (n === undefined) return undefined // another graph input
    if (subgraphs(n).length > 0) return undefined
    if (!cone.has(n)) {
      cone.add(n)
      stack.push(...inputsOf(n))
    }
  }
  const P_ = onnxProto()
  // position_ids of any length (an export may have fixed its dims).
  const elemType = (graph.input ?? []).find((v) => v.name === "position_ids")?.type?.tensorType?.elemType ?? 7
  const positionInput: P.IValueInfoProto = {
    name: "position_ids",
    type: { tensorType: { elemType, shape: { dim: [{ dimParam: "batch" }, { dimParam: "positions" }] } } }
  }
  const tableGraph: P.IGraphProto = {
    name: "rotary tables",
    node: nodes.filter((n) => cone.has(n)),
    initializer: (graph.initializer ?? []).filter((t) => needed.has(t.name ?? "")),
    input: [positionInput],
    output: pairs.flatMap((p) => [p.cos, p.sin]).map((name) => ({ name, type: { tensorType: { elemType: 1 } } }))
  }
  const tableModel = P_.ModelProto.encode(
    P_.ModelProto.create({
      irVersion: proto.irVersion,
      opsetImport: proto.opsetImport,
      producerName: "fastcot",
      graph: tableGraph
    })
  ).finish()
  return { matches, pairs, tableModel, cone: new Set([...cone, ...boundNodes]) }
}

/**
 * Reads one pair's tables from the outputs of `tableModel` run over positions 0..n-1: the output
 * must be `[1, 1, n, d]` float32 (broadcast over heads in `[batch, heads, positions, head_dim]`)
 * and repeat its first half in its second. Returns undefined otherwise.
 */
export const readRotaryTable = (
  cos: { readonly dims: ReadonlyArray<number>; readonly data: unknown },
  sin: { readonly dims: ReadonlyArray<number>; readonly data: unknown },
  positions: number
): RotaryTable | undefined => {
  const one = (t: { readonly dims: ReadonlyArray<number>; readonly data: unknown }) => {
    const [a, b, n, d] = t.dims
    if (
      t.dims.length !== 4 ||
      a !== 1 ||
      b !== 1 ||
      n !== positions ||
      d === undefined ||
      d % 2 !== 0 ||
      !(t.data instanceof Float32Array)
    )
      return undefined
    const h = d / 2
    const out = new Float32Array(positions * h)
    for (let p = 0; p < positions; p++) {
      for (let i = 0; i < h; i++) {
        const v = t.data[p * d + i]!
        if (!Object.is(v, t.data[p * d + h + i]!)) return undefined
        out[p * h + i] = v
      }
    }
    return { table: out, half: h }
  }
  const c = one(cos)
  const s = one(sin)
  if (c === undefined || s === undefined || c.half !== s.half) return undefined
  return { cos: c.table, sin: s.table, half: c.half }
}

/**
 * Replaces every matched rotary by a `RotaryEmbedding` node over the tables (added as
 * initializers), and drops the nodes it made unused. A Slice-cut match whose head size is not
 * twice its first half is left alone. Returns how many rotaries were fused.
 */
export const fuseRotary = (proto: P.ModelProto, plan: RotaryPlan, tables: ReadonlyArray<RotaryTable>): number => {
  const graph = proto.graph!
  const replace = new Map<P.INodeProto, P.INodeProto>()
  const drop = new Set<P.INodeProto>()
  // Each pair's tables become initializers when a match first uses them.
  const tableNames = new Map<number, { cos: string; sin: string }>()
  const namesOf = (pair: number) => {
    const known = tableNames.get(pair)
    if (known !== undefined) return known
    const t = tables[pair]!
    const dims = [t.cos.length / t.half, t.half]
    const names = { cos: `fastcot/rotary/cos_${pair}`, sin: `fastcot/rotary/sin_${pair}` }
    graph.initializer = [
      ...(graph.initializer ?? []),
      { name: names.cos, dataType: 1, dims, rawData: new Uint8Array(t.cos.buffer, t.cos.byteOffset, t.cos.byteLength) },
      { name: names.sin, dataType: 1, dims, rawData: new Uint8Array(t.sin.buffer, t.sin.byteOffset, t.sin.byteLength) }
    ]
    tableNames.set(pair, names)
    return names
  }
  for (const m of plan.matches) {
    const table = tables[m.pair]!
    if (m.cutsHalves !== undefined && !m.cutsHalves(2 * table.half)) continue
    const names = namesOf(m.pair)
    replace.set(m.add, {
      opType: "RotaryEmbedding",
      domain: "com.microsoft",
      name: `${m.add.name ?? "rotary"}/fastcot_rotary`,
      input: [m.x, "position_ids", names.cos, names.sin],
      output: [...(m.add.output ?? [])],
      attribute: [attribute("interleaved", 0)]
    })
    for (const n of m.inner) drop.add(n)
  }
  if (replace.size === 0) return 0
  let nodes = (graph.node ?? []).filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n)
  // The export's table nodes may now feed nothing: drop those whose outputs nobody reads.
  let read = readCounts(nodes, graph.output ?? [])
  for (;;) {
    const kept = nodes.filter((n) => !plan.cone.has(n) || (n.output ?? []).some((o) => read.has(o)))
    if (kept.length === nodes.length) break
    nodes = kept
    read = readCounts(nodes, graph.output ?? [])
  }
  graph.node = nodes
  // And the constants only the dropped nodes read (unless a graph from before IR 4 lists them as inputs).
  const coneConstants = new Set([...plan.cone, ...drop].flatMap(inputsOf))
  const listed = new Set((graph.input ?? []).map((v) => v.name ?? ""))
  graph.initializer = (graph.initializer ?? []).filter(
    (t) => !coneConstants.has(t.name ?? "") || listed.has(t.name ?? "") || read.has(t.name ?? "")
  )
  if (!(proto.opsetImport ?? []).some((o) => o.domain === "com.microsoft"))
    proto.opsetImport = [...(proto.opsetImport ?? []), { domain: "com.microsoft", version: 1 }]
  return replace.size
}

/** The operators a Slice bound may be computed with (see `evaluate`). */
const SHAPE_OPS = new Set([
  "Constant",
  "Shape",
  "Gather",
  "Unsqueeze",
  "Squeeze",
  "Reshape",
  "Identity",
  "Cast",
  "Concat",
  "Slice",
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Mod",
  "Neg",
  "Abs",
  "Floor",
  "Ceil",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "Where"
])
/** A small tensor of a shape computation, flattened; undefined entries are unknown. */
interface Value {
  readonly v: ReadonlyArray<number | undefined>
  readonly int: boolean
}
/** ONNX integer and boolean element types (Cast's `to`). */
const INTEGER_TYPES = new Set([2, 3, 4, 5, 6, 7, 9, 12, 13])

/**
 * One node of a shape computation over known values, with the runtime's semantics (integer
 * division truncates, Mod follows the divisor's sign unless `fmod`). `Shape` reads a rank-4 tensor
 * whose last axis is the head. Unknown inputs give unknown results; undefined where the node does
 * something this does not model.
 */
const evaluate = (node: P.INodeProto, inputs: ReadonlyArray<Value | undefined>, headDim: number): Value | undefined => {
  const op = node.opType ?? ""
  const num = (name: string, fallback: number) => Number(attr(node, name)?.i ?? fallback)
  if (op === "Shape") {
    const dims: Array<number | undefined> = [undefined, undefined, undefined, headDim]
    const at = (i: number) => Math.min(4, Math.max(0, i < 0 ? i + 4 : i))
    return { v: dims.slice(at(num("start", 0)), at(num("end", 4))), int: true }
  }
  const [a, b, c] = inputs
  if (a === undefined) return undefined
  switch (op) {
    case "Unsqueeze":
    case "Squeeze":
    case "Reshape":
    case "Identity":
      return a
    case "Cast": {
      const int = INTEGER_TYPES.has(num("to", 1))
      return {
        v: a.v.map((x) => (x === undefined || !int ? x : num("to", 1) === 9 ? Number(x !== 0) : Math.trunc(x))),
        int
      }
    }
    case "Concat":
      return inputs.every((i) => i !== undefined) ? { v: inputs.flatMap((i) => i!.v), int: a.int } : undefined
    case "Gather": {
      if (num("axis", 0) !== 0 || b === undefined) return undefined
      const picked = b.v.map((i) => (i === undefined ? undefined : a.v[i < 0 ? i + a.v.length : i]))
      return b.v.some((i) => i === undefined || i < -a.v.length || i >= a.v.length)
        ? undefined
        : { v: picked, int: a.int }
    }
    case "Slice": {
      const [s, e] = [b?.v, c?.v]
      const steps = inputs[4]?.v
      if (
        s?.length !== 1 ||
        e?.length !== 1 ||
        s[0] === undefined ||
        e[0] === undefined ||
        (steps !== undefined && steps[0] !== 1)
      )
        return undefined
      const n = a.v.length
      const clamp = (i: number) => Math.min(n, Math.max(0, i < 0 ? i + n : i))
      return { v: a.v.slice(clamp(s[0]), clamp(e[0])), int: a.int }
    }
  }
  const unary: Record<string, (x: number) => number> = {
    Neg: (x) => -x,
    Abs: Math.abs,
    Floor: Math.floor,
    Ceil: Math.ceil,
    Not: (x) => Number(x === 0)
  }
  const u = unary[op]
  if (u !== undefined) return { v: a.v.map((x) => (x === undefined ? undefined : u(x))), int: a.int }
  const fmod = num("fmod", 0) === 1
  const binary: Record<string, (x: number, y: number) => number | undefined> = {
    Add: (x, y) => x + y,
    Sub: (x, y) => x - y,
    Mul: (x, y) => x * y,
    Div: (x, y) => (y === 0 ? undefined : a.int ? Math.trunc(x / y) : x / y),
    Mod: (x, y) => (y === 0 ? undefined : fmod ? x % y : ((x % y) + y) % y),
    Equal: (x, y) => Number(x === y),
    Less: (x, y) => Number(x < y),
    LessOrEqual: (x, y) => Number(x <= y),
    Greater: (x, y) => Number(x > y),
    GreaterOrEqual: (x, y) => Number(x >= y),
    And: (x, y) => Number(x !== 0 && y !== 0),
    Or: (x, y) => Number(x !== 0 || y !== 0),
    Xor: (x, y) => Number((x !== 0) !== (y !== 0))
  }
  const f = binary[op]
  const width = (...vs: ReadonlyArray<Value>) => {
    const n = Math.max(...vs.map((w) => w.v.length))
    return vs.every((w) => w.v.length === n || w.v.length === 1) ? n : undefined
  }
  const pick = (w: Value, i: number) => w.v[w.v.length === 1 ? 0 : i]
  if (f !== undefined) {
    const n = b === undefined ? undefined : width(a, b)
    if (b === undefined || n === undefined) return undefined
    const boolean = !["Add", "Sub", "Mul", "Div", "Mod"].includes(op)
    return {
      v: Array.from({ length: n }, (_, i) => {
        const [x, y] = [pick(a, i), pick(b, i)]
        return x === undefined || y === undefined ? undefined : f(x, y)
      }),
      int: boolean || a.int
    }
  }
  if (op === "Where") {
    const n = b === undefined || c === undefined ? undefined : width(a, b, c)
    if (b === undefined || c === undefined || n === undefined) return undefined
    return {
      v: Array.from({ length: n }, (_, i) => {
        const cond = pick(a, i)
        return cond === undefined ? undefined : cond !== 0 ? pick(b, i) : pick(c, i)
      }),
      int: b.int
    }
  }
  return undefined
}
