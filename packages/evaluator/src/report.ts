import type { EvalResults } from "./evaluate.js"

const pct = (x: number) => (100 * x).toFixed(1)
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Accuracy and average output tokens per benchmark, one row per run (the article's two tables). */
export const markdownReport = (runs: ReadonlyArray<EvalResults>): string => {
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.bench)))]
  const cell = (r: EvalResults, bench: string, f: (b: EvalResults["benchmarks"][number]) => string) => {
    const b = r.benchmarks.find((x) => x.bench === bench)
    return b === undefined ? "–" : f(b)
  }
  const table = (title: string, f: (b: EvalResults["benchmarks"][number]) => string) =>
    [`### ${title}`, "", `| model | ${benches.join(" | ")} |`, `|---|${benches.map(() => "---|").join("")}`, ...runs.map((r) => `| ${r.model} | ${benches.map((b) => cell(r, b, f)).join(" | ")} |`), ""].join("\n")
  return [
    "## Evaluation",
    "",
    table("Accuracy (pass@1 averaged over samples, ±95% CI)", (b) => `${pct(b.summary.accuracy)} ± ${pct(b.summary.ci95)}`),
    table("Average output tokens", (b) => b.summary.meanOutputTokens.toFixed(0)),
    table("No answer / truncated (samples)", (b) => `${b.summary.noAnswer} / ${b.summary.truncated}`),
    "Settings: " + runs.map((r) => `${r.model}: preset ${r.settings.preset}, ${r.settings.samples} sample(s), ${r.settings.graderVersion}`).join("; "),
    ""
  ].join("\n")
}

/** A self-contained HTML page (no network): the tables and an accuracy-against-tokens chart per benchmark. */
export const htmlReport = (runs: ReadonlyArray<EvalResults>): string => {
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.bench)))]
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
  const charts = benches
    .map((bench) => {
      const points = runs.flatMap((r, i) => {
        const b = r.benchmarks.find((x) => x.bench === bench)
        return b === undefined ? [] : [{ model: r.model, x: b.summary.meanOutputTokens, y: b.summary.accuracy, color: colors[i % colors.length]! }]
      })
      const maxX = Math.max(1, ...points.map((p) => p.x)) * 1.1
      const W = 360
      const H = 240
      const dots = points
        .map((p) => `<circle cx="${40 + (p.x / maxX) * (W - 60)}" cy="${H - 30 - p.y * (H - 50)}" r="6" fill="${p.color}"><title>${esc(p.model)}: ${pct(p.y)}%, ${p.x.toFixed(0)} tokens</title></circle><text x="${48 + (p.x / maxX) * (W - 60)}" y="${H - 34 - p.y * (H - 50)}" font-size="11">${esc(p.model)}</text>`)
        .join("")
      return `<figure><figcaption>${esc(bench)}: accuracy against average output tokens</figcaption><svg role="img" aria-label="${esc(bench)} accuracy against tokens" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><line x1="40" y1="${H - 30}" x2="${W - 10}" y2="${H - 30}" stroke="#888"/><line x1="40" y1="10" x2="40" y2="${H - 30}" stroke="#888"/><text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">output tokens (max ${maxX.toFixed(0)})</text><text x="12" y="${H / 2}" font-size="11" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">accuracy</text>${dots}</svg></figure>`
    })
    .join("\n")
  const md = markdownReport(runs)
  const tables = md
    .split("### ")
    .slice(1)
    .map((block) => {
      const [title, , head, , ...rows] = block.trim().split("\n")
      const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim())
      return `<h3>${esc(title!)}</h3><table><thead><tr>${cells(head!).map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${rows
        .filter((r) => r.startsWith("|"))
        .map((r) => `<tr>${cells(r).map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`)
        .join("")}</tbody></table>`
    })
    .join("\n")
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>fastcot evaluation</title><style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:0 1rem 1rem 0}</style></head><body><h1>fastcot evaluation</h1>${tables}<h2>Accuracy against output tokens</h2>${charts}</body></html>\n`
}
