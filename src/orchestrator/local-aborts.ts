// Stages running in THIS process, by id, so a cancel issued in the same process (the CLI's
// Ctrl-C, the server's cancel endpoint) aborts at once instead of at the next heartbeat poll.
const controllers = new Map<string, AbortController>();

export function trackLocal(stageId: string, c: AbortController): () => void {
  controllers.set(stageId, c);
  return () => {
    if (controllers.get(stageId) === c) controllers.delete(stageId);
  };
}

export function abortLocal(stageIds: string[], reason = 'stage cancelled'): void {
  for (const id of stageIds) controllers.get(id)?.abort(new Error(reason));
}
