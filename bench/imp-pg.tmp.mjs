import { Effect } from "effect"
import { importFile, PgRunStoreLive } from "@fastcot/core"
import { startPostgresCluster } from "@fastcot/core/testing"
const file = process.argv[2]
const cluster = await startPostgresCluster()
process.env.PGPASSWORD = cluster.password
const url = cluster.createDatabase("imp")
try {
  const t = Date.now(); const cpu = process.cpuUsage()
  const r = await Effect.runPromise(Effect.scoped(importFile(file, {}).pipe(Effect.provide(PgRunStoreLive(url)))))
  const wall = Date.now() - t; const c = process.cpuUsage(cpu)
  console.log(JSON.stringify({ rows: r.rows, items: r.itemsAdded, ms: wall, cpuMs: Math.round((c.user + c.system) / 1000) }))
} finally { cluster.stop() }
