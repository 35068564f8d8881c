// The `native` tfjs backend: the tfjs cpu backend's tensor storage (plain TypedArrays in the JS
// heap, so memory is bounded by the machine, not by wasm's 4 GB) with the kernels that cost time
// replaced by C++ ones (OpenBLAS sgemm and threaded loops, src/ml/kernels/native.ts). Every other
// kernel is the cpu backend's own, registered again under this backend's name.
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, type NativeAddon } from './native-addon.js';
import { makeNativeKernels } from '../kernels/native.js';
import { BufferPool } from './buffer-pool.js';
import os from 'node:os';

export const NATIVE_BACKEND = 'native';

type Kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | tf.TensorInfo[];
interface CpuInternals {
  firstUse: boolean;
  data: { get(dataId: object): { values?: unknown } | undefined; has(dataId: object): boolean };
  readonly pool?: BufferPool;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
  dispose(): void;
}

/** Runs a cpu kernel and, when an output shares memory with an input (a subarray view or the same
 *  array), takes that input's buffer out of recycling. */
function guardAliases(fn: Kernel): Kernel {
  return (args) => {
    const out = fn(args);
    const backend = args.backend as CpuInternals;
    if (!backend.pool) return out;
    const outs = Array.isArray(out) ? out : [out];
    for (const x of Object.values(args.inputs)) {
      if (!x) continue;
      const xv = backend.data.get(x.dataId)?.values;
      if (!ArrayBuffer.isView(xv)) continue;
      for (const o of outs) {
        const ov = backend.data.get(o.dataId)?.values;
        if (ArrayBuffer.isView(ov) && ov.buffer === xv.buffer) {
          backend.pool.expose(xv);
          break;
        }
      }
    }
    return out;
  };
}

let registered: { kernels: string[]; addon: NativeAddon } | undefined;

/** Registers the backend and its kernels once; returns why not when the addon cannot load. */
export function registerNativeBackend(): { kernels: string[]; addon: NativeAddon } | { reason: string } {
  if (registered) return registered;
  const { addon, reason } = loadNativeAddon();
  if (!addon) return { reason: reason! };
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) return { reason: 'the tfjs cpu backend is not registered (its kernels are the native backend\'s fallback)' };
  // the cpu backend's class, from an instance its factory makes (tfjs-backend-cpu is not our direct dependency)
  const probe = cpuFactory() as tf.KernelBackend;
  const CpuBackend = probe.constructor as new () => tf.KernelBackend;
  probe.dispose();
  const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((c) => [c.kernelName, c]));
  const fallback = (name: string) => {
    const c = cpuKernels.get(name);
    if (!c) throw new Error(`native backend: no cpu kernel ${name} to fall back to`);
    return guardAliases(c.kernelFunc as unknown as Kernel);
  };
  const ours = makeNativeKernels(addon, fallback as never);
  for (const c of cpuKernels.values()) {
    if (ours[c.kernelName] || tf.getKernel(c.kernelName, NATIVE_BACKEND)) continue;
    tf.registerKernel({ ...c, backendName: NATIVE_BACKEND, kernelFunc: guardAliases(c.kernelFunc as unknown as Kernel) as unknown as tf.KernelFunc });
  }
  for (const [kernelName, fn] of Object.entries(ours)) {
    if (tf.getKernel(kernelName, NATIVE_BACKEND)) tf.unregisterKernel(kernelName, NATIVE_BACKEND);
    tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc: fn as unknown as tf.KernelFunc });
  }
  // recycled buffers are capped at an eighth of the machine's memory
  const poolBytes = Math.min(2 ** 31, Math.floor(os.totalmem() / 8));
  class NativeBackend extends (CpuBackend as unknown as new () => CpuInternals) {
    override readonly pool = new BufferPool(poolBytes);
    constructor() {
      super();
      // the cpu backend warns "install tfjs-node" on first use; not our situation
      this.firstUse = false;
    }
    override readSync(dataId: object): unknown {
      const v = super.readSync(dataId);
      this.pool.expose(this.data.get(dataId)?.values);
      return v;
    }
    override disposeData(dataId: object, force = false): boolean {
      const entry = this.data.get(dataId);
      const values = entry?.values;
      const deleted = super.disposeData(dataId, force);
      if (deleted && entry && !this.data.has(dataId)) this.pool.give(values);
      return deleted;
    }
    override dispose(): void {
      this.pool.clear();
      super.dispose();
    }
  }
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend() as unknown as tf.KernelBackend, 0);
  registered = { kernels: Object.keys(ours).sort(), addon };
  return registered;
}
