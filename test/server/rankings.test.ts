// Ranking batches over the API: k answers per item, shown in a random order per labeler, ranked
// (with ties) as groups of shown answer numbers, stored in item order; bad rankings refused with a
// 400 naming the field; pairs induced by the batch's rule; ranking agreement; exports (TRL pairs,
// raw rankings, and the Hugging Face folder as a tar download).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { testServer, bearer } from './helpers.js';
import { addUser } from '../../src/labeling/users.js';
import { untar } from '../../src/labeling/tar.js';

// Item i: answers "best i", "good i", "fair i", "poor i" stored in a scrambled item order.
const ITEM_ORDER = ['fair', 'best', 'poor', 'good'];
const QUALITY: Record<string, number> = { best: 1, good: 2, fair: 3, poor: 4 };
const items = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const [a, b, ...rest] = ITEM_ORDER.map((q) => ({ text: `${q} ${i}` }));
    return { prompt: `rank the answers to question ${i}`, a: a!, b: b!, rest };
  });

/** The ranking a careful reader gives: by quality, with "good" and "fair" tied when `tieMiddle`. */
function rankShown(answers: string[], tieMiddle: boolean): number[][] {
  const level = (t: string) => {
    const q = QUALITY[t.split(' ')[0]!]!;
    return tieMiddle && q === 3 ? 2 : q;
  };
  const levels = [...new Set(answers.map(level))].sort();
  return levels.map((l) => answers.flatMap((t, i) => (level(t) === l ? [i + 1] : [])));
}

