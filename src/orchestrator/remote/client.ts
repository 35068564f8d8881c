// HTTP client of the coordinator API (src/server/routes/coordinator.ts) for a worker on another
// host. Network failures (a refused connection, a cut link, a coordinator restarting) are retried
// with backoff until `retryMs` has passed; each request has its own timeout, because a cut link
// does not fail a TCP connection, it just never answers.
import { AlignflowError, type ErrorKind } from '../../errors.js';

export const COORD_PREFIX = '/api/coord/v1';

export interface ClientOptions {
  /** Give up on a request after retrying network failures this long (ALIGNFLOW_COORD_RETRY_MS, default 120 s). */
  retryMs?: number;
  /** One request's timeout (ALIGNFLOW_COORD_TIMEOUT_MS, default 15 s; blob transfers get 4×). */
  timeoutMs?: number;
}

/** A coordinator's answer that is not 2xx: the status and its JSON body. */
export class CoordinatorError extends AlignflowError {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    what: string,
  ) {
    super(kindFor(status, body), `coordinator: ${what} → ${status} ${String(body.message ?? body.error ?? '')}`.trim());
  }
}

function kindFor(status: number, body: Record<string, unknown>): ErrorKind {
  if (status === 422 || body.error === 'integrity') return 'integrity';
  if (status === 404) return 'not_found';
  if (status === 400) return 'input';
  if (status >= 500) return 'transient';
  return 'internal';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CoordinatorClient {
  readonly base: string;
  readonly retryMs: number;
  readonly timeoutMs: number;
  constructor(
    url: string,
    readonly token: string,
    /** This worker process's name (the coordinator records "<token user>/<worker>"). */
    readonly worker: string,
    opts: ClientOptions = {},
  ) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new AlignflowError('usage', `--coordinator "${url}" is not a URL (e.g. https://coordinator.example:8765)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AlignflowError('usage', `--coordinator must be an http:// or https:// URL, got "${url}"`);
    this.base = u.origin + u.pathname.replace(/\/$/, '');
    this.retryMs = opts.retryMs ?? Number(process.env.ALIGNFLOW_COORD_RETRY_MS ?? 120_000);
    this.timeoutMs = opts.timeoutMs ?? Number(process.env.ALIGNFLOW_COORD_TIMEOUT_MS ?? 15_000);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, 'alignflow-worker': this.worker, ...extra };
  }

  /**
   * One request, retried on network failures and 502/503/504 until retryMs. `accept` lists
   * non-2xx statuses the caller handles itself (returned, not thrown).
   */
  async send(method: string, path: string, o: { json?: unknown; body?: Uint8Array; headers?: Record<string, string>; accept?: number[]; timeoutMs?: number; retryMs?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const deadline = Date.now() + (o.retryMs ?? this.retryMs);
    let delay = 250;
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined;
      let failure: unknown;
      try {
        const headers = this.headers(o.headers);
        let body: BodyInit | undefined;
        if (o.json !== undefined) {
          headers['content-type'] = 'application/json';
          body = JSON.stringify(o.json);
        } else if (o.body) {
          headers['content-type'] = 'application/octet-stream';
          body = o.body as unknown as BodyInit;
        }
        const timeout = AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs);
        res = await fetch(this.base + COORD_PREFIX + path, { method, headers, ...(body !== undefined ? { body } : {}), signal: o.signal ? AbortSignal.any([timeout, o.signal]) : timeout });
      } catch (err) {
        if (o.signal?.aborted) throw err;
        failure = err;
      }
      if (res && (res.ok || o.accept?.includes(res.status))) return res;
      if (res && ![502, 503, 504].includes(res.status)) {
        const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
        throw new CoordinatorError(res.status, body, `${method} ${path}`);
      }
      if (res) await res.body?.cancel().catch(() => undefined);
      if (Date.now() + delay > deadline) {
        const why = failure ? `${(failure as Error).message}${(failure as { cause?: Error }).cause ? ` (${(failure as { cause: Error }).cause.message})` : ''}` : `status ${res!.status}`;
        throw new AlignflowError('transient', `coordinator ${this.base} unreachable for ${method} ${path} after ${attempt} attempt(s): ${why}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  async json<T>(method: string, path: string, json?: unknown, o: { retryMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.send(method, path, { ...(json !== undefined ? { json } : {}), ...o });
    return (await res.json()) as T;
  }
}
