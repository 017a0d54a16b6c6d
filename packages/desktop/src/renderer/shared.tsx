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

export const ErrorNote = ({ error }: { error: string | undefined }) =>
  error === undefined ? null : (
    <p role="alert" className="error">
      {error}
    </p>
  )
