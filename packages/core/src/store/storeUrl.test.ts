import { describe, expect, it } from "vitest"
import { displayStoreUrl, isPostgresUrl } from "./storeUrl.js"

describe("store locations", () => {
  it("tells a PostgreSQL URL from a SQLite file", () => {
    expect(isPostgresUrl("postgres://a@h/db")).toBe(true)
    expect(isPostgresUrl("PostgreSQL://a@h/db")).toBe(true)
    expect(isPostgresUrl("/srv/fastcot/fastcot.db")).toBe(false)
  })

  it("shows a URL without its password, also one that only libpq's parser takes", () => {
    expect(displayStoreUrl("postgres://alice:s3cret@db1:5432/team")).toBe("postgres://alice@db1:5432/team")
    expect(displayStoreUrl("postgres://alice@db1/team")).toBe("postgres://alice@db1/team")
    // No host before the path (a Unix socket named by the query): WHATWG's URL refuses it.
    expect(displayStoreUrl("postgres://alice:s3cret@/team?host=/run/postgresql")).toBe(
      "postgres://alice@/team?host=/run/postgresql"
    )
    // A password with an unencoded @ in it is cut at the authority's last @.
    expect(displayStoreUrl("postgres://alice:s3@cret@/team")).toBe("postgres://alice@/team")
    expect(displayStoreUrl("postgres:///team")).toBe("postgres:///team")
    // libpq also takes the password as a query parameter.
    expect(displayStoreUrl("postgres://alice@db1/team?password=s3cret&sslmode=require")).toBe(
      "postgres://alice@db1/team?sslmode=require"
    )
    expect(displayStoreUrl("postgres://alice@/team?host=/run/postgresql&password=s3cret")).toBe(
      "postgres://alice@/team?host=/run/postgresql"
    )
    expect(displayStoreUrl("postgres://alice@db1/team?password=s3cret")).toBe("postgres://alice@db1/team")
  })
})
