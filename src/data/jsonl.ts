// A streaming JSONL line reader: bytes in, numbered lines out, never the whole file in memory.
// Splits on LF, strips a trailing CR (CRLF files) and a UTF-8 BOM on the first line, decodes each
// line strictly (invalid UTF-8 is reported for that line, not replaced with U+FFFD).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { AlignflowError, inputError, notFound } from '../errors.js';

export type JsonlLine =
  | { line: number; text: string; error?: undefined }
  | { line: number; text?: undefined; error: string };

/**
 * The longest JSONL line accepted by default. A line is held whole while it is parsed, at about 8×
 * its size (a 50 MB line took ~400 MB, issue 12), so the default stays well below what a record needs;
 * `datasets import --max-line-bytes` raises it for an unusual file.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 << 20;

const tooLongReason = (max: number) => `line is longer than ${max} bytes (the limit; raise it with --max-line-bytes)`;

/**
 * Lines of a byte stream, 1-based. Blank lines (empty or whitespace only) are yielded too, so
 * callers decide; a final line without a newline is yielded; a file ending in a newline has no
 * extra empty line after it. A line longer than `maxLineBytes` is reported as an error and its
 * bytes are dropped as they arrive (so one huge line cannot exhaust memory).
 */
export async function* readLines(chunks: AsyncIterable<Uint8Array>, opts: { maxLineBytes?: number } = {}): AsyncGenerator<JsonlLine> {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // ignoreBOM: keep U+FEFF in the output; only the BOM at the very start of the file is stripped.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let lineNo = 1;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let tooLong = false;

  const finish = (last: Buffer): JsonlLine => {
    const n = lineNo++;
    if (tooLong) {
      tooLong = false;
      parts = [];
      partBytes = 0;
      return { line: n, error: tooLongReason(max) };
    }
    let bytes = parts.length === 0 ? last : Buffer.concat([...parts, last]);
    parts = [];
    partBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (n === 1 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    if (bytes.length > max) return { line: n, error: tooLongReason(max) };
    try {
      return { line: n, text: decoder.decode(bytes) };
    } catch {
      return { line: n, error: 'not valid UTF-8' };
    }
  };

  for await (const raw of chunks) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, pos);
      if (nl === -1) {
        const rest = chunk.subarray(pos);
        if (rest.length > 0 && !tooLong) {
          partBytes += rest.length;
          // +1 allows for a CR that belongs to a CRLF ending
          if (partBytes > max + 1) {
            tooLong = true;
            parts = [];
          } else parts.push(Buffer.from(rest)); // copy: the stream may reuse its chunk
        }
        break;
      }
      yield finish(chunk.subarray(pos, nl));
      pos = nl + 1;
    }
  }
  if (tooLong || partBytes > 0) yield finish(Buffer.alloc(0));
}

/**
 * The chunks of a file, streamed. A missing path is a 'not_found' error and a directory an
 * 'input' error, raised before the first chunk.
 */
export async function fileChunks(file: string): Promise<AsyncIterable<Buffer>> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`file ${file} does not exist`);
    throw new AlignflowError('input', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw inputError(`${file} is not a regular file`);
  return fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
}
