/**
 * The expression tree a math answer parses to. Numbers keep whether they were written with a
 * decimal point (a rounded value is compared with a tolerance, an exact one is not); brackets keep
 * their delimiters (an open interval is not a closed one); text stays text.
 */
export type MathNode =
  | {
      readonly type: "num"
      readonly value: number
      readonly decimal: boolean
      readonly digits: string
      readonly base?: number
    }
  | { readonly type: "sym"; readonly name: string }
  | { readonly type: "const"; readonly name: "pi" | "e" | "i" | "inf" }
  | { readonly type: "add"; readonly terms: ReadonlyArray<MathNode> }
  | { readonly type: "mul"; readonly factors: ReadonlyArray<MathNode> }
  | { readonly type: "neg"; readonly arg: MathNode }
  | { readonly type: "div"; readonly num: MathNode; readonly den: MathNode }
  | { readonly type: "pow"; readonly base: MathNode; readonly exp: MathNode }
  | { readonly type: "call"; readonly fn: string; readonly args: ReadonlyArray<MathNode>; readonly degrees?: boolean }
  /** `a ± b`: both values. */
  | { readonly type: "pm"; readonly left: MathNode; readonly right: MathNode }
  /** A value written with `%`. */
  | { readonly type: "percent"; readonly arg: MathNode }
  /** A value written with `°`. */
  | { readonly type: "degrees"; readonly arg: MathNode }
  /** `a = b`, `a < b ≤ c`, `x ∈ S`: `ops[i]` sits between `parts[i]` and `parts[i + 1]`. */
  | { readonly type: "rel"; readonly ops: ReadonlyArray<RelOp>; readonly parts: ReadonlyArray<MathNode> }
  /** Comma-separated items: `(a, b)`, `[a, b)`, `\{a, b\}`, or a bare list `a, b` (open and close empty). */
  | {
      readonly type: "seq"
      readonly open: "(" | "[" | "{" | ""
      readonly close: ")" | "]" | "}" | ""
      readonly items: ReadonlyArray<MathNode>
    }
  | { readonly type: "union"; readonly parts: ReadonlyArray<MathNode> }
  | { readonly type: "matrix"; readonly rows: ReadonlyArray<ReadonlyArray<MathNode>> }
  | { readonly type: "text"; readonly text: string }

export type RelOp = "=" | "<" | ">" | "<=" | ">=" | "!=" | "in" | "approx" | "propto"

export const num = (value: number, decimal = false, digits = String(value)): MathNode => ({
  type: "num",
  value,
  decimal,
  digits
})
export const sym = (name: string): MathNode => ({ type: "sym", name })

/** The free symbols of a tree, sorted. */
export const freeSymbols = (node: MathNode): Array<string> => {
  const out = new Set<string>()
  const walk = (n: MathNode): void => {
    switch (n.type) {
      case "sym":
        out.add(n.name)
        return
      case "add":
        n.terms.forEach(walk)
        return
      case "mul":
        n.factors.forEach(walk)
        return
      case "neg":
      case "percent":
      case "degrees":
        walk(n.arg)
        return
      case "div":
        walk(n.num)
        walk(n.den)
        return
      case "pow":
        walk(n.base)
        walk(n.exp)
        return
      case "call":
        n.args.forEach(walk)
        return
      case "pm":
        walk(n.left)
        walk(n.right)
        return
      case "rel":
        n.parts.forEach(walk)
        return
      case "seq":
        n.items.forEach(walk)
        return
      case "union":
        n.parts.forEach(walk)
        return
      case "matrix":
        n.rows.forEach((r) => r.forEach(walk))
        return
      default:
        return
    }
  }
  walk(node)
  return [...out].sort()
}

/** A canonical text of a tree: two trees with the same text are the same expression as written. */
export const show = (n: MathNode): string => {
  switch (n.type) {
    case "num":
      return n.base !== undefined ? `${n.digits}_${n.base}` : n.digits
    case "sym":
      return n.name
    case "const":
      return n.name
    case "add":
      return `(${n.terms.map(show).join(" + ")})`
    case "mul":
      return `(${n.factors.map(show).join(" * ")})`
    case "neg":
      return `-${show(n.arg)}`
    case "div":
      return `(${show(n.num)} / ${show(n.den)})`
    case "pow":
      return `(${show(n.base)} ^ ${show(n.exp)})`
    case "call":
      return `${n.fn}${n.degrees === true ? "°" : ""}(${n.args.map(show).join(", ")})`
    case "pm":
      return `(${show(n.left)} ± ${show(n.right)})`
    case "percent":
      return `${show(n.arg)}%`
    case "degrees":
      return `${show(n.arg)}°`
    case "rel":
      return n.parts.map((p, i) => (i === 0 ? show(p) : ` ${n.ops[i - 1]} ${show(p)}`)).join("")
    case "seq":
      return `${n.open}${n.items.map(show).join(", ")}${n.close}`
    case "union":
      return n.parts.map(show).join(" ∪ ")
    case "matrix":
      return `[${n.rows.map((r) => r.map(show).join(", ")).join("; ")}]`
    case "text":
      return JSON.stringify(n.text)
  }
}
