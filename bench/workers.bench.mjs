// Workers sharing one run on PostgreSQL when the endpoints are the limit: the whole recipe over N
// problems through `fastcot run` processes, each capped at C calls in flight per role, against
// scripted roles that answer in L ms (a throwaway PostgreSQL cluster and the scripted server, both
// on 127.0.0.1). One worker, then three, on fresh databases; prints items/s and the ratio.
//
//   node workers.bench.mjs [N=600] [L=1000] [C=4]      (TIMELINE=1 prints the store each second)
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startPostgresCluster } from "@fastcot/core/testing"

const N = Number(process.argv[2] ?? 600)
const LATENCY_MS = Number(process.argv[3] ?? 1000)
const CONCURRENCY = Number(process.argv[4] ?? 4)
const BIN = join(import.meta.dirname, "..", "packages", "cli", "dist", "bin.js")

const server = spawn(process.execPath, [join(import.meta.dirname, "pipeline-server.mjs"), String(LATENCY_MS)], {
  stdio: ["ignore", "pipe", "inherit"]
})
const baseUrl = await new Promise((resolve) => server.stdout.once("data", (d) => resolve(String(d).trim())))
const cluster = await startPostgresCluster()
const dir = mkdtempSync(join(tmpdir(), "fastcot-workers-bench-"))
const problems = join(dir, "problems.jsonl")
writeFileSync(
  problems,
  Array.from({ length: N }, (_, i) =>
    JSON.stringify({ question: `What is ${i + 1} + ${i + 1}?`, answer: String(2 * (i + 1)) })
  ).join("\n") + "\n"
)
const env = { ...process.env, PGPASSWORD: cluster.password }
const fastcot = (args) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`fastcot ${args[0]} exited ${code}: ${stderr}`))
    )
  })

const spec = `openai:scripted@${baseUrl}`
const timed = async (workers) => {
  const url = cluster.createDatabase(`bench_${workers}`)
  const workspace = join(dir, `w${workers}`)
  await fastcot(["import", problems, "--workspace", workspace, "--store", url])
  const args = ["run", "--teacher", spec, "--rewriter", spec, "--judge", spec, "--concurrency", String(CONCURRENCY)]
  const t0 = performance.now()
  const timeline = process.env.TIMELINE
    ? setInterval(() => {
        const rows = cluster
          .psql(
            `bench_${workers}`,
            "SELECT stage || ':' || fate || '=' || COUNT(*) FROM items GROUP BY stage, fate ORDER BY 1"
          )
          .trim()
          .split("\n")
          .join(" ")
        const leases = cluster
          .psql(`bench_${workers}`, "SELECT COUNT(*) FROM work_leases WHERE expires_at > now()")
          .trim()
        console.log(((performance.now() - t0) / 1000).toFixed(1), rows, "leases", leases)
      }, 1000)
    : undefined
  await Promise.all(
    Array.from({ length: workers }, () => fastcot([...args, "--no-tui", "--workspace", workspace, "--store", url]))
  )
  const seconds = (performance.now() - t0) / 1000
  clearInterval(timeline)
  const done = Number(cluster.psql(`bench_${workers}`, "SELECT COUNT(*) FROM items WHERE stage = 'done'").trim())
  if (done !== N) throw new Error(`${workers} workers finished ${done} of ${N} items`)
  return { seconds, rate: N / seconds }
}

try {
  // ONLY=3 times the three workers alone (with TIMELINE=1, to see where time goes).
  const one = process.env.ONLY === "3" ? { seconds: NaN, rate: NaN } : await timed(1)
  const three = await timed(3)
  console.log(
    `workers on PostgreSQL: ${N} problems, ${LATENCY_MS} ms replies, ${CONCURRENCY} in flight per role and worker`
  )
  console.log(`  1 worker   ${one.seconds.toFixed(1)} s = ${one.rate.toFixed(1)} items/s`)
  console.log(`  3 workers  ${three.seconds.toFixed(1)} s = ${three.rate.toFixed(1)} items/s`)
  console.log(`  ratio 3 workers / 1 worker: ${(three.rate / one.rate).toFixed(2)} (goal >= 2.5)`)
} finally {
  server.kill("SIGTERM")
  cluster.stop()
  rmSync(dir, { recursive: true, force: true })
}
