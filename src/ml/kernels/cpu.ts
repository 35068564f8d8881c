// A scatter-add UnsortedSegmentSum for the cpu backend: the stock kernel builds a mask per segment
// and so loops over the whole vocabulary for every embedding gradient.
import * as tf from '@tensorflow/tfjs';

interface CpuBackend {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as CpuBackend;
  const x = args.inputs.x!;
  const seg = args.inputs.segmentIds!;
  const numSegments = args.attrs!.numSegments as number;
  const innerShape = x.shape.slice(seg.shape.length);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const xv = backend.data.get(x.dataId).values;
  const sv = backend.data.get(seg.dataId).values;
  const o = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let r = 0; r < sv.length; r++) {
    const s = sv[r]!;
    if (s < 0 || s >= numSegments) continue;
    const ob = s * inner;
    const xb = r * inner;
    for (let j = 0; j < inner; j++) o[ob + j] = o[ob + j]! + xv[xb + j]!;
  }
  return backend.makeTensorInfo([numSegments, ...innerShape], x.dtype, o);
}

let registered = false;

export function registerCpuKernels(): string[] {
  if (!registered) {
    if (tf.getKernel('UnsortedSegmentSum', 'cpu')) tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
    registered = true;
  }
  return ['UnsortedSegmentSum'];
}
