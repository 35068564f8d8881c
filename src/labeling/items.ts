// An admin's view of a batch item by item: search and filters over pairs and their labels, and the
// history of one pair (every lease, skip and label, in time order). Reads only.
import { notFound } from '../errors.js';
import type { Db } from '../store/db.js';
import type { LabelDecision } from '../store/schema.js';
import { rankingAgreement } from './ranking.js';

export const itemFilters = ['all', 'disputed', 'flagged', 'unlabeled', 'gold', 'skipped'] as const;
export type ItemFilter = (typeof itemFilters)[number];

export interface ItemQuery {
  /**
   * Case-insensitive text in the prompt, any answer of the item (both of a pair, every one of a
   * ranking item), an answer's metadata (model artifact id, sampling settings as JSON) or a label's
   * rationale.
   */
  q?: string;
  filter?: ItemFilter;
  /** Only pairs this user labeled (user id). */
  labeler?: string;
  limit?: number;
  offset?: number;
}

export interface ItemRow {
  pairId: string;
  prompt: string;
  responseA: string;
  responseB: string;
  isGold: boolean;
  labels: number;
  counts: Partial<Record<LabelDecision, number>>;
  /** 1 − share of the most common decision; 0 with fewer than two labels. */
  disagreement: number;
  flags: string[];
  labelers: string[];
  skips: number;
  /**
   * Ranking items: each label's ranking as answer numbers in item order ("2>1=3>4"). `counts` then
   * compare the first two answers only, and `disagreement` is the share of answer pairs two labelers
   * order differently.
   */
  rankings?: string[];
}

interface Row {
  id: string;
  prompt: string;
  a: string;
  b: string;
  is_gold: number;
  decisions: string | null;
  flags: string | null;
  labelers: string | null;
  skips: number;
  rankings: string | null;
}

/** The pairs of a batch matching a query, in queue order, with a total for paging. */
export function batchItems(db: Db, batchId: string, query: ItemQuery = {}): { total: number; items: ItemRow[] } {
  if (!db.$client.prepare('SELECT 1 FROM label_batches WHERE id = ?').get(batchId)) throw notFound(`no label batch "${batchId}"`);
  const q = query.q?.trim().toLowerCase();
  const rows = db.$client.prepare(
    `SELECT p.id, p.prompt, ra.text AS a, rb.text AS b, p.is_gold,
            (SELECT json_group_array(l.decision) FROM labels l WHERE l.pair_id = p.id) AS decisions,
            (SELECT json_group_array(f.value) FROM labels l, json_each(coalesce(l.flags, '[]')) f WHERE l.pair_id = p.id) AS flags,
            (SELECT json_group_array(coalesce(u.name, l.source)) FROM labels l LEFT JOIN users u ON u.id = l.user_id WHERE l.pair_id = p.id) AS labelers,
            (SELECT count(*) FROM assignments s WHERE s.pair_id = p.id AND s.status = 'skipped') AS skips,
            CASE WHEN p.response_ids IS NULL THEN NULL ELSE (SELECT json_group_array(json(l.ranking)) FROM labels l WHERE l.pair_id = p.id AND l.ranking IS NOT NULL) END AS rankings
     FROM pairs p JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
     WHERE p.batch_id = ?
       AND (? IS NULL OR instr(lower(p.prompt), ?) > 0
            OR EXISTS (SELECT 1 FROM responses r
                       WHERE (r.id IN (p.response_a_id, p.response_b_id) OR r.id IN (SELECT value FROM json_each(coalesce(p.response_ids, '[]'))))
                         AND (instr(lower(r.text), ?) > 0 OR instr(lower(coalesce(r.model_artifact_id, '')), ?) > 0
                              OR instr(lower(coalesce(r.sampling, '')), ?) > 0))
            OR EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = p.id AND instr(lower(coalesce(l.rationale, '')), ?) > 0))
       AND (? IS NULL OR EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = p.id AND l.user_id = ?))
     ORDER BY p.created_at, p.id`,
  ).all(batchId, q ?? null, q ?? null, q ?? null, q ?? null, q ?? null, q ?? null, query.labeler ?? null, query.labeler ?? null) as Row[];
  const items = rows.map((r): ItemRow => {
    const ds = JSON.parse(r.decisions ?? '[]') as LabelDecision[];
    const counts: Partial<Record<LabelDecision, number>> = {};
    for (const d of ds) counts[d] = (counts[d] ?? 0) + 1;
    const top = Math.max(0, ...Object.values(counts));
    const ranks = r.rankings ? (JSON.parse(r.rankings) as number[][]) : null;
    if (ranks) {
      const agree = rankingAgreement(ranks.map((x, i) => ({ itemId: r.id, annotator: String(i), ranks: x }))).pairwiseAgreement;
      const text = (x: number[]) => [...new Set(x)].sort((p, q) => p - q).map((lv) => x.flatMap((v, i) => (v === lv ? [i + 1] : [])).join('=')).join('>');
      return {
        pairId: r.id, prompt: r.prompt, responseA: r.a, responseB: r.b, isGold: r.is_gold === 1,
        labels: ds.length, counts, disagreement: agree === null ? 0 : 1 - agree, rankings: ranks.map(text),
        flags: [...new Set(JSON.parse(r.flags ?? '[]') as string[])].sort(),
        labelers: [...new Set(JSON.parse(r.labelers ?? '[]') as string[])].sort(), skips: r.skips,
      };
    }
    return {
      pairId: r.id, prompt: r.prompt, responseA: r.a, responseB: r.b, isGold: r.is_gold === 1,
      labels: ds.length, counts, disagreement: ds.length >= 2 ? 1 - top / ds.length : 0,
      flags: [...new Set(JSON.parse(r.flags ?? '[]') as string[])].sort(),
      labelers: [...new Set(JSON.parse(r.labelers ?? '[]') as string[])].sort(), skips: r.skips,
    };
  });
  const keep = (it: ItemRow) => {
    switch (query.filter ?? 'all') {
      case 'disputed': return it.disagreement > 0;
      case 'flagged': return it.flags.length > 0;
      case 'unlabeled': return it.labels === 0;
      case 'gold': return it.isGold;
      case 'skipped': return it.skips > 0;
      default: return true;
    }
  };
  const hits = items.filter(keep);
  const offset = query.offset ?? 0;
  return { total: hits.length, items: hits.slice(offset, offset + (query.limit ?? 50)) };
}

