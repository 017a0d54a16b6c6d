// Starts the scripted chat-completions server on 127.0.0.1 in its own process and prints its URL.
import { startScriptedServer } from "@fastcot/core/testing"

const latencyMs = Number(process.argv[2] ?? 40)
const server = await startScriptedServer({ latencyMs, constantReply: "The answer is \\boxed{4}." })
process.stdout.write(server.baseUrl + "\n")
process.on("SIGTERM", () => server.close().then(() => process.exit(0)))
