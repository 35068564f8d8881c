import { AlignflowError } from '../errors.js';

/**
 * A request that was understood but cannot be applied to the current state (batch closed,
 * assignment already submitted, lease lost). The server answers 409 with the message; nothing
 * was stored.
 */
export class ConflictError extends AlignflowError {
  readonly conflict = true;
  constructor(message: string) {
    super('input', message);
  }
}

/** The caller may not touch this object (another labeler's assignment). Server answers 403. */
export class ForbiddenError extends AlignflowError {
  readonly forbidden = true;
  constructor(message: string) {
    super('input', message);
  }
}
