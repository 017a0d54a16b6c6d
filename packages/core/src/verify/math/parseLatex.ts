import { type MathNode, num, type RelOp, sym } from "./ast.js"
import { cleanLatex } from "./cleanLatex.js"

/** Why an answer could not be parsed: the position and what was found there. */
export class LatexSyntaxError extends Error {
  constructor(
    readonly at: number,
    readonly found: string
  ) {
    super(`cannot parse at ${at}: ${found}`)
  }
}

/** A budget of parser steps: pathological input ends the parse instead of stalling grading. */
export class ParseBudgetExceeded extends Error {}

const FUNCTIONS = new Set([
  "sin",
  "cos",
  "tan",
  "cot",
  "sec",
  "csc",
  "arcsin",
  "arccos",
  "arctan",
  "arccot",
  "arcsec",
  "arccsc",
  "sinh",
  "cosh",
  "tanh",
  "coth",
  "sech",
  "csch",
  "arsinh",
  "arcosh",
  "artanh",
  "log",
  "ln",
  "lg",
  "exp",
  "det",
  "max",
  "min",
  "gcd",
  "lcm",
  "sgn",
  "sign",
  "abs",
  "floor",
  "ceil",
  "arg",
  "Re",
  "Im",
  "deg"
])
const TRIG = new Set(["sin", "cos", "tan", "cot", "sec", "csc"])
/** Greek letters and other commands that name a variable. */
const GREEK = new Set([
  "alpha",
  "beta",
  "gamma",
  "delta",
  "epsilon",
  "varepsilon",
  "zeta",
  "eta",
  "theta",
  "vartheta",
  "iota",
  "kappa",
  "lambda",
  "mu",
  "nu",
  "xi",
  "omicron",
  "rho",
  "varrho",
  "sigma",
  "varsigma",
  "tau",
  "upsilon",
  "phi",
  "varphi",
  "chi",
  "psi",
  "omega",
  "Gamma",
  "Delta",
  "Theta",
  "Lambda",
  "Xi",
  "Pi",
  "Sigma",
  "Upsilon",
  "Phi",
  "Psi",
  "Omega",
  "ell",
  "hbar",
  "nabla",
  "partial",
  "aleph"
])
const ACCENTS = new Set([
  "vec",
  "hat",
  "bar",
  "tilde",
  "dot",
  "ddot",
  "widehat",
  "widetilde",
  "overrightarrow",
  "overleftarrow",
  "mathring",
  "check",
  "breve",
  "acute",
  "grave",
  "underline"
])
/** Commands the parser reads (besides functions, Greek letters and accents). */
const OWN_COMMANDS = [
  "frac",
  "sqrt",
  "binom",
  "pi",
  "infty",
  "infin",
  "emptyset",
  "varnothing",
  "imath",
  "lfloor",
  "rfloor",
  "lceil",
  "rceil",
  "lvert",
  "rvert",
  "langle",
  "rangle",
  "mathbb",
  "text",
  "textrm",
  "mbox",
  "textnormal",
  "mathrm",
  "rm",
  "operatorname",
  "overline",
  "overrightarrow",
  "begin",
  "end",
  "boxed",
  "fbox",
  "framebox",
  "cdots",
  "ldots",
  "dots",
  "dotsm",
  "dotsc",
  "dotsb",
  "colon",
  "angle",
  "measuredangle",
  "mod",
  "bmod",
  "cdot",
  "times",
  "div",
  "pm",
  "mp",
  "cup",
  "le",
  "ge",
  "ne",
  "lt",
  "gt",
  "in",
  "approx",
  "equiv",
  "sim",
  "simeq",
  "cong",
  "propto",
  "choose",
  "over",
  "prime",
  "ast"
]
const MATRIX_ENVS = new Set(["pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array"])
/** Words written without a backslash that still name a function or constant. */
const PLAIN_FUNCTIONS = new Set([
  "sin",
  "cos",
  "tan",
  "cot",
  "sec",
  "csc",
  "log",
  "ln",
  "exp",
  "sqrt",
  "gcd",
  "lcm",
  "max",
  "min",
  "arcsin",
  "arccos",
  "arctan"
])
const WORD_SEPARATORS = new Set(["and", "or"])

interface Mark {
  readonly open: string
}

