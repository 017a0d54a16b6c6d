import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "vitest"
import { isTransient, sqlState } from "./pgErrors.js"

const failure = (code?: string) =>
  new SqlError({
    message: "Failed to execute statement",
    cause: Object.assign(new Error("x"), code === undefined ? {} : { code })
  })

describe("driver errors", () => {
  it("reads a SQLSTATE, and not Node's own error codes, which no SQLSTATE class shares", () => {
    expect(sqlState(failure("23505"))).toBe("23505")
    expect(sqlState(failure("57P01"))).toBe("57P01")
    expect(sqlState(failure("XX000"))).toBe("XX000")
    expect(sqlState(failure("EPIPE"))).toBeUndefined()
    expect(sqlState(failure("ECONNRESET"))).toBeUndefined()
    expect(sqlState(failure())).toBeUndefined()
  })

  it("tries again what a broken connection or a restarting server failed, not a refused row", () => {
    expect(isTransient(failure("EPIPE"))).toBe(true)
    expect(isTransient(failure("08006"))).toBe(true)
    expect(isTransient(failure("57P01"))).toBe(true)
    expect(isTransient(failure("40P01"))).toBe(true)
    expect(isTransient(failure("23505"))).toBe(false)
    expect(isTransient(failure("22P05"))).toBe(false)
  })
})
