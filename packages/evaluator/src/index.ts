export * from "./sandbox.js"
export * from "./codeTests.js"
export * from "./verifier.js"
