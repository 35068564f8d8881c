// A labeler labels 50 pairs with the keyboard alone, and the test reports what that costs: time per
// label (wall clock in Chromium, and the page's own shown-to-submitted durations) and keystrokes per
// label. Figures are printed, not asserted (time depends on the machine). On the way it checks that
// chat-formatted pairs (message lists) render as a conversation: roles, turns, code blocks, the
// system prompt folded, and a <script> in a turn inert.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { testServer } from '../server/helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { storedContent } from '../../src/labeling/sources.js';
import { artifactsDir } from '../helpers/artifacts.js';
import { chromiumSkip, labelerPage, launchChromium } from '../helpers/chromium.js';

const N = 50;

test('50 pairwise labels by keyboard: time and keystrokes per label; chat pairs render as a conversation', { skip: chromiumSkip, timeout: 180_000 }, async () => {
  const s = await testServer();
  const art = artifactsDir('labeling-keyboard');
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const batch = createBatch(s.db, { name: 'keyboard', quota: 1 });
  const chat = (i: number) => ({
    prompt: storedContent([
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: `Write code that adds ${i} and 1.` },
      { role: 'assistant', content: 'In which language?' },
      { role: 'user', content: 'JavaScript <script>window.__pwned = 1</script>' },
    ]),
    a: { text: storedContent([{ role: 'assistant', content: '```js\nconst x = ' + i + ' + 1;\n```' }]) },
    b: { text: storedContent([{ role: 'assistant', content: `It is ${i + 1}.` }]) },
  });
  addPairs(s.db, batch.id, Array.from({ length: N }, (_, i) => (i % 5 === 0 ? chat(i) : { prompt: `Question ${i}: what is ${i} + 1?`, a: { text: `It is **${i + 1}**.` }, b: { text: `It is ${i + 2}.` } })));

  const browser = await launchChromium();
  try {
    const { page, errors, press, keys } = await labelerPage(browser, base, s.tokens.labeler, '#task:not([hidden])');
    let chats = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const prompt = (await page.textContent('#prompt'))!;
      if (await page.$('#prompt .chat')) {
        chats++;
        assert.deepEqual(await page.$$eval('#prompt .turn', (ts) => ts.map((t) => t.className)), ['turn system', 'turn user', 'turn assistant', 'turn user']);
        assert.equal(await page.isVisible('#prompt details.turn.system .md'), false, 'the system prompt is folded');
        assert.match((await page.textContent('#prompt .turn.user .role'))!, /user/);
        const code = (await page.$('#left pre code')) ?? (await page.$('#right pre code'));
        assert.ok(code, 'the code block is a code block');
        assert.ok((await page.textContent('#prompt'))!.includes('<script>window.__pwned = 1</script>'), 'markup in a turn is text');
        if (chats === 1) await page.screenshot({ path: path.join(art, 'chat-pair-1400.png'), fullPage: true });
      }
      // The reader picks the side with the right sum (bold / code), as a person would.
      const leftGood = /\*\*|const x|<strong>|<code>/.test(await page.innerHTML('#left'));
      await press(leftGood ? '1' : '2');
      await press('Enter');
      await page.waitForFunction((n) => document.getElementById('progress-text')?.textContent?.startsWith(`${n} / ${50}`), i + 1);
      // Prompts are distinct, so a changed prompt means the next pair is on screen.
      if (i < N - 1) await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, prompt);
    }
    const wallMs = performance.now() - t0;
    const rows = s.db.$client.prepare("SELECT decision, shown_left, duration_ms FROM labels WHERE source = 'user:lab'").all() as { decision: string; shown_left: string; duration_ms: number }[];
    assert.equal(rows.length, N);
    assert.equal(chats, N / 5);
    // Every label picked the response with the right answer (response a in this batch).
    assert.ok(rows.every((r) => r.decision === 'a'), 'keyboard choices are stored in response terms');
    const durations = rows.map((r) => r.duration_ms).sort((a, b) => a - b);
    const median = durations[Math.floor(N / 2)]!;
    console.log(`# pairwise, ${N} labels by keyboard: ${(wallMs / N).toFixed(0)} ms per label wall clock (scripted reader, no think time), median shown-to-submit ${median} ms, ${(keys.count / N).toFixed(2)} keystrokes per label`);
    assert.equal(keys.count / N, 2, 'one key to choose, Enter to submit');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('with suggestions the pick is pre-selected: Enter accepts it, one key overrides it; the admin sees the follow rate', { skip: chromiumSkip, timeout: 120_000 }, async () => {
  const s = await testServer();
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const batch = createBatch(s.db, { name: 'suggested', quota: 1, suggestions: true });
  const n = 10;
  addPairs(s.db, batch.id, Array.from({ length: n }, (_, i) => ({ prompt: `Q${i}: ${i} + 1?`, a: { text: `${i + 1}`, score: 2 }, b: { text: `${i + 2}`, score: -1 } })));
  const browser = await launchChromium();
  try {
    const { page, press, keys } = await labelerPage(browser, base, s.tokens.labeler, '#task:not([hidden])');
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const prompt = (await page.textContent('#prompt'))!;
      assert.match((await page.textContent('#suggestion'))!, /Pre-selected: the judge's pick is [AB] \(scores A (2\.00|-1\.00), B (2\.00|-1\.00)\)/);
      const pressed = await page.getAttribute('[data-choice="left"]', 'aria-pressed') === 'true' ? 'left' : await page.getAttribute('[data-choice="right"]', 'aria-pressed') === 'true' ? 'right' : null;
      const good = (await page.textContent('#left'))!.trim() === String(Number(prompt.slice(1).split(':')[0]) + 1) ? 'left' : 'right';
      assert.equal(pressed, good, `the higher-scored side is pre-selected: ${prompt} / ${await page.textContent('#left')} / ${await page.textContent('#right')}`);
      // The reader disagrees on pairs 3 and 7 (one key to change the choice), accepts the rest.
      if (i === 3 || i === 7) await press(good === 'left' ? '2' : '1');
      await press('Enter');
      await page.waitForFunction((k) => document.getElementById('progress-text')?.textContent?.startsWith(`${k} / `), i + 1);
      if (i < n - 1) await page.waitForFunction((p) => document.getElementById('prompt')?.textContent !== p, prompt);
    }
    const wallMs = performance.now() - t0;
    console.log(`# pairwise with suggestions, ${n} labels: ${(wallMs / n).toFixed(0)} ms per label wall clock, ${(keys.count / n).toFixed(2)} keystrokes per label (2 of ${n} overridden)`);
    const rows = s.db.$client.prepare("SELECT decision, suggested FROM labels").all() as { decision: string; suggested: string }[];
    assert.equal(rows.length, n);
    assert.equal(rows.filter((r) => r.decision === r.suggested).length, n - 2);
    // The admin's figures show the follow rate.
    await page.click('#logout');
    await page.fill('#token', s.tokens.admin);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /80\.0% of 10/.test(document.getElementById('fig-follow')?.textContent ?? ''));
  } finally {
    await browser.close();
  }
});
