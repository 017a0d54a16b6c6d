import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawn, spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { availableParallelism, constants, homedir, tmpdir } from "node:os"
import { join } from "node:path"

/**
 * The strongest isolation this machine gives, in order: bubblewrap (new mount, PID, network, IPC
 * and UTS namespaces; the filesystem read-only except the run's own folder; home folders hidden),
 * `unshare -n` (no network), or none. In every case the program runs in its own temporary
 * folder, with an empty environment, in its own process group that is killed whole on timeout,
 * under CPU, memory, file-size, open-file and process limits (prlimit), and as `nobody` when
 * fastcot runs as root.
 */
export type Isolation = "bwrap" | "unshare" | "none"

export interface SandboxLimits {
  /** Wall-clock limit per run. */
  readonly timeoutMs: number
  /** CPU seconds per run. */
  readonly cpuSeconds: number
  /** Address-space limit. */
  readonly memoryMb: number
  /** Largest file the program may write. */
  readonly fileSizeMb: number
  /** Output kept per stream; more is cut and the run fails. */
  readonly outputBytes: number
}

const signalName = (n: number): string | null => Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? null

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutMs: 6_000,
  cpuSeconds: 6,
  memoryMb: 1024,
  fileSizeMb: 16,
  outputBytes: 4 << 20
}

export interface RunResult {
  readonly status: "ok" | "error" | "timeout" | "memory" | "output-limit"
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly wallMs: number
}

export interface SandboxShape {
  readonly isolation: Isolation
  /** Why isolation is weaker than bubblewrap here, if it is. */
  readonly warning?: string | undefined
  /** Runs Python files (name → source) with `main` as the script, feeding `stdin`. */
  readonly runPython: (
    files: Readonly<Record<string, string>>,
    main: string,
    stdin: string,
    limits?: Partial<SandboxLimits>
  ) => Effect.Effect<RunResult>
}

export class Sandbox extends Context.Tag("@fastcot/evaluator/Sandbox")<Sandbox, SandboxShape>() {}

const works = (cmd: string, args: ReadonlyArray<string>) => {
  try {
    return spawnSync(cmd, args, { stdio: "ignore", timeout: 5_000 }).status === 0
  } catch {
    return false
  }
}

const which = (name: string): string | undefined => {
  for (const dir of (process.env["PATH"] ?? "/usr/bin:/bin").split(":")) {
    const path = join(dir, name)
    if (existsSync(path)) return path
  }
  return undefined
}

/** A Python 3 outside home folders (hidden in the sandbox): the system one first. */
export const findPython = (): string | undefined => {
  for (const candidate of ["/usr/bin/python3", "/usr/local/bin/python3", "/opt/homebrew/bin/python3"])
    if (existsSync(candidate)) return candidate
  return which("python3")
}

export interface SandboxOptions {
  /** Force a weaker isolation (tests of the fallbacks). */
  readonly isolation?: Isolation | undefined
  readonly python?: string | undefined
}

