import { Args, HelpDoc, Options } from "@effect/cli"
import {
  isLoopbackHost,
  isPostgresUrl,
  makeAccessToken,
  parsePipeline,
  type PipelineConfig,
  QwenTokenCounterLive,
  runStoreLayer,
  workspacePaths
} from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { existsSync, readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { type CliFailure, failed, usage } from "./failure.js"

/** `-w, --workspace DIR` (default .fastcot), described as the command treats a missing one. */
const workspaceFolderOption = (whenMissing: string) =>
  Options.text("workspace").pipe(
    Options.withAlias("w"),
    Options.withDefault(".fastcot"),
    Options.withDescription(`The workspace folder holding fastcot.db (${whenMissing}).`)
  )

/** `--workspace` for the commands that make the workspace when it is missing (init, import, run, eval). */
export const workspaceOption = workspaceFolderOption("created when missing")

/** `--workspace` for the commands that read one (status, inspect, export, review): a missing one is refused. */
export const existingWorkspaceOption = workspaceFolderOption("it must exist: a mistyped path is refused")

/** Every choice option's name (flags with a fixed set of values), for naming a bad value's flag. */
const choiceFlags = new Set<string>()

/** `Options.choice`, remembered by name so that a bad value's error can name its flag. */
export const choiceOption = <A extends string, C extends ReadonlyArray<A>>(
  name: string,
  choices: C
): Options.Options<C[number]> => {
  choiceFlags.add(name)
  return Options.choice(name, choices)
}

/**
 * Names the flag behind one of @effect/cli's value errors, which give the value or the choices
 * but not the flag (`'abc' is not a integer`, `Expected one of the following cases: a, b`):
 * `--limit: "abc" is not a whole number`. Undefined when the command line does not show which.
 */
export const nameBadFlag = (argv: ReadonlyArray<string>, message: string): string | undefined => {
  // Each flag with its value, written `--flag value` or `--flag=value` (a flag followed by
  // another, such as a boolean one, has none).
  const pairs: Array<readonly [string, string]> = []
  argv.forEach((a, i) => {
    if (!a.startsWith("--")) return
    const eq = a.indexOf("=")
    const next = argv[i + 1]
    if (eq > 2) pairs.push([a.slice(2, eq), a.slice(eq + 1)])
    else if (next !== undefined && !next.startsWith("--")) pairs.push([a.slice(2), next])
  })
  const number = /^'(.*)' is not a (integer|float)/.exec(message)
  if (number !== null) {
    const hit = pairs.find(([, v]) => v === number[1])
    return hit === undefined
      ? undefined
      : `--${hit[0]}: "${hit[1]}" is not ${number[2] === "integer" ? "a whole number" : "a number"}`
  }
  const cases = /Expected one of the following cases: (.*)/.exec(message)
  if (cases !== null) {
    const allowed = cases[1]!.split(",").map((c) => c.trim())
    const hit = pairs.find(([flag, v]) => choiceFlags.has(flag) && !allowed.includes(v))
    return hit === undefined ? undefined : `--${hit[0]}: "${hit[1]}" is not one of ${allowed.join(", ")}`
  }
  return undefined
}

/** Local 4-bit models: integer kernels (the default) or the file's own arithmetic. */
export const q4ComputeOption = choiceOption("q4-compute", ["int8", "as-exported"]).pipe(
  Options.withDefault("int8" as const),
  Options.withDescription(
    "Local 4-bit models: int8 runs their products on integer kernels (faster on a CPU); as-exported keeps the file's arithmetic."
  )
)

/** Local float16 models: float32 arithmetic when it fits (the default), always, or the file's own. */
export const f16ComputeOption = choiceOption("f16-compute", ["auto", "float32", "as-exported"]).pipe(
  Options.withDefault("auto" as const),
  Options.withDescription(
    "Local float16 models (fp16, q4f16): float32 computes them in float32 (faster on a CPU; fp16 weights take twice the memory); as-exported keeps float16 arithmetic; auto is float32 when the widened weights fit in a quarter of the machine's memory."
  )
)

/** Local models: rotary embeddings as one node each (the default) or the file's own nodes. */
export const rotaryOption = choiceOption("rotary", ["fused", "as-exported"]).pipe(
  Options.withDefault("fused" as const),
  Options.withDescription(
    "Local models: fused runs each rotary embedding as one node (faster); as-exported keeps the file's nodes."
  )
)

/** Local models: pack the products that read one input into one (see the README's local models). */
export const packProductsOption = Options.boolean("pack-products").pipe(
  Options.withDescription(
    "Local models: pack the products that read one input (query/key/value, gate/up) into one; the same answers, faster on many cores, more memory at load."
  )
)

/**
 * A list option: comma-separated, and it may also be given more than once (`--bench math500
 * --bench aime24`); empty when not given.
 */
export const listOption = (name: string, description: string): Options.Options<ReadonlyArray<string>> =>
  Options.text(name).pipe(
    Options.repeated,
    Options.map((values) =>
      values
        .flatMap((v) => v.split(","))
        .map((v) => v.trim())
        .filter((v) => v !== "")
    ),
    Options.withDescription(`${description} Comma-separated, or given more than once.`)
  )

/** An integer option that must lie in [min, max]; the error names the option and the range. */
export const inRange = (name: string, min: number, max: number) =>
  Options.filterMap(
    (n: number) => (n >= min && n <= max ? Option.some(n) : Option.none()),
    max === Number.MAX_SAFE_INTEGER ? `${name} must be at least ${min}` : `${name} must be from ${min} to ${max}`
  )

/** A spending limit in US dollars (the endpoints need prices). */
export const budgetUsdOption = (scope: string) =>
  Options.float("budget-usd").pipe(
    Options.filterMap(
      (n) => (n > 0 && Number.isFinite(n) ? Option.some(n) : Option.none()),
      "--budget-usd must be a positive number"
    ),
    Options.optional,
    Options.withDescription(
      `Stop cleanly before ${scope} spending passes this many US dollars (needs a price on every remote endpoint).`
    )
  )

/** A spending limit in prompt + completion tokens of the calls sent (cache hits are free). */
export const budgetTokensOption = (scope: string) =>
  Options.integer("budget-tokens").pipe(
    inRange("--budget-tokens", 1, Number.MAX_SAFE_INTEGER),
    Options.optional,
    Options.withDescription(
      `Stop cleanly before ${scope} calls pass this many prompt + completion tokens (cache hits are free).`
    )
  )

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text."))

export const storeOption = Options.text("store").pipe(
  Options.optional,
  Options.withDescription(
    "The run store: a postgres://USER@HOST:PORT/DB URL that several machines share (the password from PGPASSWORD or ~/.pgpass), or a SQLite file. Default: the pipeline file's `store:`, else $FASTCOT_STORE, else the workspace's fastcot.db."
  )
)

/** --pipeline FILE, on the commands that read a store: the store named by that file's `store:`. */
export const pipelineStoreOption = Options.text("pipeline").pipe(
  Options.optional,
  Options.withDescription(
    "A pipeline file whose `store:` names the run store (the one `fastcot run FILE` uses); --store comes first."
  )
)

/** A pipeline file read and checked, its errors named by file and line as a usage failure. */
export const readPipeline = (file: string): Effect.Effect<PipelineConfig, CliFailure> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) =>
      usage(`${file}: cannot read the pipeline file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }).pipe(
    Effect.flatMap((text) =>
      Either.match(parsePipeline(text, file), {
        onLeft: (problems) => usage(`the pipeline is not valid:\n${problems}`),
        onRight: Effect.succeed
      })
    )
  )

/**
 * Where the run store is: --store, else the pipeline file's `store:`, else
 * FASTCOT_STORE, else the workspace's SQLite file.
 */
export const storeLocation = (
  workspace: string,
  store: Option.Option<string> = Option.none(),
  fromPipeline?: string
): string => Option.getOrElse(store, () => fromPipeline ?? storeFromEnv() ?? workspacePaths(workspace).db)

/** The store FASTCOT_STORE names; undefined when it is unset or empty. */
export const storeFromEnv = (): string | undefined => {
  const fromEnv = process.env["FASTCOT_STORE"]
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined
}

/** The run store at `location` as a layer whose failure is reported as a CLI failure. */
const layerAt = (location: string, existing = false) =>
  runStoreLayer(location, { leaseMs: leaseFromEnv(), existing }).pipe(
    Layer.catchAll((e) => Layer.fail(failed(`${e.message}`)))
  )

/** The run store as a layer whose failure is reported as a CLI failure. */
export const storeLayer = (workspace: string, store: Option.Option<string> = Option.none(), fromPipeline?: string) =>
  layerAt(storeLocation(workspace, store, fromPipeline))

/**
 * The run store of a command that takes --store and --pipeline: --store, else the pipeline file's
 * `store:`, else FASTCOT_STORE, else the workspace's SQLite file (made when missing).
 */
export const namedStoreLayer = (workspace: string, store: Option.Option<string>, pipeline: Option.Option<string>) =>
  Layer.unwrapEffect(
    Effect.map(namedStore(store, pipeline), (named) => storeLayer(workspace, Option.fromNullable(named)))
  )

/**
 * The workspace's own SQLite store, whatever FASTCOT_STORE names: for `init` and `demo`, which
 * make a local workspace of samples and must never write them into a shared database.
 */
export const workspaceStoreLayer = (workspace: string) =>
  storeLayer(workspace, Option.some(workspacePaths(workspace).db))

/** FASTCOT_LEASE_MS: how long a shared store's work leases last unless renewed (default 30 s). */
const leaseFromEnv = (): number | undefined => {
  const ms = Number(process.env["FASTCOT_LEASE_MS"])
  return Number.isFinite(ms) && ms >= 100 ? ms : undefined
}

/**
 * The store of a workspace that must exist already: for commands that only read it (status,
 * inspect, export, review), where a mistyped --workspace, or a database named by mistake, would
 * otherwise be made an empty workspace and reported as empty. `pipeline` names a pipeline file
 * whose `store:` is read when --store is not given.
 */
export const existingStoreLayer = (
  workspace: string,
  store: Option.Option<string> = Option.none(),
  pipeline: Option.Option<string> = Option.none()
) => Layer.unwrapEffect(Effect.map(namedStore(store, pipeline), (named) => existingStoreAt(workspace, named)))

/**
 * The store that the command line names: --store, else the `store:` of the --pipeline file (read
 * only when --store is not given); undefined when neither names one (then FASTCOT_STORE, else the
 * workspace's file, is the store).
 */
export const namedStore = (
  store: Option.Option<string>,
  pipeline: Option.Option<string>
): Effect.Effect<string | undefined, CliFailure> =>
  Option.isSome(store)
    ? Effect.succeed(store.value)
    : Option.isSome(pipeline)
      ? Effect.map(readPipeline(pipeline.value), (config) => config.store)
      : Effect.succeed(undefined)

const existingStoreAt = (workspace: string, named: string | undefined) => {
  const location = storeLocation(workspace, Option.fromNullable(named))
  // A database is asked whether it holds fastcot's tables; a SQLite workspace is its file.
  if (isPostgresUrl(location)) return layerAt(location, true)
  if (existsSync(location)) return layerAt(location)
  return Layer.fail(
    usage(
      location === workspacePaths(workspace).db
        ? `no workspace at ${workspace} (no fastcot.db there); make one with \`fastcot init ${workspace}\` or \`fastcot import FILE --workspace ${workspace}\``
        : `no run store at ${location} (no such file); make one with \`fastcot import FILE --store ${location}\``
    )
  )
}