test('a ranking batch over the API: rank with ties, validation, induced pairs, agreement, exports', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L1 = bearer(s.tokens.labeler);
  const L2 = bearer(addUser(s.db, 'lab2', 'labeler').token);

  // Settings that do not fit a ranking batch are refused, naming the field.
  const bad = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'x', kind: 'ranking', pairRule: 'nope' } });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(bad.json().issues.map((i: { field: string }) => i.field), ['body.pairRule']);
  const badRule = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'x', pairRule: 'all' } });
  assert.equal(badRule.statusCode, 400);
  assert.deepEqual(badRule.json().issues.map((i: { field: string }) => i.field), ['pairRule']);

  const created = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'rank4', kind: 'ranking', pairRule: 'all', quota: 2 } });
  assert.equal(created.statusCode, 201, created.body);
  const b = created.json();
  assert.deepEqual([b.kind, b.pairRule], ['ranking', 'all']);
  // 9 answers are too many for one item; a pairwise batch refuses items with more than two.
  const tooMany = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: [{ prompt: 'p', a: { text: '1' }, b: { text: '2' }, rest: Array.from({ length: 7 }, (_, i) => ({ text: `${i + 3}` })) }] } });
  assert.equal(tooMany.statusCode, 400);
  assert.match(tooMany.json().issues[0].field, /rest/);
  const add = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: items(3) } });
  assert.equal(add.statusCode, 200, add.body);

  // Labeler 1 ranks strictly; the first submission is tried with bad bodies first.
  let first = true;
  const orders = new Set<string>();
  for (;;) {
    const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: L1 })).json().assignment;
    if (!a) break;
    assert.equal(a.answers.length, 4);
    assert.deepEqual([a.left, a.right], a.answers.slice(0, 2));
    orders.add(a.answers.map((t: string) => t.split(' ')[0]).join(','));
    const url = `/api/labeling/assignments/${a.assignmentId}/label`;
    if (first) {
      first = false;
      const cases: [unknown, string][] = [
        [{ choice: 'left' }, 'choice'],
        [{}, 'ranking'],
        [{ ranking: [[1], [2], [3]] }, 'ranking'],
        [{ ranking: [[1], [2, 1], [3, 4]] }, 'ranking[1]'],
        [{ ranking: [[1], [2], [3], [4]], strength: 2 }, 'strength'],
        [{ ranking: [[1], [2], [3], [9]] }, 'body.ranking.3.0'],
        [{ ranking: '1>2>3>4' }, 'body.ranking'],
      ];
      for (const [payload, field] of cases) {
        const r = await s.app.inject({ method: 'POST', url, headers: L1, payload: payload as object });
        assert.equal(r.statusCode, 400, `${JSON.stringify(payload)}: ${r.body}`);
        assert.ok(r.json().issues.some((i: { field: string }) => i.field === field), `${JSON.stringify(payload)} → ${r.body}`);
      }
    }
    const r = await s.app.inject({ method: 'POST', url, headers: L1, payload: { ranking: rankShown(a.answers, false), durationMs: 900 } });
    assert.equal(r.statusCode, 200, r.body);
  }
  // Undo gives the last ranking back in screen terms.
  const undone = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/undo`, headers: L1 })).json().assignment;
  assert.deepEqual(undone.previous.ranking, rankShown(undone.answers, false));
  assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${undone.assignmentId}/label`, headers: L1, payload: { ranking: undone.previous.ranking } })).statusCode, 200);
  // Labeler 2 ties "good" and "fair".
  for (;;) {
    const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: L2 })).json().assignment;
    if (!a) break;
    orders.add(a.answers.map((t: string) => t.split(' ')[0]).join(','));
    assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/label`, headers: L2, payload: { ranking: rankShown(a.answers, true) } })).statusCode, 200);
  }
  assert.ok(orders.size > 1, 'answers are shown in a random order per assignment');

  // Stored in item order (fair, best, poor, good): ranks [3, 1, 4, 2] and, with the tie, [2, 1, 3, 2].
  const stored = s.db.$client.prepare(`SELECT l.source, l.ranking, l.decision FROM labels l ORDER BY l.source`).all() as { source: string; ranking: string; decision: string }[];
  assert.equal(stored.length, 6);
  for (const r of stored) {
    assert.deepEqual(JSON.parse(r.ranking), r.source === 'user:lab' ? [3, 1, 4, 2] : [2, 1, 3, 2]);
    assert.equal(r.decision, 'b', 'decision: the first two answers compared (best beats fair)');
  }

  // Agreement: per item τ-b([3,1,4,2], [2,1,3,2]) = 5 / √(6 · 5); 5 of 6 answer pairs agree.
  const stats = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/stats`, headers: A })).json();
  assert.ok(Math.abs(stats.ranking.meanTau - 5 / Math.sqrt(30)) < 1e-9, JSON.stringify(stats.ranking));
  assert.equal(stats.ranking.pairwiseAgreement, 5 / 6);
  assert.equal(stats.ranking.comparisons, 3);
  assert.equal(stats.progress.completePairs, 3);
  assert.equal(stats.positionBias.decided + stats.decisions.tie, 36, '6 answer pairs × 6 rankings');

  // The admin's item list and history show the rankings (item order: fair, best, poor, good).
  const listed = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/items?filter=disputed`, headers: A })).json();
  assert.equal(listed.total, 3, 'each item has one answer pair ordered differently');
  assert.deepEqual(listed.items[0].rankings.sort(), ['2>1=4>3', '2>4>1>3']);
  assert.ok(Math.abs(listed.items[0].disagreement - 1 / 6) < 1e-12);
  const hist = (await s.app.inject({ method: 'GET', url: `/api/labeling/pairs/${listed.items[0].pairId}/history`, headers: A })).json();
  assert.deepEqual(hist.pair.answers.map((t: string) => t.split(' ')[0]), ITEM_ORDER);
  assert.deepEqual(hist.events.filter((e: { kind: string }) => e.kind === 'label').map((e: { ranks: number[] }) => e.ranks).sort(), [[2, 1, 3, 2], [3, 1, 4, 2]]);

  // Consensus: mean ranks [2.5, 1, 3.5, 2] → best > good > fair > poor: all 6 pairs per item.
  const prefs = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=preferences`, headers: A })).body.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(prefs.length, 18);
  for (const p of prefs) assert.ok(QUALITY[p.chosen.split(' ')[0]]! < QUALITY[p.rejected.split(' ')[0]]!, JSON.stringify(p));
  assert.deepEqual(Object.keys(prefs[0]).sort(), ['chosen', 'prompt', 'rejected']);

  const rankings = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=rankings`, headers: A })).body.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rankings.length, 6);
  const r0 = rankings.find((r: { annotator: string }) => r.annotator === 'user:lab2');
  assert.deepEqual(r0.responses.map((t: string) => t.split(' ')[0]), ITEM_ORDER);
  assert.deepEqual(r0.ranking, [[1], [0, 3], [2]]);

  // The Hugging Face folder as one tar: preferences, labels, rankings and the card.
  const hf = await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=hf`, headers: A });
  assert.equal(hf.statusCode, 200);
  assert.equal(hf.headers['content-type'], 'application/x-tar');
  assert.match(String(hf.headers['content-disposition']), /attachment; filename="rank4-b[^"]*\.tar"/);
  const files = untar(hf.rawPayload);
  const names = [...files.keys()].map((n) => n.split('/').slice(1).join('/')).sort();
  assert.deepEqual(names, ['README.md', 'labels.jsonl', 'preferences.jsonl', 'rankings.jsonl']);
  const get = (n: string) => [...files.entries()].find(([k]) => k.endsWith('/' + n))![1].toString('utf8');
  assert.equal(get('preferences.jsonl').trim().split('\n').length, 18);
  const card = get('README.md');
  const meta = YAML.parse(/^---\n([\s\S]*?)\n---\n/.exec(card)![1]!);
  assert.deepEqual(meta.configs.map((c: { config_name: string }) => c.config_name), ['default', 'labels', 'rankings']);
  assert.equal(meta.dataset_info[0].splits[0].num_examples, 18);
  assert.match(card, /pair rule \*\*all\*\*/);
  assert.match(card, /mean Kendall's τ-b between labelers \| 0\.913/);
  assert.equal((await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=hf`, headers: L1 })).statusCode, 403);
});

test('best_vs_rest: only the best answer against the rest; a ranking that ties everything gives no pair', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L = bearer(s.tokens.labeler);
  const b = (await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'bvr', kind: 'ranking', pairRule: 'best_vs_rest' } })).json();
  await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: items(2) } });
  let n = 0;
  for (;;) {
    const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: L })).json().assignment;
    if (!a) break;
    // Item 0 ranked by quality; item 1 all tied.
    const ranking = a.prompt.endsWith('0') ? rankShown(a.answers, false) : [[1, 2, 3, 4]];
    assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/label`, headers: L, payload: { ranking } })).statusCode, 200);
    n++;
  }
  assert.equal(n, 2);
  const prefs = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=preferences`, headers: A })).body.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(prefs.map((p: { chosen: string; rejected: string }) => `${p.chosen} > ${p.rejected}`).sort(), ['best 0 > fair 0', 'best 0 > good 0', 'best 0 > poor 0']);
});

test('the admin setup route makes a ranking batch from an uploaded ranking JSONL, checked whole first', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const jsonl = [
    JSON.stringify({ prompt: 'p1', responses: ['x', 'y', 'z'] }),
    JSON.stringify({ prompt: [{ role: 'user', content: 'hi' }], responses: [[{ role: 'assistant', content: 'a' }], 'b', 'c', 'd'] }),
  ].join('\n');
  const ok = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: 'up', kind: 'ranking', pairRule: 'best_vs_rest', source: { jsonl, fileName: 'items.jsonl' } } });
  assert.equal(ok.statusCode, 201, ok.body);
  assert.equal(ok.json().added, 2);
  assert.equal(ok.json().batch.pairRule, 'best_vs_rest');
  const badLines = [JSON.stringify({ prompt: 'p', responses: ['only one'] }), '{nope', JSON.stringify({ prompt: 3, responses: ['a', 'b'] })].join('\n');
  const bad = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: 'bad', kind: 'ranking', source: { jsonl: badLines, fileName: 'bad.jsonl' } } });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(bad.json().issues.map((i: { line: number; field?: string }) => [i.line, i.field ?? null]), [[1, 'responses'], [2, null], [3, 'prompt']]);
  const batches = (await s.app.inject({ method: 'GET', url: '/api/labeling/batches', headers: A })).json().batches;
  assert.deepEqual(batches.map((x: { name: string }) => x.name), ['up'], 'a refused file leaves no batch');
});

test('ranking suggestions over the API: the suggested order reaches the labeler in screen terms; stats give exact follows and τ-b to it', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L = bearer(s.tokens.labeler);
  const created = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'suggested ranks', kind: 'ranking', suggestions: true } });
  assert.equal(created.statusCode, 201, created.body);
  const b = created.json();
  assert.equal(b.suggestions, true);
  // Scores follow quality except on item 1, where the scorer swaps best and poor.
  const scored = items(2).map((it, i) => {
    const score = (t: string) => {
      const q = QUALITY[t.split(' ')[0]!]!;
      return i === 1 && (q === 1 || q === 4) ? q : -q;
    };
    return { ...it, a: { ...it.a, score: score(it.a.text) }, b: { ...it.b, score: score(it.b.text) }, rest: it.rest.map((r) => ({ ...r, score: score(r.text) })) };
  });
  assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: scored } })).statusCode, 200);
  for (;;) {
    const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: L })).json().assignment;
    if (!a) break;
    const sug = a.suggestion;
    assert.equal(sug.scores.length, 4);
    const byScore = a.answers.map((_: string, n: number) => n + 1).sort((x: number, y: number) => sug.scores[y - 1] - sug.scores[x - 1]);
    assert.deepEqual(sug.ranking, byScore.map((n: number) => [n]), 'strict scores: one answer per group, best score first');
    // The labeler ranks by quality: the same order as the suggestion on item 0, not on item 1.
    const ranking = rankShown(a.answers, false);
    if (a.prompt.endsWith('0')) assert.deepEqual(ranking, sug.ranking);
    assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/label`, headers: L, payload: { ranking } })).statusCode, 200);
  }
  const st = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/stats`, headers: A })).json().suggestions;
  // Item 1: the scores order poor > best > good > fair; of its 6 answer pairs the label orders 3
  // alike (best > good, best > fair, good > fair) and 3 not (every pair with poor): τ-b = 0.
  assert.deepEqual([st.shown, st.followed, st.rate], [2, 1, 0.5]);
  assert.ok(Math.abs(st.meanTau - (1 + 0) / 2) < 1e-12, JSON.stringify(st));
  assert.deepEqual(st.byAnnotator.map((x: { annotator: string; followed: number; tauLabels: number }) => [x.annotator, x.followed, x.tauLabels]), [['user:lab', 1, 2]]);
});

test('an uploaded ranking JSONL may carry scores: a batch with suggestions shows their order; bad scores name line and field', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L = bearer(s.tokens.labeler);
  const jsonl = JSON.stringify({ prompt: 'rank these', responses: ['low', 'high', 'mid'], scores: [0.1, 0.9, 0.5] });
  const up = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: 'scored upload', kind: 'ranking', suggestions: true, source: { jsonl, fileName: 'items.jsonl' } } });
  assert.equal(up.statusCode, 201, up.body);
  const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${up.json().batch.id}/next`, headers: L })).json().assignment;
  // the suggestion in screen terms: the shown answers ordered high > mid > low
  const shownAt = (t: string) => a.answers.indexOf(t) + 1;
  assert.deepEqual(a.suggestion.ranking, [[shownAt('high')], [shownAt('mid')], [shownAt('low')]]);
  for (const [scores, line] of [[[1, 2], 1], [[1, 'x', 3], 1]] as const) {
    const bad = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: `bad ${line}${scores.length}`, kind: 'ranking', source: { jsonl: JSON.stringify({ prompt: 'p', responses: ['a', 'b', 'c'], scores }), fileName: 'items.jsonl' } } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(bad.json().issues.map((i: { file: string; line: number; field: string }) => [i.file, i.line, i.field]), [['items.jsonl', line, 'scores']]);
  }
});

