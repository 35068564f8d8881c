// The whole state of alignflow in one file. SQLite is the system of record: Redis (when used)
// only mirrors queue state and can be rebuilt from these rows.
//
// Conventions: ids are text (no ':' so they can double as BullMQ job ids), times are integer
// milliseconds since the epoch, JSON columns hold canonical JSON text.
import { sqliteTable, text, integer, real, primaryKey, index, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { artifactKinds, datasetKinds } from '../kinds.js';
export { artifactKinds, datasetKinds, type ArtifactKind, type DatasetKind } from '../kinds.js';

// ---------------------------------------------------------------- runs and stages

export const runs = sqliteTable('runs', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  specPath: text('spec_path'),
  spec: text('spec', { mode: 'json' }).notNull(), // the resolved, validated spec
  specHash: text('spec_hash').notNull(),
  status: text('status', { enum: ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] }).notNull(),
  executor: text('executor', { enum: ['inline', 'bullmq'] }).notNull(),
  pinned: integer('pinned', { mode: 'boolean' }).notNull().default(false),
  error: text('error'),
  createdAt: integer('created_at').notNull(),
  startedAt: integer('started_at'),
  finishedAt: integer('finished_at'),
}, (t) => [index('runs_status').on(t.status)]);

export const stageStates = ['pending', 'queued', 'running', 'waiting', 'succeeded', 'cached', 'failed', 'cancelled'] as const;
export type StageState = (typeof stageStates)[number];

export const stages = sqliteTable('stages', {
  id: text('id').primaryKey(),
  runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
  name: text('name').notNull(), // unique within a run: "sft", "dpo_beta02", ...
  kind: text('kind').notNull(), // sft | collect | label | reward | dpo | eval (and test kinds)
  config: text('config', { mode: 'json' }).notNull(),
  dependsOn: text('depends_on', { mode: 'json' }).$type<string[]>().notNull(),
  state: text('state', { enum: stageStates }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  cacheKey: text('cache_key'),
  cachedFromStageId: text('cached_from_stage_id'),
  progress: text('progress', { mode: 'json' }), // { step, total, message, loss, ... }
  worker: text('worker'), // who runs it now: "inline:<pid>" or the BullMQ worker id
  error: text('error'),
  errorKind: text('error_kind', { enum: ['config', 'input', 'transient', 'numeric', 'cancelled', 'internal'] }),
  queuedAt: integer('queued_at'),
  startedAt: integer('started_at'),
  finishedAt: integer('finished_at'),
}, (t) => [
  uniqueIndex('stages_run_name').on(t.runId, t.name),
  index('stages_cache_key').on(t.cacheKey, t.state),
]);

// Log lines of a run, for `alignflow runs logs`.
export const runEvents = sqliteTable('run_events', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').references(() => stages.id, { onDelete: 'cascade' }),
  level: text('level', { enum: ['debug', 'info', 'warn', 'error'] }).notNull(),
  message: text('message').notNull(),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('run_events_run').on(t.runId, t.id)]);

export const metrics = sqliteTable('metrics', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').notNull().references(() => stages.id, { onDelete: 'cascade' }),
  step: integer('step').notNull(),
  name: text('name').notNull(), // TRL names: loss, rewards/accuracies, eval_rewards/margins, ...
  value: real('value').notNull(),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('metrics_stage').on(t.stageId, t.name, t.step)]);

// ---------------------------------------------------------------- artifacts and lineage


// An artifact's id is derived from its content (kind + file digests + metadata), so the same
// content is one artifact however often it is produced.
export const artifacts = sqliteTable('artifacts', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: artifactKinds }).notNull(),
  name: text('name').notNull(),
  metadata: text('metadata', { mode: 'json' }).notNull(),
  sizeBytes: integer('size_bytes').notNull(),
  producerStageId: text('producer_stage_id').references(() => stages.id, { onDelete: 'set null' }),
  producerRunId: text('producer_run_id').references(() => runs.id, { onDelete: 'set null' }),
  pinned: integer('pinned', { mode: 'boolean' }).notNull().default(false),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('artifacts_kind').on(t.kind)]);

export const artifactFiles = sqliteTable('artifact_files', {
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'cascade' }),
  path: text('path').notNull(), // name inside the artifact: "config.json", "data.jsonl", ...
  sha256: text('sha256').notNull(),
  sizeBytes: integer('size_bytes').notNull(),
}, (t) => [primaryKey({ columns: [t.artifactId, t.path] }), index('artifact_files_sha').on(t.sha256)]);

