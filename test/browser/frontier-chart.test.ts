// The compare page's reward–KL chart in Debian's Chromium, with a crowded frontier (14 points, two
// on the same spot, one far right): the rendered label boxes (getBBox) never overlap each other or
// a marker, and all lie inside the SVG. Also a chart too small for the names: numbers and the
// "n = name" list, equally clear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { compareReports } from '../../src/eval/compare.js';
import { renderCompareHtml } from '../../src/eval/compare-html.js';
import { scatterChart } from '../../src/eval/svg.js';
import { crowdedItems } from '../eval/crowded-frontier.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

interface R { text: string; x: number; y: number; w: number; h: number }

async function measure(page: Page, svgSel: string) {
  return page.evaluate((sel) => {
    // No named inner function: tsx's __name helper does not exist in the page.
    const svg = document.querySelector(sel) as SVGSVGElement;
    const boxes = Array.from(svg.querySelectorAll<SVGGraphicsElement>('text.lb, text.key, circle')).map((e) => {
      const b = e.getBBox();
      return { text: e.textContent ?? '', circle: e.tagName === 'circle', x: b.x, y: b.y, w: b.width, h: b.height };
    });
    return { vb: { width: svg.viewBox.baseVal.width, height: svg.viewBox.baseVal.height }, labels: boxes.filter((b) => !b.circle), markers: boxes.filter((b) => b.circle) };
  }, svgSel);
}

const overlap = (a: R, b: R) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

function assertClear(m: Awaited<ReturnType<typeof measure>>) {
  const { vb, labels, markers } = m;
  for (const [i, a] of labels.entries()) {
    assert.ok(a.w > 0, `${a.text} drawn`);
    assert.ok(a.x >= 0 && a.y >= 0 && a.x + a.w <= vb.width && a.y + a.h <= vb.height, `${a.text} inside the SVG: ${JSON.stringify(a)} in ${vb.width}×${vb.height}`);
    for (const b of labels.slice(i + 1)) assert.ok(!overlap(a, b), `"${a.text}" ${JSON.stringify(a)} overlaps "${b.text}" ${JSON.stringify(b)}`);
    for (const c of markers) assert.ok(!overlap(a, c), `"${a.text}" covers a marker at ${c.x + 5},${c.y + 5}`);
  }
}

test('crowded frontier in Chromium: no two labels overlap, none covers a marker, all inside the SVG', { skip: chromiumSkip, timeout: 60_000 }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const items = crowdedItems();
    await page.setContent(renderCompareHtml(compareReports(items)));
    const m = await measure(page, '#frontier svg');
    assert.deepEqual([m.vb.width, m.vb.height], [640, 420]);
    assert.equal(m.markers.length, items.length + 1, 'the models and the baseline');
    assert.deepEqual(m.labels.map((l) => l.text).sort(), ['baseline', ...items.map((i) => i.runId.slice('frontier/'.length))].sort(), 'every model named in full (no numbers needed at 640×420)');
    assertClear(m);
    assert.equal(await page.getAttribute('#frontier svg', 'data-scale'), 'sqrt');

    // Too small for the names: numbers at the points, the names listed under the chart.
    const pts = items.map((it, i) => ({ name: it.runId, x: [0.2, 0.21, 0.19, 0.5][i % 4]!, y: 0.5 + (i % 3) * 0.01 }));
    await page.setContent(`<style>body{font:14px/1.45 system-ui,sans-serif}.tk{font-size:10px}</style>${scatterChart('small', pts, { xLabel: 'x', yLabel: 'y', w: 260, h: 160 })}`);
    const s = await measure(page, 'svg');
    const keys = s.labels.filter((l) => / = /.test(l.text));
    assert.ok(keys.length > 0, 'some names listed under the chart');
    assertClear(s);
  } finally {
    await browser.close();
  }
});