/**
 * A LaTeX (or plain-text) answer as an expression tree. Understands what models and datasets
 * write in final answers: fractions in all spellings (`\frac12`, `\dfrac{a}{b}`, `a/b`), roots
 * (`\sqrt13` as √13, `\sqrt[3]{x}`), powers, factorials, `\binom` and `{n \choose k}`, functions
 * with or without parentheses (`\sin^2 x`, `\log_2 8`), absolute values, floors, `\pm`,
 * percentages and degrees, scientific notation (`6e13`), repeating decimals (`0.\overline{3}`),
 * base subscripts (`52_8`), subscripted and primed variables, tuples, intervals, sets, unions,
 * matrices, relations (`=`, `<`, `\le`, `\in`, chains), lists joined by commas or "and", and text
 * (units after a value are dropped; text alone is kept as text). Throws `LatexSyntaxError` where
 * it cannot, and `ParseBudgetExceeded` past `maxSteps` (input that would take long to parse).
 */
export const parseLatex = (input: string, options: ParseOptions = {}): MathNode => {
  const clean = cleanLatex(input)
  return timeOfDay(clean) ?? new Parser(clean, options.maxSteps ?? 200_000, options.words ?? false).parseAnswer()
}

/** A time of day (`4:30 p.m.`, `\\text{4:30 PM}`) as text in one spelling, "4:30pm"; `7:32` alone is a ratio. */
const timeOfDay = (s: string): MathNode | undefined => {
  const plain = s
    .replace(/\\(?:text|mathrm|textrm|mbox)\{([^{}]*)\}/g, "$1")
    .replace(/\s+/g, " ")
    .trim()
  const m = /^(\d{1,2}):(\d{2})\s*([ap])\.?\s*m\.?$/i.exec(plain)
  return m === null ? undefined : { type: "text", text: `${Number(m[1])}:${m[2]}${m[3]!.toLowerCase()}m` }
}

export interface ParseOptions {
  /** Steps before `ParseBudgetExceeded` (default 200,000). */
  readonly maxSteps?: number | undefined
  /**
   * Read runs of three or more letters as words (text), as in a plain-text answer ("12 inches");
   * by default they are products of variables, as in LaTeX (`LCs` is L·C·s).
   */
  readonly words?: boolean | undefined
}

class Parser {
  private pos = 0
  private steps = 0
  private absDepth = 0
  private readonly stops: Array<Mark> = []

  constructor(
    private readonly s: string,
    private readonly maxSteps: number,
    private readonly words: boolean
  ) {}

  // ---- low-level reading -------------------------------------------------------------------

  private tick(): void {
    if (++this.steps > this.maxSteps) throw new ParseBudgetExceeded("the answer is too complex to parse in time")
  }

  private skipSpace(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++
  }

  private peek(): string {
    this.skipSpace()
    return this.s[this.pos] ?? ""
  }

  private startsWith(text: string): boolean {
    this.skipSpace()
    return this.s.startsWith(text, this.pos)
  }

  /** The command at the cursor (`\frac` → "frac"), without consuming it; "" when none. */
  private peekCommand(): string {
    this.skipSpace()
    if (this.s[this.pos] !== "\\") return ""
    const m = /^\\([a-zA-Z]+|.)/.exec(this.s.slice(this.pos, this.pos + 40))
    return m?.[1] ?? ""
  }

  private eatCommand(name: string): boolean {
    if (this.peekCommand() !== name) return false
    this.pos += name.length + 1
    return true
  }

  private eat(text: string): boolean {
    if (!this.startsWith(text)) return false
    this.pos += text.length
    return true
  }

  private expect(text: string): void {
    if (!this.eat(text)) this.fail()
  }

  private fail(): never {
    throw new LatexSyntaxError(this.pos, this.s.slice(this.pos, this.pos + 20) || "end of input")
  }

  /** The raw text of a `{...}` group (nested braces kept), the cursor after it. */
  private rawGroup(): string {
    this.skipSpace()
    if (this.s[this.pos] !== "{") this.fail()
    let depth = 0
    for (let j = this.pos; j < this.s.length; j++) {
      const c = this.s[j]
      if (c === "\\") {
        j++
        continue
      }
      if (c === "{") depth++
      else if (c === "}" && --depth === 0) {
        const text = this.s.slice(this.pos + 1, j)
        this.pos = j + 1
        return text
      }
    }
    return this.fail()
  }

  /** Parses `text` on its own (a group's content), with this parser's budget. */
  private sub(text: string): MathNode {
    const p = new Parser(text, this.maxSteps - this.steps, this.words)
    const node = p.parseAnswer()
    this.steps += p.steps
    return node
  }

  /** A TeX argument: a `{...}` group, a command, or one character (`\frac12`). */
  private argument(): MathNode {
    this.skipSpace()
    const c = this.s[this.pos]
    if (c === "{") return this.sub(this.rawGroup())
    if (c === "\\") return this.primary()
    if (c === undefined) this.fail()
    this.pos++
    if (/\d/.test(c)) return num(Number(c))
    if (/[a-zA-Z]/.test(c)) return sym(c)
    return this.fail()
  }

