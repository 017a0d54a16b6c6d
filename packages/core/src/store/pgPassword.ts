import { createReadStream, type Stats, statSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { getPassword } from "pgpass/lib/helper.js"

/** Whom a PostgreSQL sign-in is for: the fields a password file's line is matched on. */
export interface SignIn {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
}

/** The password file that libpq and psql read: PGPASSFILE, else ~/.pgpass (on Windows, %APPDATA%\postgresql\pgpass.conf). */
export const passwordFileName = (env: NodeJS.ProcessEnv = process.env): string =>
  env["PGPASSFILE"] ||
  (process.platform === "win32"
    ? join(env["APPDATA"] ?? ".", "postgresql", "pgpass.conf")
    : join(env["HOME"] ?? homedir(), ".pgpass"))

/**
 * The password of the first line of `file` that matches the sign-in, read with pgpass's parser
 * (the one pg uses). The file is checked as libpq checks it: a missing file is no password, and
 * on POSIX one that is not a plain file, or that others may read, is skipped with psql's warning.
 * (pgpass's own entry point also skips the file whenever PGPASSWORD is set, even to the empty
 * string, which libpq reads as not set.)
 */
const fromPasswordFile = (who: SignIn, file: string): Promise<string | undefined> => {
  let stat: Stats
  try {
    stat = statSync(file)
  } catch {
    return Promise.resolve(undefined)
  }
  // libpq's checks of the file, which it makes on POSIX only.
  if (process.platform !== "win32") {
    if (!stat.isFile()) {
      process.stderr.write(`WARNING: password file "${file}" is not a plain file\n`)
      return Promise.resolve(undefined)
    }
    if ((stat.mode & 0o077) !== 0) {
      process.stderr.write(
        `WARNING: password file "${file}" has group or world access; permissions should be u=rw (0600) or less\n`
      )
      return Promise.resolve(undefined)
    }
  }
  return new Promise((resolve) => getPassword({ ...who, port: String(who.port) }, createReadStream(file), resolve))
}

/**
 * The password of a sign-in, looked up when the server asks for one, in libpq's order: the one
 * written in the URL, else PGPASSWORD, else the first line of the password file that matches the
 * host, port, database and user (a file that others may read is skipped with a warning, as psql
 * does). `found` is told where it came from, so that a refused sign-in can say which password was
 * tried. When there is none, the promise fails with what to set; the password never appears in
 * a message. pg calls the function with the connection's parameters as it resolved them (the
 * URL's, then the PG* variables and its defaults), which are what a password file's line matches.
 */
export const lookUpPassword =
  (urlPassword: string, found: (source: string) => void) =>
  async (who?: SignIn): Promise<string> => {
    if (urlPassword !== "") {
      found("the URL")
      return urlPassword
    }
    const fromEnv = process.env["PGPASSWORD"]
    if (fromEnv !== undefined && fromEnv !== "") {
      found("PGPASSWORD")
      return fromEnv
    }
    if (who === undefined) throw new Error("the driver asked for a password without saying for whom")
    const file = passwordFileName()
    const fromFile = await fromPasswordFile(who, file)
    if (fromFile !== undefined) {
      found(`the password file ${file}`)
      return fromFile
    }
    throw new Error(
      `the server asks for a password for ${who.user}@${who.host}:${who.port}/${who.database} and none was found: ` +
        `set PGPASSWORD, or add the line \`${who.host}:${who.port}:${who.database}:${who.user}:PASSWORD\` to ${file} (mode 0600)`
    )
  }
