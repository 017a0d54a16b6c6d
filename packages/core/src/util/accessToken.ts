import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

/** A fresh access token for a server fastcot starts: 32 random bytes, base64url. */
export const makeAccessToken = (): string => randomBytes(32).toString("base64url")

/** Whether `given` is `expected`, compared in constant time (their SHA-256 digests, so lengths do not leak). */
export const sameToken = (given: string, expected: string): boolean =>
  timingSafeEqual(createHash("sha256").update(given).digest(), createHash("sha256").update(expected).digest())

/** The token of an `Authorization: Bearer TOKEN` header, if it is one. */
export const bearerToken = (header: string | undefined): string | undefined => {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")
  return m?.[1]
}
