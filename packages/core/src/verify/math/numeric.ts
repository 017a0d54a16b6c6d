import { freeSymbols, type MathNode } from "./ast.js"

/** A complex number; real answers have `im` 0. */
export interface Complex {
  readonly re: number
  readonly im: number
}

const c = (re: number, im = 0): Complex => ({ re, im })
const NAN = c(Number.NaN, Number.NaN)
const isReal = (z: Complex) => z.im === 0 || Math.abs(z.im) <= 1e-14 * Math.max(1, Math.abs(z.re))
const add = (a: Complex, b: Complex) => c(a.re + b.re, a.im + b.im)
const mul = (a: Complex, b: Complex) =>
  a.im === 0 && b.im === 0 ? c(a.re * b.re) : c(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
const div = (a: Complex, b: Complex): Complex => {
  if (a.im === 0 && b.im === 0) return c(a.re / b.re)
  const d = b.re * b.re + b.im * b.im
  return c((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d)
}
const abs = (a: Complex) => Math.hypot(a.re, a.im)
const log = (a: Complex): Complex =>
  isReal(a) && a.re > 0 ? c(Math.log(a.re)) : c(Math.log(abs(a)), Math.atan2(a.im, a.re))
const exp = (a: Complex): Complex =>
  a.im === 0 ? c(Math.exp(a.re)) : c(Math.exp(a.re) * Math.cos(a.im), Math.exp(a.re) * Math.sin(a.im))

const pow = (a: Complex, b: Complex): Complex => {
  if (isReal(a) && isReal(b)) {
    const x = a.re
    const y = b.re
    if (x >= 0 || Number.isInteger(y)) return c(x ** y)
    // A real odd root of a negative number, as people mean it: (-8)^(1/3) = -2.
    const inv = 1 / y
    if (Math.abs(inv - Math.round(inv)) < 1e-12 && Math.round(inv) % 2 !== 0) return c(-((-x) ** y))
  }
  if (a.re === 0 && a.im === 0) return b.re > 0 ? c(0) : NAN
  return exp(mul(b, log(a)))
}

const sqrt = (a: Complex): Complex => {
  if (isReal(a)) return a.re >= 0 ? c(Math.sqrt(a.re)) : c(0, Math.sqrt(-a.re))
  const r = abs(a)
  return c(Math.sqrt((r + a.re) / 2), Math.sign(a.im) * Math.sqrt((r - a.re) / 2))
}

const gamma = (x: number): number => {
  if (Number.isInteger(x) && x <= 0) return Number.NaN
  if (x < 0.5) return Math.PI / (Math.sin(Math.PI * x) * gamma(1 - x))
  const g = 7
  const p = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7
  ]
  const z = x - 1
  let a = p[0]!
  const t = z + g + 0.5
  for (let i = 1; i < g + 2; i++) a += p[i]! / (z + i)
  return Math.sqrt(2 * Math.PI) * t ** (z + 0.5) * Math.exp(-t) * a
}

const factorial = (n: number): number => {
  if (Number.isInteger(n) && n >= 0) {
    if (n > 170) return Number.POSITIVE_INFINITY
    let r = 1
    for (let i = 2; i <= n; i++) r *= i
    return r
  }
  return gamma(n + 1)
}

const binomial = (n: number, k: number): number => {
  if (Number.isInteger(k)) {
    if (k < 0) return 0
    if (Number.isInteger(n) && n >= 0 && k > n) return 0
    let r = 1
    for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i
    return Number.isInteger(n) ? Math.round(r) : r
  }
  return gamma(n + 1) / (gamma(k + 1) * gamma(n - k + 1))
}

const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b))

const REAL_FUNCTIONS: Record<string, (x: number) => number> = {
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  cot: (x) => 1 / Math.tan(x),
  sec: (x) => 1 / Math.cos(x),
  csc: (x) => 1 / Math.sin(x),
  arcsin: Math.asin,
  arccos: Math.acos,
  arctan: Math.atan,
  arccot: (x) => Math.atan(1 / x),
  arcsec: (x) => Math.acos(1 / x),
  arccsc: (x) => Math.asin(1 / x),
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  coth: (x) => 1 / Math.tanh(x),
  sech: (x) => 1 / Math.cosh(x),
  csch: (x) => 1 / Math.sinh(x),
  arsinh: Math.asinh,
  arcosh: Math.acosh,
  artanh: Math.atanh,
  log10: Math.log10,
  floor: Math.floor,
  ceil: Math.ceil,
  sgn: Math.sign,
  sign: Math.sign,
  factorial,
  deg: (x) => (x * Math.PI) / 180
}

/** Whether a tree has no free symbols. */
const isConstant = (n: MathNode): boolean => freeSymbols(n).length === 0

/** Values for a tree's free symbols. */
export type Assignment = ReadonlyMap<string, Complex>

/**
 * The tree's value at an assignment of its free symbols, as a complex number; NaN where it has
 * none (text, lists, relations, or outside a function's domain). Trigonometric functions of a
 * value marked in degrees take it in degrees; elsewhere a degree mark does not change the value.
 * `percentScale` is what `%` multiplies by (1: "20%" is 20; 0.01: it is 0.2).
 */
