// How often a running stage beats its heartbeat, and when a silent one is presumed dead. Its own
// module so that run-level commands (resume) can judge staleness without loading the executor.
export const timing = {
  heartbeatMs: Number(process.env.ALIGNFLOW_HEARTBEAT_MS ?? 1000),
  /** A running stage whose heartbeat is older than this is presumed dead and may be taken over. */
  staleMs: Number(process.env.ALIGNFLOW_STALE_MS ?? 15000),
};
