import { useState } from "react"
import { ApiError } from "./api.js"

export const useAsync = () => {
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const run = async <A,>(f: () => Promise<A>): Promise<A | undefined> => {
    setBusy(true)
    setError(undefined)
    try {
      return await f()
    } catch (e) {
      setError(e instanceof ApiError || e instanceof Error ? e.message : String(e))
      return undefined
    } finally {
      setBusy(false)
    }
  }
  return { error, busy, run }
}

/** A <select> over a fixed list of values, each [value] or [value, label]. */
export const Select = <V extends string>(props: {
  id: string
  value: V
  options: ReadonlyArray<readonly [V] | readonly [V, string]>
  onChange: (value: V) => void
}) => (
  <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.target.value as V)}>
    {props.options.map(([value, label]) => (
      <option key={value} value={value}>
        {label ?? value}
      </option>
    ))}
  </select>
)

export const ErrorNote = ({ error }: { error: string | undefined }) =>
  error === undefined ? null : (
    <p role="alert" className="error">
      {error}
    </p>
  )
