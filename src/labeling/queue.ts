// The labeling queue: leases, submissions, skips and undo. Every read-then-write runs in one
// immediate transaction, so concurrent labelers (threads, processes) see a serial order.
//
// Invariants:
//  - an assignment row belongs to one labeler (pair_id, user_id is unique: never the same pair twice);
//  - a lease is live while status = 'leased' and lease_expires_at > now; an expired one frees its slot;
//  - a pair is offered only while label_count + live leases < quota;
//  - decisions are stored in terms of responses a/b; the screen sides are only in `left_response`.
import { randomInt } from 'node:crypto';
import { inputError, notFound } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import type { LabelDecision } from '../store/schema.js';
import { ConflictError, ForbiddenError } from './errors.js';
import { newId } from './users.js';
import { stmt } from './sql.js';
import { mayLabel } from './admin.js';
import { denseRanks, groupsToRanks, rankingIssues, ranksToGroups } from './ranking.js';

export type Choice = 'left' | 'right' | 'tie' | 'both_bad';
export const choices = ['left', 'right', 'tie', 'both_bad'] as const;
export const labelFlags = ['unsafe', 'broken'] as const;
export type LabelFlag = (typeof labelFlags)[number];

/** What a labeler is shown: no model ids, no a/b mapping, no gold marker. */
export interface AssignmentView {
  assignmentId: string;
  batchId: string;
  prompt: string;
  left: string;
  right: string;
  leasedAt: number;
  leaseExpiresAt: number;
  /**
   * The pre-annotation, in screen terms, when the batch shows suggestions and both responses carry a
   * score (from a judge or a reward model): the higher-scored side, or a tie.
   */
  suggestion?: PairSuggestion | RankingSuggestion;
  /**
   * Ranking items: every answer, in the order shown (random per assignment); `left`/`right` are the
   * first two. The labeler ranks them by these positions (answer 1 = answers[0]).
   */
  answers?: string[];
  /** Set when this assignment came back through undo: the label that was withdrawn. */
  previous?: { choice: Choice | null; strength: number | null; rationale: string | null; flags: string[]; ranking?: number[][] };
}

/** A pair's pre-annotation: the higher-scored side (screen terms), or a tie. */
export interface PairSuggestion {
  choice: 'left' | 'right' | 'tie';
  scoreLeft: number;
  scoreRight: number;
}

/**
 * A ranking item's pre-annotation (every answer scored): the answers ordered by score, higher
 * first, equal scores tied, as groups of shown answer numbers (the form a labeler submits), and the
 * scores in shown order.
 */
export interface RankingSuggestion {
  ranking: number[][];
  scores: number[];
}

export interface Actor {
  id: string;
  name: string;
}

interface AssignmentRow {
  id: string;
  pair_id: string;
  user_id: string;
  left_response: 'a' | 'b';
  shown_order: string | null;
  status: 'leased' | 'submitted' | 'skipped' | 'expired';
  leased_at: number;
  lease_expires_at: number;
}

interface BatchRow {
  id: string;
  name: string;
  status: 'open' | 'paused' | 'closed';
  quota: number;
  lease_seconds: number;
  labeler_quota: number | null;
  suggestions: number;
  kind: 'pairwise' | 'ranking';
}

function batchRow(db: Db, batchId: string): BatchRow {
  const b = stmt(db, `SELECT id, name, status, quota, lease_seconds, labeler_quota, suggestions, kind FROM label_batches WHERE id = ?`).get(batchId) as BatchRow | undefined;
  if (!b) throw notFound(`no label batch "${batchId}"`);
  return b;
}

/** What scored the two responses prefers, in a/b terms; null when either has no score. */
function suggestedDecision(scoreA: number | null, scoreB: number | null): 'a' | 'b' | 'tie' | null {
  if (scoreA === null || scoreB === null) return null;
  return scoreA > scoreB ? 'a' : scoreB > scoreA ? 'b' : 'tie';
}

function pairTexts(db: Db, pairId: string) {
  return stmt(db, `SELECT p.prompt AS prompt, ra.text AS a, rb.text AS b, ra.score AS sa, rb.score AS sb FROM pairs p JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id WHERE p.id = ?`)
    .get(pairId) as { prompt: string; a: string; b: string; sa: number | null; sb: number | null };
}