export type HistoryEvent =
  | { at: number; kind: 'leased'; user: string; shownLeft: 'a' | 'b'; leaseExpiresAt: number; status: string }
  | { at: number; kind: 'skipped'; user: string; reason: string | null }
  | { at: number; kind: 'label'; annotator: string; decision: LabelDecision; shownLeft: 'a' | 'b' | null; strength: number | null; rationale: string | null; flags: string[]; durationMs: number | null; ranks?: number[] };

/** A pair with every lease, skip and label it had, oldest first (a label undone is gone from here too). */
export function itemHistory(db: Db, pairId: string): { pair: { id: string; batchId: string | null; prompt: string; responseA: string; responseB: string; isGold: boolean; goldAnswer: string | null; answers?: string[] }; events: HistoryEvent[] } {
  const p = db.$client.prepare(
    `SELECT p.id, p.batch_id, p.prompt, ra.text AS a, rb.text AS b, p.is_gold, p.gold_answer FROM pairs p
     JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id WHERE p.id = ?`,
  ).get(pairId) as { id: string; batch_id: string | null; prompt: string; a: string; b: string; is_gold: number; gold_answer: string | null } | undefined;
  if (!p) throw notFound(`no pair "${pairId}"`);
  const events: HistoryEvent[] = [];
  for (const a of db.$client.prepare(
    `SELECT a.status, a.skip_reason, a.left_response, a.leased_at, a.lease_expires_at, u.name FROM assignments a JOIN users u ON u.id = a.user_id WHERE a.pair_id = ?`,
  ).all(pairId) as { status: string; skip_reason: string | null; left_response: 'a' | 'b'; leased_at: number; lease_expires_at: number; name: string }[]) {
    events.push({ at: a.leased_at, kind: 'leased', user: a.name, shownLeft: a.left_response, leaseExpiresAt: a.lease_expires_at, status: a.status });
    // A skip has no time of its own; it happened while the lease was live.
    if (a.status === 'skipped') events.push({ at: a.leased_at, kind: 'skipped', user: a.name, reason: a.skip_reason });
  }
  for (const l of db.$client.prepare(
    `SELECT l.source, l.decision, l.shown_left, l.strength, l.rationale, l.flags, l.duration_ms, l.created_at, l.ranking FROM labels l WHERE l.pair_id = ?`,
  ).all(pairId) as { source: string; decision: LabelDecision; shown_left: 'a' | 'b' | null; strength: number | null; rationale: string | null; flags: string | null; duration_ms: number | null; created_at: number; ranking: string | null }[]) {
    events.push({ at: l.created_at, kind: 'label', annotator: l.source, decision: l.decision, shownLeft: l.shown_left, strength: l.strength, rationale: l.rationale, flags: l.flags ? (JSON.parse(l.flags) as string[]) : [], durationMs: l.duration_ms, ...(l.ranking ? { ranks: JSON.parse(l.ranking) as number[] } : {}) });
  }
  const order = { leased: 0, skipped: 1, label: 2 };
  events.sort((x, y) => x.at - y.at || order[x.kind] - order[y.kind]);
  // A ranking item: every answer in item order (the numbers its rankings use).
  const ids = (db.$client.prepare(`SELECT response_ids FROM pairs WHERE id = ?`).get(pairId) as { response_ids: string | null }).response_ids;
  const text = db.$client.prepare(`SELECT text FROM responses WHERE id = ?`);
  const list = ids ? (JSON.parse(ids) as string[]).map((id) => (text.get(id) as { text: string }).text) : [];
  return { pair: { id: p.id, batchId: p.batch_id, prompt: p.prompt, responseA: p.a, responseB: p.b, isGold: p.is_gold === 1, goldAnswer: p.gold_answer, ...(list.length ? { answers: list } : {}) }, events };
}
