import * as Schema from "effect/Schema"
import type { EvalResults } from "./evaluate.js"

const pct = (x: number) => (100 * x).toFixed(1)
type Bench = EvalResults["benchmarks"][number]
/** A benchmark none of whose generations was scored (all failed): its scores are not zeros, there are none. */
const unscored = (b: Bench) => b.summary.samples === 0
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Accuracy and average output tokens per benchmark, one row per run (the article's two tables). */
export const markdownReport = (runs: ReadonlyArray<EvalResults>): string => {
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.bench)))]
  const cell = (r: EvalResults, bench: string, f: (b: Bench) => string) => {
    const b = r.benchmarks.find((x) => x.bench === bench)
    return b === undefined ? "–" : f(b)
  }
  const table = (title: string, f: (b: Bench) => string) =>
    [
      `### ${title}`,
      "",
      `| model | ${benches.join(" | ")} |`,
      `|---|${benches.map(() => "---|").join("")}`,
      ...runs.map((r) => `| ${r.model} | ${benches.map((b) => cell(r, b, f)).join(" | ")} |`),
      ""
    ].join("\n")
  return [
    "## Evaluation",
    "",
    table("Accuracy (avg@k: pass@1 averaged over k samples, ±95% CI)", (b) =>
      unscored(b) ? "– (none scored)" : `${pct(b.summary.accuracy)} ± ${pct(b.summary.ci95)}`
    ),
    ...(runs.some((r) => r.benchmarks.some((b) => b.summary.majAtK !== undefined))
      ? [table("Majority vote (maj@k) and pass@k", (b) => majAndPass(b))]
      : []),
    table("Average output tokens", (b) => (unscored(b) ? "–" : b.summary.meanOutputTokens.toFixed(0))),
    table("No answer (samples; truncated ones included)", (b) => String(b.summary.noAnswer)),
    table("Truncated at max_tokens (samples)", (b) => String(b.summary.truncated)),
    // Only when a run lost generations: they are left out of the scores, which the reader must know.
    ...(runs.some((r) => r.benchmarks.some((b) => (b.failed?.samples ?? 0) > 0))
      ? [table("Failed generations (left out of the scores; rerun to retry)", (b) => String(b.failed?.samples ?? 0))]
      : []),
    // Only when saved outputs left questions unanswered: a score over part of a benchmark.
    ...(runs.some((r) => r.benchmarks.some((b) => (b.withoutOutput ?? 0) > 0))
      ? [
          table(
            "Questions without a saved output (left out of the scores)",
            (b) => `${b.withoutOutput ?? 0} of ${b.summary.items + (b.withoutOutput ?? 0)}`
          )
        ]
      : []),
    "Settings: " +
      runs
        .map(
          (r) =>
            `${r.model}: preset ${r.settings.preset}, ${samplesOf(r)}, ${r.settings.graderVersion}, ${r.settings.extraction ?? "fastcot"} extraction, seed ${r.settings.seed ?? 0}, tokens counted with ${r.settings.tokenizer}`
        )
        .join("; "),
    ...comparability(runs),
    ""
  ].join("\n")
}

const majAndPass = (b: Bench): string => {
  if (unscored(b)) return "–"
  const maj = Object.entries(b.summary.majAtK ?? {})[0]
  const pass = Object.entries(b.summary.passAtK)
    .filter(([k]) => k !== "pass@1")
    .pop()
  return (
    [
      maj !== undefined ? `${maj[0]} ${pct(maj[1])}` : undefined,
      pass !== undefined ? `${pass[0]} ${pct(pass[1])}` : undefined
    ]
      .filter((x) => x !== undefined)
      .join(", ") || "–"
  )
}

/** "4 samples" or, where presets set them per benchmark, "samples: aime24 64, math500 4". */
const samplesOf = (r: EvalResults): string => {
  const per = r.benchmarks.filter((b) => b.samplesPerItem !== undefined)
  const counts = new Set(per.map((b) => b.samplesPerItem))
  if (per.length === 0 || counts.size <= 1)
    return `${per[0]?.samplesPerItem ?? r.settings.samples} sample(s) per question`
  return `samples per question: ${per.map((b) => `${b.bench} ${b.samplesPerItem}`).join(", ")}`
}

/**
 * Runs side by side compare only where they were measured alike: output tokens counted with one
 * tokenizer, answers graded by one grader version. Says so when they were not.
 */
