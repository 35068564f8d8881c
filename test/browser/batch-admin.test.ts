// Batch administration in Debian's Chromium, no curl: an admin makes a batch from an uploaded TRL
// JSONL (with gold pairs, overlap, a per-labeler quota, guidelines and one assigned labeler), is
// told exactly which line of a bad file is wrong (and no batch is left behind), makes a second
// batch from a run's pairs artifact, pauses and resumes, reassigns labelers, exports and closes.
// The queue then behaves as set: the unassigned labeler is refused, the quota stops the assigned one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { nextAssignment, submitLabel } from '../../src/labeling/queue.js';
import { batchProgress, listBatches } from '../../src/labeling/batches.js';
import { batchLabelers } from '../../src/labeling/admin.js';
import { preferenceRecords, toJsonl } from '../../src/labeling/export.js';
import { tmpDir } from '../helpers/tmp.js';
import { artifactsDir } from '../helpers/artifacts.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

test('an admin creates, fills, assigns, pauses, exports and closes batches in the UI', { skip: chromiumSkip, timeout: 120_000 }, async (t) => {
  const home = tmpDir('alignflow-admin-');
  const art = artifactsDir('batch-admin');
  const db = openDb(path.join(home, 'alignflow.db'));
  const store = createLocalStore(db, home);
  const app = await buildServer({ db, home, store });
  t.after(async () => {
    await app.close();
    db.$client.close();
  });
  const admin = addUser(db, 'root', 'admin');
  const lab = addUser(db, 'lab', 'labeler');
  const other = addUser(db, 'other', 'labeler');
  addUser(db, 'view', 'viewer');
  // A collect stage's output, as a run would have stored it.
  const pairsLines = Array.from({ length: 3 }, (_, i) => JSON.stringify({
    pair_id: `p-art${i}`, prompt: `Artifact prompt ${i}`,
    response_a: { id: `r-a${i}`, text: `first ${i}`, model: null, sampling: null, seed: null, score: null },
    response_b: { id: `r-b${i}`, text: `second ${i}`, model: null, sampling: null, seed: null, score: null },
  }));
  const pairsArt = await store.put({ kind: 'pairs', name: 'collect pairs', files: [{ path: 'pairs.jsonl', data: Buffer.from(pairsLines.join('\n') + '\n') }], metadata: { pairs: 3 } });

  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const uploads = path.join(home, 'uploads');
  fs.mkdirSync(uploads);
  const prefs = Array.from({ length: 6 }, (_, i) => ({ prompt: `Question ${i}?`, chosen: `Good answer ${i}`, rejected: `Bad answer ${i}` }));
  prefs[5] = { prompt: [{ role: 'user', content: 'Chat question?' }], chosen: [{ role: 'assistant', content: 'Chat good' }], rejected: [{ role: 'assistant', content: 'Chat bad' }] } as never;
  // A conversational line among string ones is refused, so the good file is all strings but the last.
  const good = path.join(uploads, 'prefs.jsonl');
  fs.writeFileSync(good, prefs.slice(0, 5).map((r) => JSON.stringify(r)).join('\n') + '\n');
  const gold = path.join(uploads, 'gold.jsonl');
  fs.writeFileSync(gold, [0, 1].map((i) => JSON.stringify({ prompt: `Gold ${i}?`, chosen: 'right', rejected: 'wrong' })).join('\n') + '\n');
  const bad = path.join(uploads, 'bad.jsonl');
  fs.writeFileSync(bad, JSON.stringify(prefs[0]) + '\n' + JSON.stringify({ prompt: 'Q', chosen: 'A', rejected: 7 }) + '\n');

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('dialog', (d) => d.accept());
    await page.goto(base + '/');
    await page.fill('#token', admin.token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#admin:not([hidden])');
    await page.click('#new-batch-panel summary');
    await page.waitForSelector('#nb-labelers input[value="' + lab.user.id + '"]');
    assert.equal(await page.locator('#nb-labelers input').count(), 3, 'labelers and admins are offered, viewers not');
    assert.match((await page.textContent('#nb-artifact'))!, /pairs: collect pairs, 3 records/);

    // A bad file: the line and field are named, and nothing is created.
    await page.fill('#nb-name', 'bad upload');
    await page.setInputFiles('#nb-file', bad);
    await page.click('#nb-create');
    await page.waitForFunction(() => document.getElementById('nb-msg')!.className === 'error');
    assert.match((await page.textContent('#nb-msg'))!, /bad\.jsonl.*line 2, field "rejected"/);
    assert.equal(listBatches(db).length, 0, 'no batch left behind');

    // The real upload, with every setting.
    await page.fill('#nb-name', 'uploaded prefs');
    await page.setInputFiles('#nb-file', good);
    await page.fill('#nb-quota', '2');
    await page.fill('#nb-labeler-quota', '2');
    await page.fill('#nb-gold-rate', '0.25');
    await page.setInputFiles('#nb-gold', gold);
    await page.fill('#nb-lease', '5');
    await page.check(`#nb-labelers input[value="${lab.user.id}"]`);
    await page.fill('#nb-guidelines', 'Prefer the **correct** answer.');
    await page.click('#nb-create');
    await page.waitForFunction(() => /Created/.test(document.getElementById('nb-msg')!.textContent ?? ''));
    assert.match((await page.textContent('#nb-msg'))!, /Created "uploaded prefs": 5 pairs \+ 2 gold/);
    const [b1] = listBatches(db);
    assert.ok(b1);
    assert.deepEqual({ quota: b1.quota, labelerQuota: b1.labelerQuota, goldRate: b1.goldRate, leaseSeconds: b1.leaseSeconds, guidelines: b1.guidelines },
      { quota: 2, labelerQuota: 2, goldRate: 0.25, leaseSeconds: 300, guidelines: 'Prefer the **correct** answer.' });
    assert.deepEqual(batchLabelers(db, b1.id), [lab.user.id]);
    assert.equal(batchProgress(db, b1.id).pairs, 5);
    assert.equal(batchProgress(db, b1.id).goldPairs, 2);
    await page.waitForSelector(`#batches tr[data-batch="${b1.id}"]`);

    // From a run's pairs artifact.
    await page.fill('#nb-name', 'from collect');
    await page.check('input[name="nb-from"][value="artifact"]');
    await page.selectOption('#nb-artifact', pairsArt.id);
    await page.click('#nb-create');
    await page.waitForFunction(() => /Created "from collect"/.test(document.getElementById('nb-msg')!.textContent ?? ''));
    const b2 = listBatches(db).find((b) => b.name === 'from collect')!;
    assert.equal(batchProgress(db, b2.id).pairs, 3);
    assert.deepEqual(batchLabelers(db, b2.id), [], 'no one ticked: open to everyone');

    // The queue does what was set: only lab may label b1, and only two labels.
    assert.throws(() => nextAssignment(db, b1.id, other.user), /not among the labelers/);
    for (let i = 0; i < 2; i++) {
      const a = nextAssignment(db, b1.id, lab.user)!;
      submitLabel(db, a.assignmentId, lab.user, { choice: a.left.startsWith('Good') || a.left === 'right' ? 'left' : 'right' });
    }
    assert.equal(nextAssignment(db, b1.id, lab.user), null, 'quota of 2 labels reached');

    // Pause and resume from the batch row.
    await page.click(`#batches tr[data-batch="${b2.id}"] button:text("Pause")`);
    await page.waitForFunction((id) => /paused/.test(document.querySelector(`#batches tr[data-batch="${id}"]`)?.textContent ?? ''), b2.id);
    assert.equal(listBatches(db).find((b) => b.id === b2.id)!.status, 'paused');
    assert.equal(nextAssignment(db, b2.id, other.user), null, 'a paused batch hands out nothing');
    await page.click(`#batches tr[data-batch="${b2.id}"] button:text("Resume")`);
    await page.waitForFunction((id) => /open/.test(document.querySelector(`#batches tr[data-batch="${id}"]`)?.textContent ?? ''), b2.id);
    assert.ok(nextAssignment(db, b2.id, other.user), 'resumed');

    // Reassign b1's labelers: lab and other.
    await page.click(`#batches tr[data-batch="${b1.id}"] td:first-child`);
    await page.waitForFunction(() => /uploaded prefs/.test(document.getElementById('stats-title')?.textContent ?? ''));
    // b1's own list (lab ticked) replaces the one of the batch selected before.
    await page.waitForFunction((id) => (document.querySelector(`#bl-list input[value="${id}"]`) as HTMLInputElement | null)?.checked === true, lab.user.id);
    assert.equal(await page.isChecked(`#bl-list input[value="${other.user.id}"]`), false);
    await page.check(`#bl-list input[value="${other.user.id}"]`);
    await page.click('#batch-labelers button[type="submit"]');
    await page.waitForFunction(() => /Saved: 2 labeler/.test(document.getElementById('bl-msg')?.textContent ?? ''));
    assert.deepEqual(batchLabelers(db, b1.id), [lab.user.id, other.user.id].sort());

    // Export: the downloaded file is the API's TRL preference JSONL.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ex-prefs')]);
    const file = path.join(art, 'preferences.jsonl');
    await download.saveAs(file);
    const got = fs.readFileSync(file, 'utf8');
    assert.equal(got, toJsonl(preferenceRecords(db, b1.id, 'majority').records));
    assert.ok(got.trim().split('\n').length >= 1, 'labeled regular pairs are exported (gold pairs never are)');
    for (const l of got.trim().split('\n')) assert.match(JSON.parse(l).chosen, /^Good answer/);

    // Items: filter by labeler, search, and one item's history.
    await page.selectOption('#it-labeler', lab.user.id);
    await page.waitForFunction(() => document.getElementById('it-count')?.textContent === '2 item(s)');
    await page.click('#items tbody tr:first-child');
    await page.waitForSelector('#item-history:not([hidden])');
    const events = await page.$$eval('#ih-events tbody tr', (trs) => trs.map((t) => Array.from(t.querySelectorAll('td')).slice(1).map((td) => td.textContent)));
    assert.equal(events.length, 2, 'shown, then labeled');
    assert.deepEqual(events[0]!.slice(0, 2), ['shown', 'lab']);
    assert.equal(events[1]![1], 'user:lab');
    assert.match(events[1]![0]!, /is better/);
    await page.selectOption('#it-labeler', '');
    await page.fill('#it-q', 'QUESTION 3');
    await page.waitForFunction(() => document.getElementById('it-count')?.textContent === '1 item(s)');
    assert.match((await page.textContent('#items tbody'))!, /Question 3\?/);
    await page.fill('#it-q', '');
    await page.selectOption('#it-filter', 'gold');
    await page.waitForFunction(() => document.getElementById('it-count')?.textContent === '2 item(s)');

    await page.screenshot({ path: path.join(art, 'batch-admin-1400.png'), fullPage: true });
    // Close from the row (the confirm dialog is accepted).
    await page.click(`#batches tr[data-batch="${b1.id}"] button:text("Close")`);
    await page.waitForFunction((id) => /closed/.test(document.querySelector(`#batches tr[data-batch="${id}"]`)?.textContent ?? ''), b1.id);
    assert.equal(listBatches(db).find((b) => b.id === b1.id)!.status, 'closed');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
