import type { ReactElement, ReactNode } from "react"
import {
  Area,
  AreaChart,
  Bar,
  BarChart,
  CartesianGrid,
  ErrorBar,
  Legend,
  Line,
  LineChart,
  Scatter,
  ScatterChart,
  Tooltip,
  XAxis,
  YAxis,
  ZAxis
} from "recharts"

/**
 * The app's charts (Recharts): each has axes with labels, ticks and units, a legend where there is
 * more than one series, tooltips, and a caption with a text alternative; colours come from the
 * theme (styles.css), so they read in light and dark alike. A chart with nothing to show says what
 * to do instead of drawing an empty frame.
 */

const SERIES = ["var(--series-1)", "var(--series-2)", "var(--series-3)", "var(--series-4)", "var(--series-5)"]
const W = 480
const H = 260
/** Every chart's frame: the app's size and margins; the text summary stands in for Recharts' keyboard layer. */
const FRAME = { accessibilityLayer: false, width: W, height: H, margin: { top: 8, right: 16, bottom: 28, left: 8 } }
const tick = { fill: "var(--fg)", fontSize: 12 }
const axisLine = { stroke: "var(--axis)" }
const tooltipStyle = {
  contentStyle: { background: "var(--bg)", border: "1px solid var(--border)", color: "var(--fg)" },
  labelStyle: { color: "var(--fg)" },
  itemStyle: { color: "var(--fg)" }
}
const legendStyle = { color: "var(--fg)", fontSize: 12 }
/** An axis's ticks and line in theme colours, and its label (under the x axis, along the y axis). */
const xAxis = (label: string) => ({
  tick,
  axisLine,
  label: { value: label, position: "insideBottom" as const, offset: -16, fill: "var(--fg)" }
})
const yAxis = (label: string) => ({
  tick,
  axisLine,
  label: { value: label, angle: -90, position: "insideLeft" as const, fill: "var(--fg)" }
})

/** A chart's frame: a caption, the text alternative screen readers get, and the drawing. */
const Figure = (props: { caption: string; summary: string; children: ReactNode }) => (
  <figure className="chart">
    <figcaption>{props.caption}</figcaption>
    <p className="sr-only">{props.summary}</p>
    <div aria-hidden="true">{props.children}</div>
  </figure>
)

const Empty = ({ caption, what }: { caption: string; what: string }) => (
  <figure className="chart empty">
    <figcaption>{caption}</figcaption>
    <p>{what}</p>
  </figure>
)

/** Items finished over time, per stage. */
export const ProgressChart = ({
  timeline
}: {
  timeline: ReadonlyArray<{ t: number; done: number; byStage: Readonly<Record<string, number>> }>
}): ReactElement => {
  const caption = "Items finished over time, per stage"
  const stages = [...new Set(timeline.flatMap((p) => Object.keys(p.byStage)))].filter((s) =>
    timeline.some((p) => (p.byStage[s] ?? 0) > 0)
  )
  if (timeline.length === 0 || stages.length === 0)
    return <Empty caption={caption} what="No run yet: start one above, and its progress is drawn here every second." />
  const last = timeline[timeline.length - 1]!
  const data = timeline.map((p) => ({ t: p.t, ...p.byStage }))
  return (
    <Figure
      caption={caption}
      summary={`After ${last.t} seconds: ${stages.map((s) => `${s} ${last.byStage[s] ?? 0}`).join(", ")} items.`}
    >
      <LineChart {...FRAME} data={data}>
        <CartesianGrid stroke="var(--rule)" />
        <XAxis dataKey="t" type="number" domain={[0, "dataMax"]} {...xAxis("seconds since the start")} />
        <YAxis allowDecimals={false} {...yAxis("items")} />
        <Tooltip {...tooltipStyle} labelFormatter={(t) => `${t} s`} />
        <Legend verticalAlign="top" wrapperStyle={legendStyle} />
        {stages.map((s, i) => (
          <Line
            key={s}
            type="monotone"
            dataKey={s}
            name={s}
            stroke={SERIES[i % SERIES.length]}
            strokeWidth={2}
            dot={false}
            isAnimationActive={false}
          />
        ))}
      </LineChart>
    </Figure>
  )
}

const FIRST_LABEL = { easy: "easy", medium: "medium", hard: "hard", none: "never rated" } as const

