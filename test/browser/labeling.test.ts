// End-to-end in Debian's Chromium: a labeler labels five pairs with the keyboard only, undoes one
// and sees progress move; an admin sees the agreement figures; a <script> in a response is text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { testServer } from '../server/helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { nextAssignment, submitLabel } from '../../src/labeling/queue.js';
import { addUser } from '../../src/labeling/users.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const skip = chromiumSkip;

test('label with the keyboard, undo, progress, admin figures, no script from model text', { skip, timeout: 120_000 }, async () => {
  const s = await testServer();
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;

  const batch = createBatch(s.db, { name: 'browser batch', quota: 2, guidelines: 'Prefer the **correct** answer.' });
  const evil = 'Here you go <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> done';
  addPairs(s.db, batch.id, [
    { prompt: 'Say hi', a: { text: evil }, b: { text: evil } },
    ...Array.from({ length: 10 }, (_, i) => ({ prompt: `Question ${i}: what is ${i} + ${i}?`, a: { text: `It is **${2 * i}**.` }, b: { text: `It is \`${2 * i + 1}\`. ${evil}` } })),
  ]);
  // two other labelers labeled before (ann every pair, bob four of them, once disagreeing), so the
  // admin has agreement figures to see. The queue hands out least-labeled pairs first.
  for (const [name, count] of [['ann', 11], ['bob', 4]] as const) {
    const u = addUser(s.db, name, 'labeler').user;
    for (let k = 0; k < count; k++) {
      const a = nextAssignment(s.db, batch.id, u)!;
      const better = a.left.includes('**') ? 'left' : 'right';
      const choice = name === 'bob' && k === 3 ? (better === 'left' ? 'right' : 'left') : better;
      submitLabel(s.db, a.assignmentId, u, { choice, durationMs: 2000 + k });
    }
  }

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const remote: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) remote.push(r.url());
    });
    await page.goto(base + '/');
    // keyboard only: the token field has focus
    await page.keyboard.type(s.tokens.labeler);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#task:not([hidden])');
    const progress = () => page.textContent('#progress-text');
    assert.match((await progress())!, /^15 \/ 22 labels/);

    // the first pair shows the <script> response as text and nothing ran
    // every pair has the <script> text on one side
    const shown = (await page.textContent('#left'))! + (await page.textContent('#right'))!;
    assert.ok(shown.includes('<script>window.__pwned = 1</script>'), shown);
    assert.equal(await page.locator('#left script, #left img, #right script, #right img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

    // guidelines are one key away
    await page.keyboard.press('?');
    await page.waitForSelector('#guidelines:not([hidden])');
    assert.ok((await page.innerHTML('#guidelines-text')).includes('<strong>correct</strong>'));
    await page.keyboard.press('Escape');
    await page.waitForSelector('#guidelines', { state: 'hidden' });

    const keys = ['1', '2', 't', 'b', '1'];
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const prompt = (await page.textContent('#prompt'))!;
      seen.push(prompt);
      await page.keyboard.press(keys[i]!);
      await page.keyboard.press('Enter');
      await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p || !document.getElementById('empty')?.hidden, prompt);
      await page.waitForFunction((n) => document.getElementById("progress-text")?.textContent?.startsWith(`${n} / 22`), 16 + i);
    }
    assert.equal(new Set(seen).size, 5);
    assert.match((await page.textContent('#mine'))!, /you: 5/);
    const labels = s.db.$client.prepare("SELECT decision, shown_left FROM labels WHERE source = 'user:lab' ORDER BY created_at").all() as { decision: string; shown_left: string }[];
    assert.equal(labels.length, 5);
    // screen choices were stored in response terms
    assert.equal(labels[0]!.decision, labels[0]!.shown_left);
    assert.notEqual(labels[1]!.decision, labels[1]!.shown_left);
    assert.deepEqual([labels[2]!.decision, labels[3]!.decision], ['tie', 'both_bad']);

    // undo the last one: the pair comes back with the old answer selected, progress goes down
    await page.keyboard.press('u');
    await page.waitForFunction(() => document.getElementById('progress-text')?.textContent?.startsWith('19 / 22'));
    assert.equal(await page.textContent('#prompt'), seen[4]);
    assert.equal(await page.getAttribute('[data-choice="left"]', 'aria-pressed'), 'true');
    assert.equal((s.db.$client.prepare("SELECT count(*) AS n FROM labels WHERE source = 'user:lab'").get() as { n: number }).n, 4);
    // skip with a reason, keyboard only
    await page.keyboard.press('s');
    await page.keyboard.type('I cannot judge arithmetic today');
    await page.keyboard.press('Enter');
    await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, seen[4]);
    const skipped = s.db.$client.prepare("SELECT skip_reason FROM assignments WHERE status = 'skipped'").get() as { skip_reason: string };
    assert.equal(skipped.skip_reason, 'I cannot judge arithmetic today');

    // the admin sees the agreement figures
    await page.click('#logout');
    await page.fill('#token', s.tokens.admin);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#stats:not([hidden])');
    await page.waitForFunction(() => document.getElementById('fig-alpha')?.textContent !== '');
    const alpha = await page.textContent('#fig-alpha');
    const kappa = await page.textContent('#fig-kappa');
    assert.match(alpha!, /^-?\d\.\d{3}$/, `alpha shown: ${alpha}`);
    assert.match(kappa!, /^-?\d\.\d{3}$/, `kappa shown: ${kappa}`);
    assert.match((await page.textContent('#fig-bias'))!, /%/);
    assert.ok((await page.locator('#kappa tbody tr').count()) >= 1);
    assert.equal(await page.locator('#kappa tbody td.none').count(), 0);
    assert.ok((await page.locator('#time tbody tr').count()) >= 3);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(errors, []);
    assert.deepEqual(remote, []);
  } finally {
    await browser.close();
  }
});