/** A ranking item's answers (text, score) in item order; null for a pair. */
function itemResponses(db: Db, pairId: string): { text: string; score: number | null }[] | null {
  const r = stmt(db, `SELECT response_ids FROM pairs WHERE id = ?`).get(pairId) as { response_ids: string | null };
  if (!r.response_ids) return null;
  const ids = JSON.parse(r.response_ids) as string[];
  const q = stmt(db, `SELECT text, score FROM responses WHERE id = ?`);
  return ids.map((id) => q.get(id) as { text: string; score: number | null });
}

/**
 * The order scores suggest for a ranking item: dense ranks in item order, the higher score ranked
 * better, equal scores tied; null when any answer has no score (a partial order is not suggested).
 */
export function suggestedRanks(scores: readonly (number | null)[]): number[] | null {
  if (scores.some((s) => s === null || !Number.isFinite(s))) return null;
  return denseRanks(scores.map((s) => -s!));
}

/** A random permutation of 0..k-1 (Fisher–Yates). */
function randomOrder(k: number): number[] {
  const o = Array.from({ length: k }, (_, i) => i);
  for (let i = k - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [o[i], o[j]] = [o[j]!, o[i]!];
  }
  return o;
}

function view(db: Db, a: AssignmentRow, batchId: string): AssignmentView {
  const items = a.shown_order ? itemResponses(db, a.pair_id) : null;
  if (items) {
    const order = JSON.parse(a.shown_order!) as number[];
    const shown = order.map((i) => items[i]!.text);
    const prompt = (stmt(db, `SELECT prompt FROM pairs WHERE id = ?`).get(a.pair_id) as { prompt: string }).prompt;
    const out: AssignmentView = { assignmentId: a.id, batchId, prompt, left: shown[0]!, right: shown[1]!, answers: shown, leasedAt: a.leased_at, leaseExpiresAt: a.lease_expires_at };
    // The suggested order, in screen terms: shown answer n is item answer order[n - 1].
    const ranks = batchRow(db, batchId).suggestions ? suggestedRanks(items.map((r) => r.score)) : null;
    if (ranks) {
      out.suggestion = {
        ranking: ranksToGroups(order.map((item) => ranks[item]!)).map((g) => g.map((pos) => pos + 1)),
        scores: order.map((item) => items[item]!.score!),
      };
    }
    return out;
  }
  const r = pairTexts(db, a.pair_id);
  const [left, right] = a.left_response === 'a' ? [r.a, r.b] : [r.b, r.a];
  const out: AssignmentView = { assignmentId: a.id, batchId, prompt: r.prompt, left, right, leasedAt: a.leased_at, leaseExpiresAt: a.lease_expires_at };
  const b = batchRow(db, batchId);
  const s = b.suggestions ? suggestedDecision(r.sa, r.sb) : null;
  if (s) {
    const [scoreLeft, scoreRight] = a.left_response === 'a' ? [r.sa!, r.sb!] : [r.sb!, r.sa!];
    out.suggestion = { choice: s === 'tie' ? 'tie' : (choiceOf(s, a.left_response) as 'left' | 'right'), scoreLeft, scoreRight };
  }
  return out;
}

/**
 * The labeler's current assignment in this batch, or a new lease on the first pair in queue order
 * that still needs labels and that this labeler has never been given. Returns null when there is
 * nothing left for them (or the batch is closed).
 */
