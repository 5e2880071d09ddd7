/** The compiled resvg WebAssembly module (see resvg_wasm.js). */
declare const resvgWasm: WebAssembly.Module;
export default resvgWasm;
