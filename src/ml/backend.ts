// Picks the fastest tfjs backend this machine can run, once per process:
// tensorflow (tfjs-node-gpu, CUDA) → tensorflow (tfjs-node, CPU) → native (our C++ addon, BLAS) →
// wasm (+ our kernels) → cpu.
// Every module imports tfjs as `import * as tf from '@tensorflow/tfjs'`; tfjs-node depends on the same
// @tensorflow/tfjs(-core) and registers its 'tensorflow' backend into that core's registry on import, so
// our `tf` sees it as long as npm deduplicated tfjs-core (we check and say so if it did not).
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../errors.js';
import { registerWasmKernels, registerCpuKernels } from './kernels/index.js';
import { registerNativeBackend } from './backends/native.js';
import { loadNativeAddon, NATIVE_FIX } from './backends/native-addon.js';

export type BackendName = 'node-gpu' | 'node' | 'native' | 'wasm' | 'cpu';

export interface BackendCandidate {
  name: BackendName;
  /** The tfjs backend name it registers ('tensorflow' for both node packages). */
  tfName: string;
  available: boolean;
  reason?: string;
}

export interface BackendInfo {
  /** Our name of the active backend. */
  name: BackendName;
  /** tf.getBackend() */
  tfBackend: string;
  forced: boolean;
  candidates: BackendCandidate[];
  customKernels: string[];
}

const ORDER: { name: BackendName; tfName: string }[] = [
  { name: 'node-gpu', tfName: 'tensorflow' },
  { name: 'node', tfName: 'tensorflow' },
  { name: 'native', tfName: 'native' },
  { name: 'wasm', tfName: 'wasm' },
  { name: 'cpu', tfName: 'cpu' },
];

/** ALIGNFLOW_BACKEND values and what they mean. */
const FORCE_ALIASES: Record<string, BackendName[]> = {
  tensorflow: ['node-gpu', 'node'],
  'node-gpu': ['node-gpu'],
  gpu: ['node-gpu'],
  node: ['node'],
  native: ['native'],
  wasm: ['wasm'],
  cpu: ['cpu'],
};

let active: Promise<BackendInfo> | undefined;
const probed = new Map<BackendName, Promise<BackendCandidate>>();

function short(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 200);
}

async function importNode(pkg: string): Promise<string | undefined> {
  try {
    await import(pkg);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return `${pkg} is not installed (an optional dependency; its installer downloads libtensorflow, which failed or was skipped)`;
    }
    return `${pkg} failed to load: ${short(e)}`;
  }
  if (!tf.findBackendFactory('tensorflow')) {
    return `${pkg} loaded but registered its backend into a different copy of @tensorflow/tfjs-core (run npm dedupe)`;
  }
  return undefined;
}

function probe(name: BackendName): Promise<BackendCandidate> {
  let p = probed.get(name);
  if (!p) {
    p = (async (): Promise<BackendCandidate> => {
      const tfName = ORDER.find((o) => o.name === name)!.tfName;
      let reason: string | undefined;
      if (name === 'node-gpu') {
        reason = await importNode('@tensorflow/tfjs-node-gpu');
      } else if (name === 'node') {
        reason = await importNode('@tensorflow/tfjs-node');
      } else if (name === 'native') {
        const r = registerNativeBackend();
        if ('reason' in r) reason = r.reason;
      } else if (name === 'wasm') {
        try {
          await import('@tensorflow/tfjs-backend-wasm');
          if (!tf.findBackendFactory('wasm')) reason = 'tfjs-backend-wasm did not register a backend with our tfjs-core';
        } catch (e) {
          reason = `@tensorflow/tfjs-backend-wasm failed to load: ${short(e)}`;
        }
      }
      return reason ? { name, tfName, available: false, reason } : { name, tfName, available: true };
    })();
    probed.set(name, p);
  }
  return p;
}

