import { spawn } from "node:child_process"
import { join } from "node:path"

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
export const fastcot = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<CommandResult> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("exit", (status) => resolve({ status, stdout, stderr }))
  })
