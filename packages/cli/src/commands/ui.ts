import { Command, Options } from "@effect/cli"
import { Backend, serveUi } from "@fastcot/desktop"
import { isLoopbackHost } from "@fastcot/core"
import * as Effect from "effect/Effect"
import { failed } from "../failure.js"
import {
  accessToken,
  noTokenOption,
  namedStore,
  pipelineStoreOption,
  stderr,
  stdout,
  storeOption,
  tokenFileOption
} from "../shared.js"

const port = Options.integer("port").pipe(
  Options.withDefault(7860),
  Options.withDescription("The port (0 picks a free one).")
)
const host = Options.text("host").pipe(
  Options.withDefault("127.0.0.1"),
  Options.withDescription("The address to bind; anything but loopback exposes your workspaces.")
)
const allowEndpoint = Options.text("allow-endpoint").pipe(
  Options.repeated,
  Options.withDescription(
    "A host (or host:port) that runs and evaluations started from the page may call, besides loopback; repeat for more. Others are refused, so that no one signed in can send this server's API key elsewhere."
  )
)
const workspace = Options.text("workspace").pipe(
  Options.withAlias("w"),
  Options.optional,
  Options.withDescription("A workspace to open at start.")
)

export const uiCommand = Command.make(
  "ui",
  {
    port,
    host,
    workspace,
    store: storeOption,
    pipeline: pipelineStoreOption,
    tokenFile: tokenFileOption,
    noToken: noTokenOption,
    allowEndpoint
  },
  (args) =>
    Effect.gen(function* () {
      const token = yield* accessToken({ host: args.host, tokenFile: args.tokenFile, noToken: args.noToken })
      // Else FASTCOT_STORE, as the backend reads it.
      const store = yield* namedStore(args.store, args.pipeline)
      const backend = new Backend(store !== undefined ? { ...process.env, FASTCOT_STORE: store } : process.env)
      if (args.workspace._tag === "Some") {
        const opened = yield* Effect.promise(() =>
          backend.handle("workspace.open", { path: args.workspace._tag === "Some" ? args.workspace.value : "" })
        )
        if (typeof opened === "object" && opened !== null && "error" in opened)
          return yield* failed(String((opened as { error: { message: string } }).error.message))
      }
      const server = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => serveUi(backend, { host: args.host, port: args.port, token }),
          catch: (e) =>
            failed(`cannot listen on ${args.host}:${args.port}: ${e instanceof Error ? e.message : String(e)}`)
        }),
        (s) => Effect.promise(() => s.close().then(() => backend.close()))
      )
      if (!isLoopbackHost(args.host))
        yield* stderr(
          `warning: bound to ${args.host}: anyone who can reach it and has the token can use your workspaces`
        )
      yield* stdout(
        `fastcot ui on ${server.url}  (open it in a browser${token !== undefined ? "; the token signs you in" : ""}; Ctrl-C stops)`
      )
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "The desktop app in a browser: serves its window and backend on 127.0.0.1, for headless servers and teams without Electron.\n" +
      "Every request must carry the access token: the printed address signs a browser in (a cookie), scripts send Authorization: Bearer TOKEN. The token is new at each start unless FASTCOT_TOKEN or --token-file gives it; --no-token only on loopback.\n" +
      "Examples:\n  fastcot ui\n  fastcot ui --workspace ./runs/math --port 0\n  FASTCOT_TOKEN=... fastcot ui --host 0.0.0.0"
  )
)
