import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const entry = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const recorded = entry("../api/public-api.txt")

/** Every name an entry point exports, marked `type` when it has no runtime value, sorted. */
const surfaceOf = (files: ReadonlyArray<string>): Array<string> => {
  const program = ts.createProgram([...files], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true
  })
  const checker = program.getTypeChecker()
  const lines: Array<string> = []
  for (const file of files) {
    const source = program.getSourceFile(file)
    const module = source && checker.getSymbolAtLocation(source)
    if (!module) throw new Error(`no module symbol for ${file}`)
    const label = file.includes("/testing/") ? "@fastcot/core/testing" : "@fastcot/core"
    for (const symbol of checker.getExportsOfModule(module)) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
      const kind = target.flags & ts.SymbolFlags.Value ? "value" : "type"
      lines.push(`${label} ${kind} ${symbol.name}`)
    }
  }
  return lines.sort()
}

describe("the public surface", () => {
  it("is the one recorded in api/public-api.txt", () => {
    const surface = surfaceOf([entry("./index.ts"), entry("./testing/index.ts")])
    if (process.env.UPDATE_PUBLIC_API === "1") writeFileSync(recorded, surface.join("\n") + "\n")
    const expected = readFileSync(recorded, "utf8").trim().split("\n")
    // When this fails on purpose, rerun with UPDATE_PUBLIC_API=1 and commit the file's diff.
    expect(surface).toEqual(expected)
  }, 120_000)
})
