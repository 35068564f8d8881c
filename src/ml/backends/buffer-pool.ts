// Recycles the float32 buffers of disposed intermediate tensors. On these machines a fresh 4 MB
// buffer costs ~20 ms of page faults on first write (the kernel itself ~0.3 ms), so a training step
// spent most of its time faulting in new memory. A buffer goes back to the pool only when nothing
// outside the backend can still see it: never read by user code (dataSync/data hand out the array
// itself), and never aliased by another tensor (cpu kernels such as Split return subarray views).
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly owned = new WeakSet<ArrayBufferLike>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** A Float32Array of length n with unspecified contents. */
  take(n: number): Float32Array {
    const list = this.free.get(n);
    const got = list?.pop();
    if (got) {
      this.bytes -= got.byteLength;
      this.owned.add(got.buffer);
      return got;
    }
    const a = new Float32Array(n);
    this.owned.add(a.buffer);
    return a;
  }

  /** The array is (or may be) visible outside the backend: never recycle it. */
  expose(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.owned.delete(values.buffer);
  }

  /** Called when a tensor's data is deleted. */
  give(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.owned.has(values.buffer)) return;
    if (values.byteOffset !== 0 || values.byteLength !== values.buffer.byteLength) return;
    if (this.bytes + values.byteLength > this.maxBytes) return;
    this.owned.delete(values.buffer);
    let list = this.free.get(values.length);
    if (!list) this.free.set(values.length, (list = []));
    list.push(values);
    this.bytes += values.byteLength;
  }

  get pooledBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}
