import { Command, HelpDoc, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { demoCommand } from "./commands/demo.js"
import { evalCommand } from "./commands/eval.js"
import { exportCommand } from "./commands/export.js"
import { reportCommand } from "./commands/report.js"
import { reviewCommand } from "./commands/review.js"
import { importCommand } from "./commands/import.js"
import { initCommand } from "./commands/init.js"
import { inspectCommand } from "./commands/inspect.js"
import { runCommand } from "./commands/run.js"
import { statusCommand } from "./commands/status.js"
import { modelsCommand } from "./commands/models.js"
import { serveCommand } from "./commands/serve.js"
import { uiCommand } from "./commands/ui.js"
import { CliFailure } from "./failure.js"
import { nameBadFlag } from "./shared.js"
import { colorsEnabled } from "./tui/color.js"

export const VERSION = "0.1.0"

export const fastcot = Command.make("fastcot").pipe(
  Command.withDescription(
    "Fast-thinking chain-of-thought data for small models: import problems and traces, collect, align, export for SFT, evaluate."
  ),
  Command.withSubcommands([
    initCommand,
    importCommand,
    statusCommand,
    runCommand,
    inspectCommand,
    reviewCommand,
    exportCommand,
    evalCommand,
    reportCommand,
    serveCommand,
    modelsCommand,
    uiCommand,
    demoCommand
  ])
)

const cli = Command.run(fastcot, { name: "fastcot", version: VERSION })

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g
const strip = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a))

/**
 * The console the command line's help, version and usage errors are printed through: @effect/cli
 * always styles them, so the styles are dropped where they would land as escape codes (output
 * piped or redirected to a file or a CI log) or where NO_COLOR asks for none.
 */
export const plainWhereNeeded = (
  console: Console.Console,
  tty: { readonly out: boolean; readonly err: boolean }
): Console.Console => {
  const out = !tty.out || !colorsEnabled()
  const err = !tty.err || !colorsEnabled()
  if (!out && !err) return console
  return {
    ...console,
    log: (...args) => console.log(...(out ? strip(args) : args)),
    info: (...args) => console.info(...(out ? strip(args) : args)),
    error: (...args) => console.error(...(err ? strip(args) : args)),
    warn: (...args) => console.warn(...(err ? strip(args) : args))
  }
}

/**
 * Runs the command line and resolves to the exit code: 0 done, 1 failed, 2 bad usage or input.
 * Interrupts (Ctrl-C) stop the work cleanly: every store write is a transaction, so what was
 * committed stays, and the next command continues from it.
 */
export const runCli = (argv: ReadonlyArray<string>): Promise<number> => {
  const fiber = Effect.runFork(
    Console.consoleWith((console) =>
      Console.withConsole(
        cli(argv),
        plainWhereNeeded(console, { out: process.stdout.isTTY === true, err: process.stderr.isTTY === true })
      )
    ).pipe(
      Effect.provide(NodeContext.layer),
      // @effect/cli has printed its own message; where it names a bad value but not its flag,
      // the flag is named too.
      Effect.catchIf(ValidationError.isValidationError, (e) => {
        const text = "error" in e ? HelpDoc.toAnsiText(e.error).replace(ANSI, "") : ""
        return Effect.fail(new CliFailure({ message: nameBadFlag(argv.slice(2), text) ?? "", exitCode: 2 }))
      })
    )
  )
  const stop = () => {
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  return Effect.runPromise(Fiber.await(fiber)).then((exit) => {
    process.off("SIGINT", stop)
    process.off("SIGTERM", stop)
    if (Exit.isSuccess(exit)) return 0
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some" && failure.value instanceof CliFailure) {
      if (failure.value.message !== "")
        process.stderr.write(`${failure.value.exitCode === 3 ? "" : "error: "}${failure.value.message}\n`)
      return failure.value.exitCode
    }
    if (Cause.isInterruptedOnly(exit.cause)) {
      // A server is stopped, not interrupted mid-work: there is nothing to continue.
      const serving = argv.slice(2).find((a) => !a.startsWith("-")) === "serve"
      process.stderr.write(
        serving ? "stopped\n" : "interrupted: committed work is kept; run the command again to continue\n"
      )
      return 130
    }
    process.stderr.write(`error: ${Cause.pretty(exit.cause)}\n`)
    return 1
  })
}
