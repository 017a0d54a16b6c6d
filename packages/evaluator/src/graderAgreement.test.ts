import { extractLetter, gradeMath } from "@fastcot/core"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

/**
 * The math grader against reference grades on hundreds of answer pairs built from real text:
 * MATH-500's and AIME 2024's reference solutions (written by people, with their answers in
 * \boxed{}), each against its own answer, against other problems' answers, and against the
 * answer rewritten the ways models write it. Where the grader and the reference grade disagree,
 * the pairs are written to test/artifacts/grader-disagreements.json: reported as data.
 */
const DATA = join(__dirname, "..", "..", "..", "..", "shared", "data")
const ARTIFACTS = join(__dirname, "..", "..", "..", "test", "artifacts")
const rows = (file: string) =>
  readFileSync(join(DATA, file), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { problem: string; solution: string; answer: string | number })
const math500 = rows("math500/test.jsonl")
const aime = rows("aime24/test.jsonl")

const grade = async (answer: string, output: string, question?: string) => {
  const g = gradeMath(answer, output, { question })
  return { ok: g.verdict === "correct", reason: g.reason }
}

interface Pair {
  readonly set: string
  readonly reference: string
  readonly output: string
  readonly expected: boolean
  readonly question?: string
}
const disagreements: Array<Pair & { readonly got: boolean; readonly reason: string }> = []
const run = async (pairs: ReadonlyArray<Pair>) => {
  let agree = 0
  for (const p of pairs) {
    const v = await grade(p.reference, p.output, p.question)
    if (v.ok === p.expected) agree++
    else disagreements.push({ ...p, got: v.ok, reason: v.reason })
  }
  return agree
}
const report = () => {
  mkdirSync(ARTIFACTS, { recursive: true })
  writeFileSync(join(ARTIFACTS, "grader-disagreements.json"), JSON.stringify(disagreements, null, 2) + "\n")
}

/** Answer forms a model writes for the same value. Each returns undefined when it does not apply. */
const REWRITES: Record<string, (a: string) => string | undefined> = {
  dfrac: (a) => (a.includes("\\frac") ? a.replace(/\\frac/g, "\\dfrac") : undefined),
  "x = answer": (a) => (/^-?\d+(\.\d+)?$/.test(a) ? `x = ${a}` : undefined),
  "thousands separator": (a) => (/^\d{4,}$/.test(a) ? Number(a).toLocaleString("en-US") : undefined),
  "trailing .0": (a) => (/^-?\d+$/.test(a) ? `${a}.0` : undefined),
  "decimal of a simple fraction": (a) => {
    const m = /^(-?)\\frac\{(\d+)\}\{(\d+)\}$/.exec(a)
    if (m === null) return undefined
    const v = Number(m[2]) / Number(m[3])
    const s = String(v)
    return s.length <= 8 && Number(s) === v ? `${m[1]}${s}` : undefined
  },
  "\\left( \\right)": (a) => (/^\(.*\)$/.test(a) ? `\\left${a.slice(0, -1)}\\right)` : undefined),
  "text wrapper": (a) => (/^[A-Za-z ]+$/.test(a) && !a.includes("\\") ? `\\text{${a}}` : undefined),
  spaces: (a) => (a.includes(",") ? a.replace(/,\s*/g, ", ") : undefined),
  degrees: (a) => (/^\d+$/.test(a) && Number(a) < 360 ? `${a}^\\circ` : undefined)
}

