// Import throughput and peak memory for 300,000 rows, against two floors measured in the same run:
// parsing the same file with readline + JSON.parse (no store), and inserting the parsed rows into
// SQLite as raw JSON with one prepared statement (no validation, ids or layouts). Then, where a
// PostgreSQL server can be started here, PG_ROWS of them into PostgreSQL against SQLite.
import { spawnSync } from "node:child_process"
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROWS = Number(process.env.ROWS ?? 300_000)
const dir = mkdtempSync(join(tmpdir(), "fastcot-bench-"))
const file = join(dir, "rows.jsonl")

const out = createWriteStream(file)
for (let i = 0; i < ROWS; i++) {
  const row =
    i % 3 === 0
      ? {
          problem: `Compute ${i} * 7 + ${i % 13}.`,
          answer: String(i * 7 + (i % 13)),
          solution: `First ${i} * 7 = ${i * 7}. Then add ${i % 13}: \\boxed{${i * 7 + (i % 13)}}.`
        }
      : i % 3 === 1
        ? {
            messages: [
              { role: "user", content: `What is ${i} squared?` },
              {
                role: "assistant",
                content: `<think>\n${"We multiply the number by itself. ".repeat(8)}\n</think>\n\n${i}^2 = \\boxed{${i * i}}`
              }
            ]
          }
        : { question: `Is ${i} even?`, answer: i % 2 === 0 ? "yes" : "no", subject: "parity", level: i % 5 }
  if (!out.write(JSON.stringify(row) + "\n")) await new Promise((r) => out.once("drain", r))
}
await new Promise((r) => out.end(r))
const mb = statSync(file).size / 1e6

const child = (script, ...args) => {
  const started = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, ...args], {
    encoding: "utf8",
    cwd: import.meta.dirname
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (r.status !== 0) throw new Error(r.stderr)
  const result = JSON.parse(r.stdout.trim().split("\n").pop())
  return { seconds, ...result }
}

const fastcot = child(
  `import { Effect } from "effect"
   import { importFile, SqliteRunStoreLive } from "@fastcot/core"
   const [db, file] = process.argv.slice(1)
   const r = await Effect.runPromise(Effect.scoped(importFile(file, {}).pipe(Effect.provide(SqliteRunStoreLive(db)))))
   console.log(JSON.stringify({ rows: r.rows, problems: r.problemsAdded, items: r.itemsAdded, maxRssMb: process.resourceUsage().maxRSS / 1024 }))`,
  join(dir, "ws", "fastcot.db"),
  file
)
const parseOnly = child(
  `import { createReadStream } from "node:fs"
   import { createInterface } from "node:readline"
   let rows = 0
   for await (const line of createInterface({ input: createReadStream(process.argv[1]) })) { if (line.trim()) { JSON.parse(line); rows++ } }
   console.log(JSON.stringify({ rows, maxRssMb: process.resourceUsage().maxRSS / 1024 }))`,
  file
)
const rawSqlite = child(
  `import Database from "better-sqlite3"
   import { createReadStream } from "node:fs"
   import { createInterface } from "node:readline"
   const db = new Database(process.argv[2]); db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL")
   db.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, data TEXT)")
   const insert = db.prepare("INSERT INTO rows (data) VALUES (?)")
   const flush = db.transaction((batch) => { for (const r of batch) insert.run(JSON.stringify(r)) })
   let batch = [], rows = 0
   for await (const line of createInterface({ input: createReadStream(process.argv[1]) })) { if (line.trim()) { batch.push(JSON.parse(line)); rows++; if (batch.length === 2000) { flush(batch); batch = [] } } }
   flush(batch)
   console.log(JSON.stringify({ rows, maxRssMb: process.resourceUsage().maxRSS / 1024 }))`,
  file,
  join(dir, "raw.db")
)
// PostgreSQL: the first PG_ROWS rows (50,000) into a throwaway cluster on loopback, against the
// same rows into SQLite, each in a process of its own, timed with the process's start and the
// store's opening, and the import alone; `cpu` is the importing process's CPU time over the
// import's wall time (near 1: the process, not the server, bounds the import).
const PG_ROWS = Number(process.env.PG_ROWS ?? 50_000)
let pg
try {
  const { startPostgresCluster } = await import("@fastcot/core/testing")
  const cluster = await startPostgresCluster()
  try {
    const part = join(dir, "part.jsonl")
    writeFileSync(part, readFileSync(file, "utf8").split("\n").slice(0, PG_ROWS).join("\n") + "\n")
    const timed = `const t = Date.now(); const cpu = process.cpuUsage()
       const r = await Effect.runPromise(Effect.scoped(importFile(process.argv[2], {}).pipe(Effect.provide(layer))))
       const c = process.cpuUsage(cpu)
       console.log(JSON.stringify({ rows: r.rows, importMs: Date.now() - t, cpu: (c.user + c.system) / 1000 / (Date.now() - t), maxRssMb: process.resourceUsage().maxRSS / 1024 }))`
    process.env.PGPASSWORD = cluster.password
    pg = {
      postgres: child(
        `import { Effect } from "effect"; import { importFile, PgRunStoreLive } from "@fastcot/core"
         const layer = PgRunStoreLive(process.argv[1]); ${timed}`,
        cluster.createDatabase("bench"),
        part
      ),
      sqlite: child(
        `import { Effect } from "effect"; import { importFile, SqliteRunStoreLive } from "@fastcot/core"
         const layer = SqliteRunStoreLive(process.argv[1]); ${timed}`,
        join(dir, "pg-peer", "fastcot.db"),
        part
      )
    }
  } finally {
    cluster.stop()
  }
} catch (e) {
  pg = { skipped: e instanceof Error ? e.message.split("\n")[0] : String(e) }
}
rmSync(dir, { recursive: true, force: true })

