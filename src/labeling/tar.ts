// A minimal POSIX ustar archive (IEEE Std 1003.1-1988 "ustar" header, 512-byte blocks) of regular
// files, enough to hand a dataset folder to a browser in one download that `tar -xf` unpacks on
// every platform (Windows 10+ ships tar). No dependency: the format is a header block per file,
// the data padded to 512 bytes, and two zero blocks at the end.

const BLOCK = 512;

function octal(n: number, width: number): string {
  // width − 1 octal digits and a NUL, as ustar readers expect.
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mtime: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new Error(`tar: path "${name}" is longer than 100 bytes`);
  nameBytes.copy(h, 0);
  h.write(octal(type === '5' ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** A tar archive holding `files` (name → content) inside the folder `dir`. */
export function tarFolder(dir: string, files: Record<string, string | Buffer>, mtime = Date.now()): Buffer {
  const parts: Buffer[] = [header(`${dir}/`, 0, mtime, '5')];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    parts.push(header(`${dir}/${name}`, data.length, mtime, '0'), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK, 0));
  }
  parts.push(Buffer.alloc(2 * BLOCK, 0));
  return Buffer.concat(parts);
}

/** The regular files of a ustar archive (name → content); checks each header's checksum. */
export function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const field = (start: number, len: number) => h.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '').trim();
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (parseInt(field(148, 8), 8) !== sum) throw new Error(`tar: bad header checksum at offset ${off}`);
    const size = parseInt(field(124, 12), 8);
    const type = field(156, 1) || '0';
    off += BLOCK;
    if (type === '0') out.set(field(0, 100), Buffer.from(buf.subarray(off, off + size)));
    off += Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
