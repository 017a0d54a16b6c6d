// What the test suite needs from the machine, installed when it is missing: a C++ toolchain
// (better-sqlite3 builds on `npm ci`), the system Python, bubblewrap and util-linux (the code
// sandbox), tmux (the terminal tests), Debian's chromium (the desktop renderer's tests) and the
// PostgreSQL server (the PostgreSQL store's tests start a throwaway cluster on loopback). As
// root on Debian it installs them with
// apt-get; otherwise it stops at once and prints the one command that would.
//
//   node scripts/provision.mjs          check, and install what is missing
//   node scripts/provision.mjs --check  check only (exit 1 listing what is missing)
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

/** Each need: how to tell it is there, and the Debian package that brings it. */
const NEEDS = [
  { what: "a C++ compiler", there: () => has("g++"), pkg: "g++" },
  { what: "make", there: () => has("make"), pkg: "make" },
  { what: "the system Python (the code sandbox runs it)", there: () => existsSync("/usr/bin/python3"), pkg: "python3" },
  { what: "bubblewrap (the code sandbox's isolation)", there: () => has("bwrap"), pkg: "bubblewrap" },
  { what: "prlimit and unshare (util-linux)", there: () => has("prlimit") && has("unshare"), pkg: "util-linux" },
  { what: "tmux (the terminal tests)", there: () => has("tmux"), pkg: "tmux" },
  {
    what: "Debian's chromium (the desktop renderer's tests)",
    there: () => existsSync(process.env.FASTCOT_CHROMIUM ?? "/usr/bin/chromium"),
    pkg: "chromium"
  },
  {
    what: "the PostgreSQL server (the PostgreSQL store's tests)",
    there: () => postgresBin() !== undefined,
    pkg: "postgresql"
  }
]

/** The folder with initdb and pg_ctl: on PATH, or Debian's versioned folder. */
function postgresBin() {
  if (has("initdb") && has("pg_ctl")) return ""
  return ["17", "16", "15", "14", "13"]
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((d) => existsSync(`${d}/initdb`))
}

function has(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0
}

const missing = NEEDS.filter((n) => !n.there())
if (missing.length === 0) process.exit(0)
const packages = [...new Set(missing.map((n) => n.pkg))]
const command = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(" ")}`
const list = missing.map((n) => `  - ${n.what}`).join("\n")
const root = typeof process.getuid === "function" && process.getuid() === 0
const apt = has("apt-get")
if (process.argv.includes("--check") || !root || !apt) {
  process.stderr.write(
    `The tests need what this machine lacks:\n${list}\n` +
      (apt
        ? `Install it with:\n  ${root ? "" : "sudo "}${command}\nthen run the tests again.\n`
        : `Install these packages with the system's package manager: ${packages.join(", ")}.\n`)
  )
  process.exit(1)
}
process.stderr.write(`Installing what the tests need:\n${list}\n$ ${command}\n`)
const run = spawnSync("sh", ["-c", command], {
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
})
if (run.status !== 0) {
  process.stderr.write(`Installing failed (exit ${run.status}); run it by hand:\n  ${command}\n`)
  process.exit(1)
}
const still = NEEDS.filter((n) => !n.there())
if (still.length > 0) {
  process.stderr.write(`Still missing after installing:\n${still.map((n) => `  - ${n.what}`).join("\n")}\n`)
  process.exit(1)
}
