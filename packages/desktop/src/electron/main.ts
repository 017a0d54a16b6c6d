// The Electron main process: hosts the backend (core, store, local models) and serves the
// renderer through a typed IPC bridge. Every channel's request is validated by its Schema in
// Backend.handle, the same code `fastcot ui` serves over HTTP (and which the tests exercise).
import { app, BrowserWindow, ipcMain, session } from "electron"
import { fileURLToPath } from "node:url"
import { Backend } from "../backend.js"
import { CHANNELS } from "../contract.js"
import { CSP, rendererDir } from "../server.js"
import { keyStore } from "./keys.js"

const backend = new Backend({ ...process.env, ...keyStore.environment() })

const createWindow = async () => {
  const win = new BrowserWindow({
    width: 1280,
    height: 860,
    title: "fastcot",
    webPreferences: {
      preload: fileURLToPath(new URL("./preload.cjs", import.meta.url)),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false
    }
  })
  // No navigation away from the app, no new windows, no remote content.
  win.webContents.on("will-navigate", (e) => e.preventDefault())
  win.webContents.setWindowOpenHandler(() => ({ action: "deny" }))
  backend.subscribe((push) => win.webContents.send("fastcot:push", push))
  await win.loadFile(`${rendererDir()}index.html`)
}

app.whenReady().then(async () => {
  session.defaultSession.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: { ...details.responseHeaders, "Content-Security-Policy": [CSP] } })
  )
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  session.defaultSession.webRequest.onBeforeRequest(
    { urls: ["http://*/*", "https://*/*", "ws://*/*", "wss://*/*"] },
    (_d, callback) => callback({ cancel: true })
  )
  for (const channel of CHANNELS)
    ipcMain.handle(`fastcot:${channel}`, (_event, request: unknown) => backend.handle(channel, request))
  ipcMain.handle("fastcot:keys.set", (_event, request: unknown) => keyStore.set(request))
  await createWindow()
})

app.on("window-all-closed", () => {
  void backend.close().then(() => app.quit())
})
