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
  for (const file of args) {
    const fcps: number[] = [];
    const loads: number[] = [];
    let height = 0, charts = 0, visibleCharts = 0;
    for (let i = 0; i < 5; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto('file://' + fs.realpathSync(file), { waitUntil: 'load' });
      const m = await page.evaluate(() => {
        const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN;
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const svgs = [...document.querySelectorAll('svg.chart')];
        return { fcp, load: nav.loadEventEnd, height: document.documentElement.scrollHeight, charts: svgs.length, visible: svgs.filter((s) => s.checkVisibility()).length };
      });
      fcps.push(m.fcp); loads.push(m.load); height = m.height; charts = m.charts; visibleCharts = m.visible;
      if (shot && i === 0) await page.screenshot({ path: shot, fullPage: true });
      await page.close();
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(JSON.stringify({ file, bytes: fs.statSync(file).size, heightPx: height, charts, visibleCharts, fcpMs: Math.round(med(fcps)), loadMs: Math.round(med(loads)) }));
  }
} finally {
  await browser.close();
}
