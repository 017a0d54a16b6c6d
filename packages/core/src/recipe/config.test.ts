import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parsePipeline } from "./config.js"
import { parseModelSpec } from "../pipeline/modelSpec.js"
import { applyOverrides, buildRoles } from "../pipeline/models.js"
import { DEFAULT_PIPELINE_FILE, defaultPipelineText } from "./defaultPipeline.js"

describe("pipeline files", () => {
  it("ships the apps/ recipe as the built-in default, unchanged", () => {
    const app = readFileSync(
      join(__dirname, "..", "..", "..", "..", "apps", "distilqwen-ds3-0324", "pipeline.yaml"),
      "utf8"
    )
    expect(readFileSync(DEFAULT_PIPELINE_FILE, "utf8")).toBe(app)
    const config = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    expect(config.models.teacher!.sampling).toEqual({ temperature: 0.6, top_p: 0.95, max_tokens: 4096 })
    expect(config.stages.align).toEqual({
      maxRounds: 3,
      smallModel: "7B",
      judgeRetries: 3,
      rewriteRetries: 2,
      judges: 1
    })
    expect(config.stages.collect.systemPrompt).toContain("You should think step-by-step.")
  })

  /** A pipeline file's first five lines, down to a teacher endpoint's model (lines 1-5). */
  const teacherEndpoint = [
    "name: trial",
    "models:",
    "  teacher:",
    "    endpoints:",
    "      - model: openai:m@http://127.0.0.1:1/v1"
  ]

  it("names the key and the line of every mistake", () => {
    const text = [
      ...teacherEndpoint,
      "        concurrency: 0",
      "    sampling: { temperature: 5 }",
      "  judgee: {}",
      ""
    ].join("\n")
    const result = parsePipeline(text, "p.yaml")
    expect(Either.isLeft(result)).toBe(true)
    const message = (result as Either.Left<string, never>).left
    expect(message).toMatch(/p\.yaml:6: models\.teacher\.endpoints\.0\.concurrency: /)
    expect(message).toMatch(/p\.yaml:7: models\.teacher\.sampling\.temperature: /)
    expect(message).toMatch(/p\.yaml:8: models\.judgee: is unexpected \(did you mean "judge"\?\), expected: /)
  })

  it("says which key a misspelt or snake_case one meant, and nothing when none is near", () => {
    const text = [
      ...teacherEndpoint,
      "        concurency: 4",
      "        base_url: http://127.0.0.1:1/v1",
      "stages:",
      "  align:",
      "    max_rounds: 2",
      ""
    ].join("\n")
    const message = Either.getLeft(parsePipeline(text, "p.yaml")).pipe(Option.getOrThrow)
    expect(message).toMatch(
      /p\.yaml:6: models\.teacher\.endpoints\.0\.concurency: is unexpected \(did you mean "concurrency"\?\)/
    )
    expect(message).toMatch(/p\.yaml:10: stages\.align\.max_rounds: is unexpected \(did you mean "maxRounds"\?\)/)
    // Nothing near: the list of settings alone.
    expect(message).toMatch(/p\.yaml:7: models\.teacher\.endpoints\.0\.base_url: is unexpected, expected: "model"/)
  })

  it("takes a role or an endpoint given as just its model spec", () => {
    const text = [
      "name: short",
      "models:",
      "  teacher: openai:t@http://127.0.0.1:1/v1",
      "  judge:",
      "    endpoints: [openai:j1@http://127.0.0.1:2/v1, { model: openai:j2@http://127.0.0.1:3/v1, concurrency: 4 }]",
      ""
    ].join("\n")
    const config = Either.getOrThrow(parsePipeline(text, "p.yaml"))
    expect(config.models.teacher!.endpoints).toEqual([
      expect.objectContaining({ model: "openai:t@http://127.0.0.1:1/v1", concurrency: 8 })
    ])
    expect(config.models.judge!.endpoints.map((e) => [e.model, e.concurrency])).toEqual([
      ["openai:j1@http://127.0.0.1:2/v1", 8],
      ["openai:j2@http://127.0.0.1:3/v1", 4]
    ])
  })

  it("says a mapping is expected where a list or a value was written, once per key", () => {
    const text = ["name: trial", "models:", "  teacher: 12", "stages:", "  - collect", ""].join("\n")
    const message = (parsePipeline(text, "p.yaml") as Either.Left<string, never>).left
    expect(message.split("\n")).toEqual([
      "p.yaml:3: models.teacher: Expected a mapping (key: value lines), actual 12",
      'p.yaml:4: stages: Expected a mapping (key: value lines), actual ["collect"]'
    ])
  })

  it("names only the real problems inside an optional key, in the file's order", () => {
    const text = [
      "name: trial",
      "models:",
      "  teacher:",
      "    sampling:",
      "      temperature: hot",
      "    endpoints:",
      "      - model: openai:t@http://127.0.0.1:1/v1",
      "        concurrency: -3",
      ""
    ].join("\n")
    const message = (parsePipeline(text, "p.yaml") as Either.Left<string, never>).left
    // An optional key's value is checked against "undefined" too; that half says nothing here.
    expect(message.split("\n")).toEqual([
      'p.yaml:5: models.teacher.sampling.temperature: Expected number, actual "hot"',
      "p.yaml:8: models.teacher.endpoints.0.concurrency: Expected a number between 1 and 4096, actual -3"
    ])
  })

  it("reads an endpoint's adaptive bounds, and names the line of bounds the wrong way round", () => {
    const text = (bounds: string) =>
      [
        "name: trial",
        "models:",
        "  teacher:",
        "    endpoints:",
        "      - model: openai:t@http://127.0.0.1:1/v1",
        "        concurrency: 16",
        `        adaptive: ${bounds}`,
        ""
      ].join("\n")
    const config = Either.getOrThrow(parsePipeline(text("{ max: 128 }"), "p.yaml"))
    expect(config.models.teacher!.endpoints[0]).toMatchObject({ concurrency: 16, adaptive: { min: 1, max: 128 } })
    const message = (parsePipeline(text("{ min: 64, max: 8 }"), "p.yaml") as Either.Left<string, never>).left
    expect(message).toMatch(/^p\.yaml:7: models\.teacher\.endpoints\.0\.adaptive: .*min \(64\) is above max \(8\)/)
  })

  it("takes a PostgreSQL store without a password, and names the line of any other", () => {
    const text = (store: string) => `name: trial\nstore: ${store}\nmodels:\n  teacher: openai:t@http://127.0.0.1:1/v1\n`
    const url = "postgres://fastcot@db.internal:5432/fastcot_math"
    expect(Either.getOrThrow(parsePipeline(text(url), "p.yaml")).store).toBe(url)
    const refused = (store: string) => (parsePipeline(text(store), "p.yaml") as Either.Left<string, never>).left
    const withPassword = refused("postgres://fastcot:s3cret@db.internal:5432/fastcot_math")
    expect(withPassword).toBe(
      "p.yaml:2: store: has a password in it: set PGPASSWORD, or write it in ~/.pgpass, and leave it out of the pipeline file"
    )
    expect(withPassword).not.toContain("s3cret")
    // Read as libpq reads it: a Unix socket in the query is a store; a password in the query is not.
    const socket = "postgres://fastcot@/fastcot_math?host=/run/postgresql"
    expect(Either.getOrThrow(parsePipeline(text(socket), "p.yaml")).store).toBe(socket)
    expect(refused("postgres://fastcot@db.internal/fastcot_math?password=s3cret")).toBe(withPassword)
    expect(refused("postgres://fastcot:s3cret@/fastcot_math?host=/run/postgresql")).toBe(withPassword)
    expect(refused("./fastcot.db")).toBe(
      "p.yaml:2: store: a postgres://USER@HOST:PORT/DB URL (a SQLite workspace is chosen with --workspace)"
    )
  })

  it("reports YAML syntax errors with their line", () => {
    const result = parsePipeline("name: x\nmodels:\n  teacher: [unclosed\n", "bad.yaml")
    expect((result as Either.Left<string, never>).left).toMatch(/^bad\.yaml:\d+: /)
  })

  it("parses model specs and lets flags replace a role's endpoints", () => {
    expect(Either.getOrThrow(parseModelSpec("openai:deepseek-chat@https://api.deepseek.com/v1"))).toEqual({
      kind: "openai",
      model: "deepseek-chat",
      baseUrl: "https://api.deepseek.com/v1"
    })
    expect(Either.getOrThrow(parseModelSpec("onnx:/models/qwen#q4"))).toEqual({
      kind: "onnx",
      path: "/models/qwen",
      variant: "q4"
    })
    expect(Either.isLeft(parseModelSpec("gpt-4o"))).toBe(true)
    const config = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const local = applyOverrides(config, { teacher: "openai:small@http://127.0.0.1:9/v1", concurrency: 3 })
    expect(local.models.teacher!.endpoints).toHaveLength(1)
    expect(local.models.teacher!.endpoints[0]).toMatchObject({
      model: "openai:small@http://127.0.0.1:9/v1",
      concurrency: 3
    })
    expect(local.models.teacher!.sampling.temperature).toBe(0.6)
    // The default teacher needs DEEPSEEK_API_KEY; a local override does not.
    expect(buildRoles(config, {})).toEqual(
      Either.left(
        "models.teacher: the environment variable DEEPSEEK_API_KEY is not set (it holds the key for api.deepseek.com)"
      )
    )
    expect(Either.isRight(buildRoles(local, {}))).toBe(true)
  })

  it("gives a local endpoint its q4 arithmetic, and names a wrong one", () => {
    const yaml = (q4: string) =>
      [
        "name: local",
        "models:",
        "  judge:",
        "    endpoints:",
        "      - model: onnx:/models/qwen#q4",
        `        q4Compute: ${q4}`,
        ""
      ].join("\n")
    const config = Either.getOrThrow(parsePipeline(yaml("as-exported"), "p.yaml"))
    const roles = Either.getOrThrow(buildRoles(config, {}, ["judge"]))
    // The provider's id, which records and cache keys carry, says which arithmetic answered.
    expect(roles["judge"]!.endpoints[0]!.provider.id).toBe("onnx:/models/qwen#q4 (q4 as exported)")
    expect((parsePipeline(yaml("fp16"), "p.yaml") as Either.Left<string, never>).left).toMatch(
      /p\.yaml:6: models\.judge\.endpoints\.0\.q4Compute: /
    )
  })

  it("keeps a local endpoint's rotary nodes as exported on request, and names a wrong setting", () => {
    const yaml = (rotary: string) =>
      [
        "name: local",
        "models:",
        "  judge:",
        "    endpoints:",
        "      - model: onnx:/models/qwen#int8",
        `        rotary: ${rotary}`,
        ""
      ].join("\n")
    const roles = Either.getOrThrow(
      buildRoles(Either.getOrThrow(parsePipeline(yaml("as-exported"), "p.yaml")), {}, ["judge"])
    )
    expect(roles["judge"]!.endpoints[0]!.provider.id).toBe("onnx:/models/qwen#int8 (rotary as exported)")
    const fused = Either.getOrThrow(
      buildRoles(Either.getOrThrow(parsePipeline(yaml("fused"), "p.yaml")), {}, ["judge"])
    )
    expect(fused["judge"]!.endpoints[0]!.provider.id).toBe("onnx:/models/qwen#int8")
    expect((parsePipeline(yaml("off"), "p.yaml") as Either.Left<string, never>).left).toMatch(
      /p\.yaml:6: models\.judge\.endpoints\.0\.rotary: /
    )
  })

  it("gives a local endpoint its float16 arithmetic, and names a wrong one", () => {
    const yaml = (f16: string) =>
      [
        "name: local",
        "models:",
        "  judge:",
        "    endpoints:",
        "      - model: onnx:/models/qwen#q4f16",
        `        f16Compute: ${f16}`,
        ""
      ].join("\n")
    const config = Either.getOrThrow(parsePipeline(yaml("as-exported"), "p.yaml"))
    const roles = Either.getOrThrow(buildRoles(config, {}, ["judge"]))
    expect(roles["judge"]!.endpoints[0]!.provider.id).toBe("onnx:/models/qwen#q4f16 (f16 as exported)")
    const plain = Either.getOrThrow(
      buildRoles(Either.getOrThrow(parsePipeline(yaml("float32"), "p.yaml")), {}, ["judge"])
    )
    expect(plain["judge"]!.endpoints[0]!.provider.id).toBe("onnx:/models/qwen#q4f16")
    expect((parsePipeline(yaml("half"), "p.yaml") as Either.Left<string, never>).left).toMatch(
      /p\.yaml:6: models\.judge\.endpoints\.0\.f16Compute: /
    )
  })

  it("takes packProducts on a local endpoint, and names a wrong value", () => {
    const yaml = (pack: string) =>
      [
        "name: local",
        "models:",
        "  judge:",
        "    endpoints:",
        "      - model: onnx:/models/qwen#q4",
        `        packProducts: ${pack}`,
        ""
      ].join("\n")
    const config = Either.getOrThrow(parsePipeline(yaml("true"), "p.yaml"))
    expect(config.models["judge"]!.endpoints[0]!.packProducts).toBe(true)
    expect(Either.isRight(buildRoles(config, {}, ["judge"]))).toBe(true)
    expect((parsePipeline(yaml("sometimes"), "p.yaml") as Either.Left<string, never>).left).toMatch(
      /p\.yaml:6: models\.judge\.endpoints\.0\.packProducts: /
    )
  })
})