// artifact ← input artifact (role says how it was used: "base_model", "train", "reference", ...)
export const lineageEdges = sqliteTable('lineage_edges', {
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'cascade' }),
  inputArtifactId: text('input_artifact_id').notNull().references(() => artifacts.id, { onDelete: 'restrict' }),
  role: text('role').notNull(),
}, (t) => [primaryKey({ columns: [t.artifactId, t.inputArtifactId, t.role] })]);

// artifact ← producing stage. One artifact may be produced (identically) by several stages.
export const stageOutputs = sqliteTable('stage_outputs', {
  stageId: text('stage_id').notNull().references(() => stages.id, { onDelete: 'cascade' }),
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'restrict' }),
  role: text('role').notNull(), // "model", "report", "ref_logprobs", ...
}, (t) => [primaryKey({ columns: [t.stageId, t.role] })]);

// Training checkpoints of a stage; the newest is where resume continues.
export const checkpoints = sqliteTable('checkpoints', {
  stageId: text('stage_id').notNull().references(() => stages.id, { onDelete: 'cascade' }),
  step: integer('step').notNull(),
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'restrict' }),
  evalLoss: real('eval_loss'),
  createdAt: integer('created_at').notNull(),
}, (t) => [primaryKey({ columns: [t.stageId, t.step] })]);


export const datasets = sqliteTable('datasets', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'restrict' }),
  kind: text('kind', { enum: datasetKinds }).notNull(),
  format: text('format').notNull(), // e.g. "prompt-completion", "messages", "explicit-prompt", "implicit-prompt"
  records: integer('records').notNull(),
  sourcePath: text('source_path'),
  createdAt: integer('created_at').notNull(),
}, (t) => [uniqueIndex('datasets_artifact').on(t.artifactId)]);

// ---------------------------------------------------------------- users

// worker: a BullMQ worker on another host, for the coordinator API only (src/server/routes/coordinator.ts).
export const roles = ['admin', 'labeler', 'viewer', 'worker'] as const;
export type Role = (typeof roles)[number];

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  role: text('role', { enum: roles }).notNull(),
  disabled: integer('disabled', { mode: 'boolean' }).notNull().default(false),
  createdAt: integer('created_at').notNull(),
});

export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull().unique(), // sha256 of the token; the token itself is shown once
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at'),
  revokedAt: integer('revoked_at'),
  expiresAt: integer('expires_at'), // null: never expires
});

// ---------------------------------------------------------------- preference collection and labeling

export const responses = sqliteTable('responses', {
  id: text('id').primaryKey(),
  runId: text('run_id').references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').references(() => stages.id, { onDelete: 'cascade' }),
  prompt: text('prompt').notNull(),
  text: text('text').notNull(),
  modelArtifactId: text('model_artifact_id'),
  sampling: text('sampling', { mode: 'json' }), // temperature, top_k, top_p, max_new_tokens
  seed: integer('seed'),
  score: real('score'), // set when a reward model or rule judge scored it
  createdAt: integer('created_at').notNull(),
});

export const labelBatches = sqliteTable('label_batches', {
  id: text('id').primaryKey(),
  runId: text('run_id').references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').references(() => stages.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  guidelines: text('guidelines').notNull().default(''),
  quota: integer('quota').notNull().default(1), // labels wanted per pair
  goldRate: real('gold_rate').notNull().default(0),
  leaseSeconds: integer('lease_seconds').notNull().default(600),
  // paused: no new assignments; leases already given out may still be submitted.
  status: text('status', { enum: ['open', 'paused', 'closed'] }).notNull().default('open'),
  /** Most labels one labeler may give in this batch; null: no limit. */
  labelerQuota: integer('labeler_quota'),
  /** Show labelers the pick of whatever scored the responses (judge, reward model) as a pre-annotation. */
  suggestions: integer('suggestions', { mode: 'boolean' }).notNull().default(false),
  /** pairwise: items are pairs (a vs b); ranking: items hold k answers that labelers rank. */
  kind: text('kind', { enum: ['pairwise', 'ranking'] }).notNull().default('pairwise'),
  /** ranking batches: how a ranking becomes preference pairs (src/labeling/ranking.ts). */
  pairRule: text('pair_rule', { enum: ['all', 'best_vs_rest'] }).notNull().default('all'),
  createdAt: integer('created_at').notNull(),
  closedAt: integer('closed_at'),
});

// Labelers assigned to a batch. A batch with no rows here is open to every labeler.
export const labelBatchMembers = sqliteTable('label_batch_members', {
  batchId: text('batch_id').notNull().references(() => labelBatches.id, { onDelete: 'cascade' }),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
}, (t) => [primaryKey({ columns: [t.batchId, t.userId] })]);

