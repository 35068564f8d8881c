// Which files a pipeline spec may name as input, and where its relative paths point.
//
// Two rules, one function (checkInputPath):
//  - Nothing inside $ALIGNFLOW_HOME is ever opened as input, from the CLI or the API. Reading the
//    database file with an ordinary file handle and closing it drops every POSIX lock the process
//    holds on it; SQLite then deletes the -wal file under the live server and acknowledged writes
//    are lost (issue 12, item 1). Hard links to the database files are refused too.
//  - A spec submitted through the API (a restricted policy) may name files only inside the
//    directories the server was started with: data files under --data-dir, judge modules under
//    --judges-dir, both compared after realpath so a symlink cannot lead out. The refusal reads the
//    same whether or not the file exists, so the API cannot be used to probe the server's disk.
import fs from 'node:fs';
import path from 'node:path';
import { blobsDir, databasePath, tmpDir } from './paths.js';

/** What a named file is for: data (datasets, models, gold and label files) or code (judge modules). */
export type InputRole = 'data' | 'judge';

export interface InputPathPolicy {
  /** $ALIGNFLOW_HOME: alignflow's own state, never read as input. */
  home: string;
  /**
   * Present for specs from the API: the only directories files may come from. An empty list
   * means no file of that role may be named at all (artifact ids and dataset names still work).
   */
  restricted?: { dataDirs: readonly string[]; judgesDirs: readonly string[] };
}

/** Config fields (at any depth of a stage's config) that name a file. */
export const FILE_FIELDS: Readonly<Record<string, InputRole>> = { judge: 'judge', module: 'judge', file: 'data', gold_file: 'data' };
/** Config fields that name a directory that relative `module` paths below them resolve against. */
export const DIR_FIELDS: Readonly<Record<string, InputRole>> = { judges_dir: 'judge' };

const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/** realpath of `p`, or of its nearest existing ancestor joined with the rest (for files not made yet). */
export function realpathLoose(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return abs;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/** The directory relative paths of `role` resolve against, under a restricted policy. */
export function restrictedBase(policy: InputPathPolicy, role: InputRole): string | undefined {
  const dirs = role === 'judge' ? policy.restricted?.judgesDirs : policy.restricted?.dataDirs;
  return dirs?.[0];
}

/**
 * Why `file` (absolute) may not be opened as input under `policy`, or undefined when it may.
 * The sentence names the path as the spec gave it and never whether it exists.
 */
export function checkInputPath(file: string, role: InputRole, policy: InputPathPolicy, shown = file): string | undefined {
  const real = realpathLoose(file);
  if (policy.restricted) {
    const dirs = (role === 'judge' ? policy.restricted.judgesDirs : policy.restricted.dataDirs).map(realpathLoose);
    const flag = role === 'judge' ? '--judges-dir' : '--data-dir';
    if (!dirs.some((d) => within(real, d))) {
      return dirs.length === 0
        ? `${shown}: this server was started without ${flag}, so a spec sent through the API may not name ${role === 'judge' ? 'judge modules' : 'files'}${role === 'data' ? ' (name datasets by artifact id or registered name)' : ''}`
        : `${shown} is outside the directories this server reads from (${flag}); name it relative to that directory`;
    }
  }
  const home = realpathLoose(policy.home);
  if (within(real, home) || isDatabaseLink(real, policy.home)) return homeReason(shown, policy.home);
  return undefined;
}

const homeReason = (shown: string, home: string) =>
  `${shown} is inside ALIGNFLOW_HOME (${home}), alignflow's own state, which is never read as input; copy the file elsewhere or name an artifact`;

/**
 * Why `file` may not be read by an importer because it is alignflow's live state (the database and
 * its -wal/-shm files, or a hard link to them, the blobs, the scratch folder), or undefined. The
 * importers' last line of defence; specs are held to the stricter checkInputPath (all of the home).
 */
export function stateFileReason(file: string, home: string): string | undefined {
  const real = realpathLoose(file);
  const db = databasePath(home);
  const state = [db, `${db}-wal`, `${db}-shm`, `${db}-journal`].map(realpathLoose);
  const dirs = [blobsDir(home), tmpDir(home)].map(realpathLoose);
  if (state.includes(real) || dirs.some((d) => within(real, d)) || isDatabaseLink(real, home)) return homeReason(file, home);
  return undefined;
}

/** True when `file` is a hard link to the database or its -wal/-shm files. */
function isDatabaseLink(file: string, home: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if (st.nlink < 2) return false;
  const db = databasePath(home);
  return [db, `${db}-wal`, `${db}-shm`].some((f) => {
    try {
      const d = fs.statSync(f);
      return d.ino === st.ino && d.dev === st.dev;
    } catch {
      return false;
    }
  });
}

