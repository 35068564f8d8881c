import path from 'node:path';

/** Where alignflow keeps its database and blobs: $ALIGNFLOW_HOME, default ./.alignflow. */
export function alignflowHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.ALIGNFLOW_HOME ?? '.alignflow');
}

export function databasePath(home = alignflowHome()): string {
  return path.join(home, 'alignflow.db');
}

export function blobsDir(home = alignflowHome()): string {
  return path.join(home, 'blobs');
}

/** Scratch space on the same filesystem as the blobs, so renames into the store are atomic. */
export function tmpDir(home = alignflowHome()): string {
  return path.join(home, 'tmp');
}