export const tokenLayer = QwenTokenCounterLive

export const stderr = (line: string) => Effect.sync(() => process.stderr.write(line + "\n"))
export const stdout = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

const envSet = (key: string) => key in process.env && process.env[key] !== "0" && process.env[key] !== "false"

/**
 * Whether a full-screen dashboard can be drawn: stdout (and, for dashboards that take keys, stdin)
 * is a terminal, FASTCOT_NO_TUI is unset, and no CI variable is set. Ink draws only the last frame
 * when it sees CI or CONTINUOUS_INTEGRATION, so a dashboard there would sit blank until the end;
 * the line-by-line output is shown instead.
 */
export const dashboardTerminal = (options: { readonly keys: boolean }): boolean =>
  process.stdout.isTTY === true &&
  (!options.keys || process.stdin.isTTY === true) &&
  process.env["FASTCOT_NO_TUI"] === undefined &&
  !envSet("CI") &&
  !envSet("CONTINUOUS_INTEGRATION")

/** A one-line progress display on a terminal, redrawn at most ten times a second. */
export const progressLine = () => {
  const tty = process.stderr.isTTY === true
  let last = 0
  let shown = false
  return {
    update: (text: string) => {
      if (!tty) return
      const now = Date.now()
      if (now - last < 100) return
      last = now
      shown = true
      process.stderr.write(`\r\x1b[2K${text}`)
    },
    clear: () => {
      if (tty && shown) process.stderr.write("\r\x1b[2K")
      shown = false
    }
  }
}