const comparability = (runs: ReadonlyArray<EvalResults>): Array<string> => {
  const differ = (what: (r: EvalResults) => string) => new Set(runs.map(what)).size > 1
  const list = (what: (r: EvalResults) => string) => runs.map((r) => `${r.model}: ${what(r)}`).join(", ")
  return [
    ...(differ((r) => r.settings.tokenizer)
      ? [
          "",
          `**Caution:** output tokens were counted with different tokenizers (${list((r) => r.settings.tokenizer)}); the token columns do not compare across them (\`fastcot eval --tokenizer\` sets one).`
        ]
      : []),
    ...(differ((r) => r.settings.graderVersion)
      ? [
          "",
          `**Caution:** answers were graded by different grader versions (${list((r) => r.settings.graderVersion)}); regrade the older runs with \`fastcot eval --regrade RUN\` to compare accuracy.`
        ]
      : []),
    ...runs.flatMap((r) =>
      (r.settings.unmatchedPredictions ?? 0) > 0
        ? [
            "",
            `**Caution:** ${r.model}: ${r.settings.unmatchedPredictions} of the ids in ${r.settings.predictions ?? "the saved outputs"} are no question graded here (a mistyped id, or another benchmark's); their outputs were not graded.`
          ]
        : []
    ),
    ...(differ((r) => r.settings.extraction ?? "fastcot")
      ? [
          "",
          `**Caution:** multiple-choice answers were read differently (${list((r) => r.settings.extraction ?? "fastcot")}); regrade with one \`--extraction\` to compare.`
        ]
      : [])
  ]
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
const niceCeiling = (x: number): number => {
  const p = 10 ** Math.floor(Math.log10(x))
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= x) ?? 10 * p
}

/** A self-contained HTML page (no network): the tables and an accuracy-against-tokens chart per benchmark. */
export const htmlReport = (runs: ReadonlyArray<EvalResults>, drill: ReadonlyArray<Disagreement> = []): string => {
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.bench)))]
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
  const charts = benches
    .map((bench) => {
      const points = runs.flatMap((r, i) => {
        const b = r.benchmarks.find((x) => x.bench === bench)
        return b === undefined || unscored(b)
          ? []
          : [
              {
                model: r.model,
                x: b.summary.meanOutputTokens,
                y: b.summary.accuracy,
                ci: b.summary.ci95,
                color: colors[i % colors.length]!
              }
            ]
      })
      const maxX = niceCeiling(Math.max(1, ...points.map((p) => p.x)) * 1.1)
      const W = 380
      const H = 260
      const x0 = 48
      const y0 = H - 36
      const px = (x: number) => x0 + (x / maxX) * (W - x0 - 14)
      const py = (y: number) => y0 - y * (y0 - 14)
      const xTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * maxX)
      const yTicks = [0, 0.25, 0.5, 0.75, 1]
      const axes =
        `<line x1="${x0}" y1="${y0}" x2="${W - 10}" y2="${y0}" stroke="#888"/><line x1="${x0}" y1="10" x2="${x0}" y2="${y0}" stroke="#888"/>` +
        xTicks
          .map(
            (t) =>
              `<line x1="${px(t)}" y1="${y0}" x2="${px(t)}" y2="${y0 + 4}" stroke="#888"/><text x="${px(t)}" y="${y0 + 15}" font-size="10" text-anchor="middle">${t.toFixed(0)}</text>`
          )
          .join("") +
        yTicks
          .map(
            (t) =>
              `<line x1="${x0 - 4}" y1="${py(t)}" x2="${x0}" y2="${py(t)}" stroke="#888"/><text x="${x0 - 6}" y="${py(t) + 3}" font-size="10" text-anchor="end">${(100 * t).toFixed(0)}%</text>`
          )
          .join("") +
        `<text x="${(x0 + W) / 2}" y="${H - 4}" font-size="11" text-anchor="middle">average output tokens per answer</text><text x="12" y="${y0 / 2}" font-size="11" transform="rotate(-90 12 ${y0 / 2})" text-anchor="middle">accuracy (avg@k, 95% CI)</text>`
      const dots = points
        .map(
          (p) =>
            `<line x1="${px(p.x)}" y1="${py(Math.min(1, p.y + p.ci))}" x2="${px(p.x)}" y2="${py(Math.max(0, p.y - p.ci))}" stroke="${p.color}" stroke-width="1.5"/>` +
            `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="5" fill="${p.color}"><title>${esc(p.model)}: ${pct(p.y)}% ± ${pct(p.ci)}, ${p.x.toFixed(0)} tokens</title></circle><text x="${px(p.x) + 8}" y="${py(p.y) - 6}" font-size="11">${esc(p.model)}</text>`
        )
        .join("")
      return `<figure><figcaption>${esc(bench)}: accuracy against average output tokens</figcaption><svg role="img" aria-label="${esc(bench)} accuracy against tokens" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${axes}${dots}</svg></figure>`
    })
    .join("\n")
  const md = markdownReport(runs)
  const tables = md
    .split("### ")
    .slice(1)
    .map((block) => {
      const [title, , head, , ...rows] = block.trim().split("\n")
      const cells = (line: string) =>
        line
          .split("|")
          .slice(1, -1)
          .map((c) => c.trim())
      return `<h3>${esc(title!)}</h3><table><thead><tr>${cells(head!)
        .map((c) => `<th>${esc(c)}</th>`)
        .join("")}</tr></thead><tbody>${rows
        .filter((r) => r.startsWith("|"))
        .map(
          (r) =>
            `<tr>${cells(r)
              .map((c) => `<td>${esc(c)}</td>`)
              .join("")}</tr>`
        )
        .join("")}</tbody></table>`
    })
    .join("\n")
  // The lines after the tables: the settings each run was measured with, and any caution.
  const notes = md
    .split("\n")
    .filter((line) => line.startsWith("Settings: ") || line.startsWith("**Caution:** "))
    .map(
      (line) =>
        `<p>${esc(line)
          .replace(/^\*\*Caution:\*\*/, "<strong>Caution:</strong>")
          .replace(/`([^`]*)`/g, "<code>$1</code>")}</p>`
    )
    .join("")
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>fastcot evaluation</title><style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:0 1rem 1rem 0}</style></head><body><h1>fastcot evaluation</h1>${tables}${notes}<h2>Accuracy against output tokens</h2>${charts}${
    drill.length > 0
      ? `<h2>Disagreements between runs</h2><table><thead><tr><th>benchmark</th><th>item</th>${drill[0]!.runs.map((r) => `<th>${esc(r.model)}</th>`).join("")}</tr></thead><tbody>${drill
          .slice(0, 500)
          .map(
            (d) =>
              `<tr><td>${esc(d.bench)}</td><td>${esc(d.id)}</td>${d.runs.map((r) => `<td>${(100 * r.correct).toFixed(0)}% ${esc((r.extracted ?? "–").slice(0, 60))}</td>`).join("")}</tr>`
          )
          .join("")}</tbody></table>`
      : ""
  }</body></html>\n`
}

