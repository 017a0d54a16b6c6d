import { Command, ValidationError } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { demoCommand } from "./commands/demo.js"
import { evalCommand } from "./commands/eval.js"
import { exportCommand } from "./commands/export.js"
import { reportCommand } from "./commands/report.js"
import { importCommand } from "./commands/import.js"
import { initCommand } from "./commands/init.js"
import { inspectCommand } from "./commands/inspect.js"
import { runCommand } from "./commands/run.js"
import { statusCommand } from "./commands/status.js"
import { modelsCommand } from "./commands/models.js"
import { serveCommand } from "./commands/serve.js"
import { uiCommand } from "./commands/ui.js"
import { CliFailure } from "./failure.js"

export const VERSION = "0.1.0"

export const fastcot = Command.make("fastcot").pipe(
  Command.withDescription(
    "Fast-thinking chain-of-thought data for small models: import problems and traces, collect, align, export for SFT, evaluate."
  ),
  Command.withSubcommands([initCommand, importCommand, statusCommand, runCommand, inspectCommand, exportCommand, evalCommand, reportCommand, serveCommand, modelsCommand, uiCommand, demoCommand])
)

const cli = Command.run(fastcot, { name: "fastcot", version: VERSION })

/**
 * Runs the command line and resolves to the exit code: 0 done, 1 failed, 2 bad usage or input.
 * Interrupts (Ctrl-C) stop the work cleanly: every store write is a transaction, so what was
 * committed stays, and the next command continues from it.
 */
export const runCli = (argv: ReadonlyArray<string>): Promise<number> => {
  const fiber = Effect.runFork(
    cli(argv).pipe(
      Effect.provide(NodeContext.layer),
      Effect.catchIf(ValidationError.isValidationError, () => Effect.fail(new CliFailure({ message: "", exitCode: 2 })))
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
      if (failure.value.message !== "") process.stderr.write(`error: ${failure.value.message}\n`)
      return failure.value.exitCode
    }
    if (Cause.isInterruptedOnly(exit.cause)) {
      // A server is stopped, not interrupted mid-work: there is nothing to continue.
      const serving = argv.slice(2).find((a) => !a.startsWith("-")) === "serve"
      process.stderr.write(serving ? "stopped\n" : "interrupted: committed work is kept; run the command again to continue\n")
      return 130
    }
    process.stderr.write(`error: ${Cause.pretty(exit.cause)}\n`)
    return 1
  })
}