/** Where aligned items went, by the judge's first verdict: kept and dropped, stacked. */
export const FlowChart = ({
  flow
}: {
  flow: ReadonlyArray<{ first: keyof typeof FIRST_LABEL; kept: number; dropped: number }>
}): ReactElement => {
  const caption = "Where aligned items went, by the judge's first verdict"
  if (flow.every((f) => f.kept + f.dropped === 0))
    return <Empty caption={caption} what="Nothing aligned yet: items appear here as the judge rates them." />
  const data = flow.map((f) => ({ first: FIRST_LABEL[f.first], kept: f.kept, dropped: f.dropped }))
  return (
    <Figure
      caption={caption}
      summary={data.map((d) => `first ${d.first}: ${d.kept} kept, ${d.dropped} dropped`).join("; ")}
    >
      <BarChart {...FRAME} data={data}>
        <CartesianGrid stroke="var(--rule)" vertical={false} />
        <XAxis dataKey="first" {...xAxis("the judge's first verdict")} />
        <YAxis allowDecimals={false} {...yAxis("items")} />
        <Tooltip {...tooltipStyle} cursor={{ fill: "var(--rule)" }} />
        <Legend verticalAlign="top" wrapperStyle={legendStyle} />
        <Bar dataKey="kept" name="kept" stackId="fate" fill="var(--series-1)" isAnimationActive={false} />
        <Bar dataKey="dropped" name="dropped" stackId="fate" fill="var(--series-4)" isAnimationActive={false} />
      </BarChart>
    </Figure>
  )
}

/** Counts per label as horizontal bars, the labels whole (not cut). */
export const CountsChart = ({
  caption,
  data,
  unit,
  empty
}: {
  caption: string
  data: ReadonlyArray<{ label: string; value: number }>
  unit: string
  empty: string
}): ReactElement => {
  if (data.length === 0) return <Empty caption={caption} what={empty} />
  const width = Math.min(300, 12 + 7 * Math.max(...data.map((d) => d.label.length)))
  return (
    <Figure caption={caption} summary={data.map((d) => `${d.label}: ${d.value} ${unit}`).join(", ")}>
      <BarChart
        accessibilityLayer={false}
        width={W + width - 120}
        height={Math.max(120, 48 + 28 * data.length)}
        data={[...data]}
        layout="vertical"
        margin={{ top: 4, right: 24, bottom: 24, left: 8 }}
      >
        <CartesianGrid stroke="var(--rule)" horizontal={false} />
        <XAxis
          type="number"
          allowDecimals={false}
          tick={tick}
          axisLine={axisLine}
          label={{ value: unit, position: "insideBottom", offset: -12, fill: "var(--fg)" }}
        />
        <YAxis type="category" dataKey="label" width={width} tick={tick} axisLine={axisLine} interval={0} />
        <Tooltip {...tooltipStyle} cursor={{ fill: "var(--rule)" }} />
        <Bar dataKey="value" name={unit} fill="var(--series-1)" isAnimationActive={false} />
      </BarChart>
    </Figure>
  )
}

const EDGES = Array.from({ length: 10 }, (_, i) => 32 * 2 ** i)

/** Reasoning tokens of kept items before and after alignment, as two overlaid histograms. */
export const TokenHistogram = ({
  before,
  after
}: {
  before: ReadonlyArray<number>
  after: ReadonlyArray<number>
}): ReactElement => {
  const caption = "Reasoning tokens of kept items, before and after alignment"
  if (before.length === 0 && after.length === 0)
    return <Empty caption={caption} what="No item kept yet: the lengths of kept traces are drawn here." />
  const count = (xs: ReadonlyArray<number>, i: number) =>
    xs.filter((x) => x <= EDGES[i]! && (i === 0 || x > EDGES[i - 1]!)).length
  const last = Math.max(0, ...EDGES.map((_, i) => (count(before, i) + count(after, i) > 0 ? i : 0)))
  // Each bucket's count spans from its mark to the next (a step), so one more mark closes the last.
  const data = EDGES.slice(0, Math.min(EDGES.length, last + 2)).map((edge, i) => ({
    bucket: `≤${edge}`,
    before: i <= last ? count(before, i) : 0,
    after: i <= last ? count(after, i) : 0
  }))
  const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)
  return (
    <Figure
      caption={caption}
      summary={`${after.length} kept items: mean ${mean(before).toFixed(0)} reasoning tokens before alignment, ${mean(after).toFixed(0)} after.`}
    >
      <AreaChart {...FRAME} data={data}>
        <CartesianGrid stroke="var(--rule)" />
        <XAxis dataKey="bucket" {...xAxis("reasoning tokens (bucket's upper bound)")} />
        <YAxis allowDecimals={false} {...yAxis("kept items")} />
        <Tooltip {...tooltipStyle} />
        <Legend verticalAlign="top" wrapperStyle={legendStyle} />
        <Area
          type="stepAfter"
          dataKey="before"
          name="before alignment"
          stroke="var(--series-2)"
          fill="var(--series-2)"
          fillOpacity={0.35}
          isAnimationActive={false}
        />
        <Area
          type="stepAfter"
          dataKey="after"
          name="after alignment"
          stroke="var(--series-1)"
          fill="var(--series-1)"
          fillOpacity={0.35}
          isAnimationActive={false}
        />
      </AreaChart>
    </Figure>
  )
}