describe("grader agreement on real answer text (MATH-500 and AIME 2024)", () => {
  it("accepts every reference solution for its own answer (530 pairs)", async () => {
    const pairs = [...math500, ...aime].map((r, i) => ({
      set: i < 500 ? "math500 own" : "aime24 own",
      reference: String(r.answer),
      output: r.solution,
      expected: true,
      question: r.problem
    }))
    const agree = await run(pairs)
    report()
    expect(agree).toBe(pairs.length)
  })

  it("rejects other problems' solutions whose answers differ as text and as numbers (hundreds of pairs)", async () => {
    const norm = (s: string) => s.replace(/\s+|\\!|\\,|\\left|\\right|\\dfrac|\\tfrac/g, "").replace(/\\frac/g, "frac")
    const pairs: Array<Pair> = []
    for (let i = 0; i < math500.length; i++) {
      const mine = math500[i]!
      const other = math500[(i * 7 + 13) % math500.length]!
      const a = String(mine.answer)
      const b = String(other.answer)
      if (norm(a) === norm(b) || (Number.isFinite(Number(a)) && Number(a) === Number(b))) continue
      pairs.push({
        set: "math500 cross",
        reference: a,
        output: other.solution,
        expected: false,
        question: mine.problem
      })
    }
    const agree = await run(pairs)
    report()
    expect(pairs.length).toBeGreaterThan(450)
    // A cross pair can still be the same value written differently: those are listed, never hidden.
    expect(agree / pairs.length).toBeGreaterThan(0.995)
  })

  it("accepts the answers rewritten as models write them, boxed or after 'The final answer is'", async () => {
    const pairs: Array<Pair> = []
    for (const r of math500) {
      const a = String(r.answer)
      for (const [name, f] of Object.entries(REWRITES)) {
        const form = f(a)
        if (form !== undefined)
          pairs.push({
            set: `rewrite: ${name}`,
            reference: a,
            output: `Working through it step by step.\n\nSo the result is $\\boxed{${form}}$.`,
            expected: true
          })
      }
      if (/^-?\d+$/.test(a))
        pairs.push({
          set: "final answer sentence",
          reference: a,
          output: `Final Answer: The final answer is $${a}$. I hope it is correct.`,
          expected: true
        })
    }
    const agree = await run(pairs)
    report()
    expect(pairs.length).toBeGreaterThan(400)
    expect(agree / pairs.length).toBeGreaterThan(0.98)
  })
})

