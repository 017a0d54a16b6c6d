import * as Data from "effect/Data"

/**
 * A failure the command reports to the user: its message goes to stderr and the process exits
 * with `exitCode` (1 failed, 2 bad usage or input, 3 stopped early on purpose: a budget reached;
 * the work done is kept and the same command goes on).
 */
export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly message: string
  readonly exitCode: 1 | 2 | 3
}> {}

export const usage = (message: string) => new CliFailure({ message, exitCode: 2 })
export const failed = (message: string) => new CliFailure({ message, exitCode: 1 })
