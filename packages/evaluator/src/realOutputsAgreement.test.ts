import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { createGunzip } from "node:zlib"
import { gradeMath, officialMmluProLetter } from "@fastcot/core"
import { describe, expect, it } from "vitest"

/**
 * The graders against the verdicts of the graders the field trusts, on what real models wrote
 * (../shared/data/graded-outputs, see its README): Math-Verify and the Qwen2.5-Math grader on 3,514
 * math replies, MMLU-Pro's own script on 8,000 multiple-choice replies. Every disagreement is written
 * out as data (test/artifacts/grader-agreement/), and the floors fail the test when agreement drops.
 * Other outputs in the same layout are graded by pointing FASTCOT_MATH_OUTPUTS or
 * FASTCOT_MMLU_OUTPUTS at them; no row is special-cased in the grader.
 *
 * The reference for a math row is the two graders' verdict where they agree. Two kinds of rows are
 * settled otherwise, from agreement/settled.json: a rule names rows whose reference answer the
 * reference graders cannot read (they are left out of the floors and listed), and a person's
 * verdict, with the reason, replaces theirs on rows where both are demonstrably wrong.
 */
const SHARED = join(__dirname, "..", "..", "..", "..", "shared", "data", "graded-outputs")
const MATH = process.env["FASTCOT_MATH_OUTPUTS"] ?? join(SHARED, "math-real.jsonl.gz")
const MMLU = process.env["FASTCOT_MMLU_OUTPUTS"] ?? join(SHARED, "mmlu-pro-real.jsonl.gz")
const ARTIFACTS = join(__dirname, "..", "..", "..", "test", "artifacts", "grader-agreement")

interface Settled {
  readonly rules: ReadonlyArray<{ readonly name: string; readonly pattern: string; readonly why: string }>
  readonly rows: ReadonlyArray<{
    readonly problem: string
    readonly gold: string
    readonly answer: string
    readonly verdict: "correct" | "wrong"
    readonly why: string
  }>
}
const settled = JSON.parse(readFileSync(join(__dirname, "..", "agreement", "settled.json"), "utf8")) as Settled

const readJsonl = async <A>(file: string): Promise<Array<A>> => {
  const rows: Array<A> = []
  const input = file.endsWith(".gz") ? createReadStream(file).pipe(createGunzip()) : createReadStream(file)
  for await (const line of createInterface({ input })) if (line.trim() !== "") rows.push(JSON.parse(line) as A)
  return rows
}

interface MathRow {
  readonly problem_id: string
  readonly model: string
  readonly dataset: string
  readonly problem: string
  readonly gold: string
  readonly output: string
  readonly mathverify: boolean
  readonly source_grade: boolean
  readonly mv_pred_extracted?: string | null
}

const pct = (a: number, b: number) => (b === 0 ? "–" : `${((100 * a) / b).toFixed(2)} %`)

describe.runIf(existsSync(MATH))(
  "math grading against Math-Verify and the Qwen2.5-Math grader on real model outputs",
  () => {
    it("agrees on >= 99.5 % of the rows where both references agree, and grades right <= 0.1 % of those both call wrong", async () => {
      const rows = await readJsonl<MathRow>(MATH)
      const rules = settled.rules.map((r) => ({ ...r, re: new RegExp(r.pattern) }))
      const person = new Map(settled.rows.map((r) => [`${r.problem}\u0000${r.gold}\u0000${r.answer}`, r]))
      let reference = 0
      let referenceWrong = 0
      let agree = 0
      let falsePositives = 0
      let rawAgree = 0
      let rawReference = 0
      let rawFalsePositives = 0
      let rawWrong = 0
      let timeouts = 0
      const disagreements: Array<Record<string, unknown>> = []
      const referencesSplit: Array<Record<string, unknown>> = []
      const excluded: Array<Record<string, unknown>> = []
      for (const r of rows) {
        const g = gradeMath(r.gold, r.output, { question: r.problem })
        if (g.verdict === "timeout") timeouts++
        const ours = g.verdict === "correct"
        const row = {
          problem: r.problem_id,
          model: r.model,
          dataset: r.dataset,
          gold: r.gold,
          fastcot: g.verdict,
          extracted: g.extracted,
          mathverify: r.mathverify,
          qwen: r.source_grade,
          mathverifyExtracted: r.mv_pred_extracted
        }
        if (r.mathverify !== r.source_grade) {
          referencesSplit.push(row)
          continue
        }
        rawReference++
        if (!r.mathverify) rawWrong++
        if (ours === r.mathverify) rawAgree++
        else if (ours) rawFalsePositives++
        const rule = rules.find((x) => x.re.test(r.gold.trim()))
        if (rule !== undefined) {
          excluded.push({ ...row, rule: rule.name })
          continue
        }
        const byPerson =
          g.extracted !== undefined ? person.get(`${r.problem_id}\u0000${r.gold}\u0000${g.extracted}`) : undefined
        const expected = byPerson !== undefined ? byPerson.verdict === "correct" : r.mathverify
        reference++
        if (!expected) referenceWrong++
        if (ours === expected) agree++
        else {
          if (ours) falsePositives++
          disagreements.push({ ...row, reference: expected })
        }
      }
      const summary = {
        file: MATH,
        rows: rows.length,
        referencesAgree: rawReference,
        referencesSplit: referencesSplit.length,
        raw: {
          agreement: pct(rawAgree, rawReference),
          falsePositives: rawFalsePositives,
          ofBothWrong: rawWrong,
          falsePositiveRate: pct(rawFalsePositives, rawWrong)
        },
        settled: {
          rows: reference,
          excludedByRule: excluded.length,
          settledByPerson: settled.rows.length,
          agreement: pct(agree, reference),
          falsePositives,
          ofBothWrong: referenceWrong,
          falsePositiveRate: pct(falsePositives, referenceWrong)
        },
        timeouts
      }
      mkdirSync(ARTIFACTS, { recursive: true })
      writeFileSync(
        join(ARTIFACTS, "math.json"),
        JSON.stringify({ summary, disagreements, referencesSplit, excluded }, null, 1) + "\n"
      )
      console.log(JSON.stringify(summary, null, 1))
      expect(agree / reference).toBeGreaterThanOrEqual(0.995)
      expect(falsePositives / referenceWrong).toBeLessThanOrEqual(0.001)
      expect(timeouts).toBe(0)
    }, 120_000)
  }
)

interface MmluRow {
  readonly question_id: number
  readonly model: string
  readonly output: string
  readonly official_pred: string | null
  readonly official_rule: string | null
}

describe.runIf(existsSync(MMLU))(
  "MMLU-Pro: --extraction official against the benchmark's own script on real outputs",
  () => {
    it("gives the official letter on >= 99.9 % of the outputs", async () => {
      const rows = await readJsonl<MmluRow>(MMLU)
      const misses: Array<Record<string, unknown>> = []
      for (const r of rows) {
        const ours = officialMmluProLetter(r.output)
        if ((ours?.letter ?? null) !== r.official_pred)
          misses.push({
            question: r.question_id,
            model: r.model,
            official: r.official_pred,
            rule: r.official_rule,
            fastcot: ours ?? null
          })
      }
      mkdirSync(ARTIFACTS, { recursive: true })
      writeFileSync(
        join(ARTIFACTS, "mmlu-pro.json"),
        JSON.stringify({ file: MMLU, rows: rows.length, same: rows.length - misses.length, misses }, null, 1) + "\n"
      )
      expect((rows.length - misses.length) / rows.length).toBeGreaterThanOrEqual(0.999)
    }, 60_000)
  }
)
