import type { ApiFailure, ChannelName, Push, Reply, Request } from "../contract.js"

/** The bridge Electron's preload exposes; absent in a browser (then HTTP to `fastcot ui`). */
interface Bridge {
  invoke: (channel: string, request: unknown) => Promise<unknown>
  onPush: (listener: (push: unknown) => void) => () => void
}
const bridge = (globalThis as { fastcot?: Bridge }).fastcot

export class ApiError extends Error {}

export const call = async <C extends ChannelName>(channel: C, request: Request<C>): Promise<Reply<C>> => {
  const reply =
    bridge !== undefined
      ? await bridge.invoke(channel, request)
      : await fetch(`api/${channel}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(request)
        }).then((r) => r.json())
  if (typeof reply === "object" && reply !== null && "error" in reply)
    throw new ApiError((reply as ApiFailure).error.message)
  return reply as Reply<C>
}

export const onPush = (listener: (push: Push) => void): (() => void) => {
  if (bridge !== undefined) return bridge.onPush((p) => listener(p as Push))
  const source = new EventSource("api/events")
  source.onmessage = (m) => listener(JSON.parse(m.data as string) as Push)
  return () => source.close()
}
