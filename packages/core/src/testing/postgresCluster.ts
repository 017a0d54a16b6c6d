import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A throwaway PostgreSQL cluster on a loopback port, password-protected, for tests. */
export interface PostgresCluster {
  readonly port: number
  readonly user: string
  /** The password (tests pass it through PGPASSWORD, never in the URL they log). */
  readonly password: string
  /** `postgres://USER@127.0.0.1:PORT/DB`, without the password. */
  readonly url: (database: string) => string
  /** The same database through the server's Unix socket: `postgres://USER@/DB?host=DIR&port=PORT`. */
  readonly socketUrl: (database: string) => string
  /** Creates a database and returns its URL. */
  readonly createDatabase: (name: string) => string
  /** Runs SQL as the cluster's superuser; returns psql's tuples-only output. */
  readonly psql: (database: string, sql: string) => string
  /** Stops the server immediately (as a crash would) and starts it again on the same port. */
  readonly restart: () => void
  readonly stop: () => void
}

const binDir = (): string => {
  const onPath = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim()
  if (onPath !== "") return ""
  const dir = ["17", "16", "15", "14", "13"]
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((d) => existsSync(join(d, "initdb")))
  if (dir === undefined)
    throw new Error("no PostgreSQL server here: install it (apt-get install postgresql); `npm test` does so as root")
  return dir
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

/**
 * Starts a fresh cluster (initdb, then pg_ctl) listening on 127.0.0.1 only, with scram-sha-256
 * passwords for every connection. As root it runs the server as the `postgres` user, since
 * PostgreSQL refuses to run as root.
 */
export const startPostgresCluster = async (): Promise<PostgresCluster> => {
  const bin = binDir()
  const tool = (name: string) => (bin === "" ? name : join(bin, name))
  const root = mkdtempSync(join(tmpdir(), "fastcot-pg-"))
  chmodSync(root, 0o755)
  const data = join(root, "data")
  const user = "fastcot"
  const password = randomBytes(12).toString("hex")
  const pwfile = join(root, "pw")
  writeFileSync(pwfile, password + "\n")
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0
  if (asRoot) {
    const pg = execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim()
    const group = execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim()
    chownSync(root, Number(pg), Number(group))
    chownSync(pwfile, Number(pg), Number(group))
  }
  const run = (command: string, args: ReadonlyArray<string>) =>
    asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", command, ...args], { encoding: "utf8", stdio: "pipe" })
      : execFileSync(command, [...args], { encoding: "utf8", stdio: "pipe" })
  run(tool("initdb"), [
    "-D",
    data,
    "-U",
    user,
    "--auth=scram-sha-256",
    `--pwfile=${pwfile}`,
    "--encoding=UTF8",
    "--locale=C"
  ])
  rmSync(pwfile)
  const port = await freePort()
  const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${root} -c fsync=off -c max_connections=200`
  const start = () =>
    run(tool("pg_ctl"), ["-D", data, "-o", options, "-l", join(root, "log"), "-w", "-t", "30", "start"])
  start()
  const env = { ...process.env, PGPASSWORD: password }
  const psql = (database: string, sql: string) =>
    execFileSync("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-tAq", "-c", sql], {
      encoding: "utf8",
      env
    })
  const url = (database: string) => `postgres://${user}@127.0.0.1:${port}/${database}`
  let stopped = false
  return {
    port,
    user,
    password,
    url,
    socketUrl: (database) => `postgres://${user}@/${database}?host=${root}&port=${port}`,
    createDatabase: (name) => {
      psql("postgres", `CREATE DATABASE "${name}"`)
      return url(name)
    },
    psql,
    restart: () => {
      run(tool("pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"])
      start()
    },
    stop: () => {
      if (stopped) return
      stopped = true
      try {
        run(tool("pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"])
      } finally {
        rmSync(root, { recursive: true, force: true })
      }
    }
  }
}