/**
 * Refuses a positional argument that looks like an option. Without this a misspelt option
 * (`--concurency 3`) or an option whose value is missing (`run --teacher`) is taken for a file
 * name, and the error talks about a file that nobody meant.
 */
export const notAnOption =
  (command: string) =>
  (args: Args.Args<string>): Args.Args<string> =>
    Args.mapEffect(args, (value) =>
      value.startsWith("-") && value !== "-"
        ? Effect.fail(
            HelpDoc.p(
              `${value} is not an option of \`fastcot ${command}\` here: misspelt, given twice, or an option before it is missing its value (see fastcot ${command} --help). A file whose name starts with "-" can be given as ./${value}`
            )
          )
        : Effect.succeed(value)
    )

export const tokenFileOption = Options.file("token-file").pipe(
  Options.optional,
  Options.withDescription("Read the access token from this file (default: $FASTCOT_TOKEN, else a new one each start).")
)
export const noTokenOption = Options.boolean("no-token").pipe(
  Options.withDescription("Answer without a token (refused on any address but loopback).")
)

/**
 * The access token a server fastcot starts requires: --token-file, else FASTCOT_TOKEN, else a new
 * one; none with --no-token, which is refused on an address other than loopback.
 */
export const accessToken = (options: {
  readonly host: string
  readonly tokenFile: Option.Option<string>
  readonly noToken: boolean
}): Effect.Effect<string | undefined, CliFailure> =>
  Effect.gen(function* () {
    if (options.noToken) {
      if (!isLoopbackHost(options.host))
        return yield* usage(
          `--no-token is refused on ${options.host}: anyone on the network could use it; keep the token, or bind to 127.0.0.1`
        )
      return undefined
    }
    if (Option.isSome(options.tokenFile)) {
      const file = options.tokenFile.value
      const text = yield* Effect.try({
        try: () => readFileSync(file, "utf8").trim(),
        catch: (e) => usage(`--token-file ${file}: ${(e as Error).message}`)
      })
      if (text.length < 16) return yield* usage(`--token-file ${file}: the token must be at least 16 characters`)
      return text
    }
    const fromEnv = process.env["FASTCOT_TOKEN"]
    if (fromEnv !== undefined && fromEnv !== "") {
      if (fromEnv.length < 16) return yield* usage("FASTCOT_TOKEN must be at least 16 characters")
      return fromEnv
    }
    return makeAccessToken()
  })