test('gold rankings: mixed in at the gold rate, scored per labeler by top-1 match and τ-b to the known ranking, kept out of agreement and preferences', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L = bearer(s.tokens.labeler);
  const b = (await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'gold ranks', kind: 'ranking', goldRate: 0.5, quota: 2 } })).json();
  const L2 = bearer(addUser(s.db, 'lab2', 'labeler').token);
  const goldRankings = [
    { prompt: 'gold 0', responses: ['best g', 'good g', 'fair g', 'poor g'], ranking: [[1], [2], [3], [4]] },
    { prompt: 'gold 1', responses: ['x', 'y', 'z'], ranking: [[2], [1, 3]] },
  ];
  // Gold that does not fit: gold pairs in a ranking batch, a gold ranking that misses an answer.
  const pairGold = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: items(1), gold: [{ prompt: 'p', chosen: 'c', rejected: 'r' }] } });
  assert.equal(pairGold.statusCode, 400);
  assert.deepEqual(pairGold.json().issues.map((i: { field: string }) => i.field), ['gold']);
  const badGold = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: items(1), goldRankings: [{ ...goldRankings[1]!, ranking: [[2], [1]] }] } });
  assert.equal(badGold.statusCode, 400);
  assert.deepEqual(badGold.json().issues.map((i: { field: string }) => i.field), ['goldRankings[0].ranking']);
  const add = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs: items(2), goldRankings } });
  assert.equal(add.statusCode, 200, add.body);
  assert.deepEqual(add.json(), { added: 2, gold: 2 });
  // The labeler ranks the regular items by quality; on gold 0 swaps good and fair (best still
  // first: a top-1 match, τ-b (5 − 1) / 6); on gold 1 ranks x > y > z against y > x = z (no top-1
  // match; τ-b: (x,y) discordant, (y,z) concordant, (x,z) tied in gold: 0).
  // lab2 ranks every gold item exactly as known, and the regular items as lab does.
  for (const [H, exact] of [[L, false], [L2, true]] as const) {
    let seen = 0;
    for (;;) {
      const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: H })).json().assignment;
      if (!a) break;
      seen++;
      const n = (t: string) => a.answers.indexOf(t) + 1;
      const ranking = a.prompt === 'gold 0' ? [[n('best g')], [n(exact ? 'good g' : 'fair g')], [n(exact ? 'fair g' : 'good g')], [n('poor g')]]
        : a.prompt === 'gold 1' ? (exact ? [[n('y')], [n('x'), n('z')]] : [[n('x')], [n('y')], [n('z')]])
        : rankShown(a.answers, false);
      assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/label`, headers: H, payload: { ranking } })).statusCode, 200);
    }
    assert.equal(seen, 4);
  }
  const st = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/stats`, headers: A })).json();
  assert.equal(st.progress.goldPairs, 2);
  const [g, g2] = st.gold;
  assert.deepEqual([g.annotator, g.correct, g.total, g.accuracy, g.tauLabels], ['user:lab', 1, 2, 0.5, 2]);
  assert.ok(Math.abs(g.meanTau - (4 / 6 + 0) / 2) < 1e-12, JSON.stringify(g));
  assert.deepEqual([g2.annotator, g2.correct, g2.total, g2.meanTau], ['user:lab2', 2, 2, 1]);
  // Agreement between labelers is over the 2 regular items only: identical there (with the gold
  // items, where they differ, τ-b would fall below 1 over 4 comparisons).
  assert.deepEqual([st.ranking.comparisons, st.ranking.meanTau, st.ranking.pairwiseAgreement, st.alpha], [2, 1, 1, 1]);
  const me = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/me`, headers: L })).json().me;
  assert.deepEqual([me.goldAccuracy, me.goldLabels], [0.5, 2]);
  assert.ok(Math.abs(me.goldTau - 1 / 3) < 1e-12);
  // Preferences come from regular items only; the raw rankings mark the gold ones.
  const prefs = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=preferences`, headers: A })).body.trim().split('\n');
  assert.equal(prefs.length, 12);
  assert.ok(!prefs.some((l) => / g"/.test(l) || /"[xyz]"/.test(l)), 'no gold answer in the preferences');
  const raw = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=rankings`, headers: A })).body.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(raw.filter((r: { is_gold?: boolean }) => r.is_gold).map((r: { prompt: string }) => r.prompt).sort(), ['gold 0', 'gold 0', 'gold 1', 'gold 1']);

  // The setup route takes gold rankings as an uploaded JSONL ({prompt, responses, ranking} lines).
  const jsonl = [0, 1].map((i) => JSON.stringify({ prompt: `item ${i}`, responses: ['a', 'b', 'c'] })).join('\n');
  const goldJsonl = JSON.stringify({ prompt: 'known', responses: ['p', 'q', 'r'], ranking: [[3], [1], [2]] });
  const up = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: 'gold up', kind: 'ranking', goldRate: 0.3, source: { jsonl, fileName: 'items.jsonl' }, gold: { jsonl: goldJsonl, fileName: 'gold.jsonl' } } });
  assert.equal(up.statusCode, 201, up.body);
  assert.equal(up.json().gold, 1);
  const badUp = await s.app.inject({ method: 'POST', url: '/api/labeling/batches/setup', headers: A, payload: { name: 'gold bad', kind: 'ranking', goldRate: 0.3, source: { jsonl, fileName: 'items.jsonl' }, gold: { jsonl: JSON.stringify({ prompt: 'k', responses: ['p', 'q'], ranking: [[1], [1]] }), fileName: 'gold.jsonl' } } });
  assert.equal(badUp.statusCode, 400);
  assert.deepEqual(badUp.json().issues.map((i: { line: number; field: string }) => [i.line, i.field]), [[1, 'ranking[1]'], [1, 'ranking']]);
});
