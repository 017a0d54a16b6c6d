import {
  type PostgresCluster,
  type ScriptedRequest,
  type ScriptedServer,
  type ScriptedServerOptions,
  startPostgresCluster,
  startScriptedServer
} from "@fastcot/core/testing"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"

export const BIN = join(__dirname, "..", "packages", "cli", "dist", "bin.js")

export interface CommandResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `fastcot ARGS` without blocking this process: tests here also serve the scripted models
 * the command talks to, so a synchronous spawn would deadlock. `env` is laid over this process's
 * environment, or (`replaceEnv`) is the whole of the command's.
 */
export const fastcot = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = {},
  options: { readonly replaceEnv?: boolean } = {}
): Promise<CommandResult> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: options.replaceEnv ? env : { ...process.env, ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("exit", (status) => resolve({ status, stdout, stderr }))
  })

/**
 * A scripted loopback server and a temporary folder for one `describe` block: both made before
 * its tests (then `setup`, e.g. writing problem files), and closed and removed after them (after
 * `teardown`). Read `server` and `root` inside hooks and tests, once they exist.
 */
export const scriptedFixture = (
  options: ScriptedServerOptions,
  prefix: string,
  hooks: { readonly setup?: (root: string) => void | Promise<void>; readonly teardown?: () => void } = {}
): { readonly server: ScriptedServer; readonly root: string } => {
  let server: ScriptedServer | undefined
  let root: string | undefined
  beforeAll(async () => {
    server = await startScriptedServer(options)
    root = mkdtempSync(join(tmpdir(), prefix))
    await hooks.setup?.(root)
  })
  afterAll(async () => {
    hooks.teardown?.()
    await server?.close()
    if (root !== undefined) rmSync(root, { recursive: true, force: true })
  })
  return {
    get server() {
      if (server === undefined)
        throw new Error("the scripted server is not started yet (read it inside a hook or test)")
      return server
    },
    get root() {
      if (root === undefined) throw new Error("the temporary folder is not made yet (read it inside a hook or test)")
      return root
    }
  }
}

/**
 * SCRIPTED teacher, judge and rewriter whose replies depend only on the request's content, so
 * that interrupted, shared and straight runs must end with the same dataset. The judge rates by
 * a hash of the text; the teacher gets every 9th problem wrong, which verification must drop.
 */
export const deterministicRoles = (r: ScriptedRequest) => {
  const system = r.messages[0]!.content
  const user = r.messages[r.messages.length - 1]!.content
  const h = parseInt(createHash("sha256").update(user).digest("hex").slice(0, 4), 16)
  if (system.includes("highly capable evaluator"))
    return { content: h % 5 === 0 ? "hard" : h % 5 === 1 ? "easy" : "medium" }
  if (system.includes("extending") || system.includes("simplifying")) {
    const answer = /Answer:\n(.*)\n/.exec(user)?.[1] ?? ""
    return { content: `Rewritten (${h % 7}).\n\nSo the answer is \\boxed{${answer}}.` }
  }
  const n = Number(/What is (\d+) \+/.exec(user)?.[1] ?? 0)
  return { content: `Add ${n} and ${n}.\n\nThe answer is \\boxed{${n % 9 === 0 ? 2 * n + 1 : 2 * n}}.` }
}

/** Writes `count` problems "What is i + i?" (answers 2i) as JSONL. */
export const writeSumProblems = (file: string, count: number) =>
  writeFileSync(
    file,
    Array.from({ length: count }, (_, i) =>
      JSON.stringify({ question: `What is ${i + 1} + ${i + 1}?`, answer: String(2 * (i + 1)) })
    ).join("\n") + "\n"
  )

/** A throwaway PostgreSQL cluster for a `describe` block; call the result inside hooks and tests. */
export const postgresFixture = (): (() => PostgresCluster) => {
  let cluster: PostgresCluster | undefined
  beforeAll(async () => {
    cluster = await startPostgresCluster()
  }, 60_000)
  afterAll(() => cluster?.stop())
  return () => {
    if (cluster === undefined)
      throw new Error("the PostgreSQL cluster is not started yet (use it inside a hook or test)")
    return cluster
  }
}

/** `fastcot run` with every role on one scripted server, `concurrency` calls in flight per role, no dashboard. */
export const recipeRunArgs = (baseUrl: string, concurrency = 4): Array<string> => {
  const spec = `openai:scripted@${baseUrl}`
  return [
    "run",
    "--teacher",
    spec,
    "--rewriter",
    spec,
    "--judge",
    spec,
    "--concurrency",
    String(concurrency),
    "--no-tui"
  ]
}
