// Every error alignflow means to show a user is an AlignflowError: one clear sentence, a kind
// that decides the exit code and whether a queue may retry it.

export type ErrorKind =
  | 'usage' // bad CLI usage: exit 2
  | 'input' // invalid dataset / spec / request: exit 2, never retried
  | 'config' // a configuration that can never work (β ≤ 0, missing reference): never retried
  | 'not_found' // an id or path that does not exist: exit 2
  | 'integrity' // a corrupted blob or manifest
  | 'numeric' // NaN / Inf in loss or gradients
  | 'transient' // worth retrying (Redis hiccup, busy database)
  | 'cancelled'
  | 'internal';

export interface InputIssue {
  file?: string;
  line?: number;
  field?: string;
  reason: string;
}

export class AlignflowError extends Error {
  readonly kind: ErrorKind;
  readonly issues: InputIssue[];
  constructor(kind: ErrorKind, message: string, opts: { cause?: unknown; issues?: InputIssue[] } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AlignflowError';
    this.kind = kind;
    this.issues = opts.issues ?? [];
  }

  /** Errors that will fail the same way on every attempt. */
  get retryable(): boolean {
    return this.kind === 'transient' || this.kind === 'internal';
  }
}

export const usageError = (msg: string) => new AlignflowError('usage', msg);
export const inputError = (msg: string, issues: InputIssue[] = []) => new AlignflowError('input', msg, { issues });
export const configError = (msg: string) => new AlignflowError('config', msg);
export const notFound = (msg: string) => new AlignflowError('not_found', msg);

export function formatIssue(i: InputIssue): string {
  const where = [i.file, i.line !== undefined ? `line ${i.line}` : undefined, i.field ? `field "${i.field}"` : undefined]
    .filter(Boolean)
    .join(', ');
  return where ? `${where}: ${i.reason}` : i.reason;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof AlignflowError && ['usage', 'input', 'config', 'not_found'].includes(err.kind)) return 2;
  return 1;
}
