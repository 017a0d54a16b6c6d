/** Whether a store location names a PostgreSQL database rather than a SQLite file. */
export const isPostgresUrl = (location: string): boolean => /^postgres(ql)?:\/\//i.test(location)

/** A `password=` in a URL's query (libpq takes the password there too), its value and all. */
const QUERY_PASSWORD = /([?&])password=[^&#]*&?/gi

/**
 * A store URL as it may be shown: the password (when the URL carries one, in its authority or in
 * its query's `password=`) left out. A URL that WHATWG's parser refuses but libpq takes
 * (`postgres://user:pw@/db?host=/run/postgresql`, no host before the path) keeps its user and
 * loses the rest of what comes before the last `@` of its authority.
 */
export const displayStoreUrl = (url: string): string => {
  const shown = (() => {
    try {
      const u = new URL(url)
      u.password = ""
      return u.toString()
    } catch {
      const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i.exec(url)
      return m === null ? url : `${m[1]}${m[2]!.split(":")[0]}@${url.slice(m[0].length)}`
    }
  })()
  return shown.replace(QUERY_PASSWORD, "$1").replace(/[?&]$/, "")
}