export const evaluate = (node: MathNode, at: Assignment, percentScale = 1): Complex => {
  const ev = (n: MathNode): Complex => {
    switch (n.type) {
      case "num":
        return c(n.value)
      case "sym":
        return at.get(n.name) ?? NAN
      case "const":
        return n.name === "pi"
          ? c(Math.PI)
          : n.name === "e"
            ? c(Math.E)
            : n.name === "i"
              ? c(0, 1)
              : c(Number.POSITIVE_INFINITY)
      case "add":
        return n.terms.reduce((acc, t) => add(acc, ev(t)), c(0))
      case "mul":
        return n.factors.reduce((acc, f) => mul(acc, ev(f)), c(1))
      case "neg": {
        const v = ev(n.arg)
        return c(-v.re, -v.im)
      }
      case "div":
        return div(ev(n.num), ev(n.den))
      case "pow":
        return pow(ev(n.base), ev(n.exp))
      case "percent":
        return mul(ev(n.arg), c(percentScale))
      case "degrees":
        return ev(n.arg)
      case "call": {
        const args = n.args.map(ev)
        // A trigonometric value of a constant angle is a final answer only at the special angles
        // (sin 60° is √3/2); elsewhere (tan 100° + 4 sin 100°) it is left unevaluated, equal to nothing else.
        if (TRIG.has(n.fn) && n.args.length === 1 && isConstant(n.args[0]!)) {
          const angle = n.degrees === true ? (args[0]!.re * Math.PI) / 180 : args[0]!.re
          if (!isReal(args[0]!) || !specialAngle(angle)) return NAN
        }
        return call(n.fn, args, n.degrees === true)
      }
      default:
        return NAN
    }
  }
  return ev(node)
}

const call = (fn: string, args: ReadonlyArray<Complex>, degrees: boolean): Complex => {
  const [a = NAN, b] = args
  switch (fn) {
    case "sqrt":
      return sqrt(a)
    case "root":
      return b === undefined ? NAN : pow(a, div(c(1), b))
    case "abs":
      return c(abs(a))
    case "exp":
      return exp(a)
    case "ln":
      return log(a)
    case "log":
      return b === undefined ? log(a) : div(log(a), log(b))
    case "binom":
      return b === undefined || !isReal(a) || !isReal(b) ? NAN : c(binomial(a.re, b.re))
    case "max":
    case "min":
      return args.every(isReal) && args.length > 0
        ? c((fn === "max" ? Math.max : Math.min)(...args.map((x) => x.re)))
        : NAN
    case "gcd":
    case "lcm": {
      if (!args.every((x) => isReal(x) && Number.isInteger(x.re)) || args.length === 0) return NAN
      const xs = args.map((x) => x.re)
      return c(fn === "gcd" ? xs.reduce(gcd) : xs.reduce((p, q) => Math.abs(p * q) / gcd(p, q)))
    }
    case "mod":
      return b === undefined || !isReal(a) || !isReal(b) || b.re === 0 ? NAN : c(((a.re % b.re) + b.re) % b.re)
    case "Re":
      return c(a.re)
    case "Im":
      return c(a.im)
    case "arg":
      return c(Math.atan2(a.im, a.re))
    default:
      break
  }
  const f = REAL_FUNCTIONS[fn]
  if (f === undefined || !isReal(a)) return NAN
  return c(f(degrees ? (a.re * Math.PI) / 180 : a.re))
}

const TRIG = new Set(["sin", "cos", "tan", "cot", "sec", "csc"])

/**
 * Whether an angle (radians) is one whose trigonometric values are known closed forms: a multiple
 * of π/12 (15°) or of π/10 (18°).
 */
const specialAngle = (x: number): boolean =>
  [Math.PI / 12, Math.PI / 10].some((u) => Math.abs(x / u - Math.round(x / u)) < 1e-9)

/** Whether two values are the same number: relative `tolerance`, both infinite alike, NaN never. */
export const sameValue = (a: Complex, b: Complex, tolerance: number): boolean => {
  if ([a.re, a.im, b.re, b.im].some(Number.isNaN)) return false
  if (!isFiniteValue(a) || !isFiniteValue(b)) return a.re === b.re && a.im === b.im
  // Two whole numbers are equal only exactly: 11111111110 is not 11111111100.
  if (a.im === 0 && b.im === 0 && Number.isSafeInteger(a.re) && Number.isSafeInteger(b.re)) return a.re === b.re
  const close = (x: number, y: number) =>
    x === y || Math.abs(x - y) <= tolerance * Math.max(Math.abs(x), Math.abs(y), 1e-300)
  const scale = Math.max(abs(a), abs(b))
  const near = (x: number, y: number) => close(x, y) || Math.abs(x - y) <= tolerance * scale
  return near(a.re, b.re) && near(a.im, b.im)
}

export const isFiniteValue = (a: Complex) => Number.isFinite(a.re) && Number.isFinite(a.im)
