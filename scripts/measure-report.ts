// Measures a report HTML file as a reader meets it in Chromium at 1400 px width: file size, page
// height, first contentful paint and load time (median of several loads), number of charts drawn
// visibly. Used for docs/eval.md's before/after figures:
//   npx tsx scripts/measure-report.ts FILE.html [more.html ...] [--shot OUT.png]
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const shotAt = args.indexOf('--shot');
const shot = shotAt >= 0 ? args.splice(shotAt, 2)[1] : undefined;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
try {
  // Loads alternate between the files, so a burst of load on a shared machine hits them alike.
  const repeat = Number(process.env.REPEAT ?? 11);
  const acc = new Map(args.map((f) => [f, { fcps: [] as number[], loads: [] as number[], height: 0, charts: 0, visible: 0 }]));
  for (let i = 0; i < repeat; i++) {
    for (const file of args) {
      const a = acc.get(file)!;
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto('file://' + fs.realpathSync(file), { waitUntil: 'load' });
      const m = await page.evaluate(() => {
        const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN;
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const svgs = [...document.querySelectorAll('svg.chart')];
        return { fcp, load: nav.loadEventEnd, height: document.documentElement.scrollHeight, charts: svgs.length, visible: svgs.filter((s) => s.checkVisibility()).length };
      });
      a.fcps.push(m.fcp); a.loads.push(m.load); a.height = m.height; a.charts = m.charts; a.visible = m.visible;
      if (shot && i === 0 && file === args[args.length - 1]) await page.screenshot({ path: shot, fullPage: true });
      await page.close();
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [file, a] of acc) {
    console.log(JSON.stringify({ file, bytes: fs.statSync(file).size, heightPx: a.height, charts: a.charts, visibleCharts: a.visible, fcpMs: Math.round(med(a.fcps)), loadMs: Math.round(med(a.loads)), loads: repeat }));
  }
} finally {
  await browser.close();
}
