import react from "@vitejs/plugin-react"
import { defineConfig } from "vite"

// The renderer: plain static files (relative paths, so Electron can load them from disk).
export default defineConfig({
  root: "src/renderer",
  base: "./",
  plugins: [react()],
  build: {
    outDir: "../../dist/renderer",
    emptyOutDir: true,
    sourcemap: true,
    target: "es2022",
    // The chart and component libraries in chunks of their own: the app's code changes, they rarely do.
    rollupOptions: {
      output: {
        manualChunks: { charts: ["recharts"], components: ["react-aria-components"] }
      }
    }
  }
})
