// Kernels we register for the wasm backend (see docs/engine-models.md, "Backends"):
// - UnsortedSegmentSum: missing from tfjs-backend-wasm; it is the gradient of gather (the embedding).
// - BatchMatMul: the stock kernel reaches XNNPACK only for a single 2-D product without transpose
//   flags; everything else (every matmul gradient, every attention product) runs a naive loop at
//   1-2 GFLOP/s. Ours transposes explicitly (wasm Transpose kernel) and issues one 2-D, no-transpose
//   XNNPACK product per batch, addressing each batch slice in place through a temporary tensor id.
import * as tf from '@tensorflow/tfjs';
import { planBatchMatMul } from './matmul-shape.js';

// The parts of BackendWasm we use (its class is not exported in a typed way we can import cheaply).
interface WasmModule {
  cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
  tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
}
interface WasmBackend {
  wasm: WasmModule;
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const seg = args.inputs.segmentIds!;
  const numSegments = args.attrs!.numSegments as number;
  const inner = size(x.shape.slice(seg.shape.length));
  const out = backend.makeOutput([numSegments, ...x.shape.slice(seg.shape.length)], x.dtype);
  // views only after makeOutput: allocating can grow the heap and detach older views
  const o = backend.typedArrayFromHeap(out);
  const xv = backend.typedArrayFromHeap(x);
  const sv = backend.typedArrayFromHeap(seg);
  o.fill(0);
  for (let r = 0; r < sv.length; r++) {
    const s = sv[r]!;
    if (s < 0 || s >= numSegments) continue; // TF drops out-of-range ids
    const ob = s * inner;
    const xb = r * inner;
    for (let j = 0; j < inner; j++) o[ob + j] = o[ob + j]! + xv[xb + j]!;
  }
  return out;
}

let wasmMatMul: ((...a: unknown[]) => void) | undefined;
let wasmMatMulOwner: unknown;

function transposeLast2(backend: WasmBackend, t: tf.TensorInfo, batch: number, r: number, c: number): tf.TensorInfo {
  const k = tf.getKernel('Transpose', 'wasm')!;
  return k.kernelFunc({
    inputs: { x: { dataId: t.dataId, shape: [batch, r, c], dtype: t.dtype } },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { perm: [0, 2, 1] },
  }) as tf.TensorInfo;
}

function makeBatchMatMul(stock: tf.KernelConfig | undefined) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const a = args.inputs.a!;
    const b = args.inputs.b!;
    const tA = !!args.attrs!.transposeA;
    const tB = !!args.attrs!.transposeB;
    const plan = a.dtype === 'float32' && b.dtype === 'float32' ? planBatchMatMul(a.shape, b.shape, tA, tB) : undefined;
    if (!plan) {
      if (!stock) throw new Error('BatchMatMul: unsupported broadcast');
      return stock.kernelFunc(args as never) as tf.TensorInfo;
    }
    const { M, N, K, batch, batchA: bA, batchB: bB } = plan;
    if (wasmMatMulOwner !== backend) {
      wasmMatMul = backend.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
      wasmMatMulOwner = backend;
    }
    const temps: tf.TensorInfo[] = [];
    const aa = tA ? transposeLast2(backend, a, bA, K, M) : a;
    const bb = tB ? transposeLast2(backend, b, bB, N, K) : b;
    if (tA) temps.push(aa);
    if (tB) temps.push(bb);
    const out = backend.makeOutput(plan.outShape, 'float32');
    const aOff = backend.dataIdMap.get(aa.dataId).memoryOffset;
    const bOff = backend.dataIdMap.get(bb.dataId).memoryOffset;
    const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
    const aShape = new Uint8Array(new Int32Array([1, M, K]).buffer);
    const bShape = new Uint8Array(new Int32Array([1, K, N]).buffer);
    const tfjs = backend.wasm.tfjs;
    if (M * N > 0 && K === 0) backend.typedArrayFromHeap(out).fill(0); // empty inner dim: the product is zeros
    else if (M * N > 0) {
      for (let i = 0; i < batch; i++) {
        // temporary ids aliasing slice i: registerTensor/disposeData only map an id to memory
        // (wasm dispose_data erases the entry and runs XNNPACK cache callbacks; it frees nothing)
        const ia = backend.dataIdNextNumber++;
        const ib = backend.dataIdNextNumber++;
        const io = backend.dataIdNextNumber++;
        tfjs.registerTensor(ia, M * K, aOff + (bA === 1 ? 0 : i * M * K * 4));
        tfjs.registerTensor(ib, K * N, bOff + (bB === 1 ? 0 : i * K * N * 4));
        tfjs.registerTensor(io, M * N, oOff + i * M * N * 4);
        wasmMatMul!(ia, aShape, 3, ib, bShape, 3, 0, 0, io);
        tfjs.disposeData(ia);
        tfjs.disposeData(ib);
        tfjs.disposeData(io);
      }
    }
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

let registered = false;

/** Registers our wasm kernels (call before tf.setBackend('wasm')). Returns their names. */
export function registerWasmKernels(): string[] {
  if (!registered) {
    const stock = tf.getKernel('BatchMatMul', 'wasm');
    if (stock) tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({
      kernelName: 'BatchMatMul',
      backendName: 'wasm',
      setupFunc: stock?.setupFunc, // keeps the stock kernel usable as our fallback
      kernelFunc: makeBatchMatMul(stock) as unknown as tf.KernelFunc,
    });
    if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
      tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
    }
    registered = true;
  }
  return ['BatchMatMul', 'UnsortedSegmentSum'];
}
