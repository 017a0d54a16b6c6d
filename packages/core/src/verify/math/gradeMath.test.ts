import { describe, expect, it } from "vitest"
import { show } from "./ast.js"
import { answerCandidates } from "./extractAnswer.js"
import { equivalent } from "./equivalence.js"
import { contextOf, gradeMath } from "./gradeMath.js"
import { parseLatex } from "./parseLatex.js"

const verdict = (reference: string, reply: string, question?: string) =>
  gradeMath(reference, reply, { question }).verdict
const boxed = (s: string) => `So we are done: $\\boxed{${s}}$.`

describe("math grading: wrong answers are never called right", () => {
  it.each([
    ["x=5", "x=-5"],
    ["y=2x+3", "y=2x-3"],
    ["x+y=1", "x-y=1"],
    ["\\frac{\\pi}{2}", "90^\\circ"],
    ["(0,1)", "[0,1]"],
    ["[0,1)", "[0,1]"],
    ["0.28", "28"],
    ["\\frac{1}{3}", "0.33"],
    ["5", "6"],
    ["2^{1009}", "2^{2017}"],
    ["n^{2}+1", "\\infty"],
    ["\\infty", "-\\infty"],
    ["2n^2-2n+1", "2k^2-2k+1"],
    ["(1,2)", "(2,1)"],
    ["\\{1,2\\}", "\\{1,3\\}"],
    ["1,2,3", "1,2"],
    ["x^2", "x^3"],
    ["\\sqrt{2}", "2"],
    ["\\text{Evelyn}", "\\text{Emily}"],
    ["(-\\infty,-5)", "k < -5"],
    ["x > 3", "x < 3"],
    ["\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"],
    ["1+274i", "1-274i"]
  ])("%s is not %s", (reference, answer) => {
    expect(verdict(reference, boxed(answer))).toBe("wrong")
  })
})

describe("math grading: right answers in the forms models write them", () => {
  it.each([
    ["1,-2", "-2, 1", "Find all solutions to the equation, separated by commas."],
    ["\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", undefined],
    ["x \\in [-2,7]", "[-2,7]", undefined],
    ["3\\sqrt{13}", "3\\sqrt13", undefined],
    ["52", "52_8", "Express the sum in base 8."],
    ["10", "\\binom{5}{2}", undefined],
    ["x^2+5x+6", "(x+2)(x+3)", undefined],
    ["\\frac{\\sqrt3}{2}", "\\sin(60^\\circ)", "Compute the sine of 60 degrees."],
    ["\\frac{\\cos(2t)}{15}", "\\frac{1}{15}\\cos(2t)", undefined],
    ["864", "864 \\mbox{ inches}^2", undefined],
    ["-\\frac12 X^{-1/2}", "-\\frac{1}{2\\sqrt{X}}", undefined],
    ["6e13", "6\\times10^{13}", undefined],
    ["\\text{4:30 p.m.}", "4:30 \\text{ p.m.}", undefined],
    ["\\frac{1}{2}", "0.5", undefined],
    ["1,000", "1000", undefined],
    ["90^\\circ", "90", undefined],
    ["20\\%", "0.2", undefined],
    ["20", "20\\%", undefined],
    ["\\$32,\\!348", "32348", undefined],
    ["\\text{(C)}", "(C)", undefined],
    ["3", "x = 3", undefined],
    ["f(x)=x+1", "x+1", undefined],
    ["y = 2x + 3", "2x - y + 3 = 0", undefined],
    ["\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5", undefined],
    ["(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)", undefined],
    ["x < 2", "(-\\infty, 2)", undefined],
    ["1\\frac{1}{4}", "\\frac54", undefined],
    ["\\frac13", "0.\\overline{3}", undefined],
    [
      "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}",
      "\\begin{pmatrix} \\frac{1}{5} \\\\ -\\frac{18}{5} \\end{pmatrix}",
      undefined
    ],
    ["\\frac{\\cos(2t)+\\sin(2t)}{4}", "\\frac{1}{4} \\left[ \\cos(2t) + \\sin(2t) \\right]", undefined],
    ["\\frac{1}{LCs^{2}+RCs+1}", "\\frac{1}{RsC + s^2LC + 1}", undefined],
    ["7,14,18", "18, 14, 7", "Determine their ages."],
    ["1+\\sqrt{3}i", "1 + i\\sqrt{3}", undefined],
    ["\\log_2 8", "3", undefined],
    ["\\sqrt[3]{-8}", "-2", undefined],
    ["4!", "24", undefined]
  ])("%s is %s", (reference, answer, question) => {
    expect(verdict(reference, boxed(answer), question)).toBe("correct")
  })
})

