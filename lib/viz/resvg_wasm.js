// The compiled resvg WebAssembly module from the @resvg/resvg-wasm npm package, loaded with a
// source-phase import so no file path is needed (works from file:// and https:// imports alike).
// Plain JS because TypeScript cannot parse `import source` yet; resvg_wasm.d.ts gives its type.
// Imported lazily by render.ts (compiling 2.5 MB of wasm is not free).
import source resvgWasm from "npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm";

export default resvgWasm;
