// Loads the C++ addon (native/, built by scripts/build-native.mjs during npm install) and reports why
// it cannot when it cannot. The addon only computes into buffers we hand it; the backend that owns
// the tensors is src/ml/backends/native.ts.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  /** force: 0 BLAS for large products, 1 the in-order kernel for all, -1 (default) check BLAS. */
  setThreads(n: number, force?: number): void;
  info(): { threads: number; blas: string; hardwareThreads: number; matmul: string };
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batch: number, m: number, n: number, k: number, ta: boolean, tb: boolean, strideA: number, strideB: number): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: number[], stridesA: number[], stridesB: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array, n: number): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;
  reduce(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  reduceCols(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  transpose(x: Float32Array | Int32Array, out: Float32Array | Int32Array, shape: number[], perm: number[]): void;
  gather(x: Float32Array | Int32Array, indices: Int32Array, out: Float32Array | Int32Array, outer: number, dim: number, inner: number, nidx: number): void;
  boxCopy(src: Float32Array | Int32Array, srcShape: number[], srcBegin: number[], dst: Float32Array | Int32Array, dstShape: number[], dstBegin: number[], box: number[]): void;
  compare(op: number, a: Float32Array, b: Float32Array, out: Uint8Array, shape: number[], stridesA: number[], stridesB: number[]): void;
  segmentSum(x: Float32Array, segmentIds: Int32Array, out: Float32Array, rows: number, inner: number, nseg: number): void;
  // fused kernels (native/src/fused.cc)
  geluNew(x: Float32Array, out: Float32Array, n: number): void;
  geluNewGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void;
  layerNorm(x: Float32Array, g: Float32Array, b: Float32Array, out: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number): void;
  layerNormGrad(x: Float32Array, g: Float32Array, mean: Float32Array, rstd: Float32Array, dy: Float32Array, dx: Float32Array, dg: Float32Array, db: Float32Array, rows: number, cols: number): void;
  scaledMaskedSoftmax(x: Float32Array, bias: Float32Array, out: Float32Array, batch: number, heads: number, t: number, s: number, biasPerBatch: boolean, scale: number): void;
  softmaxGrad(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, cols: number, scale: number): void;
  tokenLogp(x: Float32Array, ids: Int32Array, out: Float32Array, stats: Float32Array, batch: number, t: number, v: number): void;
  tokenLogpGrad(x: Float32Array, ids: Int32Array, stats: Float32Array, dy: Float32Array, dx: Float32Array, batch: number, t: number, v: number): void;
  /** scalars: [decay 0|1, 1 − lr·λ, β1, 1 − β1, β2, 1 − β2, √(1 − β2^t), ε, lr / (1 − β1^t)] */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p1: Float32Array, m1: Float32Array, v1: Float32Array, n: number, scalars: number[]): void;
}

/** The one command that builds the addon where it is missing (Debian/Ubuntu). */
export const NATIVE_FIX = 'apt-get install g++ make python3 libopenblas-dev, then npm run build:native';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** ALIGNFLOW_NATIVE_ADDON points at another build (tests use it to simulate a missing addon). */
export const addonPath = process.env.ALIGNFLOW_NATIVE_ADDON ? path.resolve(process.env.ALIGNFLOW_NATIVE_ADDON) : path.join(repoRoot, 'native/build/Release/alignflow_native.node');
/** Written by scripts/build-native.mjs when the build fails: the first lines of why. */
export const buildErrorPath = path.join(repoRoot, 'native/build-error.txt');

let loaded: { addon?: NativeAddon; reason?: string } | undefined;

/** Thread count: ALIGNFLOW_THREADS, else every hardware thread. Fixed per process (results are
 *  bit-identical run to run for one count, not across counts). */
export function nativeThreads(hardware: number): number {
  const raw = process.env.ALIGNFLOW_THREADS?.trim();
  if (raw) {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`ALIGNFLOW_THREADS="${raw}" must be an integer from 1 to 256`);
    return n;
  }
  return Math.max(1, hardware);
}

// OpenBLAS 0.3.21 (Debian 12) does not recognise recent AVX-512 CPUs (Zen 4/5, Sapphire Rapids) and
// falls back to its Haswell (AVX2) kernels: measured 47 vs 135 GFLOP/s on this machine's 1024³
// product. Its SkylakeX kernels need AVX-512 F/BW/DQ/VL; ask for them when the CPU has those and the
// user did not choose. Must be set before the library loads (it reads the variable at load time).
function pickOpenblasCore(): void {
  if (process.env.OPENBLAS_CORETYPE || process.platform !== 'linux') return;
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1]?.split(/\s+/) ?? [];
    if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.includes(f))) process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  } catch {
    // no /proc: keep OpenBLAS's own choice
  }
}

export function loadNativeAddon(): { addon?: NativeAddon; reason?: string } {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    let why = 'the native addon is not built';
    if (existsSync(buildErrorPath) && !process.env.ALIGNFLOW_NATIVE_ADDON) why += ` (build failed: ${readFileSync(buildErrorPath, 'utf8').split('\n').find((l) => l.trim())?.slice(0, 200) ?? 'see native/build-error.txt'})`;
    loaded = { reason: `${why}; to enable it: ${NATIVE_FIX}` };
    return loaded;
  }
  try {
    pickOpenblasCore();
    const addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    // ALIGNFLOW_NATIVE_MATMUL=blas takes BLAS's speed even where its rows are not batch-invariant
    const mm = process.env.ALIGNFLOW_NATIVE_MATMUL?.trim().toLowerCase();
    if (mm && mm !== 'blas' && mm !== 'ordered') throw new Error(`ALIGNFLOW_NATIVE_MATMUL="${mm}" must be blas or ordered`);
    addon.setThreads(nativeThreads(addon.info().hardwareThreads), mm === 'blas' ? 0 : mm === 'ordered' ? 1 : -1);
    loaded = { addon };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);
    loaded = { reason: `the native addon failed to load: ${msg}; to rebuild it: ${NATIVE_FIX}` };
  }
  return loaded;
}