/** One line of generations.jsonl, as far as reports read it (a Schema: reports read it back). */
export const Generation = Schema.Struct({
  bench: Schema.String,
  id: Schema.String,
  correct: Schema.optional(Schema.Boolean),
  extracted: Schema.optional(Schema.String)
})
export type Generation = typeof Generation.Type

export interface Disagreement {
  readonly bench: string
  readonly id: string
  /** Per run: fraction of its samples graded correct, and the first extracted answer. */
  readonly runs: ReadonlyArray<{
    readonly model: string
    readonly correct: number
    readonly extracted?: string | undefined
  }>
}

/** Items some runs get right and others wrong (by majority of samples), for a per-item look. */
export const disagreements = (
  runs: ReadonlyArray<{ readonly model: string; readonly generations: ReadonlyArray<Generation> }>
): Array<Disagreement> => {
  const table = new Map<string, Map<number, Array<Generation>>>()
  runs.forEach((run, r) => {
    for (const g of run.generations) {
      if (g.correct === undefined) continue
      const key = `${g.bench}\u0000${g.id}`
      const perRun = table.get(key) ?? new Map<number, Array<Generation>>()
      perRun.set(r, [...(perRun.get(r) ?? []), g])
      table.set(key, perRun)
    }
  })
  const out: Array<Disagreement> = []
  for (const [key, perRun] of table) {
    if (perRun.size < runs.length) continue
    const rows = runs.map((run, r) => {
      const gs = perRun.get(r)!
      return { model: run.model, correct: gs.filter((g) => g.correct).length / gs.length, extracted: gs[0]!.extracted }
    })
    const majority = rows.map((x) => x.correct >= 0.5)
    if (majority.some((m) => m) && majority.some((m) => !m)) {
      const [bench, id] = key.split("\u0000")
      out.push({ bench: bench!, id: id!, runs: rows })
    }
  }
  return out
}

export const disagreementsMarkdown = (list: ReadonlyArray<Disagreement>, limit = 50): string =>
  list.length === 0
    ? "No item is right in one run and wrong in another.\n"
    : [
        `### Disagreements (${list.length} items right in some runs, wrong in others${list.length > limit ? `; first ${limit}` : ""})`,
        "",
        `| benchmark | item | ${list[0]!.runs.map((r) => r.model).join(" | ")} |`,
        `|---|---|${list[0]!.runs.map(() => "---|").join("")}`,
        ...list
          .slice(0, limit)
          .map(
            (d) =>
              `| ${d.bench} | ${d.id} | ${d.runs.map((r) => `${(100 * r.correct).toFixed(0)}% (${(r.extracted ?? "–").replace(/\|/g, "\\|").replace(/\n/g, " ").slice(0, 40)})`).join(" | ")} |`
          ),
        ""
      ].join("\n")
