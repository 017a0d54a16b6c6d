/** pgpass (the reader of libpq's password file that pg itself uses) ships no types: the part fastcot calls. */
declare module "pgpass/lib/helper.js" {
  /**
   * Calls back with the password of the first line read from `stream` (a password file's
   * contents) that matches the connection, or undefined when no line does or the stream fails
   * (then a warning is written to stderr).
   */
  export function getPassword(
    connection: { readonly host: string; readonly port: string; readonly database: string; readonly user: string },
    stream: NodeJS.ReadableStream,
    callback: (password: string | undefined) => void
  ): void
}
