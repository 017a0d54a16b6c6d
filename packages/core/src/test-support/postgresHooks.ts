import { afterAll, beforeAll } from "vitest"
import { type PostgresCluster, startPostgresCluster } from "../testing/postgresCluster.js"

/**
 * A throwaway PostgreSQL cluster for a test file: started before its tests, with its password in
 * PGPASSWORD (where the driver reads it, as a user's would), and stopped after them. Call the
 * returned function inside hooks and tests.
 */
export const usePostgresCluster = (): (() => PostgresCluster) => {
  let cluster: PostgresCluster | undefined
  beforeAll(async () => {
    cluster = await startPostgresCluster()
    process.env["PGPASSWORD"] = cluster.password
  }, 60_000)
  afterAll(() => {
    delete process.env["PGPASSWORD"]
    cluster?.stop()
  })
  return () => {
    if (cluster === undefined)
      throw new Error("the PostgreSQL cluster is not started yet (use it inside a hook or test)")
    return cluster
  }
}
