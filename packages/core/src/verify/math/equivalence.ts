import { freeSymbols, type MathNode, num, type RelOp, show } from "./ast.js"
import { type Assignment, type Complex, evaluate, isFiniteValue, sameValue } from "./numeric.js"

/** What the problem says that changes how two answers compare. */
export interface EquivalenceContext {
  /** The problem asks for all solutions or a set: a bare list compares in any order. */
  readonly unordered: boolean
  /** Bases the problem counts in ("in base 8"): a numeral with that subscript compares by its digits. */
  readonly bases: ReadonlySet<number>
  /** `performance.now()` past which comparison gives up (`GradeTimeout`). */
  readonly deadline: number
}

/** Comparison ran past the item's time cap. */
export class GradeTimeout extends Error {}

/** Relative tolerance between two constant values, and between two expressions at a sample point. */
const VALUE_TOLERANCE = 1e-12
const SAMPLE_TOLERANCE = 1e-8
const SAMPLE_POINTS = 6

/**
 * Whether `candidate` is the same answer as `reference` (the gold answer first: the comparison is
 * not symmetric where an equation meets a value). On a parsed tree, never on a flag: equations
 * compare as equations (the same unknown on the left and the right sides equal, or the two
 * differences proportional); inequalities as inequalities (or as the interval they describe);
 * tuples, intervals and matrices element by element, with their brackets; sets, and bare lists
 * where the problem asks for all solutions, in any order; text as normalised text; everything
 * else by value: the same tree as written, else equal values at several points of the free
 * variables (polynomial identity testing). A value written with `%` matches both its number and
 * its hundredth.
 */
export const equivalent = (reference: MathNode, candidate: MathNode, ctx: EquivalenceContext): boolean =>
  same(prepare(reference, ctx), prepare(candidate, ctx), ctx)

const same = (g: MathNode, p: MathNode, ctx: EquivalenceContext): boolean => {
  if (performance.now() > ctx.deadline) throw new GradeTimeout("grading ran past its time cap")
  if (show(g) === show(p)) return true
  if (g.type === "text" || p.type === "text") return sameText(g, p)
  if (g.type === "rel" || p.type === "rel") return sameRelation(g, p, ctx)
  if (g.type === "union" || p.type === "union") {
    const gs = g.type === "union" ? g.parts : [g]
    const ps = p.type === "union" ? p.parts : [p]
    return gs.length === ps.length && matchUnordered(gs, ps, ctx)
  }
  if (g.type === "matrix" || p.type === "matrix") return sameMatrix(g, p, ctx)
  if (g.type === "seq" || p.type === "seq") return sameSequence(g, p, ctx)
  return sameValueTree(g, p, ctx)
}

// ---- preparation --------------------------------------------------------------------------------

/** Expands `±`, reads numerals in the problem's bases by their digits, and unwraps `x ∈ S`. */
const prepare = (node: MathNode, ctx: EquivalenceContext): MathNode => {
  const walk = (n: MathNode): MathNode => {
    switch (n.type) {
      case "num":
        return n.base !== undefined && ctx.bases.has(n.base) ? num(Number(n.digits), false, n.digits) : n
      case "rel": {
        // `x = 1/3 ≈ 0.33`: what follows an approximation is not the answer.
        const cut = n.ops.indexOf("approx")
        const ops = cut > 0 ? n.ops.slice(0, cut) : n.ops
        const parts = (cut > 0 ? n.parts.slice(0, cut + 1) : n.parts).map(walk)
        if (ops.length === 1 && ops[0] === "in" && isSymbolic(parts[0]!)) return parts[1]!
        return { ...n, ops, parts }
      }
      case "seq": {
        const items = n.items.flatMap((i) => expandPm(walk(i)))
        return items.length === 1 && n.open === "" ? items[0]! : { ...n, items }
      }
      case "union":
        return { ...n, parts: n.parts.map(walk) }
      case "matrix":
        return { ...n, rows: n.rows.map((r) => r.map(walk)) }
      case "add":
        return { ...n, terms: n.terms.map(walk) }
      case "mul":
        return { ...n, factors: n.factors.map(walk) }
      case "neg":
      case "percent":
      case "degrees":
        return { ...n, arg: walk(n.arg) }
      case "div":
        return { ...n, num: walk(n.num), den: walk(n.den) }
      case "pow":
        return { ...n, base: walk(n.base), exp: walk(n.exp) }
      case "call":
        return { ...n, args: n.args.map(walk) }
      case "pm": {
        const values = expandPm({ ...n, left: walk(n.left), right: walk(n.right) })
        return values.length === 1 ? values[0]! : { type: "seq", open: "", close: "", items: values }
      }
      default:
        return n
    }
  }
  return walk(node)
}

