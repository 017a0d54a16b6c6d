import { type ScriptedServer, type ScriptedServerOptions, startScriptedServer } from "@fastcot/core/testing"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
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
 * the command talks to, so a synchronous spawn would deadlock.
 */
export const fastcot = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
): Promise<CommandResult> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
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