/** One evaluation run's scores on one benchmark. */
export interface BenchPoint {
  readonly model: string
  readonly bench: string
  readonly accuracy: number
  readonly tokens: number
  readonly ci95: number | null
}

/**
 * Accuracy against mean output tokens, one chart a benchmark, one point a model (evaluation run)
 * with its 95 % interval as an error bar: what a fast-thinking model should move up and left.
 */
export const AccuracyTokensCharts = ({ points }: { points: ReadonlyArray<BenchPoint> }): ReactElement => {
  const benches = [...new Set(points.map((p) => p.bench))]
  const models = [...new Set(points.map((p) => p.model))]
  if (points.length === 0)
    return (
      <Empty
        caption="Accuracy against output tokens"
        what="No evaluation run with scores yet: start one above, or run fastcot eval."
      />
    )
  return (
    <>
      {benches.map((bench) => {
        const here = points.filter((p) => p.bench === bench)
        return (
          <Figure
            key={bench}
            caption={`${bench}: accuracy against output tokens`}
            summary={here
              .map(
                (p) =>
                  `${p.model}: ${(100 * p.accuracy).toFixed(1)}%${p.ci95 !== null ? ` ± ${(100 * p.ci95).toFixed(1)}` : ""} at ${p.tokens.toFixed(0)} tokens`
              )
              .join("; ")}
          >
            <ScatterChart {...FRAME}>
              <CartesianGrid stroke="var(--rule)" />
              <XAxis
                type="number"
                dataKey="tokens"
                name="mean output tokens"
                domain={[0, "auto"]}
                {...xAxis("mean output tokens")}
              />
              <YAxis
                type="number"
                dataKey="percent"
                name="accuracy"
                unit="%"
                domain={[0, 100]}
                {...yAxis("accuracy (%)")}
              />
              <ZAxis range={[80, 80]} />
              <Tooltip {...tooltipStyle} cursor={{ strokeDasharray: "3 3" }} />
              <Legend verticalAlign="top" wrapperStyle={legendStyle} />
              {models.map((model, i) => {
                const data = here
                  .filter((p) => p.model === model)
                  .map((p) => ({ tokens: p.tokens, percent: 100 * p.accuracy, error: 100 * (p.ci95 ?? 0) }))
                return data.length === 0 ? null : (
                  <Scatter
                    key={model}
                    name={model}
                    data={data}
                    fill={SERIES[i % SERIES.length]}
                    isAnimationActive={false}
                  >
                    <ErrorBar dataKey="error" direction="y" width={6} stroke="var(--fg)" />
                  </Scatter>
                )
              })}
            </ScatterChart>
          </Figure>
        )
      })}
    </>
  )
}

/** Accuracy per benchmark, a bar a model. */
export const AccuracyChart = ({ points }: { points: ReadonlyArray<BenchPoint> }): ReactElement => {
  const caption = "Accuracy per benchmark"
  if (points.length === 0) return <Empty caption={caption} what="No evaluation run with scores yet." />
  const benches = [...new Set(points.map((p) => p.bench))]
  const models = [...new Set(points.map((p) => p.model))]
  const data = benches.map((bench) => ({
    bench,
    ...Object.fromEntries(
      points.filter((p) => p.bench === bench).map((p) => [p.model, Math.round(1000 * p.accuracy) / 10])
    )
  }))
  return (
    <Figure
      caption={caption}
      summary={points.map((p) => `${p.model} on ${p.bench}: ${(100 * p.accuracy).toFixed(1)}%`).join("; ")}
    >
      <BarChart {...FRAME} data={data}>
        <CartesianGrid stroke="var(--rule)" vertical={false} />
        <XAxis dataKey="bench" {...xAxis("benchmark")} />
        <YAxis domain={[0, 100]} unit="%" {...yAxis("accuracy (%)")} />
        <Tooltip {...tooltipStyle} cursor={{ fill: "var(--rule)" }} />
        <Legend verticalAlign="top" wrapperStyle={legendStyle} />
        {models.map((model, i) => (
          <Bar key={model} dataKey={model} name={model} fill={SERIES[i % SERIES.length]} isAnimationActive={false} />
        ))}
      </BarChart>
    </Figure>
  )
}
