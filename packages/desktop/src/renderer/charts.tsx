import type { ReactElement } from "react"

/** Small accessible SVG charts: each has a title and a text alternative (role="img" + aria-label). */

export const Bars = ({
  label,
  data
}: {
  label: string
  data: ReadonlyArray<{ label: string; value: number }>
}): ReactElement => {
  const max = Math.max(1, ...data.map((d) => d.value))
  const h = 22 * Math.max(1, data.length) + 10
  return (
    <figure>
      <figcaption>{label}</figcaption>
      <svg
        role="img"
        aria-label={`${label}: ${data.map((d) => `${d.label} ${d.value}`).join(", ") || "no data"}`}
        width="420"
        height={h}
        viewBox={`0 0 420 ${h}`}
      >
        {data.map((d, i) => (
          <g key={d.label} transform={`translate(0 ${5 + i * 22})`}>
            <text x="0" y="14" fontSize="12" className="ink">
              {d.label.slice(0, 28)}
            </text>
            <rect x="190" y="3" width={(200 * d.value) / max} height="14" className="bar" />
            <text x={195 + (200 * d.value) / max} y="14" fontSize="12" className="ink">
              {d.value}
            </text>
          </g>
        ))}
      </svg>
    </figure>
  )
}

export const Line = ({
  label,
  points
}: {
  label: string
  points: ReadonlyArray<{ x: number; y: number }>
}): ReactElement => {
  const maxX = Math.max(1, ...points.map((p) => p.x))
  const maxY = Math.max(1, ...points.map((p) => p.y))
  const path = points
    .map((p, i) => `${i === 0 ? "M" : "L"}${(400 * p.x) / maxX + 10},${150 - (130 * p.y) / maxY}`)
    .join(" ")
  return (
    <figure>
      <figcaption>{label}</figcaption>
      <svg
        role="img"
        aria-label={`${label}: ${points.length > 0 ? `${points[points.length - 1]!.y} after ${points[points.length - 1]!.x} s` : "no data yet"}`}
        width="420"
        height="160"
        viewBox="0 0 420 160"
      >
        <line x1="10" y1="150" x2="410" y2="150" className="axis" />
        <path d={path} fill="none" className="line" strokeWidth="2" />
      </svg>
    </figure>
  )
}

export const Histogram = ({
  label,
  before,
  after
}: {
  label: string
  before: ReadonlyArray<number>
  after: ReadonlyArray<number>
}): ReactElement => {
  const edges = Array.from({ length: 10 }, (_, i) => 32 * 2 ** i)
  const count = (xs: ReadonlyArray<number>) =>
    edges.map((e, i) => xs.filter((x) => x <= e && (i === 0 || x > edges[i - 1]!)).length)
  const b = count(before)
  const a = count(after)
  const max = Math.max(1, ...a, ...b)
  return (
    <figure>
      <figcaption>{label}</figcaption>
      <svg
        role="img"
        aria-label={`${label}: ${before.length} before, ${after.length} after`}
        width="420"
        height="140"
        viewBox="0 0 420 140"
      >
        {edges.map((e, i) => (
          <g key={e} transform={`translate(${10 + i * 40} 0)`}>
            <rect x="2" y={120 - (100 * b[i]!) / max} width="16" height={(100 * b[i]!) / max} className="bar-muted" />
            <rect x="19" y={120 - (100 * a[i]!) / max} width="16" height={(100 * a[i]!) / max} className="bar" />
            <text x="0" y="134" fontSize="9" className="ink">
              ≤{e}
            </text>
          </g>
        ))}
      </svg>
      <p className="legend">grey: before, blue: after</p>
    </figure>
  )
}

export const Scatter = ({
  label,
  points
}: {
  label: string
  points: ReadonlyArray<{ x: number; y: number; label: string }>
}): ReactElement => {
  const maxX = Math.max(1, ...points.map((p) => p.x))
  return (
    <figure>
      <figcaption>{label}</figcaption>
      <svg
        role="img"
        aria-label={`${label}: ${points.map((p) => `${p.label} ${p.y.toFixed(1)}% at ${p.x.toFixed(0)} tokens`).join(", ")}`}
        width="420"
        height="180"
        viewBox="0 0 420 180"
      >
        <line x1="30" y1="160" x2="410" y2="160" className="axis" />
        <line x1="30" y1="10" x2="30" y2="160" className="axis" />
        {points.map((p) => (
          <circle key={p.label} cx={30 + (370 * p.x) / maxX} cy={160 - 1.5 * p.y} r="5" className="bar">
            <title>{p.label}</title>
          </circle>
        ))}
      </svg>
    </figure>
  )
}