  private atStop(): boolean {
    const c = this.peek()
    if (c === "") return true
    for (const m of this.stops) if (this.s.startsWith(m.open, this.pos)) return true
    return false
  }

  // ---- grammar -----------------------------------------------------------------------------

  parseAnswer(): MathNode {
    const node = this.list()
    this.skipSpace()
    if (this.pos < this.s.length) this.fail()
    return node
  }

  /** Items joined by `,`, `;`, "and", "or": one item is itself, more are a bare list. */
  private list(): MathNode {
    const items: Array<MathNode> = []
    for (;;) {
      this.tick()
      if (this.atStop() || this.peek() === "," || this.peek() === ";") {
        if (items.length === 0 && this.atStop()) this.fail()
      } else items.push(this.relation())
      if (this.eat(",") || this.eat(";") || this.eatSeparatorWord()) continue
      break
    }
    if (items.length === 0) this.fail()
    return items.length === 1 ? items[0]! : { type: "seq", open: "", close: "", items }
  }

  private eatSeparatorWord(): boolean {
    this.skipSpace()
    const save = this.pos
    if (
      this.peekCommand() === "text" ||
      this.peekCommand() === "textrm" ||
      this.peekCommand() === "mbox" ||
      this.peekCommand() === "textnormal"
    ) {
      this.pos += this.peekCommand().length + 1
      const t = this.rawGroup().trim().replace(/^,|,$/g, "").trim().toLowerCase()
      if (t === "and" || t === "or" || t === "" || t === ",") return true
      this.pos = save
      return false
    }
    const m = /^(?:and|or)(?![a-zA-Z])/.exec(this.s.slice(this.pos))
    if (m !== null) {
      this.pos += m[0].length
      return true
    }
    return false
  }

  private static readonly REL_COMMANDS: Record<string, RelOp> = {
    le: "<=",
    ge: ">=",
    ne: "!=",
    lt: "<",
    gt: ">",
    in: "in",
    approx: "approx",
    equiv: "=",
    sim: "approx",
    simeq: "approx",
    cong: "=",
    propto: "propto"
  }

  private relOp(): RelOp | undefined {
    this.skipSpace()
    const c = this.s[this.pos]
    if (c === "=") {
      this.pos++
      return "="
    }
    if (c === "<" || c === ">") {
      this.pos++
      if (this.s[this.pos] === "=") {
        this.pos++
        return c === "<" ? "<=" : ">="
      }
      return c
    }
    if (c === "!" && this.s[this.pos + 1] === "=") {
      this.pos += 2
      return "!="
    }
    const cmd = this.peekCommand()
    const op = Parser.REL_COMMANDS[cmd]
    if (op !== undefined) {
      this.pos += cmd.length + 1
      return op
    }
    return undefined
  }

  private relation(): MathNode {
    const parts = [this.union()]
    const ops: Array<RelOp> = []
    for (;;) {
      const op = this.relOp()
      if (op === undefined) break
      ops.push(op)
      parts.push(this.union())
    }
    return ops.length === 0 ? parts[0]! : { type: "rel", ops, parts }
  }

  private union(): MathNode {
    const parts = [this.additive()]
    while (this.eatCommand("cup")) parts.push(this.additive())
    return parts.length === 1 ? parts[0]! : { type: "union", parts }
  }

  private additive(): MathNode {
    let node: MathNode
    if (this.eatCommand("pm")) node = { type: "pm", left: num(0), right: this.term() }
    else if (this.eatCommand("mp")) node = { type: "pm", left: num(0), right: { type: "neg", arg: this.term() } }
    else node = this.term()
    const terms: Array<MathNode> = [node]
    for (;;) {
      this.tick()
      if (this.eat("+")) terms.push(this.term())
      else if (this.startsWith("-") && !this.startsWith("->")) {
        this.pos++
        terms.push({ type: "neg", arg: this.term() })
      } else if (this.eatCommand("pm")) {
        const left: MathNode = terms.length === 1 ? terms[0]! : { type: "add", terms: [...terms] }
        terms.length = 0
        terms.push({ type: "pm", left, right: this.term() })
      } else if (this.eatCommand("mp")) {
        const left: MathNode = terms.length === 1 ? terms[0]! : { type: "add", terms: [...terms] }
        terms.length = 0
        terms.push({ type: "pm", left, right: { type: "neg", arg: this.term() } })
      } else break
    }
    return terms.length === 1 ? terms[0]! : { type: "add", terms }
  }

