// The only bridge between the sandboxed renderer and the main process: invoke a channel, or
// listen to pushed run events. No Node API reaches the page.
import electron = require("electron")
const { contextBridge, ipcRenderer } = electron

contextBridge.exposeInMainWorld("fastcot", {
  invoke: (channel: string, request: unknown): Promise<unknown> => ipcRenderer.invoke(`fastcot:${channel}`, request),
  onPush: (listener: (push: unknown) => void): (() => void) => {
    const handler = (_event: unknown, push: unknown) => listener(push)
    ipcRenderer.on("fastcot:push", handler)
    return () => ipcRenderer.off("fastcot:push", handler)
  }
})
