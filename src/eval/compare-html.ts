// Several runs' reports side by side as one self-contained HTML page (same rules as the report:
// inline CSS, no script, no external URL; model text escaped).
import type { Comparison } from './compare.js';
import { esc, fmt, scatterChart } from './svg.js';

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}main{max-width:1200px;margin:0 auto;padding:16px 24px}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0}th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.up{color:#116329;font-weight:600}.down{color:#a40e26;font-weight:600}
.muted{color:#57606a}pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,monospace}h2{font-size:17px;margin-top:24px}
.chart{background:#fff;border:1px solid #d0d7de}.tk{font-size:10px;fill:#57606a}.chart .ct{font-size:12px;font-weight:600}.chart .ax{stroke:#57606a}.chart .gr{stroke:#eaeef2}`;

/**
 * The "run/" every model point shares (`compare RUN --each-stage` names them run/stage), left out of
 * the chart's labels: repeated on 12 labels it is most of their width. '' when they differ.
 */
export function sharedRun(names: readonly string[]): string {
  const models = names.filter((n) => n !== 'baseline');
  const first = models[0]?.slice(0, models[0].indexOf('/') + 1) ?? '';
  return models.length >= 2 && first !== '' && models.every((n) => n.startsWith(first) && n.length > first.length) ? first : '';
}

export function renderCompareHtml(c: Comparison): string {
  const head = `<tr><th>Figure</th>${c.runs.map((r, i) => `<th>${esc(r)}${i === 0 ? ' (base)' : ''}</th>`).join('')}</tr>`;
  const rows = c.rows.map((r) => {
    const cells = r.values.map((v, i) => {
      const ci = r.intervals[i] ? ` <span class="muted">[${fmt(r.intervals[i]![0])}, ${fmt(r.intervals[i]![1])}]</span>` : '';
      const d = r.deltas[i];
      let delta = '';
      if (i > 0 && d !== null && d !== undefined && d !== 0) {
        const good = r.higherIsBetter === null ? null : (d > 0) === r.higherIsBetter;
        delta = ` <span class="${good === null ? 'muted' : good ? 'up' : 'down'}">(${d > 0 ? '+' : ''}${fmt(d)})</span>`;
      }
      return `<td class="num" data-key="${esc(r.key)}" data-run="${i}" data-value="${v ?? ''}">${fmt(v)}${ci}${delta}</td>`;
    }).join('');
    return `<tr><td>${esc(r.label)}</td>${cells}</tr>`;
  }).join('\n');
  const regs = c.regressions.map((g) => `<h2>${esc(g.older)} → ${esc(g.newer)}: vs ${esc(g.baseline)}, judge ${esc(g.judge)}</h2>
<p>${g.prompts.length} of ${g.shared} shared prompts were won before and lost now; ${g.improvements} went the other way.</p>
${g.prompts.length ? `<table><tr><th>Prompt</th><th>Before (${esc(g.older)})</th><th>Now (${esc(g.newer)})</th><th>Baseline</th></tr>${g.prompts.map((p) => `<tr class="regression"><td><pre>${esc(p.prompt)}</pre></td><td><pre>${esc(p.olderResponse)}</pre></td><td><pre>${esc(p.newerResponse)}</pre></td><td><pre>${esc(p.baselineResponse)}</pre></td></tr>`).join('')}</table>` : ''}`).join('\n');
  const fr = c.frontier;
  const run = fr ? sharedRun(fr.points.map((p) => p.name)) : '';
  const frontier = fr
    ? `<h2>Reward–KL frontier</h2>
<p class="explain">Each model's mean score by the ${esc(fr.judge)} judge against its KL divergence from the reference (nats per answer, k1), with 95% intervals, as in the DPO paper's Fig. 2: up and to the left is better. Points on the frontier (no other model scores higher at equal or lower KL) are marked ★ below.${run ? ` Labels leave out the run name <code>${esc(run)}</code>.` : ''}</p>
<div id="frontier">${scatterChart('Reward vs KL(model ‖ reference)', fr.points.map((p) => ({ ...p, name: run && p.name.startsWith(run) ? p.name.slice(run.length) : p.name })), { xLabel: 'KL(model ‖ reference), nats', yLabel: `mean score, ${fr.judge}`, w: 640, h: 420 })}</div>
<table id="frontier-points"><tr><th>Model</th><th>KL</th><th>Mean score</th><th>On the frontier</th></tr>${fr.points
        .map((p) => `<tr><td>${esc(p.name)}</td><td class="num">${fmt(p.x)}${p.xlo !== undefined ? ` <span class="muted">[${fmt(p.xlo)}, ${fmt(p.xhi)}]</span>` : ''}</td><td class="num">${fmt(p.y)}${p.ylo !== undefined ? ` <span class="muted">[${fmt(p.ylo)}, ${fmt(p.yhi)}]</span>` : ''}</td><td>${p.pareto ? '★' : ''}</td></tr>`)
        .join('')}</table>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>alignflow: compare ${esc(c.runs.join(', '))}</title><style>${CSS}</style></head><body><main>
<h1>Comparing ${c.runs.length} runs</h1>
<p>Each figure from each run's eval report; the number in brackets after a value is its change from the first run (green: better, red: worse). Ranges are 95% intervals.</p>
<table id="compare">${head}${rows}</table>
${frontier}
<h2>Per-prompt regressions</h2>
<p class="explain">Prompts (matched by text) where the newer candidate lost to the baseline but the older one had won.</p>
${regs || '<p class="muted">No comparison shared between consecutive runs.</p>'}
</main></body></html>
`;
}