  /** Products and quotients, explicit (`\cdot`, `\times`, `*`, `/`, `\div`) or implied (`2x`). */
  private term(): MathNode {
    let node = this.unary()
    const factors: Array<MathNode> = []
    const flush = () => {
      if (factors.length > 0) {
        node = { type: "mul", factors: [node, ...factors] }
        factors.length = 0
      }
    }
    for (;;) {
      this.tick()
      if (
        this.eatCommand("cdot") ||
        this.eatCommand("times") ||
        this.eatCommand("ast") ||
        (this.startsWith("*") && this.eat("*"))
      ) {
        factors.push(this.unary())
      } else if (this.eatCommand("bmod") || this.eatCommand("mod")) {
        flush()
        node = { type: "call", fn: "mod", args: [node, this.unary()] }
      } else if (
        this.eatCommand("div") ||
        this.eatCommand("colon") ||
        (this.startsWith("/") && this.eat("/")) ||
        (this.startsWith(":") && !this.startsWith(":=") && this.eat(":"))
      ) {
        // `7:32` is a ratio: its value is the quotient.
        flush()
        node = { type: "div", num: node, den: this.unary() }
      } else if (this.startsImplicitFactor()) {
        factors.push(this.power())
      } else break
    }
    flush()
    return dropUnits(node)
  }

  private unary(): MathNode {
    if (this.eat("-")) return { type: "neg", arg: this.unary() }
    if (this.eat("+")) return this.unary()
    return this.power()
  }

