import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readFileSync, statSync, writeFileSync } from "node:fs"
import { gunzipSync, gzipSync } from "node:zlib"
import { join } from "node:path"
import { parquetWriteFile } from "hyparquet-writer"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { RunStore } from "../store/RunStore.js"
import { jsonl, tempDir, withStore } from "../test-support/fixtures.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { importFile, type ImportOptions } from "./importFile.js"
import { type ReadPosition, readJsonl, START } from "./readers.js"

const SHARED = join(__dirname, "..", "..", "..", "..", "..", "shared", "data")

describe("import", () => {
  let tmp: ReturnType<typeof tempDir>
  let db: string
  beforeEach(() => {
    tmp = tempDir()
    db = join(tmp.dir, "ws", "fastcot.db")
  })
  afterEach(() => tmp.cleanup())

  const write = (name: string, body: string | Buffer) => {
    const file = join(tmp.dir, name)
    writeFileSync(file, body)
    return file
  }
  const run = (file: string, options: ImportOptions = {}) =>
    withStore(db, importFile(file, { rejectsDir: join(tmp.dir, "ws", "rejects"), ...options }))
  const problems = () =>
    withStore(
      db,
      Effect.gen(function* () {
        const store = yield* RunStore
        const s = yield* store.status
        const items = yield* store.listItems({ limit: 10_000 })
        return { status: s, items }
      })
    )

  it("imports good JSONL rows and rejects each bad one with its line and reason", async () => {
    const good = [
      { question: "1+1?", answer: "2" },
      { problem: "2+2?", solution: "So \\boxed{4}." }
    ]
    const body = Buffer.concat([
      Buffer.from(JSON.stringify(good[0]) + "\n"),
      Buffer.from("{not json\n"),
      Buffer.from("\n"),
      Buffer.from('{"answer": "3"}\n'),
      Buffer.from('{"question": "bad \xff bytes"}\n'.replace("\xff", ""), "utf8"),
      Buffer.from([
        0x7b, 0x22, 0x71, 0x75, 0x65, 0x73, 0x74, 0x69, 0x6f, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a
      ]),
      Buffer.from('{"question": 42, "answer": "1"}\n'),
      Buffer.from('["an", "array"]\n'),
      Buffer.from(JSON.stringify(good[1]) + "\r\n")
    ])
    const file = write("mixed.jsonl", body)
    const report = await run(file)
    expect(report.rows).toBe(8)
    expect(report.problemsAdded).toBe(3)
    expect(report.rejected).toBe(5)
    const reasons = report.rejects.map((r) => `${r.line}: ${r.reason}`)
    expect(reasons[0]).toMatch(/^2: malformed JSON/)
    expect(reasons[1]).toMatch(/^4: missing a question/)
    expect(reasons[2]).toMatch(/^6: invalid UTF-8/)
    expect(reasons[3]).toMatch(/^7: field `question` \(question\): expected a string, got a number/)
    expect(reasons[4]).toMatch(/^8: expected an object, got an array/)
    const rejectsFile = readFileSync(report.rejectsFile!, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(rejectsFile.map((r: { line: number }) => r.line)).toEqual([2, 4, 6, 7, 8])
    expect(rejectsFile[0].file).toBe(file)
    const { status, items } = await problems()
    expect(status.problems).toBe(3)
    // The solution-only row became a trace, its \boxed{} the reference answer.
    expect(items).toHaveLength(1)
    expect(items[0]!.trace!.reasoning).toBe("So \\boxed{4}.")
  })

  it("adds nothing when the same file, or the same rows under another name, is imported again", async () => {
    const rows = jsonl([
      { question: "a?", answer: "1" },
      { question: "b?", answer: "2" },
      { question: "a?", answer: "1" }
    ])
    const first = await run(write("a.jsonl", rows))
    expect(first).toMatchObject({ rows: 3, problemsAdded: 2, duplicates: 1 })
    const again = await run(write("a.jsonl", rows))
    expect(again.alreadyImported).toBe(true)
    // The same content under another name is the same import.
    expect((await run(write("copy.jsonl", rows))).alreadyImported).toBe(true)
    // Rows already present in another file are the same problems.
    const overlap = await run(write("more.jsonl", rows + jsonl([{ question: "c?", answer: "3" }])))
    expect(overlap).toMatchObject({ alreadyImported: false, rows: 4, problemsAdded: 1, duplicates: 3 })
    expect((await problems()).status.problems).toBe(3)
  })

  it("streams a JSON array and names the line of a bad element", async () => {
    const file = write(
      "rows.json",
      `[\n  {"question": "x?", "answer": "1"},\n  {"question": "brace } in \\"string\\" [", "answer": "2"},\n  {"answer": 3},\n  {"question": "y?", "answer": "4"}\n]\n`
    )
    const report = await run(file, { batchSize: 1 })
    expect(report).toMatchObject({ rows: 4, problemsAdded: 3, rejected: 1 })
    expect(report.rejects[0]).toMatchObject({ line: 4 })
    const wrapped = await run(
      write("wrapped.json", JSON.stringify({ version: 1, data: [{ question: "z?", answer: "0" }] }))
    )
    expect(wrapped.problemsAdded).toBe(1)
  })

  it("reads gzip-compressed JSONL, JSON and CSV as they stream, resumes inside one, and refuses zstd with what to do", async () => {
    // A published file as it is kept: the shared graded outputs (3,514 rows, gzip).
    const published = join(SHARED, "graded-outputs", "math-real.jsonl.gz")
    const report = await run(published, { batchSize: 500 })
    expect(report).toMatchObject({ rows: 3514, rejected: 0 })
    expect(report.problemsAdded).toBeGreaterThan(0)
    // From a committed position inside the compressed file: the same rows as from the plain file's.
    const plain = write("rows.jsonl", gunzipSync(readFileSync(published)))
    const batchOf = async (file: string, from: ReadPosition) => (await readJsonl(file, from, 3).next()).value!
    const second = (await batchOf(plain, START)).next
    const [fromPlain, fromGzip] = [await batchOf(plain, second), await batchOf(published, second)]
    expect(fromGzip.rows).toEqual(fromPlain.rows)
    expect(fromGzip.next).toEqual(fromPlain.next)
    // Progress is counted in the file's own (compressed) bytes, against its size.
    expect(fromGzip.bytes).toBeLessThanOrEqual(statSync(published).size)
    const json = await run(
      write("rows.json.gz", gzipSync(JSON.stringify([{ question: "gz json?", answer: "1" }, { answer: 2 }])))
    )
    expect(json).toMatchObject({ rows: 2, problemsAdded: 1, rejected: 1 })
    const csv = await run(write("rows.tsv.gz", gzipSync("question\tanswer\ngz csv?\t3\nsecond?\t4\n")))
    expect(csv).toMatchObject({ format: "csv", rows: 2, problemsAdded: 2, rejected: 0 })
    const zstd = await Effect.runPromise(
      Effect.either(
        importFile(write("rows.jsonl.zst", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]))).pipe(
          Effect.provide(SqliteRunStoreLive(db)),
          Effect.scoped
        )
      )
    )
    expect(zstd).toMatchObject({ left: { message: expect.stringContaining("zstd-compressed: decompress it first") } })
  })

  it("keeps a malformed CSV record's own text in its reject, across multi-line records, a BOM and CRLF", async () => {
    const file = write(
      "quotes.csv",
      '\uFEFFquestion,answer\r\n"A multi-line\nquestion?",1\r\n"ok?",2\r\n"What is 1+1, "bad" quote?",3\r\n"after?",4\r\n'
    )
    const report = await run(file)
    expect(report).toMatchObject({ problemsAdded: 3, rejected: 1 })
    expect(report.rejects[0]!.line).toBe(5)
    expect(report.rejects[0]!.reason).toMatch(/^malformed CSV: Invalid Closing Quote/)
    const rejected = readFileSync(report.rejectsFile!, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { line: number; raw: string })
    expect(rejected).toEqual([expect.objectContaining({ line: 5, raw: '"What is 1+1, "bad" quote?",3' })])
  })

  it("reads CSV with a JSON choices column and reports a broken record", async () => {
    const file = write(
      "mc.csv",
      'question,choices,answer\n"Which is largest?","[""1"",""3"",""2""]",3\n"too",many,cells,here\nWhat is 2+2?,,4\n'
    )
    const report = await run(file)
    expect(report.problemsAdded).toBe(2)
    expect(report.rejected).toBe(1)
    expect(report.rejects[0]!.line).toBe(3)
    const { status } = await problems()
    expect(status.domains).toEqual({ science: 1, math: 1 })
  })

  it("reads Parquet row by row", async () => {
    const file = join(tmp.dir, "data.parquet")
    const n = 2500
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: "problem", data: Array.from({ length: n }, (_, i) => `What is ${i} + 1?`), type: "STRING" },
        { name: "answer", data: Array.from({ length: n }, (_, i) => String(i + 1)), type: "STRING" },
        { name: "level", data: Array.from({ length: n }, (_, i) => BigInt(i % 5)), type: "INT64" }
      ],
      rowGroupSize: 1000
    })
    const report = await run(file, { batchSize: 700 })
    expect(report).toMatchObject({ format: "parquet", rows: n, problemsAdded: n, rejected: 0 })
  })

  it("understands chat messages, R1 think traces, Alpaca and reasoning_content without --map", async () => {
    const file = write(
      "layouts.jsonl",
      jsonl([
        {
          messages: [
            { role: "system", content: "sys" },
            { role: "user", content: "What is 3*3?" },
            { role: "assistant", content: "3*3=9, so \\boxed{9}" }
          ]
        },
        {
          question: "What is 5-2?",
          answer: "3",
          output: "<think>\nLet me think... 5-2 is 3. Wait, check: 3+2=5. Yes.\n</think>\n\nThe answer is $\\boxed{3}$."
        },
        { instruction: "Add the numbers.", input: "4 and 6", output: "4+6=10. \\boxed{10}" },
        { problem: "What is 7+1?", reasoning_content: "7+1=8", answer: "8" }
      ])
    )
    const report = await run(file)
    expect(report).toMatchObject({ problemsAdded: 4, itemsAdded: 4, rejected: 0 })
    const { items } = await problems()
    const byReasoning = new Map(items.map((i) => [i.trace!.reasoning, i]))
    const r1 = items.find((i) => i.trace!.long)!
    expect(r1.trace!.reasoning).toContain("Let me think")
    expect(r1.trace!.finalAnswer).toBe("The answer is $\\boxed{3}$.")
    expect(byReasoning.get("7+1=8")!.trace!.long).toBe(true)
    const chat = byReasoning.get("3*3=9, so \\boxed{9}")!
    const stored = await withStore(
      db,
      Effect.flatMap(RunStore, (s) => s.getProblem(chat.problemId))
    )
    expect(Option.getOrThrow(stored)).toMatchObject({
      question: "What is 3*3?",
      answer: "9",
      metadata: { system: "sys" }
    })
    const alpaca = items.find((i) => i.trace!.reasoning.startsWith("4+6"))!
    const alpacaProblem = Option.getOrThrow(
      await withStore(
        db,
        Effect.flatMap(RunStore, (s) => s.getProblem(alpaca.problemId))
      )
    )
    expect(alpacaProblem.question).toBe("Add the numbers.\n\n4 and 6")
  })

  it("reads LiveCodeBench and MMLU-Pro rows without --map", async () => {
    const file = write(
      "mixed-benchmarks.jsonl",
      jsonl([
        {
          question_title: "Add",
          question_content: "Read a and b, print a+b.",
          platform: "atcoder",
          starter_code: "",
          public_test_cases: JSON.stringify([{ input: "1 2\n", output: "3\n", testtype: "stdin" }]),
          metadata: "{}"
        },
        {
          question_id: 7,
          question: "Which is a prime?",
          options: ["4", "6", "7", "9"],
          answer: "C",
          answer_index: 2,
          category: "math"
        }
      ])
    )
    const report = await run(file)
    expect(report).toMatchObject({ problemsAdded: 2, rejected: 0 })
    const { status } = await problems()
    expect(status.domains).toEqual({ code: 1, science: 1 })
  })

  it("maps fields with --map and reports a mapped field that is missing", async () => {
    const file = write("custom.jsonl", jsonl([{ q: { text: "What is 2*5?" }, gold: "10" }, { gold: "1" }]))
    const report = await run(file, { map: { question: "q.text", answer: "gold" }, domain: "math" })
    expect(report.problemsAdded).toBe(1)
    expect(report.rejects[0]!.reason).toBe("missing field `q.text`")
  })

  it("imports the real MATH-500 file: problems with reference answers and solution traces", async () => {
    const file = join(SHARED, "math500", "test.jsonl")
    const report = await run(file)
    expect(report).toMatchObject({ rows: 500, problemsAdded: 500, itemsAdded: 500, rejected: 0 })
    const first = JSON.parse(readFileSync(file, "utf8").split("\n")[0]!)
    const { items } = await problems()
    const problemsById = await withStore(
      db,
      Effect.flatMap(RunStore, (s) => s.getProblems(items.map((i) => i.problemId)))
    )
    const p = problemsById.find((x) => x.question === first.problem.trim())!
    expect(p.answer).toBe(first.answer)
    expect(p.metadata).toMatchObject({ subject: first.subject, level: first.level, sourceId: first.unique_id })
  })

  it("imports GPQA's derived layout as science multiple choice, and its official CSV with shuffled choices", async () => {
    const derived = await run(join(SHARED, "gpqa_diamond", "test.jsonl"))
    expect(derived).toMatchObject({ rows: 198, problemsAdded: 198, rejected: 0 })
    const { status } = await problems()
    expect(status.domains["science"]).toBe(198)
    const official = write(
      "gpqa.csv",
      "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nWhich is right?,right one,wrong a,wrong b,wrong c\n"
    )
    const report = await run(official)
    expect(report.problemsAdded).toBe(1)
    const all = await withStore(
      db,
      Effect.flatMap(RunStore, (s) => s.status)
    )
    expect(all.problems).toBe(199)
  })
})