describe("hard cases (the categories the best graders test: Math-Verify, the Qwen2.5-Math grader)", () => {
  const cases: Array<[string, string, boolean, string]> = [
    // [reference, model output, equivalent?, what it checks]
    ["\\frac{1}{3}", "so $k = \\boxed{\\frac{1}{3}}$", true, "an equation's right-hand side"],
    ["\\frac{1}{3}", "\\boxed{\\frac13}", true, "a malformed frac with single-digit arguments"],
    ["\\sqrt{3}", "\\boxed{\\sqrt3}", true, "sqrt without braces"],
    ["\\frac{1}{3}", "\\boxed{\\left( \\frac{1}{3} \\right)}", true, "\\left( and \\right)"],
    ["\\frac{1}{3}", "\\boxed{\\frac{1}{3} \\text{ meters}}", true, "a unit in text"],
    ["28\\%", "\\boxed{28}", true, "a percent against the bare number"],
    ["28\\%", "\\boxed{28\\%}", true, "percent on both sides"],
    ["0.28", "\\boxed{28}", false, "a fraction is not its percent"],
    ["[0,1)", "\\boxed{[0,1)}", true, "a half-open interval"],
    ["(0,9)", "\\boxed{[0,9)}", false, "interval ends differ"],
    ["[0,9)", "\\boxed{[0,1)}", false, "interval bounds differ"],
    ["7425000", "\\boxed{7,425,000}", true, "thousands separators"],
    ["1000", "\\boxed{1000.0}", true, "a trailing .0"],
    ["-5", "\\boxed{-5}", true, "negative numbers"],
    ["-\\frac{10}{9}", "\\boxed{-10/9}", true, "slash fraction against \\frac"],
    ["2-2p", "Thus $x-p=\\boxed{2-2p}$.", true, "an expression with a variable"],
    ["2-2p", "\\boxed{-2p+2}", true, "the same polynomial reordered"],
    ["2-2p", "\\boxed{2+2p}", false, "a different polynomial"],
    ["\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}", true, "a rationalised surd"],
    ["2\\sqrt{3}", "\\boxed{\\sqrt{12}}", true, "a simplified surd"],
    ["\\frac{\\pi}{2}", "\\boxed{\\pi/2}", true, "pi over two"],
    ["90^\\circ", "\\boxed{90}", true, "degrees"],
    ["\\text{Evelyn}", "Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.", true, "a name"],
    ["\\text{Evelyn}", "\\boxed{\\text{Briana}}", false, "another name"],
    ["\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\frac{\\pi}{2})}", true, "a tuple of polar coordinates"],
    ["(3, \\frac{\\pi}{2})", "\\boxed{(\\frac{\\pi}{2}, 3)}", false, "a tuple's order matters"],
    ["\\frac{14}{3}", "$2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$", true, "the last box of a chain"],
    ["10", "\\boxed{9+1}", true, "an unevaluated sum"],
    ["\\frac{1}{3}", "\\boxed{0.33}", false, "a rounded decimal is not the fraction"],
    ["3", "\\boxed{3.0001}", false, "close is not equal"],
    ["10^{-3}", "\\boxed{0.001}", true, "scientific notation"],
    ["\\frac{3}{4}", "\\boxed{0.75}", true, "an exact decimal"],
    ["5", "I think it is five", false, "no answer given"],
    ["14{,}916", "\\boxed{14{,}916}", true, "a LaTeX thousands separator"],
    ["14{,}916", "\\boxed{14916}", true, "a LaTeX thousands separator against none"],
    [
      "\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}",
      "\\boxed{\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}}",
      true,
      "a matrix"
    ],
    [
      "\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}",
      "\\boxed{\\begin{pmatrix} 0 & 3 \\\\ 0 & 1 \\end{pmatrix}}",
      false,
      "a different matrix"
    ],
    ["\\{1, 2\\}", "\\boxed{\\{2, 1\\}}", true, "a set in another order"],
    ["12", "The answer is 12.", true, "'the answer is' without a box"],
    ["12", "Final Answer: The final answer is $12$. I hope it is correct.", true, "Minerva's final-answer sentence"],
    ["\\$1,000.99", "\\boxed{1000.99}", true, "a currency sign"],
    ["x=3", "\\boxed{3}", true, "an equation as the reference"],
    ["\\frac{28}{100}", "\\boxed{28}", false, "a fraction is not its numerator"]
  ]
  it.each(cases)("%s vs %s: %s (%s)", async (reference, output, expected) => {
    expect((await grade(reference, output)).ok).toBe(expected)
  })
})

describe("multiple choice: the chosen letter from free text", () => {
  const gpqa = readFileSync(join(DATA, "gpqa_diamond/test.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { answer: string }).answer)
  const letters = gpqa.map((a) => /\\boxed\{([A-D])\}/.exec(a)![1]!)
  const STYLES: Array<(x: string) => string> = [
    (x) => `The correct option is therefore \\boxed{${x}}.`,
    (x) => `After weighing them, the answer is (${x}).`,
    (x) => `Answer: ${x}`,
    (x) => `A and B are wrong. The answer is ${x}`,
    (x) => `\\boxed{(${x})}`
  ]
  it("reads the letter in every common phrasing for all 198 GPQA-Diamond answers (990 pairs)", () => {
    let agree = 0
    for (const x of letters) for (const style of STYLES) if (extractLetter(style(x)) === x) agree++
    expect(agree / (letters.length * STYLES.length)).toBe(1)
  })
  it("says 'no answer' rather than guessing", () => {
    for (const text of [
      "It could be A or B.",
      "I am not sure.",
      "Both (A) and (C) look plausible; more data is needed."
    ])
      expect(extractLetter(text)).toBeUndefined()
  })
})
