// Ranking items in Debian's Chromium. A labeler ranks 50 four-answer items with the keyboard alone
// (number keys best first, `=` to tie, Backspace to take back, Enter to submit) and the test prints
// what that costs: time per label and keystrokes per label, beside the pairwise figure of
// labeling-keyboard.test.ts (2 keystrokes). Then an admin makes a ranking batch in the UI from an
// uploaded file, a labeler ranks by dragging, and the admin downloads the batch as a Hugging Face
// dataset folder (tar) with the button; the rankings stored are checked against the database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import YAML from 'yaml';
import { testServer } from '../server/helpers.js';
import { addPairs, createBatch, listBatches } from '../../src/labeling/batches.js';
import { untar } from '../../src/labeling/tar.js';
import { artifactsDir } from '../helpers/artifacts.js';
import { chromiumSkip, labelerPage, launchChromium } from '../helpers/chromium.js';

const N = 50;
// Stored item order; the quality the reader sees in each answer's text.
const ITEM_ORDER = ['fair', 'best', 'poor', 'good'];
const QUALITY: Record<string, number> = { best: 1, good: 2, fair: 3, poor: 4 };

test('50 four-way rankings by keyboard: time and keystrokes per label; ties and take-backs stored right', { skip: chromiumSkip, timeout: 240_000 }, async () => {
  const s = await testServer();
  const art = artifactsDir('labeling-ranking');
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const batch = createBatch(s.db, { name: 'rank 4', quota: 1, kind: 'ranking', pairRule: 'all' });
  addPairs(s.db, batch.id, Array.from({ length: N }, (_, i) => {
    const [a, b, ...rest] = ITEM_ORDER.map((q) => ({ text: `Question ${i}: a **${q}** answer (${q} ${i}).` }));
    return { prompt: `Question ${i}: rank these answers.`, a: a!, b: b!, rest };
  }));

  const browser = await launchChromium();
  try {
    const { page, errors, press, keys } = await labelerPage(browser, base, s.tokens.labeler, '#rank-task:not([hidden])');
    assert.equal(await page.isVisible('#pair-sides'), false, 'the pairwise sides are hidden for a ranking item');
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const prompt = (await page.textContent('#prompt'))!;
      const answers = await page.$$eval('#answers .side .md', (els) => els.map((e) => e.textContent ?? ''));
      assert.equal(answers.length, 4);
      // The reader ranks by the quality word in each answer; on every fifth item "good" and "fair"
      // look equally good to them (a tie: question numbers 0, 5, …); on the 8th and 32nd item they slip, and take the key back.
      const q = answers.map((t) => QUALITY[/\b(best|good|fair|poor)\b/.exec(t)![1]!]!);
      const pos = (quality: number) => String(q.indexOf(quality) + 1);
      const tie = Number(/Question (\d+)/.exec(prompt)![1]) % 5 === 0;
      if (i === 7 || i === 31) {
        await press(pos(4));
        assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), pos(4));
        await press('Backspace');
        assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), '');
      }
      await press(pos(1));
      await press(pos(2));
      if (tie) await press('=');
      await press(pos(3));
      // The fourth (worst) answer is ranked last by Enter.
      if (i === 0 || (tie && !fs.existsSync(path.join(art, 'ranking-4way-1400.png')))) {
        assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), tie ? `${pos(1)}>${pos(2)}=${pos(3)}` : `${pos(1)}>${pos(2)}>${pos(3)}`);
        if (tie) assert.match((await page.textContent(`#answer-${pos(3)} .rank-badge`))!, /rank 2 \(tie\)/);
        if (tie) await page.screenshot({ path: path.join(art, 'ranking-4way-1400.png'), fullPage: true });
      }
      await press('Enter');
      await page.waitForFunction((n) => document.getElementById('progress-text')?.textContent?.startsWith(`${n} / 50`), i + 1);
      if (i < N - 1) await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, prompt);
    }
    const wallMs = performance.now() - t0;
    const rows = s.db.$client.prepare(`SELECT p.prompt, l.ranking, l.duration_ms FROM labels l JOIN pairs p ON p.id = l.pair_id ORDER BY l.created_at`).all() as { prompt: string; ranking: string; duration_ms: number }[];
    assert.equal(rows.length, N);
    for (const r of rows) {
      const i = Number(/Question (\d+)/.exec(r.prompt)![1]);
      // Item order fair, best, poor, good: strict [3, 1, 4, 2]; with good = fair: [2, 1, 3, 2].
      assert.deepEqual(JSON.parse(r.ranking), i % 5 === 0 ? [2, 1, 3, 2] : [3, 1, 4, 2], r.prompt);
    }
    const durations = rows.map((r) => r.duration_ms).sort((a, b) => a - b);
    const median = durations[Math.floor(N / 2)]!;
    const perLabel = keys.count / N;
    console.log(`# 4-way ranking, ${N} labels by keyboard: ${(wallMs / N).toFixed(0)} ms per label wall clock (scripted reader, no think time), median shown-to-submit ${median} ms, ${perLabel.toFixed(2)} keystrokes per label (3 numbers + Enter; +1 for each of 10 ties, +2 for each of 2 take-backs)`);
    assert.equal(keys.count, N * 4 + 10 + 2 * 2);
    // Induced pairs: 6 per strict item, 5 per item with a tie.
    const prefs = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${batch.id}/export?what=preferences`, headers: { authorization: `Bearer ${s.tokens.admin}` } })).body.trim().split('\n');
    assert.equal(prefs.length, 40 * 6 + 10 * 5);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('an admin makes a ranking batch in the UI, a labeler ranks by dragging, the admin downloads the HF folder', { skip: chromiumSkip, timeout: 120_000 }, async () => {
  const s = await testServer();
  const art = artifactsDir('labeling-ranking');
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const file = path.join(art, 'items.jsonl');
  fs.writeFileSync(file, [0, 1].map((i) => JSON.stringify({ prompt: `Pick the best of three (${i})`, responses: [`fair ${i}`, `best ${i}`, `good ${i}`] })).join('\n') + '\n');

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(base + '/');
    await page.fill('#token', s.tokens.admin);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#admin:not([hidden])');
    await page.click('#new-batch-panel summary');
    await page.fill('#nb-name', 'ranked in the UI');
    await page.setInputFiles('#nb-file', file);
    await page.selectOption('#nb-kind', 'ranking');
    await page.selectOption('#nb-pair-rule', 'best_vs_rest');
    await page.fill('#nb-guidelines', 'Rank **correct** answers first.');
    await page.click('#nb-create');
    await page.waitForFunction(() => /Created "ranked in the UI": 2 ranking items/.test(document.getElementById('nb-msg')!.textContent ?? ''));
    const [b] = listBatches(s.db);
    assert.deepEqual([b!.kind, b!.pairRule], ['ranking', 'best_vs_rest']);

    // The admin labels too (admins may): by dragging answers into the order bar.
    await page.click('#nav-label');
    await page.waitForSelector('#rank-task:not([hidden])');
    for (let item = 0; item < 2; item++) {
      const prompt = (await page.textContent('#prompt'))!;
      const answers = await page.$$eval('#answers .side .md', (els) => els.map((e) => (e.textContent ?? '').trim()));
      const n = (word: string) => answers.findIndex((t) => t.startsWith(word)) + 1;
      // Drag best to the front, fair after it; then drop good onto fair's group: a tie.
      await page.dragAndDrop(`#answer-${n('best')}`, '.rank-gap[data-gap="0"]');
      await page.dragAndDrop(`#rank-pool .chip[data-n="${n('fair')}"]`, '.rank-gap[data-gap="1"]');
      await page.dragAndDrop(`#answer-${n('good')}`, '.rank-group[data-group="1"]');
      assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), `${n('best')}>${n('fair')}=${n('good')}`);
      if (item === 0) {
        // Dragging a ranked answer back to the pool unranks it; Enter then ranks the one left last.
        await page.dragAndDrop(`#rank-order .chip[data-n="${n('good')}"]`, '#rank-pool');
        assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), `${n('best')}>${n('fair')}`);
        await page.screenshot({ path: path.join(art, 'ranking-drag-1400.png'), fullPage: true });
      }
      await page.keyboard.press('Enter');
      if (item === 0) await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, prompt);
    }
    await page.waitForFunction(() => /Nothing left/.test(document.getElementById('empty')?.textContent ?? ''));
    const stored = (s.db.$client.prepare(`SELECT p.prompt, l.ranking FROM labels l JOIN pairs p ON p.id = l.pair_id ORDER BY p.prompt`).all() as { prompt: string; ranking: string }[]).map((r) => JSON.parse(r.ranking));
    // Item order fair, best, good: item 0 best > fair > good, item 1 best > fair = good.
    assert.deepEqual(stored, [[2, 1, 3], [2, 1, 2]]);

    // The admin's figures and the Hugging Face folder download.
    await page.click('#nav-admin');
    await page.waitForSelector('.rank-only:not([hidden])');
    assert.equal(await page.isVisible('#ex-rankings'), true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ex-hf')]);
    assert.match(download.suggestedFilename(), /^ranked-in-the-ui-b-.*\.tar$/);
    const tarPath = path.join(art, download.suggestedFilename());
    await download.saveAs(tarPath);
    const files = untar(fs.readFileSync(tarPath));
    const byName = new Map([...files].map(([k, v]) => [k.split('/').slice(1).join('/'), v.toString('utf8')]));
    assert.deepEqual([...byName.keys()].sort(), ['README.md', 'labels.jsonl', 'preferences.jsonl', 'rankings.jsonl']);
    // best_vs_rest: best against fair and good, on both items.
    assert.equal(byName.get('preferences.jsonl')!.trim().split('\n').length, 4);
    const card = byName.get('README.md')!;
    assert.match(card, /Rank \*\*correct\*\* answers first\./, 'guidelines in the card');
    assert.match(card, /pair rule \*\*best_vs_rest\*\*/);
    assert.equal(YAML.parse(/^---\n([\s\S]*?)\n---\n/.exec(card)![1]!).dataset_info[0].splits[0].num_examples, 4);
    assert.match((await page.textContent('#ex-msg'))!, /Downloaded ranked-in-the-ui-/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('4-way rankings with suggestions: the scores\' order pre-fills the bar, Enter accepts it, typing ranks afresh; keystrokes per label; the admin sees follows and τ-b', { skip: chromiumSkip, timeout: 180_000 }, async () => {
  const s = await testServer();
  const art = artifactsDir('labeling-ranking');
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const n = 20;
  const batch = createBatch(s.db, { name: 'rank 4 suggested', quota: 1, kind: 'ranking', suggestions: true });
  // The scorer agrees with the reader (score −quality) except on items 4, 9, 14, 19, where it puts
  // "good" above "best"; on items 2, 7, 12, 17 it scores "good" and "fair" equal (a suggested tie,
  // which the reader accepts).
  const score = (q: string, i: number) => (i % 5 === 4 && q === 'best' ? -2 : i % 5 === 4 && q === 'good' ? -1 : i % 5 === 2 && q === 'fair' ? -2 : -QUALITY[q]!);
  addPairs(s.db, batch.id, Array.from({ length: n }, (_, i) => {
    const [a, b, ...rest] = ITEM_ORDER.map((q) => ({ text: `Question ${i}: a **${q}** answer (${q} ${i}).`, score: score(q, i) }));
    return { prompt: `Question ${i}: rank these answers.`, a: a!, b: b!, rest };
  }));

  const browser = await launchChromium();
  try {
    const { page, errors, press, keys } = await labelerPage(browser, base, s.tokens.labeler, '#rank-task:not([hidden])');
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const prompt = (await page.textContent('#prompt'))!;
      const qn = Number(/Question (\d+)/.exec(prompt)![1]);
      const answers = await page.$$eval('#answers .side .md', (els) => els.map((e) => e.textContent ?? ''));
      const q = answers.map((t) => /\b(best|good|fair|poor)\b/.exec(t)![1]!);
      const pos = (word: string) => String(q.indexOf(word) + 1);
      // The order bar holds the suggestion before any key is pressed.
      const suggested = qn % 5 === 4 ? `${pos('good')}>${pos('best')}>${pos('fair')}>${pos('poor')}` : qn % 5 === 2 ? `${pos('best')}>${[pos('good'), pos('fair')].sort().join('=')}>${pos('poor')}` : `${pos('best')}>${pos('good')}>${pos('fair')}>${pos('poor')}`;
      assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), suggested, prompt);
      assert.match((await page.textContent('#suggestion'))!, /^Pre-filled: the judge's order is [1-4]( [>=] [1-4]){3} \(scores 1: -?\d/);
      if (qn % 5 === 4) {
        // The reader disagrees: the first number typed starts the order afresh.
        await press(pos('best'));
        assert.equal(await page.getAttribute('#rank-order', 'data-ranking'), pos('best'));
        await press(pos('good'));
        await press(pos('fair'));
        if (qn === 4) await page.screenshot({ path: path.join(art, 'ranking-suggested-override-1400.png'), fullPage: true });
      } else if (qn === 2) await page.screenshot({ path: path.join(art, 'ranking-suggested-1400.png'), fullPage: true });
      await press('Enter');
      await page.waitForFunction((k) => document.getElementById('progress-text')?.textContent?.startsWith(`${k} / ${20}`), i + 1);
      if (i < n - 1) await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, prompt);
    }
    const wallMs = performance.now() - t0;
    console.log(`# 4-way ranking with suggestions, ${n} labels by keyboard: ${(wallMs / n).toFixed(0)} ms per label wall clock, ${(keys.count / n).toFixed(2)} keystrokes per label (Enter accepts the suggested order; 4 of ${n} re-ranked with 3 numbers + Enter)`);
    assert.equal(keys.count, (n - 4) * 1 + 4 * 4);
    const rows = s.db.$client.prepare(`SELECT p.prompt, l.ranking, l.suggested_ranking FROM labels l JOIN pairs p ON p.id = l.pair_id`).all() as { prompt: string; ranking: string; suggested_ranking: string }[];
    assert.equal(rows.length, n);
    for (const r of rows) {
      const qn = Number(/Question (\d+)/.exec(r.prompt)![1]);
      // Item order fair, best, poor, good.
      const sug = qn % 5 === 4 ? [3, 2, 4, 1] : qn % 5 === 2 ? [2, 1, 3, 2] : [3, 1, 4, 2];
      assert.deepEqual(JSON.parse(r.suggested_ranking), sug, r.prompt);
      assert.deepEqual(JSON.parse(r.ranking), qn % 5 === 4 ? [3, 1, 4, 2] : sug, r.prompt);
    }
    // The admin's figures: 16 of 20 follow exactly; τ-b 1 on those, 2/3 on the 4 re-ranked (one
    // answer pair of six swapped): mean (16 + 4 · 2/3) / 20 = 0.933.
    await page.click('#logout');
    await page.fill('#token', s.tokens.admin);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /80\.0% of 20, τ-b 0\.933/.test(document.getElementById('fig-follow')?.textContent ?? ''));
    assert.deepEqual(await page.$$eval('#follow tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent))), [['user:lab', '16 / 20', '80.0%', '0.933']]);
    assert.equal(await page.isVisible('#follow-tau-head'), true);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