async function activate(c: BackendCandidate): Promise<string | undefined> {
  let custom: string[] = [];
  if (c.name === 'wasm') custom = registerWasmKernels(); // before setBackend: kernel setup runs at init
  if (c.name === 'cpu') custom = registerCpuKernels();
  if (c.name === 'native') {
    const r = registerNativeBackend();
    custom = 'kernels' in r ? r.kernels : [];
  }
  try {
    const ok = await tf.setBackend(c.tfName);
    if (!ok) return `tf.setBackend('${c.tfName}') failed to initialise`;
    await tf.ready();
    // the cpu backend warns "install tfjs-node" on first use; doctor already says why it is not there
    if (c.name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  } catch (e) {
    return `tf.setBackend('${c.tfName}') threw: ${short(e)}`;
  }
  activeKernels = custom;
  return undefined;
}
let activeKernels: string[] = [];

async function choose(): Promise<BackendInfo> {
  const forcedRaw = process.env.ALIGNFLOW_BACKEND?.trim().toLowerCase();
  let wanted: BackendName[] = ORDER.map((o) => o.name);
  if (forcedRaw) {
    const w = FORCE_ALIASES[forcedRaw];
    if (!w) {
      throw new AlignflowError('config', `ALIGNFLOW_BACKEND="${forcedRaw}" is not a backend; use one of ${Object.keys(FORCE_ALIASES).join(', ')}`);
    }
    wanted = w;
  }
  const candidates: BackendCandidate[] = [];
  for (const o of ORDER) {
    // node and node-gpu register the same 'tensorflow' name: once one loaded, the other is moot
    if (o.name === 'node' && candidates.some((c) => c.name === 'node-gpu' && c.available)) {
      candidates.push({ name: 'node', tfName: 'tensorflow', available: false, reason: 'superseded by tfjs-node-gpu' });
      continue;
    }
    candidates.push({ ...(await probe(o.name)) });
  }
  for (const c of candidates) {
    if (!wanted.includes(c.name) || !c.available) continue;
    const err = await activate(c);
    if (err) {
      c.available = false;
      c.reason = err;
      continue;
    }
    return { name: c.name, tfBackend: tf.getBackend(), forced: !!forcedRaw, candidates, customKernels: activeKernels };
  }
  const why = candidates.filter((c) => wanted.includes(c.name)).map((c) => `${c.name}: ${c.reason}`).join('; ');
  throw new AlignflowError('config', forcedRaw ? `ALIGNFLOW_BACKEND=${forcedRaw} is not available (${why})` : `no tfjs backend could start (${why})`);
}

/** Chooses and activates the backend (idempotent: later calls return the same answer). */
export function initBackend(): Promise<BackendInfo> {
  active ??= choose().catch((e) => {
    active = undefined;
    throw e;
  });
  return active;
}

/**
 * Switches to a named backend after the default choice (tests and benchmarks compare backends in one
 * process). Throws with the reason when that backend cannot start.
 */
export async function useBackend(name: BackendName): Promise<BackendInfo> {
  const info = await initBackend();
  if (tf.getBackend() === ORDER.find((o) => o.name === name)!.tfName && info.name === name) return info;
  const c = { ...(await probe(name)) };
  if (!c.available) throw new AlignflowError('config', `backend ${name} is not available (${c.reason})`);
  const err = await activate(c);
  if (err) throw new AlignflowError('config', `backend ${name} failed to start (${err})`);
  return { ...info, name, tfBackend: tf.getBackend(), customKernels: activeKernels };
}

/** Why `name` cannot run here, or undefined when it can (without switching to it). */
export async function backendUnavailable(name: BackendName): Promise<string | undefined> {
  const c = await probe(name);
  return c.available ? undefined : c.reason;
}

/** For `alignflow doctor`: the active backend and why each better one is not in use. */
export async function describeBackends(): Promise<{
  active: string;
  candidates: { name: string; available: boolean; reason?: string }[];
  /** When native is active: its thread count and BLAS. */
  native?: { threads: number; blas: string; matmul: string };
  /** When native is not available: the one command that enables it. */
  enableNative?: string;
}> {
  const info = await initBackend();
  const nativeCandidate = info.candidates.find((c) => c.name === 'native');
  const addon = info.name === 'native' ? loadNativeAddon().addon : undefined;
  return {
    active: info.name,
    ...(addon ? { native: { threads: addon.info().threads, blas: addon.info().blas, matmul: addon.info().matmul } } : {}),
    ...(nativeCandidate && !nativeCandidate.available ? { enableNative: NATIVE_FIX } : {}),
    candidates: info.candidates.map((c) => ({
      name: c.name,
      available: c.available,
      ...(c.reason ? { reason: c.reason } : c.name === info.name ? {} : { reason: ORDER.findIndex((o) => o.name === c.name) < ORDER.findIndex((o) => o.name === info.name) ? 'available but not chosen (ALIGNFLOW_BACKEND)' : 'available; a faster backend is active' }),
    })),
  };
}