  /** Whether what follows can multiply the previous factor without a sign: `2x`, `3\pi`, `(a)(b)`. */
  private startsImplicitFactor(): boolean {
    if (this.atStop()) return false
    const c = this.peek()
    if (/[0-9a-zA-Z(.{\u0370-\u03ff]/.test(c)) {
      if (c === "." && !/\d/.test(this.s[this.pos + 1] ?? "")) return false
      if (/[a-zA-Z]/.test(c) && /^(?:and|or)(?![a-zA-Z])/.test(this.s.slice(this.pos))) return false
      return true
    }
    if (c === "|") return this.absDepth === 0
    if (c === "[") return true
    if (c === "\\") {
      const cmd = this.peekCommand()
      if (
        cmd === "text" ||
        cmd === "mbox" ||
        cmd === "textrm" ||
        cmd === "mathrm" ||
        cmd === "textnormal" ||
        cmd === "operatorname"
      ) {
        // "and"/"or" written as text separate items; other text multiplies (a unit, dropped later).
        const save = this.pos
        const isSeparator = this.eatSeparatorWord()
        this.pos = save
        return !isSeparator
      }
      return (
        !(cmd in Parser.REL_COMMANDS) &&
        ![
          "mod",
          "bmod",
          "cdot",
          "times",
          "div",
          "pm",
          "mp",
          "cup",
          "cap",
          "rfloor",
          "rceil",
          "rvert",
          "rangle",
          "}",
          "]",
          ")",
          "\\",
          "end",
          "setminus",
          "to",
          "mid",
          "colon",
          "ast",
          "choose",
          "over",
          "rightarrow",
          "Rightarrow",
          "implies",
          "iff",
          "quad",
          "qquad",
          "text",
          "hline"
        ].includes(cmd)
      )
    }
    return false
  }

  private power(): MathNode {
    let base = this.postfix(this.primary())
    if (this.startsWith("^")) {
      this.pos++
      const exp = this.superscript()
      base = exp === "prime" ? primed(base) : { type: "pow", base, exp }
      base = this.postfix(base)
    }
    return base
  }

  private superscript(): MathNode | "prime" {
    this.skipSpace()
    if (this.s[this.pos] === "{") {
      const raw = this.rawGroup().trim()
      if (raw === "\\prime" || raw === "'") return "prime"
      return this.sub(raw)
    }
    if (this.peekCommand() === "prime") {
      this.pos += 6
      return "prime"
    }
    if (this.s[this.pos] === "-") {
      this.pos++
      return { type: "neg", arg: this.argument() }
    }
    // 2^(3x - 1), as plain text writes it.
    if (this.s[this.pos] === "(") return this.bracket()
    return this.argument()
  }

  private postfix(node: MathNode): MathNode {
    let n = node
    for (;;) {
      this.tick()
      const c = this.s[this.pos]
      if (c === "!" && this.s[this.pos + 1] !== "=") {
        this.pos++
        n = { type: "call", fn: "factorial", args: [n] }
      } else if (c === "%") {
        this.pos++
        n = { type: "percent", arg: n }
      } else if (c === "°") {
        this.pos++
        n = { type: "degrees", arg: n }
      } else if (c === "'") {
        this.pos++
        n = primed(n)
      } else if (c === "_" && n.type === "num" && n.base === undefined) {
        this.pos++
        const base = this.subscriptText()
        const b = Number(base)
        if (!Number.isInteger(b) || b < 2 || b > 36) this.fail()
        n = numberInBase(n.digits, b, this.pos)
      } else if (c === "_" && n.type === "sym") {
        this.pos++
        n = sym(`${n.name}_${this.subscriptText()}`)
      } else if (c === "_" && n.type === "text") {
        this.pos++
        this.subscriptText()
      } else break
    }
    return n
  }

  private subscriptText(): string {
    this.skipSpace()
    if (this.s[this.pos] === "{") return this.rawGroup().replace(/\s+|\\(?:text|mathrm|textrm)\b|[{}]/g, "")
    const m = /^(?:\\[a-zA-Z]+|[a-zA-Z0-9])/.exec(this.s.slice(this.pos))
    if (m === null) this.fail()
    this.pos += m[0].length
    return m[0].replace(/^\\/, "")
  }

  // ---- primaries ---------------------------------------------------------------------------

  private primary(): MathNode {
    this.tick()
    this.skipSpace()
    const c = this.s[this.pos]
    if (c === undefined) this.fail()
    if (/\d/.test(c) || (c === "." && /\d/.test(this.s[this.pos + 1] ?? ""))) return this.number()
    if (this.s.startsWith("...", this.pos) || c === "…") {
      this.pos += c === "…" ? 1 : 3
      return { type: "text", text: "…" }
    }
    if (/[a-zA-Z]/.test(c)) return this.word()
    if (c === "(" || c === "[") return this.bracket()
    if (c === "{") return this.braceGroup()
    if (c === "|") return this.absolute("|", "|")
    if (c === "\\") return this.command()
    if (/[\u0370-\u03ff]/.test(c)) {
      this.pos++
      return sym(c)
    }
    return this.fail()
  }

  private number(): MathNode {
    const rest = this.s.slice(this.pos, this.pos + 64)
    // 1,234,567 (groups of three, no spaces) is one number outside brackets; `(1,5)` is a pair.
    const m = (this.stops.length === 0 ? NUMBER_WITH_THOUSANDS : NUMBER).exec(rest)!
    let text = m[0]
    this.pos += text.length
    // A trailing point belongs to the sentence ("is 5."), unless a repeating part follows.
    if (text.endsWith(".") && this.peekCommand() !== "overline") {
      text = text.slice(0, -1)
      this.pos--
    }
    const clean = text.replace(/,/g, "")
    const decimal = /[.eE]/.test(clean)
    if (this.peekCommand() === "overline" && /^\d*\.\d*$/.test(clean)) {
      this.pos += 9
      const repeating = this.rawGroup().replace(/\s/g, "")
      if (!/^\d+$/.test(repeating)) this.fail()
      return repeatingDecimal(clean, repeating)
    }
    const value = Number(clean)
    // A whole number directly followed by a simple fraction is a mixed number: 1\frac{1}{4}.
    if (!decimal && this.peekCommand() === "frac") {
      const save = this.pos
      this.pos += 5
      const mixed = /^\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}/.exec(this.s.slice(this.pos))
      if (mixed !== null && Number(mixed[1]) < Number(mixed[2])) {
        this.pos += mixed[0].length
        return {
          type: "add",
          terms: [num(value, false, clean), { type: "div", num: num(Number(mixed[1])), den: num(Number(mixed[2])) }]
        }
      }
      this.pos = save
    }
    return num(value, decimal, clean)
  }

  /** Letters without a backslash: one letter is a variable; known words are functions; other words are text. */
  private word(): MathNode {
    const m = /^[a-zA-Z]+/.exec(this.s.slice(this.pos))!
    const w = m[0]
    const lower = w.toLowerCase()
    if (PLAIN_FUNCTIONS.has(lower) && /^\s*[({_^]/.test(this.s.slice(this.pos + w.length))) {
      this.pos += w.length
      return lower === "sqrt" ? { type: "call", fn: "sqrt", args: [this.functionArgument()] } : this.functionCall(lower)
    }
    if (lower === "pi" && w.length === 2) {
      this.pos += 2
      return { type: "const", name: "pi" }
    }
    if (lower === "inf" || lower === "infinity") {
      this.pos += w.length
      return { type: "const", name: "inf" }
    }
    if (w.length >= 3 && !WORD_SEPARATORS.has(lower) && (this.words || this.followsValueAsWord(w))) {
      this.pos += w.length
      return { type: "text", text: w }
    }
    this.pos++
    return letter(w[0]!)
  }

  /** `8 minutes` in LaTeX: a spaced word with a vowel after a value is a unit, not a product of variables. */
  private followsValueAsWord(w: string): boolean {
    if (!/[aeiouy]/i.test(w) || !/\s/.test(this.s[this.pos - 1] ?? "")) return false
    const before = this.s.slice(0, this.pos).trimEnd()
    return /[\d})%°.]$/.test(before)
  }

  private bracket(): MathNode {
    const open = this.s[this.pos] as "(" | "["
    this.pos++
    const save = this.absDepth
    this.absDepth = 0
    this.stops.push({ open: ")" }, { open: "]" })
    let items: Array<MathNode>
    try {
      const inner = this.list()
      items = inner.type === "seq" && inner.open === "" ? [...inner.items] : [inner]
    } finally {
      this.stops.pop()
      this.stops.pop()
      this.absDepth = save
    }
    this.skipSpace()
    const close = this.s[this.pos]
    if (close !== ")" && close !== "]") this.fail()
    this.pos++
    if (items.length === 1 && open === "(" && close === ")") return items[0]!
    if (items.length === 1 && open === "[" && close === "]") return items[0]!
    return { type: "seq", open, close, items }
  }

  private braceGroup(): MathNode {
    const raw = this.rawGroup()
    const choose = splitTopLevel(raw, "\\choose")
    if (choose !== undefined) return { type: "call", fn: "binom", args: [this.sub(choose[0]), this.sub(choose[1])] }
    const over = splitTopLevel(raw, "\\over")
    if (over !== undefined) return { type: "div", num: this.sub(over[0]), den: this.sub(over[1]) }
    if (raw.trim() === "") return { type: "seq", open: "{", close: "}", items: [] }
    return this.sub(raw)
  }

  private absolute(open: string, close: string): MathNode {
    this.pos += open.length
    this.absDepth++
    this.stops.push({ open: close })
    let inner: MathNode
    try {
      inner = this.additive()
    } finally {
      this.stops.pop()
      this.absDepth--
    }
    this.expect(close)
    return { type: "call", fn: "abs", args: [inner] }
  }

  private command(): MathNode {
    let name = this.peekCommand()
    if (!KNOWN_COMMANDS.has(name)) {
      // `\piG`, `\lceiln`, `\angleABC`: a known command run together with the letters after it.
      const prefix = [...KNOWN_COMMANDS]
        .filter((k) => k.length > 1 && name.startsWith(k))
        .sort((a, b) => b.length - a.length)[0]
      if (prefix !== undefined) name = prefix
    }
    this.pos += name.length + 1
    switch (name) {
      case "angle":
      case "measuredangle": {
        const m = /^\s*([A-Za-z]+(?:_\{?\w+\}?)?)/.exec(this.s.slice(this.pos))
        if (m === null) this.fail()
        this.pos += m[0].length
        return sym(`angle(${m[1]!.replace(/[{}\s]/g, "")})`)
      }
      case "mod":
      case "bmod":
        return this.fail()
      case "frac": {
        const a = this.argument()
        const b = this.argument()
        return { type: "div", num: a, den: b }
      }
      case "sqrt": {
        let index: MathNode | undefined
        this.skipSpace()
        if (this.s[this.pos] === "[") {
          const close = this.s.indexOf("]", this.pos)
          if (close < 0) this.fail()
          index = this.sub(this.s.slice(this.pos + 1, close))
          this.pos = close + 1
        }
        const arg = this.sqrtArgument()
        return index === undefined
          ? { type: "call", fn: "sqrt", args: [arg] }
          : { type: "call", fn: "root", args: [arg, index] }
      }
      case "binom":
        return { type: "call", fn: "binom", args: [this.argument(), this.argument()] }
      case "pi":
        return { type: "const", name: "pi" }
      case "infty":
      case "infin":
        return { type: "const", name: "inf" }
      case "emptyset":
      case "varnothing":
        return { type: "seq", open: "{", close: "}", items: [] }
      case "imath":
        return { type: "const", name: "i" }
      case "{":
        return this.setLiteral()
      case "lfloor":
        return this.delimited("floor", "rfloor")
      case "lceil":
        return this.delimited("ceil", "rceil")
      case "lvert":
        return this.delimited("abs", "rvert")
      case "|":
        return this.delimited("abs", "|")
      case "langle": {
        const inner = this.delimitedList("rangle")
        return { type: "seq", open: "(", close: ")", items: inner }
      }
      case "mathbb": {
        const set = this.rawGroup().trim()
        if (set === "R")
          return {
            type: "seq",
            open: "(",
            close: ")",
            items: [
              { type: "neg", arg: { type: "const", name: "inf" } },
              { type: "const", name: "inf" }
            ]
          }
        return { type: "text", text: `\\mathbb{${set}}` }
      }
      case "text":
      case "textrm":
      case "mbox":
      case "textnormal":
      case "mathrm":
      case "rm":
      case "operatorname":
        return this.textCommand(name)
      case "overline":
      case "overrightarrow":
        return sym(`overline(${this.rawGroup().replace(/\s+/g, "")})`)
      case "begin":
        return this.environment()
      case "boxed":
      case "fbox":
      case "framebox":
        return this.argument()
      case "e":
        return { type: "const", name: "e" }
      case "cdots":
      case "ldots":
      case "dots":
      case "dotsm":
      case "dotsc":
      case "dotsb":
        return { type: "text", text: "…" }
      default:
        break
    }
    if (ACCENTS.has(name)) return sym(`${name}(${this.rawGroup().replace(/\s+/g, "")})`)
    if (FUNCTIONS.has(name)) return this.functionCall(name)
    if (GREEK.has(name)) return sym(name)
    return this.fail()
  }

  /** `\sqrt13` is √13 as models mean it (TeX would read √1·3); `\sqrt2`, `\sqrt x`, `\sqrt{...}`. */
  private sqrtArgument(): MathNode {
    this.skipSpace()
    const digits = /^\d+(?:\.\d+)?/.exec(this.s.slice(this.pos))
    if (digits !== null) {
      this.pos += digits[0].length
      return num(Number(digits[0]), digits[0].includes("."), digits[0])
    }
    return this.argument()
  }

  private delimited(fn: string, close: string): MathNode {
    const inner = this.delimitedList(close)
    if (inner.length !== 1) this.fail()
    return { type: "call", fn, args: inner }
  }

  private delimitedList(close: string): Array<MathNode> {
    this.stops.push({ open: `\\${close}` })
    const save = this.absDepth
    this.absDepth = 0
    let inner: MathNode
    try {
      inner = this.list()
    } finally {
      this.stops.pop()
      this.absDepth = save
    }
    if (!this.eatCommand(close)) this.fail()
    return inner.type === "seq" && inner.open === "" ? [...inner.items] : [inner]
  }

  private setLiteral(): MathNode {
    this.skipSpace()
    if (this.eatCommand("}")) return { type: "seq", open: "{", close: "}", items: [] }
    const items = this.delimitedList("}")
    return { type: "seq", open: "{", close: "}", items }
  }

  private textCommand(name: string): MathNode {
    const raw = name === "rm" ? (/^\s*[a-zA-Z]+/.exec(this.s.slice(this.pos))?.[0] ?? "") : this.rawGroup()
    if (name === "rm") this.pos += raw.length
    const t = raw.trim()
    if (name === "operatorname") {
      const fn = t.replace(/\s/g, "")
      if (FUNCTIONS.has(fn) || fn === "lcm" || fn === "gcd") return this.functionCall(fn)
      return sym(fn)
    }
    if (/^[a-zA-Z]$/.test(t)) return letter(t)
    if (t === "") return { type: "text", text: "" }
    // A value written inside text: \text{5 cm}, \text{4:30 p.m.} stays text.
    if (/^[-+]?(?:\d|\.\d)/.test(t) && !/\d:\d/.test(t)) {
      try {
        return this.sub(t)
      } catch {
        return { type: "text", text: t }
      }
    }
    return { type: "text", text: t }
  }

  private environment(): MathNode {
    const env = this.rawGroup().trim()
    if (env === "array") this.rawGroup()
    const end = `\\end{${env}}`
    const close = this.s.indexOf(end, this.pos)
    if (close < 0) this.fail()
    const body = this.s.slice(this.pos, close)
    this.pos = close + end.length
    if (!MATRIX_ENVS.has(env)) return this.fail()
    const rows = body
      .split(/\\\\/)
      .map((r) => r.replace(/\\hline/g, "").trim())
      .filter((r) => r !== "")
      .map((r) => r.split("&").map((cell) => this.sub(cell)))
    const matrix: MathNode = { type: "matrix", rows }
    return env === "vmatrix" ? { type: "call", fn: "det", args: [matrix] } : matrix
  }

  /** A function's argument: parenthesised, braced, or the factor that follows (`\sin 2x` is sin(2x)). */
  private functionArgument(): MathNode {
    this.skipSpace()
    const c = this.s[this.pos]
    if (c === "(" || c === "[") {
      const b = this.bracket()
      return b
    }
    if (c === "{") return this.braceGroup()
    // sin 2x, cos x, log 8: a number and letters that follow it directly.
    const first = this.postfix(this.primary())
    const factors: Array<MathNode> = [first]
    for (;;) {
      this.skipSpace()
      const d = this.s[this.pos]
      if (d !== undefined && /[a-zA-Z]/.test(d) && !/^(?:and|or)(?![a-zA-Z])/.test(this.s.slice(this.pos)))
        factors.push(this.postfix(this.word()))
      else if (this.peekCommand() !== "" && (GREEK.has(this.peekCommand()) || this.peekCommand() === "pi"))
        factors.push(this.postfix(this.primary()))
      else break
    }
    return factors.length === 1 ? first : { type: "mul", factors }
  }

  private functionCall(name: string): MathNode {
    let fn = name === "lg" ? "log10" : name
    let power: MathNode | undefined
    let base: MathNode | undefined
    for (;;) {
      this.skipSpace()
      if (this.s[this.pos] === "^") {
        this.pos++
        const p = this.superscript()
        if (p === "prime") this.fail()
        power = p
      } else if (this.s[this.pos] === "_") {
        this.pos++
        base = this.argument()
      } else break
    }
    // sin^{-1} x is arcsin x.
    if (power !== undefined && TRIG.has(fn) && isMinusOne(power)) {
      fn = `arc${fn}`
      power = undefined
    }
    const arg = this.functionArgument()
    let args: Array<MathNode> =
      arg.type === "seq" && arg.open === "(" && ["max", "min", "gcd", "lcm", "log"].includes(fn)
        ? [...arg.items]
        : [arg]
    if (fn === "log" && base !== undefined) args = [args[0]!, base]
    let call: MathNode = {
      type: "call",
      fn,
      args,
      ...(TRIG.has(fn) && args[0]!.type === "degrees" ? { degrees: true } : {})
    }
    if (call.type === "call" && call.degrees === true) call = { ...call, args: [(args[0] as { arg: MathNode }).arg] }
    return power === undefined ? call : { type: "pow", base: call, exp: power }
  }
}

const NUMBER = /^(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+(?![a-zA-Z]))?/
const NUMBER_WITH_THOUSANDS =
  /^(?:\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+(?![a-zA-Z]))?/

const KNOWN_COMMANDS = new Set([...OWN_COMMANDS, ...FUNCTIONS, ...GREEK, ...ACCENTS])

const isMinusOne = (n: MathNode): boolean => n.type === "neg" && n.arg.type === "num" && n.arg.value === 1

const primed = (n: MathNode): MathNode =>
  n.type === "sym" ? sym(`${n.name}'`) : { type: "call", fn: "derivative", args: [n] }

/** One letter: `e` is Euler's number and `i` the imaginary unit, as in the reference graders. */
const letter = (c: string): MathNode =>
  c === "e" ? { type: "const", name: "e" } : c === "i" ? { type: "const", name: "i" } : sym(c)

const numberInBase = (digits: string, base: number, at: number): MathNode => {
  if (base === 10) return num(Number(digits), digits.includes("."), digits)
  let value = 0
  for (const d of digits) {
    const v = parseInt(d, 36)
    if (Number.isNaN(v) || v >= base) throw new LatexSyntaxError(at, `${digits}_${base}`)
    value = value * base + v
  }
  return { type: "num", value, decimal: false, digits, base }
}

/** `0.1\overline{6}` = 1/6. */
const repeatingDecimal = (head: string, repeating: string): MathNode => {
  const [whole = "0", frac = ""] = head.split(".")
  const nonRepeating = Number(`${whole || "0"}.${frac || "0"}`)
  const value = nonRepeating + Number(repeating) / (10 ** repeating.length - 1) / 10 ** frac.length
  return { type: "num", value, decimal: false, digits: `${head}(${repeating})` }
}

/** Splits `a \choose b` at a top-level command; undefined when it is not there. */
const splitTopLevel = (raw: string, command: string): [string, string] | undefined => {
  let depth = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    if (c === "{") depth++
    else if (c === "}") depth--
    else if (depth === 0 && raw.startsWith(command, i) && !/[a-zA-Z]/.test(raw[i + command.length] ?? ""))
      return [raw.slice(0, i), raw.slice(i + command.length)]
  }
  return undefined
}

const isUnit = (n: MathNode): boolean =>
  n.type === "text" ||
  (n.type === "pow" && n.base.type === "text") ||
  (n.type === "div" && isUnit(n.num) && isUnit(n.den)) ||
  (n.type === "mul" && n.factors.every(isUnit))

/** A unit after a value is not part of it: `864 \text{ inches}^2` is 864, `3 \text{m}/\text{s}` is 3; text alone stays text. */
const dropUnits = (node: MathNode): MathNode => {
  if (node.type === "div" && isUnit(node.den) && !isUnit(node.num)) return dropUnits(node.num)
  if (node.type !== "mul") return node
  const values = node.factors.filter((f) => !isUnit(f))
  if (values.length === 0)
    return { type: "text", text: node.factors.map((f) => (f.type === "text" ? f.text : "")).join(" ") }
  if (values.length === node.factors.length) return node
  return values.length === 1 ? values[0]! : { type: "mul", factors: values }
}