export function nextAssignment(db: Db, batchId: string, user: Actor, now = Date.now()): AssignmentView | null {
  return immediate(db, () => {
    const b = batchRow(db, batchId);
    if (b.status === 'closed') return null;
    // The caller's live lease in this batch, if any (index assignments_user).
    const mine = stmt(
      db,
      `SELECT a.* FROM assignments a JOIN pairs p ON p.id = a.pair_id
       WHERE a.user_id = ? AND a.status = 'leased' AND a.lease_expires_at > ? AND p.batch_id = ?
       ORDER BY a.leased_at DESC, a.rowid DESC LIMIT 1`,
    ).get(user.id, now, batchId) as AssignmentRow | undefined;
    if (mine) return view(db, mine, batchId);
    // Paused: no new work (the lease above may still be finished). Assigned labelers only, each up
    // to the batch's per-labeler quota of labels.
    if (b.status !== 'open') return null;
    if (!mayLabel(db, batchId, user.id)) throw new ForbiddenError(`you are not among the labelers of batch "${b.name}"`);
    if (b.labeler_quota !== null && ownLabelCount(db, batchId, user.id) >= b.labeler_quota) return null;
    // Least-labeled pair first, then queue order. The walk follows the index pairs_batch
    // (batch_id, label_count) in order and stops at the first pair that still has room (labels +
    // live leases < quota) and that this labeler has never been given — no sort, no full scan.
    // An abandoned lease simply stops counting once it expires: it needs no sweeper.
    const pick = stmt(
      db,
      `SELECT p.id FROM pairs p INDEXED BY pairs_batch
       WHERE p.batch_id = ? AND p.label_count < ?
         AND p.label_count + (SELECT count(*) FROM assignments l WHERE l.pair_id = p.id AND l.status = 'leased' AND l.lease_expires_at > ?) < ?
         AND NOT EXISTS (SELECT 1 FROM assignments m WHERE m.pair_id = p.id AND m.user_id = ?)
       ORDER BY p.label_count, p.rowid LIMIT 1`,
    ).get(batchId, b.quota, now, b.quota, user.id) as { id: string } | undefined;
    if (!pick) return null;
    // A ranking item is shown in its own random order per assignment, so position bias averages out.
    const ids = b.kind === 'ranking' ? (stmt(db, `SELECT response_ids FROM pairs WHERE id = ?`).get(pick.id) as { response_ids: string | null }).response_ids : null;
    const order = ids ? randomOrder((JSON.parse(ids) as string[]).length) : null;
    const row: AssignmentRow = {
      id: newId('as'),
      pair_id: pick.id,
      user_id: user.id,
      // For a ranking item: which of the first two item answers is shown earlier.
      left_response: order ? (order.indexOf(0) < order.indexOf(1) ? 'a' : 'b') : randomInt(2) === 0 ? 'a' : 'b',
      shown_order: order ? JSON.stringify(order) : null,
      status: 'leased',
      leased_at: now,
      lease_expires_at: now + b.lease_seconds * 1000,
    };
    stmt(db, `INSERT INTO assignments (id, pair_id, user_id, left_response, shown_order, status, leased_at, lease_expires_at) VALUES (?, ?, ?, ?, ?, 'leased', ?, ?)`).run(
      row.id,
      row.pair_id,
      row.user_id,
      row.left_response,
      row.shown_order,
      row.leased_at,
      row.lease_expires_at,
    );
    return view(db, row, batchId);
  });
}

export interface SubmitInput {
  /** Pairs: the decision in screen terms. */
  choice?: Choice;
  /**
   * Ranking items: groups of answer numbers as shown (1 = first shown), best first; answers in one
   * group tie. Every answer exactly once.
   */
  ranking?: number[][];
  strength?: number | null;
  rationale?: string | null;
  flags?: string[] | null;
  durationMs?: number | null;
}

export function validateSubmit(s: SubmitInput, answers: number | null = null): void {
  const issues = [];
  if (answers === null) {
    if (s.ranking != null) issues.push({ field: 'ranking', reason: 'this item is a pair: send choice, not ranking' });
    if (!(choices as readonly string[]).includes(s.choice as string)) issues.push({ field: 'choice', reason: `must be one of ${choices.join(', ')}` });
  } else {
    if (s.choice != null) issues.push({ field: 'choice', reason: `this item is a ranking of ${answers} answers: send ranking, not choice` });
    if (s.strength != null) issues.push({ field: 'strength', reason: 'does not apply to a ranking' });
    issues.push(...rankingIssues(s.ranking, answers));
  }
  if (s.strength != null && !(Number.isInteger(s.strength) && s.strength >= 1 && s.strength <= 3)) issues.push({ field: 'strength', reason: 'must be 1, 2 or 3' });
  if (s.strength != null && (s.choice === 'tie' || s.choice === 'both_bad')) issues.push({ field: 'strength', reason: 'only applies when one response is preferred' });
  if (s.rationale != null && (typeof s.rationale !== 'string' || s.rationale.length > 5000)) issues.push({ field: 'rationale', reason: 'at most 5000 characters' });
  if (s.flags != null && (!Array.isArray(s.flags) || s.flags.some((f) => !(labelFlags as readonly string[]).includes(f)))) issues.push({ field: 'flags', reason: `each flag must be one of ${labelFlags.join(', ')}` });
  if (s.durationMs != null && !(Number.isInteger(s.durationMs) && s.durationMs >= 0 && s.durationMs <= 86_400_000)) issues.push({ field: 'durationMs', reason: 'must be an integer number of milliseconds (≤ 1 day)' });
  if (issues.length) throw inputError('invalid label', issues);
}

