import { createHash } from "node:crypto"

/** JSON with object keys sorted, so that equal content always hashes equally. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {}
      for (const k of Object.keys(v as Record<string, unknown>).sort()) {
        const field = (v as Record<string, unknown>)[k]
        if (field !== undefined) sorted[k] = field
      }
      return sorted
    }
    return v
  })

export const sha256Hex = (text: string | Uint8Array): string => createHash("sha256").update(text).digest("hex")

/** A short, stable content id: `prefix` + 16 hex digits of the SHA-256 of the canonical JSON. */
export const contentId = (prefix: string, value: unknown): string =>
  prefix + sha256Hex(canonicalJson(value)).slice(0, 16)
