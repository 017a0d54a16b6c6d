// API keys in the OS keychain through Electron's safeStorage: encrypted at rest in the app's
// user-data folder, never in the workspace. They reach the backend as environment variables.
import { app, safeStorage } from "electron"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Schema from "effect/Schema"

const SetKey = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Z][A-Z0-9_]{1,63}$/)),
  value: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096))
})
const file = () => join(app.getPath("userData"), "keys.bin")

const load = (): Record<string, string> => {
  try {
    if (!safeStorage.isEncryptionAvailable()) return {}
    return JSON.parse(safeStorage.decryptString(readFileSync(file()))) as Record<string, string>
  } catch {
    return {}
  }
}

export const keyStore = {
  environment: (): Record<string, string> => load(),
  set: (request: unknown): { readonly ok: boolean; readonly message: string } => {
    const decoded = Schema.decodeUnknownEither(SetKey)(request)
    if (decoded._tag === "Left") return { ok: false, message: "a key needs an UPPER_CASE name and a value" }
    if (!safeStorage.isEncryptionAvailable())
      return { ok: false, message: "no OS keychain is available: set the key in the environment instead" }
    const keys = { ...load(), [decoded.right.name]: decoded.right.value }
    writeFileSync(file(), safeStorage.encryptString(JSON.stringify(keys)), { mode: 0o600 })
    process.env[decoded.right.name] = decoded.right.value
    return { ok: true, message: `${decoded.right.name} is stored in the OS keychain` }
  }
}
