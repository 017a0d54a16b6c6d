import { Command, Options } from "@effect/cli"
import { isLoopbackHost, Onnx, parseModelSpec, serveLocalModel } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { failed, usage } from "../failure.js"
import {
  accessToken,
  f16ComputeOption,
  noTokenOption,
  packProductsOption,
  q4ComputeOption,
  rotaryOption,
  stderr,
  stdout,
  tokenFileOption
} from "../shared.js"

const model = Options.text("model").pipe(Options.withDescription("The local model: onnx:DIR[#variant]."))
const port = Options.integer("port").pipe(
  Options.withDefault(8000),
  Options.withDescription("The port (0 picks a free one).")
)
const host = Options.text("host").pipe(
  Options.withDefault("127.0.0.1"),
  Options.withDescription("The address to bind; anything but loopback exposes the model to the network.")
)
const threads = Options.integer("threads").pipe(
  Options.optional,
  Options.withDescription("Intra-op threads (default: every core).")
)
const maxBatch = Options.integer("max-batch").pipe(
  Options.withDefault(8),
  Options.withDescription(
    "Requests decoded together at most (continuous batching: a finished one's slot goes to the next waiting request)."
  )
)
const name = Options.text("name").pipe(
  Options.optional,
  Options.withDescription("The model name clients see (default: the folder's name).")
)

export const serveCommand = Command.make(
  "serve",
  {
    model,
    port,
    host,
    threads,
    maxBatch,
    q4Compute: q4ComputeOption,
    f16Compute: f16ComputeOption,
    packProducts: packProductsOption,
    rotary: rotaryOption,
    name,
    tokenFile: tokenFileOption,
    noToken: noTokenOption
  },
  (args) =>
    Effect.gen(function* () {
      // Before loading the model: a refused --no-token costs nothing.
      const token = yield* accessToken({ host: args.host, tokenFile: args.tokenFile, noToken: args.noToken })
      const spec = parseModelSpec(args.model)
      if (Either.isLeft(spec)) return yield* usage(spec.left)
      if (spec.right.kind !== "onnx") return yield* usage("serve runs local models: give --model onnx:DIR[#variant]")
      const m = yield* Onnx.LocalModel.scoped(spec.right.path, {
        variant: spec.right.variant,
        threads: Option.getOrUndefined(args.threads),
        q4Compute: args.q4Compute,
        f16Compute: args.f16Compute,
        packProducts: args.packProducts,
        fuseRotary: args.rotary === "fused"
      }).pipe(Effect.mapError((e) => usage(e.message)))
      const server = yield* serveLocalModel({
        engine: new Onnx.LocalEngine(m, args.maxBatch),
        host: args.host,
        port: args.port,
        modelName: Option.getOrUndefined(args.name),
        token,
        onRequest: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`)
      }).pipe(Effect.mapError((e) => failed(`cannot listen on ${args.host}:${args.port}: ${e.message}`)))
      if (!isLoopbackHost(args.host))
        yield* stderr(`warning: bound to ${args.host}: anyone who can reach it and has the token can use the model`)
      const notes =
        `${m.f16Widened > 0 ? ", float16 computed in float32" : ""}${m.int8Products > 0 ? `, ${m.int8Products} 4-bit products on integer kernels` : ""}` +
        `${m.packedProducts > 0 ? `, ${m.packedProducts} products packed into others` : ""}${m.rotaryFused > 0 ? `, ${m.rotaryFused} rotary embeddings fused` : ""}`
      yield* stderr(
        `${m.id} (${m.variant.name}, ${m.threads} threads${notes}, up to ${args.maxBatch} requests decoded together, continuous batching)`
      )
      yield* stdout(
        `serving on ${server.url}  (OpenAI-compatible: GET /v1/models, POST /v1/chat/completions; Ctrl-C stops)`
      )
      // Printed once, where the person who started it reads it; clients send it as their API key.
      if (token !== undefined)
        yield* stdout(`access token: ${token}  (send it as the API key: Authorization: Bearer TOKEN)`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Serve a local ONNX model as an OpenAI-compatible API on 127.0.0.1, so any client (and fastcot run) can use it.\n" +
      "Examples:\n  fastcot serve --model onnx:./models/Qwen2.5-0.5B-Instruct#q4\n  fastcot serve --model onnx:./tiny-model --port 0 --max-batch 4"
  )
)
