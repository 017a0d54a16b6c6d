import { spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import {
  BIN,
  deterministicRoles,
  fastcot as run,
  postgresFixture,
  recipeRunArgs,
  scriptedFixture,
  writeSumProblems
} from "./support.js"

const N = 120
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("fastcot on a PostgreSQL store (a real server on 127.0.0.1, scripted roles with 10% faults)", () => {
  const fx = scriptedFixture(
    { script: deterministicRoles, latencyMs: 15, faultRate: 0.1, retryAfterSeconds: 0.02, slowMs: 1_000, seed: 11 },
    "fastcot-e2e-pg-",
    {
      setup: (root) => writeSumProblems(join(root, "problems.jsonl"), N)
    }
  )
  const cluster = postgresFixture()

  const runArgs = () => recipeRunArgs(fx.server.baseUrl)
  const env = () => ({ PGPASSWORD: cluster().password })
  const doneCount = (url: string) =>
    Number(
      cluster()
        .psql(url.slice(url.lastIndexOf("/") + 1), "SELECT COUNT(*) FROM items WHERE stage = 'done'")
        .trim()
    )

  it("runs the recipe, survives SIGKILL and resumes, and exports what a SQLite run exports", async () => {
    const url = cluster().createDatabase("e2e")
    const workspace = join(fx.root, "pg-workspace")
    const onPg = (args: Array<string>) => run([...args, "--workspace", workspace, "--store", url], env())
    const imported = await onPg(["import", join(fx.root, "problems.jsonl")])
    expect(imported.status, imported.stderr).toBe(0)

    const child = spawn(process.execPath, [BIN, ...runArgs(), "--workspace", workspace, "--store", url], {
      env: { ...process.env, ...env() },
      stdio: "ignore"
    })
    const exited = new Promise((r) => child.on("exit", r))
    let done = 0
    for (let i = 0; i < 1200 && done < 20; i++) {
      await sleep(25)
      done = doneCount(url)
    }
    child.kill("SIGKILL")
    await exited
    expect(done).toBeGreaterThanOrEqual(20)
    expect(doneCount(url)).toBeLessThan(N)
    // No --take-over: the killed run's lock went with its connection.
    const resumed = await onPg(runArgs())
    expect(resumed.status, resumed.stderr).toBe(0)

    const straight = join(fx.root, "sqlite-workspace")
    await run(["import", join(fx.root, "problems.jsonl"), "--workspace", straight])
    expect((await run([...runArgs(), "--workspace", straight])).status).toBe(0)

    // FASTCOT_STORE names the store as --store does.
    const a = JSON.parse(
      (await run(["status", "--json", "--workspace", workspace], { ...env(), FASTCOT_STORE: url })).stdout
    )
    const b = JSON.parse((await run(["status", "--json", "--workspace", straight])).stdout)
    expect(a.keptAs).toEqual(b.keptAs)
    expect(a.dropReasons).toEqual(b.dropReasons)
    expect(a.dropReasons["answer-mismatch"]).toBe(Math.floor(N / 9))
    expect(a.kept + a.dropped).toBe(N)
    expect(a.running).toBeNull()

    const exported = await onPg(["export", "--out", join(workspace, "sft.jsonl"), "--val-fraction", "0.1"])
    expect(exported.status, exported.stderr).toBe(0)
    await run(["export", "--out", join(straight, "sft.jsonl"), "--val-fraction", "0.1", "--workspace", straight])
    expect(readFileSync(join(workspace, "sft.jsonl"), "utf8")).toBe(readFileSync(join(straight, "sft.jsonl"), "utf8"))
    for (const r of [imported, resumed, exported]) expect(r.stdout + r.stderr).not.toContain(cluster().password)
  }, 240_000)

  it("goes on through a server restart mid-run (an immediate shutdown, as a crash)", async () => {
    const url = cluster().createDatabase("restart")
    const workspace = join(fx.root, "restart-workspace")
    const onPg = (args: Array<string>) => run([...args, "--workspace", workspace, "--store", url], env())
    expect((await onPg(["import", join(fx.root, "problems.jsonl")])).status).toBe(0)
    const child = spawn(process.execPath, [BIN, ...runArgs(), "--workspace", workspace, "--store", url], {
      env: { ...process.env, ...env() },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr!.on("data", (d) => (stderr += d))
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
    let done = 0
    for (let i = 0; i < 1200 && done < 20; i++) {
      await sleep(25)
      done = doneCount(url)
    }
    expect(done).toBeGreaterThanOrEqual(20)
    expect(done).toBeLessThan(N)
    cluster().restart()
    expect(await exited, stderr).toBe(0)
    const status = JSON.parse((await onPg(["status", "--json"])).stdout)
    expect(status.kept + status.dropped).toBe(N)
    expect(status.dropReasons["answer-mismatch"]).toBe(Math.floor(N / 9))
    expect(status.failed).toBe(0)
  }, 240_000)

  it("takes the store named in the pipeline file, over FASTCOT_STORE, and says so", async () => {
    const url = cluster().createDatabase("fromfile")
    const workspace = join(fx.root, "fromfile-workspace")
    const other = join(fx.root, "elsewhere.db")
    const pipeline = join(fx.root, "team.yaml")
    writeFileSync(pipeline, `name: team\nstore: ${url}\nmodels:\n  teacher: openai:scripted@${fx.server.baseUrl}\n`)
    // A team's first command: the import goes where the pipeline file says, over FASTCOT_STORE.
    const imported = await run(
      ["import", join(fx.root, "problems.jsonl"), "--workspace", workspace, "--pipeline", pipeline],
      { ...env(), FASTCOT_STORE: other }
    )
    expect(imported.status, imported.stderr).toBe(0)
    const ran = await run(
      [
        ...recipeRunArgs(fx.server.baseUrl),
        pipeline,
        "--limit",
        "6",
        "--stages",
        "filter,teacher",
        "--workspace",
        workspace
      ],
      { ...env(), FASTCOT_STORE: other }
    )
    expect(ran.status, ran.stderr + ran.stdout).toBe(0)
    expect(ran.stderr).toContain(
      `note: the pipeline file's store (${url}) is used; FASTCOT_STORE names another (${other})`
    )
    expect(ran.stderr).toContain(`(workspace ${url})`)
    expect(Number(cluster().psql("fromfile", "SELECT COUNT(*) FROM items").trim())).toBe(6)
    expect(existsSync(other)).toBe(false)

    // The read-only commands take the same file for the same store, over FASTCOT_STORE.
    const status = await run(["status", "--json", "--pipeline", pipeline], { ...env(), FASTCOT_STORE: other })
    expect(status.status, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ problems: N, items: 6 })
    const exported = await run(["export", "--out", join(fx.root, "fromfile-export"), "--pipeline", pipeline], {
      ...env(),
      FASTCOT_STORE: other
    })
    expect(exported.status, exported.stderr).toBe(0)
    expect(existsSync(other)).toBe(false)
    // The same database named through the server's Unix socket, as libpq names it (no host before the path).
    const bySocket = join(fx.root, "team-socket.yaml")
    writeFileSync(
      bySocket,
      `name: team\nstore: ${cluster().socketUrl("fromfile")}\nmodels:\n  teacher: openai:scripted@${fx.server.baseUrl}\n`
    )
    const statusBySocket = await run(["status", "--json", "--pipeline", bySocket], { ...env(), FASTCOT_STORE: other })
    expect(statusBySocket.status, statusBySocket.stderr).toBe(0)
    expect(JSON.parse(statusBySocket.stdout)).toMatchObject({ problems: N, items: 6 })
    // So does the browser app: its status is the database's.
    const token = "a-token-for-the-team-room-42"
    const ui = spawn(process.execPath, [BIN, "ui", "--pipeline", pipeline, "--workspace", workspace, "--port", "0"], {
      env: { ...process.env, ...env(), FASTCOT_STORE: other, FASTCOT_TOKEN: token, NO_COLOR: "1" }
    })
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = ""
        ui.stdout.on("data", (d) => {
          out += d
          const m = /fastcot ui on (\S+)/.exec(out)
          if (m) resolve(new URL(m[1]!).origin)
        })
        ui.once("exit", (code) => reject(new Error(`fastcot ui exited with ${code}`)))
      })
      const reply = await fetch(`${address}/api/workspace.status`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: "{}"
      })
      expect(await reply.json()).toMatchObject({ problems: N, items: 6 })
    } finally {
      ui.kill("SIGTERM")
    }
    expect(existsSync(other)).toBe(false)
    // --store comes first, as for `run`.
    const first = await run(["status", "--pipeline", pipeline, "--store", other], env())
    expect(first.status).toBe(2)
    expect(first.stderr).toContain(`no run store at ${other} (no such file)`)
  })

  it("signs in with the password from the URL or the password file, and says which was refused", async () => {
    const url = cluster().createDatabase("signin")
    const imported = await run(
      ["import", join(fx.root, "problems.jsonl"), "--store", url, "--workspace", join(fx.root, "signin")],
      env()
    )
    expect(imported.status, imported.stderr).toBe(0)
    const home = join(fx.root, "signin-home")
    mkdirSync(home)
    const withPassword = url.replace("fastcot@", `fastcot:${cluster().password}@`)
    // The environment of a user who set neither PGPASSWORD nor PGPASSFILE, with an empty home.
    const status = (store: string, extra: Record<string, string> = {}) => {
      const { PGPASSWORD: _, PGPASSFILE: __, ...env } = process.env
      return run(
        ["status", "--json", "--store", store, "--workspace", join(fx.root, "signin")],
        {
          ...env,
          HOME: home,
          ...extra
        },
        { replaceEnv: true }
      )
    }

    const fromUrl = await status(withPassword)
    expect(fromUrl.status, fromUrl.stderr).toBe(0)
    expect(fromUrl.stderr).toBe("")
    expect(fromUrl.stdout).not.toContain(cluster().password)

    const none = await status(url)
    expect(none.status).toBe(1)
    expect(none.stderr).toContain("and none was found: set PGPASSWORD, or add the line")
    expect(none.stderr).toContain(`127.0.0.1:${cluster().port}:signin:fastcot:PASSWORD\` to ${join(home, ".pgpass")}`)

    // ~/.pgpass as psql reads it (a line for another database first), and no warning from the driver.
    const pgpass = join(home, ".pgpass")
    writeFileSync(
      pgpass,
      `127.0.0.1:${cluster().port}:other:fastcot:wrong\n127.0.0.1:*:signin:fastcot:${cluster().password}\n`,
      { mode: 0o600 }
    )
    const fromFile = await status(url)
    expect(fromFile.status, fromFile.stderr).toBe(0)
    expect(fromFile.stderr).toBe("")
    expect(JSON.parse(fromFile.stdout).problems).toBe(N)

    // A file that others may read is skipped, as psql skips it, with its warning.
    chmodSync(pgpass, 0o644)
    const open = await status(url)
    expect(open.status).toBe(1)
    expect(open.stderr).toContain(`password file "${pgpass}" has group or world access`)
    chmodSync(pgpass, 0o600)

    for (const [refused, source] of [
      [await status(url, { PGPASSWORD: "not-the-password" }), "PGPASSWORD"],
      [await status(url.replace("fastcot@", "fastcot:not-the-password@")), "the URL"]
    ] as const) {
      expect(refused.status).toBe(1)
      expect(refused.stderr).toContain(
        `Failed to connect with the password from ${source} (password authentication failed for user "fastcot")`
      )
      expect(refused.stderr).not.toContain("not-the-password")
    }
  })

  it("reads no database that holds no workspace, and leaves it as it was", async () => {
    const url = cluster().createDatabase("notfastcot")
    for (const command of [["status"], ["export", "--out", join(fx.root, "nothing.jsonl")], ["inspect"]]) {
      const r = await run([...command, "--store", url, "--workspace", join(fx.root, "none")], env())
      expect(r.status, r.stderr).toBe(1)
      expect(r.stderr).toContain(
        `no fastcot workspace in ${url} (the database has no fastcot tables); make one with \`fastcot import FILE --store ${url}\``
      )
    }
    expect(cluster().psql("notfastcot", "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").trim()).toBe("0")
  })

  it("names the server in a clear error when it cannot be reached, without the password", async () => {
    const url = `postgres://fastcot:hunter2-secret@127.0.0.1:${cluster().port + 1}/nowhere`
    const r = await run(["status", "--store", url, "--workspace", join(fx.root, "none")])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(`127.0.0.1:${cluster().port + 1}`)
    expect(r.stderr + r.stdout).not.toContain("hunter2-secret")
  })
})