export function decisionOf(choice: Choice, left: 'a' | 'b'): LabelDecision {
  if (choice === 'left') return left;
  if (choice === 'right') return left === 'a' ? 'b' : 'a';
  return choice;
}

export function choiceOf(decision: LabelDecision, left: 'a' | 'b'): Choice {
  if (decision === 'a' || decision === 'b') return decision === left ? 'left' : 'right';
  return decision;
}

interface Loaded {
  a: AssignmentRow;
  batch: BatchRow;
  labelCount: number;
}

function loadAssignment(db: Db, assignmentId: string, user: Actor): Loaded {
  const a = stmt(db, `SELECT * FROM assignments WHERE id = ?`).get(assignmentId) as AssignmentRow | undefined;
  if (!a) throw notFound(`no assignment "${assignmentId}"`);
  if (a.user_id !== user.id) throw new ForbiddenError('this assignment belongs to another labeler');
  const p = stmt(db, `SELECT batch_id, label_count FROM pairs WHERE id = ?`).get(a.pair_id) as { batch_id: string; label_count: number };
  return { a, batch: batchRow(db, p.batch_id), labelCount: p.label_count };
}

/**
 * Stores a label for the labeler's assignment. Refused (ConflictError, nothing stored) when the
 * batch is closed, the assignment was already submitted or skipped, or the lease expired and the
 * pair has meanwhile been filled by others.
 */