/** The values of a tree with `±` in it: `1 ± √5` is [1 + √5, 1 − √5]. */
const expandPm = (n: MathNode): Array<MathNode> => {
  if (n.type === "pm") {
    const lefts = expandPm(n.left)
    const rights = expandPm(n.right)
    const out: Array<MathNode> = []
    for (const l of lefts)
      for (const r of rights)
        out.push(
          isZero(l) ? r : { type: "add", terms: [l, r] },
          isZero(l) ? { type: "neg", arg: r } : { type: "add", terms: [l, { type: "neg", arg: r }] }
        )
    return out
  }
  if (n.type === "seq" && n.open === "" && n.close === "") return [...n.items]
  return [n]
}

const isZero = (n: MathNode) => n.type === "num" && n.value === 0

/**
 * A name for the unknown: written with variables only, no number (`x`, `a_1`, `f(x)` read as f·x,
 * `(p, q)`, `\frac{NO}{BO}`, `|AB|`, `V_1 : V_2`).
 */
const isSymbolic = (n: MathNode): boolean => {
  switch (n.type) {
    case "sym":
      return true
    case "mul":
      return n.factors.every(isSymbolic)
    case "div":
      return isSymbolic(n.num) && isSymbolic(n.den)
    case "seq":
      return n.items.length > 0 && n.items.every(isSymbolic)
    case "call":
      return n.fn === "abs" && n.args.every(isSymbolic)
    default:
      return false
  }
}

// ---- text ---------------------------------------------------------------------------------------

const normaliseText = (s: string): string =>
  s
    .toLowerCase()
    .replace(/\\text\{([^{}]*)\}/g, "$1")
    .replace(/\b(?:the|a|an)\b/g, "")
    .replace(/[^a-z0-9]/g, "")

const textOf = (n: MathNode): string => (n.type === "text" ? n.text : show(n))

const sameText = (g: MathNode, p: MathNode): boolean => {
  const a = normaliseText(textOf(g))
  return a !== "" && a === normaliseText(textOf(p))
}

// ---- relations ----------------------------------------------------------------------------------

const FLIP: Partial<Record<RelOp, RelOp>> = { "<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!=" }

const isEquation = (n: MathNode): n is Extract<MathNode, { type: "rel" }> =>
  n.type === "rel" && n.ops.every((o) => o === "=" || o === "approx")

/** `x = 5`, `f(x) = x + 1`: an unknown on the left, its value last. */
const isAssignment = (n: MathNode): n is Extract<MathNode, { type: "rel" }> => isEquation(n) && isSymbolic(n.parts[0]!)

const lastPart = (n: Extract<MathNode, { type: "rel" }>): MathNode => n.parts[n.parts.length - 1]!

const sameRelation = (g: MathNode, p: MathNode, ctx: EquivalenceContext): boolean => {
  if (g.type === "rel" && p.type === "rel") {
    if (isAssignment(g) && isAssignment(p))
      return show(g.parts[0]!) === show(p.parts[0]!) && same(lastPart(g), lastPart(p), ctx)
    if (isEquation(g) && isEquation(p)) return proportionalDifferences(g, p, ctx, "any")
    return sameInequality(g, p, ctx)
  }
  if (g.type === "rel") {
    // A gold `x = 5` against an answer `5`; a gold inequality against the interval it describes.
    if (isAssignment(g)) return same(lastPart(g), p, ctx)
    const asSet = relationAsSet(g)
    return asSet !== undefined && (p.type === "seq" || p.type === "union") && same(asSet, p, ctx)
  }
  // An answer `x = 5` against a gold `5`. An inequality answer is not read as the interval a gold
  // writes (`k < -5` against `(-\infty, -5)`): the problem asked for the interval, as both
  // reference graders hold.
  if (p.type === "rel" && isEquation(p)) return same(g, lastPart(p), ctx)
  return false
}

const difference = (r: Extract<MathNode, { type: "rel" }>): MathNode => ({
  type: "add",
  terms: [r.parts[0]!, { type: "neg", arg: lastPart(r) }]
})

/** Two relations whose sides' differences are proportional: by any factor (equations), or a positive one. */
const proportionalDifferences = (
  g: Extract<MathNode, { type: "rel" }>,
  p: Extract<MathNode, { type: "rel" }>,
  ctx: EquivalenceContext,
  sign: "any" | "positive" | "negative"
): boolean => {
  if (g.parts.length !== 2 || p.parts.length !== 2) return false
  const dg = difference(g)
  const dp = difference(p)
  const symbols = [...new Set([...freeSymbols(dg), ...freeSymbols(dp)])].sort()
  if (symbols.length === 0) return false
  let ratio: Complex | undefined
  for (const at of samplePoints(symbols, ctx)) {
    const a = evaluate(dg, at)
    const b = evaluate(dp, at)
    if (!isFiniteValue(a) || !isFiniteValue(b)) continue
    if (Math.hypot(b.re, b.im) < 1e-12) {
      if (Math.hypot(a.re, a.im) < 1e-12) continue
      return false
    }
    const d = b.re * b.re + b.im * b.im
    const r = { re: (a.re * b.re + a.im * b.im) / d, im: (a.im * b.re - a.re * b.im) / d }
    if (ratio === undefined) ratio = r
    else if (!sameValue(ratio, r, SAMPLE_TOLERANCE)) return false
  }
  if (ratio === undefined || Math.abs(ratio.im) > 1e-9 || ratio.re === 0) return false
  return sign === "any" || (sign === "positive" ? ratio.re > 0 : ratio.re < 0)
}

