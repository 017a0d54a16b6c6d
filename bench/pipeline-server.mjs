// A scripted teacher, judge and rewriter (no model behind them) on 127.0.0.1, in its own process.
import { createHash } from "node:crypto"
import { startScriptedServer } from "@fastcot/core/testing/scriptedServer"

const latencyMs = Number(process.argv[2] ?? 40)
const script = (r) => {
  const system = r.messages[0].content
  const user = r.messages[r.messages.length - 1].content
  const h = parseInt(createHash("sha256").update(user).digest("hex").slice(0, 4), 16)
  if (system.includes("highly capable evaluator")) return { content: /Rewritten/.test(user) ? "medium" : ["easy", "medium", "hard", "medium"][h % 4] }
  if (system.includes("extending") || system.includes("simplifying")) {
    const answer = /Answer:\n(.*)\n/.exec(user)?.[1] ?? ""
    return { content: `Rewritten.\n\nStep 1.\n\nSo the answer is \\boxed{${answer}}.` }
  }
  const n = Number(/What is (\d+) \+/.exec(user)?.[1] ?? 0)
  return { content: `Add ${n} and ${n}.\n\nThe answer is \\boxed{${2 * n}}.` }
}
const server = await startScriptedServer({ latencyMs, record: false, script })
process.stdout.write(server.baseUrl + "\n")
process.on("SIGTERM", () => server.close().then(() => process.exit(0)))