const rate = (r) => r.rows / r.seconds
console.log(`import: ${ROWS} rows, ${mb.toFixed(0)} MB of JSONL`)
console.log(
  `  fastcot import        ${rate(fastcot).toFixed(0).padStart(8)} rows/s  ${fastcot.seconds.toFixed(1)} s  peak RSS ${fastcot.maxRssMb.toFixed(0)} MB  (${fastcot.problems} problems, ${fastcot.items} traces)`
)
console.log(
  `  peer: parse only      ${rate(parseOnly).toFixed(0).padStart(8)} rows/s  ${parseOnly.seconds.toFixed(1)} s  peak RSS ${parseOnly.maxRssMb.toFixed(0)} MB`
)
console.log(
  `  peer: raw SQLite      ${rate(rawSqlite).toFixed(0).padStart(8)} rows/s  ${rawSqlite.seconds.toFixed(1)} s  peak RSS ${rawSqlite.maxRssMb.toFixed(0)} MB`
)
console.log(
  `  ratio fastcot / parse-only: ${(rate(fastcot) / rate(parseOnly)).toFixed(2)}   fastcot / raw SQLite: ${(rate(fastcot) / rate(rawSqlite)).toFixed(2)}`
)
console.log(
  `  goals: under 60 s -> ${fastcot.seconds < 60 ? "met" : "NOT met"}; peak memory under 400 MB -> ${fastcot.maxRssMb < 400 ? "met" : "NOT met"}`
)
if (pg.skipped !== undefined) console.log(`  PostgreSQL: skipped (${pg.skipped})`)
else
  for (const [name, r] of Object.entries(pg))
    console.log(
      `  ${PG_ROWS} rows into ${name.padEnd(10)} ${rate(r).toFixed(0).padStart(8)} rows/s  ${r.seconds.toFixed(1)} s (the import alone: ${((1000 * r.rows) / r.importMs).toFixed(0)} rows/s, ${(r.importMs / 1000).toFixed(1)} s)  importer's CPU ${(100 * r.cpu).toFixed(0)} % of its wall time  peak RSS ${r.maxRssMb.toFixed(0)} MB`
    )