/** Detects what the machine offers once, and returns the sandbox over it. */
export const makeSandbox = (options: SandboxOptions = {}): SandboxShape => {
  const python = options.python ?? findPython()
  const root = typeof process.getuid === "function" && process.getuid() === 0
  const bwrap = which("bwrap")
  const unshare = which("unshare")
  const prlimit = which("prlimit")
  const setpriv = root ? which("setpriv") : undefined
  // Privileges are dropped first, so the namespace tools run as `nobody` (unprivileged user
  // namespaces) and the process limit counts only sandboxed programs.
  const drop = setpriv !== undefined ? [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"] : []
  const asUser = root && setpriv === undefined
  const isolate = (kind: Isolation, dir: string): Array<string> => {
    if (kind === "bwrap") {
      const argv = [
        bwrap!,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--tmpfs",
        "/root",
        "--tmpfs",
        "/home",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/var/tmp"
      ]
      const home = homedir()
      if (home !== "/" && !home.startsWith("/root") && !home.startsWith("/home")) argv.push("--tmpfs", home)
      argv.push("--bind", dir, dir, "--proc", "/proc", "--dev", "/dev", "--chdir", dir, "--")
      return argv
    }
    if (kind === "unshare") return [unshare!, asUser ? "-n" : "-rn", "--"]
    return []
  }
  const probeDir = tmpdir()
  const probe = (kind: Isolation) => {
    if (python === undefined) return false
    const argv = [...drop, ...isolate(kind, probeDir), python, "-c", "pass"]
    return works(argv[0]!, argv.slice(1))
  }
  let isolation: Isolation = "none"
  const wanted = options.isolation
  if ((wanted === undefined || wanted === "bwrap") && bwrap !== undefined && probe("bwrap")) isolation = "bwrap"
  else if (
    (wanted === undefined || wanted === "bwrap" || wanted === "unshare") &&
    unshare !== undefined &&
    probe("unshare")
  )
    isolation = "unshare"
  const warnings: Array<string> = []
  if (isolation === "unshare")
    warnings.push(
      "bubblewrap is not available: model-written code runs without filesystem isolation (network is cut with unshare)"
    )
  if (isolation === "none")
    warnings.push(
      "neither bubblewrap nor unshare works here: model-written code runs without network or filesystem isolation"
    )
  if (prlimit === undefined)
    warnings.push("prlimit is missing: no CPU, memory or process limits beyond the wall-clock timeout")
  if (!root && isolation !== "bwrap") warnings.push("the code runs as your user and can read what you can read")
  // One program per core at a time.
  const semaphore = Effect.unsafeMakeSemaphore(Math.max(1, availableParallelism()))

  const runPython: SandboxShape["runPython"] = (files, main, stdin, overrides = {}) =>
    Effect.async<RunResult>((resume) => {
      const limits = { ...DEFAULT_LIMITS, ...overrides }
      const started = Date.now()
      if (python === undefined) {
        resume(
          Effect.succeed({
            status: "error",
            exitCode: null,
            signal: null,
            stdout: "",
            stderr: "python3 is not installed",
            wallMs: 0
          })
        )
        return
      }
      const dir = mkdtempSync(join(tmpdir(), "fastcot-sandbox-"))
      for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body)
      if (root) chmodSync(dir, 0o777)
      const argv: Array<string> = []
      if (prlimit !== undefined) {
        argv.push(
          prlimit,
          `--cpu=${limits.cpuSeconds}`,
          `--as=${limits.memoryMb * 1024 * 1024}`,
          `--fsize=${limits.fileSizeMb * 1024 * 1024}`,
          "--nofile=64",
          `--nproc=${root ? 256 : 4096}`,
          "--core=0",
          "--"
        )
      }
      argv.push(...drop, ...isolate(isolation, dir))
      argv.push(python, "-I", "-B", join(dir, main))
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: dir,
        // Nothing of the user's environment (API keys!) reaches the program.
        env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", HOME: dir, PYTHONHASHSEED: "0", OMP_NUM_THREADS: "1" },
        detached: true,
        stdio: ["pipe", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let status: RunResult["status"] | undefined
      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
        } catch {
          // Already gone.
        }
      }
      const timer = setTimeout(() => {
        status ??= "timeout"
        killGroup()
      }, limits.timeoutMs)
      const take = (which: "out" | "err") => (chunk: Buffer) => {
        if (which === "out") stdout += chunk.toString("utf8")
        else stderr += chunk.toString("utf8")
        if (stdout.length + stderr.length > limits.outputBytes) {
          status ??= "output-limit"
          killGroup()
        }
      }
      child.stdout.on("data", take("out"))
      child.stderr.on("data", take("err"))
      child.stdin.on("error", () => {})
      child.stdin.end(stdin)
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer)
        killGroup()
        rmSync(dir, { recursive: true, force: true })
        // bwrap reports a program killed by a signal as its own exit code 128 + the signal's number.
        const killedBy =
          signal ?? (isolation === "bwrap" && exitCode !== null && exitCode > 128 ? signalName(exitCode - 128) : null)
        const cpuKilled =
          killedBy === "SIGXCPU" ||
          (killedBy === "SIGKILL" && status === undefined && Date.now() - started >= limits.cpuSeconds * 1000 * 0.9)
        const final: RunResult["status"] =
          status ?? (cpuKilled ? "timeout" : /MemoryError/.test(stderr) ? "memory" : exitCode === 0 ? "ok" : "error")
        resume(
          Effect.succeed({
            status: final,
            exitCode,
            signal,
            stdout,
            stderr: stderr.slice(-4000),
            wallMs: Date.now() - started
          })
        )
      }
      child.on("error", (e) => {
        stderr += String(e.message)
        finish(null, null)
      })
      child.on("close", finish)
      return Effect.sync(() => {
        status ??= "error"
        killGroup()
      })
    }).pipe(semaphore.withPermits(1))
  return { isolation, warning: warnings.length > 0 ? warnings.join("; ") : undefined, runPython }
}

export const SandboxLive = (options: SandboxOptions = {}) => Layer.sync(Sandbox, () => makeSandbox(options))
