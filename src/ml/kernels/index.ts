export { registerWasmKernels } from './wasm.js';
export { registerCpuKernels } from './cpu.js';