export const pairs = sqliteTable('pairs', {
  id: text('id').primaryKey(),
  batchId: text('batch_id').references(() => labelBatches.id, { onDelete: 'cascade' }),
  runId: text('run_id').references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').references(() => stages.id, { onDelete: 'cascade' }),
  prompt: text('prompt').notNull(),
  responseAId: text('response_a_id').notNull().references(() => responses.id, { onDelete: 'cascade' }),
  responseBId: text('response_b_id').notNull().references(() => responses.id, { onDelete: 'cascade' }),
  isGold: integer('is_gold', { mode: 'boolean' }).notNull().default(false),
  goldAnswer: text('gold_answer', { enum: ['a', 'b', 'tie'] }),
  /**
   * A gold ranking item: the known ranking, one dense rank per answer in item order (1 = best, equal
   * ranks tie). `gold_answer` then holds its first two answers compared.
   */
  goldRanking: text('gold_ranking', { mode: 'json' }).$type<number[]>(),
  labelCount: integer('label_count').notNull().default(0),
  /**
   * A ranking item: every answer's response id, in item order (response_a/b are the first two).
   * Null for a pair.
   */
  responseIds: text('response_ids', { mode: 'json' }).$type<string[]>(),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('pairs_batch').on(t.batchId, t.labelCount)]);

export const assignments = sqliteTable('assignments', {
  id: text('id').primaryKey(),
  pairId: text('pair_id').notNull().references(() => pairs.id, { onDelete: 'cascade' }),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  leftResponse: text('left_response', { enum: ['a', 'b'] }).notNull(), // randomized per assignment
  /** Ranking items: the answers' item indices in the order shown (a random permutation per assignment). */
  shownOrder: text('shown_order', { mode: 'json' }).$type<number[]>(),
  status: text('status', { enum: ['leased', 'submitted', 'skipped', 'expired'] }).notNull(),
  skipReason: text('skip_reason'),
  leasedAt: integer('leased_at').notNull(),
  leaseExpiresAt: integer('lease_expires_at').notNull(),
}, (t) => [
  index('assignments_pair').on(t.pairId, t.status),
  uniqueIndex('assignments_pair_user').on(t.pairId, t.userId), // a labeler never sees a pair twice
  index('assignments_user').on(t.userId, t.status), // a labeler's live lease, without scanning the batch
]);

export const labelDecisions = ['a', 'b', 'tie', 'both_bad'] as const;
export type LabelDecision = (typeof labelDecisions)[number];

export const labels = sqliteTable('labels', {
  id: text('id').primaryKey(),
  pairId: text('pair_id').notNull().references(() => pairs.id, { onDelete: 'cascade' }),
  assignmentId: text('assignment_id').references(() => assignments.id, { onDelete: 'set null' }),
  userId: text('user_id').references(() => users.id, { onDelete: 'set null' }),
  source: text('source').notNull(), // "user:<name>", "judge:<name>@<version>", "reward_model:<artifact>", "import:<file>"
  decision: text('decision', { enum: labelDecisions }).notNull(), // in terms of responses a/b, not screen sides
  strength: integer('strength'), // 1 slightly, 2 clearly, 3 much better
  rationale: text('rationale'),
  flags: text('flags', { mode: 'json' }).$type<string[]>(),
  shownLeft: text('shown_left', { enum: ['a', 'b'] }),
  suggested: text('suggested', { enum: ['a', 'b', 'tie'] }), // the pre-annotation shown with this pair, if any
  /**
   * Ranking items: one dense rank per answer in item order (1 = best, equal ranks tie). `decision`
   * then holds the item's first two answers compared (a/b/tie), so pairwise readers stay valid.
   */
  ranking: text('ranking', { mode: 'json' }).$type<number[]>(),
  /**
   * Ranking items in a batch with suggestions: the order the scores suggested (dense ranks in item
   * order, higher score better, equal scores tie), recomputed by the server when the label arrived.
   */
  suggestedRanking: text('suggested_ranking', { mode: 'json' }).$type<number[]>(),
  durationMs: integer('duration_ms'),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('labels_pair').on(t.pairId)]);

// ---------------------------------------------------------------- reports

export const reports = sqliteTable('reports', {
  id: text('id').primaryKey(),
  runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
  stageId: text('stage_id').references(() => stages.id, { onDelete: 'cascade' }),
  artifactId: text('artifact_id').notNull().references(() => artifacts.id, { onDelete: 'restrict' }),
  summary: text('summary', { mode: 'json' }),
  createdAt: integer('created_at').notNull(),
});

export const signoffs = sqliteTable('signoffs', {
  id: text('id').primaryKey(),
  reportId: text('report_id').notNull().references(() => reports.id, { onDelete: 'cascade' }),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  decision: text('decision', { enum: ['approve', 'reject'] }).notNull(),
  comment: text('comment').notNull().default(''),
  createdAt: integer('created_at').notNull(),
});
