export { fastcot, runCli, VERSION } from "./main.js"