export function submitLabel(db: Db, assignmentId: string, user: Actor, input: SubmitInput, now = Date.now()): { labelId: string; decision: LabelDecision } {
  return immediate(db, () => {
    const { a, batch, labelCount } = loadAssignment(db, assignmentId, user);
    const order = a.shown_order ? (JSON.parse(a.shown_order) as number[]) : null;
    validateSubmit(input, order ? order.length : null);
    if (batch.status === 'closed') throw new ConflictError(`label batch "${batch.name}" was closed before this label arrived; it was not stored`);
    if (a.status === 'submitted') throw new ConflictError('this assignment was already labeled (use undo to change it)');
    if (a.status === 'skipped') throw new ConflictError('this assignment was skipped');
    const live = a.status === 'leased' && a.lease_expires_at > now;
    if (!live) {
      // A late submission is still welcome if the pair has room for it.
      const others = stmt(db, `SELECT count(*) AS n FROM assignments WHERE pair_id = ? AND id <> ? AND status = 'leased' AND lease_expires_at > ?`).get(a.pair_id, a.id, now) as { n: number };
      if (labelCount + others.n >= batch.quota) throw new ConflictError('your lease on this pair expired and the pair has since received its labels; the label was not stored');
    }
    // A ranking is stored in item order: shown answer n is item answer order[n - 1].
    let ranks: number[] | null = null;
    if (order) {
      const shownRanks = groupsToRanks(input.ranking!, order.length);
      ranks = new Array<number>(order.length);
      order.forEach((item, pos) => (ranks![item] = shownRanks[pos]!));
    }
    const decision = ranks ? (ranks[0]! < ranks[1]! ? 'a' : ranks[0]! > ranks[1]! ? 'b' : 'tie') : decisionOf(input.choice!, a.left_response);
    const labelId = newId('l');
    // The suggestion this labeler was shown (recomputed here, not taken from the client), so the
    // share of labels that follow it can be measured against agreement.
    // A ranking item's suggestion is an order (suggested_ranking); `suggested` stays a pair's.
    const texts = batch.suggestions && !order ? pairTexts(db, a.pair_id) : undefined;
    const suggested = texts ? suggestedDecision(texts.sa, texts.sb) : null;
    const suggestedRanking = batch.suggestions && order ? suggestedRanks(itemResponses(db, a.pair_id)!.map((r) => r.score)) : null;
    stmt(db,
        `INSERT INTO labels (id, pair_id, assignment_id, user_id, source, decision, strength, rationale, flags, shown_left, duration_ms, created_at, suggested, ranking, suggested_ranking)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        labelId,
        a.pair_id,
        a.id,
        user.id,
        `user:${user.name}`,
        decision,
        input.strength ?? null,
        input.rationale?.trim() ? input.rationale.trim() : null,
        input.flags && input.flags.length ? JSON.stringify([...new Set(input.flags)].sort()) : null,
        a.left_response,
        input.durationMs ?? null,
        now,
        suggested,
        ranks ? JSON.stringify(ranks) : null,
        suggestedRanking ? JSON.stringify(suggestedRanking) : null,
      );
    stmt(db, `UPDATE assignments SET status = 'submitted' WHERE id = ?`).run(a.id);
    stmt(db, `UPDATE pairs SET label_count = label_count + 1 WHERE id = ?`).run(a.pair_id);
    return { labelId, decision };
  });
}

/** Gives the pair back to the pool (for others); this labeler will not see it again. */
export function skipAssignment(db: Db, assignmentId: string, user: Actor, reason: string): void {
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 500) throw inputError('a skip needs a reason (1–500 characters)', [{ field: 'reason', reason: 'required' }]);
  immediate(db, () => {
    const { a, batch } = loadAssignment(db, assignmentId, user);
    if (batch.status === 'closed') throw new ConflictError(`label batch "${batch.name}" is closed`);
    if (a.status === 'submitted') throw new ConflictError('this assignment was already labeled');
    if (a.status === 'skipped') return;
    stmt(db, `UPDATE assignments SET status = 'skipped', skip_reason = ? WHERE id = ?`).run(reason.trim(), a.id);
  });
}

/**
 * Withdraws the labeler's most recent label in this batch (while the batch is open) and gives the
 * same assignment back to them under a fresh lease, with the withdrawn answer for reference.
 */
export function undoLastLabel(db: Db, batchId: string, user: Actor, now = Date.now()): AssignmentView {
  return immediate(db, () => {
    const b = batchRow(db, batchId);
    if (b.status === 'closed') throw new ConflictError(`label batch "${b.name}" is closed; labels can no longer be undone`);
    const l = stmt(db,
        `SELECT l.id, l.assignment_id, l.decision, l.strength, l.rationale, l.flags, l.pair_id, l.ranking FROM labels l JOIN pairs p ON p.id = l.pair_id
         WHERE p.batch_id = ? AND l.user_id = ? AND l.assignment_id IS NOT NULL ORDER BY l.created_at DESC, l.rowid DESC LIMIT 1`,
      )
      .get(batchId, user.id) as { id: string; assignment_id: string; decision: LabelDecision; strength: number | null; rationale: string | null; flags: string | null; pair_id: string; ranking: string | null } | undefined;
    if (!l) throw new ConflictError('you have no label in this batch to undo');
    stmt(db, `DELETE FROM labels WHERE id = ?`).run(l.id);
    stmt(db, `UPDATE pairs SET label_count = label_count - 1 WHERE id = ?`).run(l.pair_id);
    stmt(db, `UPDATE assignments SET status = 'leased', leased_at = ?, lease_expires_at = ? WHERE id = ?`).run(now, now + b.lease_seconds * 1000, l.assignment_id);
    const a = stmt(db, `SELECT * FROM assignments WHERE id = ?`).get(l.assignment_id) as AssignmentRow;
    const flags = l.flags ? (JSON.parse(l.flags) as string[]) : [];
    if (a.shown_order && l.ranking) {
      // The withdrawn ranking, back in screen terms (answer numbers as shown).
      const order = JSON.parse(a.shown_order) as number[];
      const itemRanks = JSON.parse(l.ranking) as number[];
      const groups = ranksToGroups(order.map((item) => itemRanks[item]!)).map((g) => g.map((pos) => pos + 1));
      return { ...view(db, a, batchId), previous: { choice: null, strength: null, rationale: l.rationale, flags, ranking: groups } };
    }
    return {
      ...view(db, a, batchId),
      previous: { choice: choiceOf(l.decision, a.left_response), strength: l.strength, rationale: l.rationale, flags },
    };
  });
}

/** How many labels this labeler has stored in the batch. */
export function ownLabelCount(db: Db, batchId: string, userId: string): number {
  const r = stmt(db, `SELECT count(*) AS n FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND l.user_id = ?`).get(batchId, userId) as { n: number };
  return r.n;
}
