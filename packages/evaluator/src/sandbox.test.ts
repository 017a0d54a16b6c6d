import * as Effect from "effect/Effect"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { existsSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { extractCode, runTests, sameOutput } from "./codeTests.js"
import { type Isolation, makeSandbox, Sandbox, type SandboxShape } from "./sandbox.js"

const run = (
  sandbox: SandboxShape,
  code: string,
  stdin = "",
  timeoutMs = 3_000,
  limits: { readonly cpuSeconds?: number; readonly memoryMb?: number } = {}
) =>
  Effect.runPromise(
    sandbox.runPython({ "solution.py": code }, "solution.py", stdin, { timeoutMs, cpuSeconds: 3, ...limits })
  )

const strongest = makeSandbox()

describe(`the code sandbox (here: ${strongest.isolation})`, () => {
  let server: ReturnType<typeof createServer>
  let port: number
  let connections = 0
  beforeAll(async () => {
    server = createServer((socket) => {
      connections++
      socket.end("hello")
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    port = (server.address() as AddressInfo).port
    process.env["FASTCOT_SANDBOX_SECRET"] = "sk-must-not-leak"
  })
  afterAll(() => {
    server.close()
    delete process.env["FASTCOT_SANDBOX_SECRET"]
  })

  it("runs a program with stdin and stdout", async () => {
    const r = await run(strongest, "a, b = map(int, input().split())\nprint(a + b)\n", "2 40\n")
    expect(r).toMatchObject({ status: "ok", stdout: "42\n" })
  })

  it("kills an infinite loop at the time limit, with its whole process group", async () => {
    const started = Date.now()
    const r = await run(strongest, "import os\nif os.fork() == 0:\n    while True: pass\nwhile True: pass\n", "", 1_500)
    expect(r.status).toBe("timeout")
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("reports a program stopped by its CPU limit (not the wall clock) as a timeout", async () => {
    const r = await run(strongest, "while True: pass\n", "", 15_000, { cpuSeconds: 1 })
    expect(r.status, `exit ${r.exitCode} signal ${r.signal}`).toBe("timeout")
    expect(r.wallMs).toBeLessThan(10_000)
  })

  it("contains a fork bomb", async () => {
    const r = await run(
      strongest,
      "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
      "",
      2_000
    )
    expect(["timeout", "error"]).toContain(r.status)
    // The machine is still usable afterwards.
    expect((await run(strongest, "print('alive')")).stdout).toBe("alive\n")
  })

  it("stops a memory bomb", async () => {
    // Touching 256 MB of fresh pages takes a second or more of CPU on a slow VM: the CPU limit is
    // set well above that, so that what stops the bomb is the memory limit.
    const r = await run(strongest, "x = []\nwhile True:\n    x.append(' ' * 10_000_000)\n", "", 20_000, {
      cpuSeconds: 15,
      memoryMb: 256
    })
    expect(r.status, `${r.status} exit ${r.exitCode} signal ${r.signal}: ${r.stderr.slice(-400)}`).toBe("memory")
  })

  it.skipIf(strongest.isolation === "none")("has no network, not even loopback", async () => {
    const before = connections
    const r = await run(
      strongest,
      `import socket\ns = socket.create_connection(("127.0.0.1", ${port}), timeout=1)\nprint(s.recv(5))\n`
    )
    expect(r.status).toBe("error")
    expect(r.stdout).not.toContain("hello")
    expect(connections).toBe(before)
  })

  it("sees none of the user's environment", async () => {
    const r = await run(
      strongest,
      "import os\nprint(sorted(os.environ))\nprint(os.environ.get('FASTCOT_SANDBOX_SECRET'))\n"
    )
    expect(r.status).toBe("ok")
    expect(r.stdout).not.toContain("sk-must-not-leak")
    expect(r.stdout).toContain("None")
  })

  it.skipIf(strongest.isolation !== "bwrap" && process.getuid?.() !== 0)("cannot read the home folder", async () => {
    const r = await run(
      strongest,
      "import os\nhome = os.path.expanduser('~root')\nprint(os.listdir(home))\nprint(open('/root/.bashrc').read()[:20])\n"
    )
    expect(r.status).toBe("error")
    expect(r.stderr).toMatch(/PermissionError|FileNotFoundError/)
  })

  it.skipIf(strongest.isolation !== "bwrap" && process.getuid?.() !== 0)(
    "cannot write outside its own folder",
    async () => {
      const target = `${process.cwd()}/sandbox-escape-${Date.now()}.txt`
      const r = await run(strongest, `open(${JSON.stringify(target)}, "w").write("x")\n`)
      expect(r.status).toBe("error")
      expect(existsSync(target)).toBe(false)
      const inside = await run(strongest, "open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())\n")
      expect(inside.stdout).toBe("ok\n")
    }
  )

  it("leaves no temporary folders behind", async () => {
    const count = () => readdirSync(tmpdir()).filter((d) => d.startsWith("fastcot-sandbox-")).length
    const before = count()
    await run(strongest, "print(1)")
    expect(count()).toBe(before)
  })

  for (const isolation of ["unshare", "none"] as ReadonlyArray<Isolation>) {
    it(`degrades to ${isolation} with a warning, and still enforces time limits`, async () => {
      const weak = makeSandbox({ isolation })
      expect(weak.isolation === isolation || weak.isolation === "none").toBe(true)
      expect(weak.warning).toBeDefined()
      expect((await run(weak, "print(6 * 7)")).stdout).toBe("42\n")
      expect((await run(weak, "while True: pass", "", 1_000)).status).toBe("timeout")
    })
  }
})

describe("grading code against tests (LiveCodeBench formats)", () => {
  const grade = (code: string, tests: Parameters<typeof runTests>[1], func?: string) =>
    Effect.runPromise(runTests(code, tests, func).pipe(Effect.provideService(Sandbox, strongest)))

  it("extracts the last fenced python block", () => {
    expect(extractCode("text\n```python\nprint(1)\n```\nmore\n```python\nprint(2)\n```\n")).toBe("print(2)\n")
    expect(extractCode("```\nx=1\n```")).toBe("x=1\n")
    expect(extractCode("no code")).toBeUndefined()
  })

  it("compares stdin/stdout line by line after stripping, decimals equal as numbers", () => {
    expect(sameOutput("3 \n4\n\n", "3\n4")).toBe(true)
    expect(sameOutput("1.0 2", "1 2.00")).toBe(true)
    expect(sameOutput("1 2", "1 3")).toBe(false)
    expect(sameOutput("1\n2", "1")).toBe(false)
  })

  it("passes only when every stdin test passes", async () => {
    const tests = [
      { input: "1 2\n", output: "3\n", testtype: "stdin" as const },
      { input: "-5 10\n", output: "5\n", testtype: "stdin" as const }
    ]
    expect((await grade("a, b = map(int, input().split())\nprint(a + b)\n", tests)).passed).toBe(true)
    const wrong = await grade("a, b = map(int, input().split())\nprint(abs(a) + b)\n", tests)
    expect(wrong).toMatchObject({ passed: false, failure: { index: 1, reason: "wrong output on test 2" } })
  })

  it("calls Solution().<func_name>(*args) for functional tests with exact JSON equality", async () => {
    const code =
      "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n"
    const tests = [{ input: "[2, 7, 11, 15]\n9", output: "[0, 1]", testtype: "functional" as const }]
    expect((await grade(code, tests, "twoSum")).passed).toBe(true)
    expect((await grade(code, [{ ...tests[0]!, output: "[1, 0]" }], "twoSum")).passed).toBe(false)
    expect((await grade(code, tests)).failure!.reason).toMatch(/func_name/)
  })
})
