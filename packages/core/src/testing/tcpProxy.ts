import { connect, createServer, type Socket } from "node:net"

/** A TCP proxy on 127.0.0.1 that a test can cut, as a network would. */
export interface TcpProxy {
  readonly port: number
  /** Drops every connection through it, and refuses new ones for `ms` milliseconds. */
  readonly cut: (ms: number) => void
  readonly close: () => Promise<void>
}

/** Starts a proxy from a free loopback port to `targetPort` on 127.0.0.1. */
export const startTcpProxy = (targetPort: number): Promise<TcpProxy> =>
  new Promise((resolve, reject) => {
    const open = new Set<Socket>()
    let cutUntil = 0
    const server = createServer((client) => {
      if (Date.now() < cutUntil) {
        client.destroy()
        return
      }
      const upstream = connect(targetPort, "127.0.0.1")
      for (const [a, b] of [
        [client, upstream],
        [upstream, client]
      ] as const) {
        open.add(a)
        a.on("error", () => b.destroy())
        a.on("close", () => {
          open.delete(a)
          b.destroy()
        })
        a.pipe(b)
      }
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as { port: number }).port,
        cut: (ms) => {
          cutUntil = Date.now() + ms
          for (const s of open) s.destroy()
        },
        close: () =>
          new Promise((done) => {
            for (const s of open) s.destroy()
            server.close(() => done())
          })
      })
    })
  })