const sameInequality = (
  g: Extract<MathNode, { type: "rel" }>,
  p: Extract<MathNode, { type: "rel" }>,
  ctx: EquivalenceContext
): boolean => {
  if (g.ops.length !== p.ops.length) return false
  const sameOrder = g.ops.every((o, i) => o === p.ops[i]) && g.parts.every((x, i) => same(x, p.parts[i]!, ctx))
  if (sameOrder) return true
  const flipped =
    g.ops.every((o, i) => FLIP[o] === p.ops[p.ops.length - 1 - i]) &&
    g.parts.every((x, i) => same(x, p.parts[p.parts.length - 1 - i]!, ctx))
  if (flipped) return true
  if (g.ops.length === 1 && g.ops[0] !== "in" && p.ops[0] !== "in") {
    if (g.ops[0] === p.ops[0]) return proportionalDifferences(g, p, ctx, "positive")
    if (FLIP[g.ops[0]!] === p.ops[0]) return proportionalDifferences(g, p, ctx, "negative")
  }
  return false
}

const INF: MathNode = { type: "const", name: "inf" }
const NEG_INF: MathNode = { type: "neg", arg: INF }

/** `x < 3` as (-∞, 3); `-2 ≤ x < 7` as [-2, 7); undefined for anything else. */
const relationAsSet = (r: Extract<MathNode, { type: "rel" }>): MathNode | undefined => {
  const strict = (o: RelOp) => o === "<" || o === ">"
  if (r.parts.length === 2 && r.ops[0] !== "=" && r.ops[0] !== "!=" && r.ops[0] !== "in") {
    const [a, b] = r.parts as [MathNode, MathNode]
    const op = r.ops[0]!
    const [variableLeft, bound] = isSymbolic(a) ? [true, b] : isSymbolic(b) ? [false, a] : [undefined, undefined]
    if (variableLeft === undefined || bound === undefined) return undefined
    const upper = (op === "<" || op === "<=") === variableLeft
    return upper
      ? { type: "seq", open: "(", close: strict(op) ? ")" : "]", items: [NEG_INF, bound] }
      : { type: "seq", open: strict(op) ? "(" : "[", close: ")", items: [bound, INF] }
  }
  if (r.parts.length === 3 && isSymbolic(r.parts[1]!)) {
    const [o1, o2] = r.ops as [RelOp, RelOp]
    const ascending = (o1 === "<" || o1 === "<=") && (o2 === "<" || o2 === "<=")
    const descending = (o1 === ">" || o1 === ">=") && (o2 === ">" || o2 === ">=")
    if (ascending)
      return {
        type: "seq",
        open: strict(o1) ? "(" : "[",
        close: strict(o2) ? ")" : "]",
        items: [r.parts[0]!, r.parts[2]!]
      }
    if (descending)
      return {
        type: "seq",
        open: strict(o2) ? "(" : "[",
        close: strict(o1) ? ")" : "]",
        items: [r.parts[2]!, r.parts[0]!]
      }
  }
  return undefined
}

// ---- sequences and matrices ---------------------------------------------------------------------

const matchOrdered = (gs: ReadonlyArray<MathNode>, ps: ReadonlyArray<MathNode>, ctx: EquivalenceContext): boolean =>
  gs.length === ps.length && gs.every((g, i) => same(g, ps[i]!, ctx))

/** A one-to-one matching of equal items in any order. */
const matchUnordered = (gs: ReadonlyArray<MathNode>, ps: ReadonlyArray<MathNode>, ctx: EquivalenceContext): boolean => {
  if (gs.length !== ps.length) return false
  const used = new Array<boolean>(ps.length).fill(false)
  const assign = (i: number): boolean => {
    if (i === gs.length) return true
    for (let j = 0; j < ps.length; j++) {
      if (used[j] || !same(gs[i]!, ps[j]!, ctx)) continue
      used[j] = true
      if (assign(i + 1)) return true
      used[j] = false
    }
    return false
  }
  return assign(0)
}

/** The items with repeats (equal values written again) left out. */
const distinct = (items: ReadonlyArray<MathNode>, ctx: EquivalenceContext): Array<MathNode> => {
  const out: Array<MathNode> = []
  for (const item of items) if (!out.some((o) => same(o, item, ctx))) out.push(item)
  return out
}