describe("math grading: extraction", () => {
  it.each([
    ["9", "We add them up.\n\nAnswer \\( 9 \\)"],
    ["9", "Thus\n\\[ 9 \\]"],
    ["1000.99", "Adding the costs, so the total is 1,000.99"],
    ["1,5", "The roots are $1 \\text{ and } 5$."],
    ["1,5", "The roots are $1$ and $5$."],
    ["12", "Final Answer: The final answer is $12$. I hope it is correct."],
    ["7", "**Answer:** 7"],
    ["3", "The answer is 3 apples."],
    ["-2,1", "The integers are \\boxed{-2} and \\boxed{1}."],
    ["5", "<think>Maybe it is \\boxed{4}? No.</think>\nThe answer is $\\boxed{5}$."],
    [
      "4",
      "<|begin_of_thought|>\nlong thinking, maybe 3\n<|end_of_thought|>\n<|begin_of_solution|>\nSo $x = \\boxed{4}$\n<|end_of_solution|>"
    ],
    ["66", "x &= \\boxed{66}\n\\end{align*}\n\nThis follows the solution, and the final answer is clearly highlighted."]
  ])("finds %s in %j", (reference, reply) => {
    expect(gradeMath(reference, reply).verdict).toBe("correct")
  })

  it("reports no answer rather than guessing", () => {
    expect(gradeMath("5", "I think it is five").verdict).toBe("no-answer")
    expect(answerCandidates("")).toEqual([])
  })

  it("takes the final answer, not a number that follows it", () => {
    expect(gradeMath("18", "The answer is \\boxed{18}. Check: 16 \\cdot 18 = 288, and 2 more.").verdict).toBe("correct")
  })
})

describe("math grading: time cap", () => {
  it("ends pathological input as a timeout or a verdict, quickly, never a throw", () => {
    const nested = `${"\\frac{1}{".repeat(3000)}x${"}".repeat(3000)}`
    const tower = Array.from({ length: 400 }, () => "x^{").join("") + "2" + "}".repeat(400)
    const long = "1+".repeat(40_000) + "1"
    for (const answer of [nested, tower, long]) {
      const start = performance.now()
      const g = gradeMath("2", boxed(answer), { timeoutMs: 200 })
      expect(["wrong", "timeout", "no-answer"]).toContain(g.verdict)
      expect(performance.now() - start).toBeLessThan(2_000)
    }
  })
})

describe("the LaTeX parser", () => {
  it.each([
    ["\\frac12", "(1 / 2)"],
    ["\\sqrt13", "sqrt(13)"],
    ["2\\sqrt[3]{x}", "(2 * root(x, 3))"],
    ["\\sin^2 x", "(sin(x) ^ 2)"],
    ["\\sin^{-1} x", "arcsin(x)"],
    ["{5 \\choose 2}", "binom(5, 2)"],
    ["52_8", "52_8"],
    ["a_{n+1}", "a_n+1"],
    ["(1, 2]", "(1, 2]"],
    ["\\{1, 2\\}", "{1, 2}"],
    ["x \\le 3", "x <= 3"],
    ["-2 < x \\le 7", "-2 < x <= 7"],
    ["\\lfloor x \\rfloor", "floor(x)"],
    ["|x| + 1", "(abs(x) + 1)"],
    ["5!", "factorial(5)"],
    ["1.07e16", "1.07e16"],
    ["(2,12) \\cup (12,102)", "(2, 12) ∪ (12, 102)"]
  ])("reads %s", (input, tree) => {
    expect(show(parseLatex(input))).toBe(tree)
  })

  it("refuses what it cannot read, with the position", () => {
    expect(() => parseLatex("\\frac{1}{")).toThrow(/cannot parse/)
    expect(() => parseLatex("\\unknowncommand")).toThrow(/cannot parse at/)
  })
})

describe("math grading: whole numbers", () => {
  it("compares bare whole numbers as the parsed trees compare them: equal values, leading zeros, signs, near neighbours", () => {
    let seed = 7
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0)
    const pairs: Array<[string, string]> = [
      ["0", "-0"],
      ["007", "7"],
      ["999999999999", "999999999998"],
      ["-12", "12"],
      ["100", "1000"]
    ]
    for (let i = 0; i < 300; i++) {
      const digits = 1 + (next() % 12)
      const a = String(next() % 10 ** Math.min(digits, 9)) + (digits > 9 ? String(next() % 1000).padStart(3, "0") : "")
      const b = next() % 3 === 0 ? a : String(Number(a) + (next() % 3) - 1)
      pairs.push([next() % 5 === 0 ? `-${a}` : a, b])
    }
    const ctx = contextOf("What is the value?", Infinity)
    for (const [reference, answer] of pairs) {
      const parsed = equivalent(parseLatex(reference), parseLatex(answer), ctx)
      expect([reference, answer, verdict(reference, boxed(answer))]).toEqual([
        reference,
        answer,
        parsed ? "correct" : "wrong"
      ])
    }
  })
})
