import { randomBytes } from 'node:crypto';

// Ids never contain ':' so they can double as BullMQ job ids.
export function newRunId(): string {
  return `r-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export function stageIdFor(runId: string, stageName: string): string {
  return `${runId}-${stageName}`;
}