const sameSequence = (g: MathNode, p: MathNode, ctx: EquivalenceContext): boolean => {
  if (g.type !== "seq" || p.type !== "seq") {
    // A one-item list against its item; a set against one value.
    const list = (g.type === "seq" ? g : p) as Extract<MathNode, { type: "seq" }>
    const other = g.type === "seq" ? p : g
    if (list.items.length === 0 || list.open === "(" || list.open === "[") return false
    if (g.type === "seq") return list.items.length === 1 && same(list.items[0]!, other, ctx)
    // An answer that is one value, or the same value written several ways ("15\frac{39}{40}, or \frac{639}{40}").
    return list.items.every((item) => same(other, item, ctx))
  }
  const gSet = g.open === "{"
  const pSet = p.open === "{"
  const gBare = g.open === ""
  const pBare = p.open === ""
  if (gSet || pSet) {
    if ((gSet && !(pSet || pBare)) || (pSet && !(gSet || gBare))) return false
    return matchUnordered(distinct(g.items, ctx), distinct(p.items, ctx), ctx)
  }
  // Bare lists are lists of answers: any order, and an answer said twice is one, as both reference graders read them.
  if (gBare && pBare) return matchUnordered(distinct(g.items, ctx), distinct(p.items, ctx), ctx)
  if (gBare || pBare) {
    // `1, 2` against `(1, 2)`: an ordered pair written without brackets, unless the problem asks for all solutions.
    return ctx.unordered ? matchUnordered(g.items, p.items, ctx) : matchOrdered(g.items, p.items, ctx)
  }
  if (g.open !== p.open || g.close !== p.close) return false
  return matchOrdered(g.items, p.items, ctx)
}

const cellsOf = (n: MathNode): ReadonlyArray<ReadonlyArray<MathNode>> | undefined => {
  if (n.type === "matrix") return n.rows
  if (n.type === "seq" && (n.open === "(" || n.open === "[")) return n.items.map((i) => [i])
  return undefined
}

const sameMatrix = (g: MathNode, p: MathNode, ctx: EquivalenceContext): boolean => {
  const a = cellsOf(g)
  const b = cellsOf(p)
  if (a === undefined || b === undefined) return false
  const flat = (rows: ReadonlyArray<ReadonlyArray<MathNode>>) => rows.flat()
  // A column vector written as a tuple: (1, 2) against \begin{pmatrix}1\\2\end{pmatrix}.
  const shape = (rows: ReadonlyArray<ReadonlyArray<MathNode>>) => `${rows.length}x${rows[0]?.length ?? 0}`
  const vector = (rows: ReadonlyArray<ReadonlyArray<MathNode>>) =>
    rows.length === 1 || rows.every((r) => r.length === 1)
  if (shape(a) !== shape(b) && !(vector(a) && vector(b))) return false
  return matchOrdered(flat(a), flat(b), ctx)
}

// ---- values -------------------------------------------------------------------------------------

const hasPercent = (n: MathNode): boolean => show(n).includes("%")

/** Deterministic sample points in (0.3, 2.7): positive, so that √(x²) = x where both sides mean it. */
const samplePoints = (symbols: ReadonlyArray<string>, ctx: EquivalenceContext): Array<Assignment> => {
  let seed = 0x2545f491
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return 0.3 + (2.4 * seed) / 0x100000000
  }
  const points: Array<Assignment> = []
  for (let k = 0; k < SAMPLE_POINTS; k++) {
    if (performance.now() > ctx.deadline) throw new GradeTimeout("grading ran past its time cap")
    points.push(new Map(symbols.map((s) => [s, { re: next(), im: 0 }])))
  }
  return points
}

const sameValueTree = (g: MathNode, p: MathNode, ctx: EquivalenceContext): boolean => {
  const symbols = [...new Set([...freeSymbols(g), ...freeSymbols(p)])].sort()
  const gScales = hasPercent(g) ? [1, 0.01] : [1]
  const pScales = hasPercent(p) ? [1, 0.01] : [1]
  for (const gs of gScales) {
    for (const ps of pScales) {
      if (symbols.length === 0) {
        if (sameValue(evaluate(g, new Map(), gs), evaluate(p, new Map(), ps), VALUE_TOLERANCE)) return true
        continue
      }
      let compared = 0
      let equal = true
      for (const at of samplePoints(symbols, ctx)) {
        const a = evaluate(g, at, gs)
        const b = evaluate(p, at, ps)
        if (!isFiniteValue(a) && !isFiniteValue(b)) continue
        compared++
        if (!sameValue(a, b, SAMPLE_TOLERANCE)) {
          equal = false
          break
        }
      }
      if (equal && compared >= 2) return true
    }
  }
  return false
}
