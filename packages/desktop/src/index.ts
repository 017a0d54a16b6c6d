export * from "./contract.js"
export * from "./backend.js"
export * from "./server.js"
