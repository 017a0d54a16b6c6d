/** pgpass (the reader of libpq's password file that pg itself uses) ships no types: the part fastcot calls. */
declare module "pgpass" {
  /**
   * Calls back with the password of the first line of the password file (PGPASSFILE, else
   * ~/.pgpass) that matches the connection, or undefined: no file, no line, PGPASSWORD set, or a
   * file that others may read (then a warning is written to stderr).
   */
  function pgpass(
    connection: { readonly host: string; readonly port: string; readonly database: string; readonly user: string },
    callback: (password: string | undefined) => void
  ): void
  export default pgpass
}
