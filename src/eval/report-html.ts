// Renders an EvalReport as ONE self-contained HTML file: inline CSS, inline SVG charts, a few
// lines of inline JS for the sample filter. No external URL of any kind (tested), so it opens
// offline and can be mailed around. Every number in the summary table carries data-key /
// data-value attributes equal to report.json, so a test (or a script) can read them back.
import type { EvalReport, SampleRow, SummaryRow, SignoffView } from './report-html-types.js';
import { esc, fmt, histogramChart, lineChart, scatterChart, type Series } from './svg.js';
import { createHash } from 'node:crypto';
import { verdictScore } from './stats.js';

/** Metrics drawn as training curves, per stage kind, in this order (others follow). */
const CURVE_ORDER = [
  'loss', 'eval_loss', 'accuracy', 'eval_accuracy', 'margin', 'rewards/accuracies', 'eval_rewards/accuracies', 'rewards/margins',
  'eval_rewards/margins', 'rewards/chosen', 'rewards/rejected', 'logps/chosen', 'logps/rejected', 'grad_norm', 'learning_rate',
];

const CURVE_EXPLAIN: Record<string, string> = {
  loss: 'Training loss (lower is better). For DPO it starts at ln 2 ≈ 0.693 (dashed line).',
  eval_loss: 'Loss on the held-out split.',
  accuracy: 'Reward model: share of pairs where the preferred answer scored higher.',
  eval_accuracy: 'Reward model accuracy on held-out pairs.',
  'rewards/accuracies': 'DPO: share of pairs where the implicit reward ranks the preferred answer first.',
  'eval_rewards/accuracies': 'The same on held-out pairs.',
  'rewards/margins': 'DPO: mean implicit-reward gap between preferred and rejected answers.',
  'logps/chosen': 'Log-likelihood of the preferred answers; a steady fall with the rejected ones is "likelihood displacement".',
  'logps/rejected': 'Log-likelihood of the rejected answers.',
};

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#57606a}.explain{color:#57606a;margin:2px 0 10px}
table{border-collapse:collapse;background:#fff;width:100%}th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.better td.flag{background:#dafbe1;color:#116329;font-weight:600}tr.worse td.flag{background:#ffebe9;color:#a40e26;font-weight:600}
.warn{border-left:4px solid #d4a72c;background:#fff8c5;padding:6px 10px;margin:6px 0}.warn.error{border-color:#cf222e;background:#ffebe9}.warn.info{border-color:#0969da;background:#ddf4ff}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #d0d7de}
.chart .ct{font-size:12px;font-weight:600}.chart .tk{font-size:10px;fill:#57606a}.chart .ax{stroke:#57606a}.chart .gr{stroke:#eaeef2}.chart .hl{stroke:#888;stroke-dasharray:4 3}
.fig{max-width:440px}.fig p{margin:2px 0 0;font-size:12px;color:#57606a}
pre.resp{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;max-height:220px;overflow:auto}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;font-weight:600;margin-right:4px}
.b-win{background:#dafbe1;color:#116329}.b-loss{background:#ffebe9;color:#a40e26}.b-tie{background:#eaeef2;color:#24292f}.b-error{background:#cf222e;color:#fff}
.filters button{margin-right:4px;padding:3px 10px;border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer}.filters button.on{background:#0969da;color:#fff}
details{margin:6px 0}summary{cursor:pointer}code{font-size:12px}
`;

const JS = `
(function(){
  var sel=document.getElementById('cmp');var cur='all';
  function apply(){var c=sel?sel.value:'0';var rows=document.querySelectorAll('tr.sample');var shown=0;
    rows.forEach(function(r){var o=r.getAttribute('data-o'+c)||'none';var v=(cur==='all'||o===cur);r.style.display=v?'':'none';if(v)shown++;});
    var s=document.getElementById('shown');if(s)s.textContent=String(shown);}
  document.querySelectorAll('.filters button').forEach(function(b){b.addEventListener('click',function(){
    document.querySelectorAll('.filters button').forEach(function(x){x.classList.remove('on');});b.classList.add('on');cur=b.getAttribute('data-f');apply();});});
  if(sel)sel.addEventListener('change',apply);apply();
})();
`;

/**
 * A Content-Security-Policy under which the report works and nothing else runs or loads: the one
 * inline script is allowed by its hash, styles inline, no network at all. The server sends it.
 */
export const REPORT_CSP = `default-src 'none'; script-src 'sha256-${createHash('sha256').update(JS).digest('base64')}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'`;

/** The outcome of a prompt for one comparison: mean of its valid verdicts. */
export function promptOutcome(row: SampleRow, baseline: string, judge: string): 'win' | 'loss' | 'tie' | 'error' | 'none' {
  const js = row.judgments.filter((j) => j.baseline === baseline && j.judge === judge);
  if (js.length === 0) return 'none';
  const valid = js.filter((j) => j.verdict !== 'error');
  if (valid.length === 0) return 'error';
  const s = valid.reduce((a, j) => a + verdictScore(j.verdict as 'win' | 'tie' | 'loss'), 0) / valid.length;
  return s > 0.5 ? 'win' : s < 0.5 ? 'loss' : 'tie';
}

function summaryTable(rows: SummaryRow[]): string {
  const body = rows.map((r) => {
    const ci = r.lo !== null && r.hi !== null ? `[${fmt(r.lo)}, ${fmt(r.hi)}]` : '';
    const flag = r.flag === 'better' ? '▲ better' : r.flag === 'worse' ? '▼ worse' : '';
    return `<tr class="${r.flag}" data-key="${esc(r.key)}" data-value="${r.value ?? ''}" data-lo="${r.lo ?? ''}" data-hi="${r.hi ?? ''}" data-baseline="${r.baselineValue ?? ''}" data-flag="${r.flag}">` +
      `<td><b>${esc(r.label)}</b><div class="explain">${esc(r.explain)}</div></td>` +
      `<td class="num v">${r.display !== undefined ? esc(r.display) : fmt(r.value)}</td><td class="num ci">${ci}</td><td class="num b">${fmt(r.baselineValue)}</td><td class="flag">${flag}</td></tr>`;
  }).join('\n');
  return `<table id="summary"><thead><tr><th>Figure</th><th>Candidate</th><th>95% interval</th><th>Baseline / reference point</th><th>Flag</th></tr></thead><tbody>${body}</tbody></table>`;
}

function curvesSection(r: EvalReport): string {
  if (r.curves.length === 0) return '<p class="muted">No training curves were recorded for this run (the orchestrator supplies them from the metrics of earlier stages).</p>';
  const stages = [...new Set(r.curves.map((c) => c.stage))];
  return stages.map((stage) => {
    const cs = r.curves.filter((c) => c.stage === stage && c.points.length > 0);
    const kind = cs[0]?.kind ?? '';
    const metrics = [...new Set(cs.map((c) => c.metric))].sort((a, b) => {
      const ia = CURVE_ORDER.indexOf(a), ib = CURVE_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    // Chosen and rejected share one chart, as do train/eval of the same metric.
    const done = new Set<string>();
    const figs: string[] = [];
    for (const m of metrics) {
      if (done.has(m)) continue;
      const group = m.endsWith('/chosen') ? [m, m.replace('/chosen', '/rejected')] : m.startsWith('eval_') ? [m] : [m, 'eval_' + m];
      const series: Series[] = group.flatMap((g) => cs.filter((c) => c.metric === g).map((c) => ({ name: g, points: c.points })));
      group.forEach((g) => done.add(g));
      const hline = m === 'loss' && kind === 'dpo' ? Math.LN2 : undefined;
      figs.push(`<div class="fig" data-curve="${esc(stage)}/${esc(m)}">${lineChart(`${stage}: ${group.filter((g) => cs.some((c) => c.metric === g)).join(' & ')}`, series, { yLabel: m, hline })}<p>${esc(CURVE_EXPLAIN[m] ?? CURVE_EXPLAIN[m.replace(/^eval_/, '')] ?? '')}</p></div>`);
    }
    return `<h3>Stage <code>${esc(stage)}</code> <span class="muted">(${esc(kind)})</span></h3><div class="charts">${figs.join('')}</div>`;
  }).join('\n');
}

function rewardKlSection(r: EvalReport): string {
  const judge = r.modelStats.flatMap((s) => s.rewards.map((x) => x.judge))[0];
  const pts = r.modelStats.filter((s) => s.kl && judge && s.rewards.some((x) => x.judge === judge)).map((s) => {
    const rw = s.rewards.find((x) => x.judge === judge)!;
    return { name: s.label, x: s.kl!.k1.value, xlo: s.kl!.k1.lo, xhi: s.kl!.k1.hi, y: rw.mean.value, ylo: rw.mean.lo, yhi: rw.mean.hi };
  });
  if (pts.length === 0) return '<p class="muted">Not available: needs a scoring judge and KL to the reference.</p>';
  return `<div class="fig">${scatterChart(`Mean ${judge} score vs KL to reference`, pts, { xLabel: 'KL(model ‖ reference), nats per answer', yLabel: `mean ${judge} score` })}
<p>Each model is a point: up means better answers by the judge, right means further from the reference model. A good run moves up without moving far right (bars: 95% intervals).</p></div>`;
}

function histogramSection(r: EvalReport): string {
  const judges = [...new Set(r.modelStats.flatMap((s) => s.rewards.map((x) => x.judge)))];
  if (judges.length === 0) return '<p class="muted">No scoring judge.</p>';
  return `<div class="charts">${judges.map((j) => {
    const hs = r.modelStats.flatMap((s) => s.rewards.filter((x) => x.judge === j).map((x) => ({ name: s.label, ...x.histogram })));
    return `<div class="fig">${histogramChart(`Scores by ${j}`, hs, `${j} score`)}<p>How the ${esc(j)} scores of each model's answers are spread; the candidate's bars should sit to the right of the baseline's.</p></div>`;
  }).join('')}</div>`;
}

function samplesSection(r: EvalReport): string {
  const cmps = r.comparisons;
  const labels = r.models.map((m) => m.label);
  const select = cmps.length > 1
    ? `<label>Outcome against: <select id="cmp">${cmps.map((c, i) => `<option value="${i}">${esc(c.baseline)} — ${esc(c.judge)}</option>`).join('')}</select></label> `
    : '';
  const rows = r.samples.map((s) => {
    const attrs = cmps.map((c, i) => ` data-o${i}="${promptOutcome(s, c.baseline, c.judge)}"`).join('');
    const verdicts = s.judgments.map((j) => `<span class="badge b-${j.verdict}" title="${esc(j.error ?? '')}">${esc(j.judge)} vs ${esc(j.baseline)}${j.order === 'single' ? '' : ` (${j.order === 'forward' ? 'candidate shown first' : 'candidate shown second'})`}: ${j.verdict}${j.scores ? ` ${fmt(j.scores.candidate)} vs ${fmt(j.scores.baseline)}` : ''}</span>`).join('<br>');
    const cells = labels.map((l) => {
      const x = s.responses[l];
      const scores = x ? Object.entries(x.scores).map(([k, v]) => `${esc(k)} ${fmt(v)}`).join(', ') : '';
      return `<td><pre class="resp">${esc(x?.text ?? '')}</pre><div class="muted">${x?.length ?? 0} chars${x?.tokens != null ? `, ${x.tokens} tokens` : ''}${scores ? ` · ${scores}` : ''}</div></td>`;
    }).join('');
    return `<tr class="sample" data-prompt="${s.prompt}"${attrs}><td><pre class="resp">${esc(s.text)}</pre>${s.contaminated ? '<span class="badge b-error">also in training</span>' : ''}</td>${cells}<td>${verdicts || '<span class="muted">not judged</span>'}</td></tr>`;
  }).join('\n');
  return `<div class="filters">${select}<button data-f="all" class="on">all</button><button data-f="win">candidate won</button><button data-f="loss">candidate lost</button><button data-f="tie">tie</button><button data-f="error">judge error</button> <span class="muted"><span id="shown">${r.samples.length}</span> shown</span></div>
<table id="samples"><thead><tr><th>Prompt</th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}<th>Judge verdicts (from the candidate's side)</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function provenanceSection(r: EvalReport): string {
  const models = r.models.map((m) => `<tr><td>${esc(m.label)}</td><td>${esc(m.role)}</td><td>${esc(m.name)}</td><td><code>${esc(m.artifactId)}</code></td></tr>`).join('');
  const data = r.datasets.map((d) => `<tr><td>${esc(d.role)}</td><td>${esc(d.name)}</td><td class="num">${d.records}</td><td><code>${esc(d.artifactId)}</code></td></tr>`).join('');
  const judges = r.judges.map((j) => `<tr><td>${esc(j.name)}</td><td>${esc(j.kind)}${j.kind === 'human' ? ' (labelers compare the two answers, shown in random order)' : j.pairwise ? ' (pairwise, both orders)' : ' (scores each answer)'}</td><td>${esc(j.version)}</td><td><code>${esc(j.artifactId ?? j.source ?? '')}</code></td></tr>`).join('');
  const p = r.provenance;
  return `<table><thead><tr><th>Model</th><th>Role</th><th>Name</th><th>Artifact</th></tr></thead><tbody>${models}${r.reference ? `<tr><td>reference</td><td>KL / implicit reward reference</td><td>${esc(r.reference.name)}</td><td><code>${esc(r.reference.artifactId)}</code></td></tr>` : ''}</tbody></table>
<h3>Datasets</h3><table><thead><tr><th>Role</th><th>Name</th><th>Records</th><th>Artifact</th></tr></thead><tbody>${data}</tbody></table>
<h3>Judges</h3><table><thead><tr><th>Judge</th><th>Kind</th><th>Version</th><th>Source</th></tr></thead><tbody>${judges}</tbody></table>
<h3>Settings</h3><pre class="resp">${esc(JSON.stringify({ alignflowVersion: p.alignflowVersion, engineVersion: p.engineVersion, backend: p.backend, runId: p.runId, stage: p.stageName, seed: p.seed, sampling: p.sampling, bootstrap: p.bootstrap, config: p.config, stageConfigs: p.stageConfigs }, null, 2))}</pre>`;
}

function signoffSection(s: SignoffView[] | undefined): string {
  if (!s || s.length === 0) return '';
  return `<h2>Sign-off</h2><table><thead><tr><th>Reviewer</th><th>Decision</th><th>Comment</th><th>When</th></tr></thead><tbody>${s.map((x) => `<tr><td>${esc(x.user)}</td><td>${esc(x.decision)}</td><td>${esc(x.comment)}</td><td>${esc(new Date(x.createdAt).toISOString())}</td></tr>`).join('')}</tbody></table>`;
}

export function renderReportHtml(r: EvalReport, opts: { signoffs?: SignoffView[] } = {}): string {
  const cand = r.models.find((m) => m.role === 'candidate');
  const bases = r.models.filter((m) => m.role === 'baseline').map((m) => m.label);
  const order: Record<string, number> = { error: 0, warn: 1, info: 2 };
  const warnings = [...r.warnings].sort((a, b) => order[a.severity]! - order[b.severity]!)
    .map((w) => `<div class="warn ${w.severity}" data-warning="${esc(w.code)}"><b>${esc(w.severity === 'error' ? 'Error' : w.severity === 'warn' ? 'Warning' : 'Note')}${w.stage ? ` (${esc(w.stage)})` : ''}:</b> ${esc(w.message)}</div>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>alignflow eval report — ${esc(r.provenance.runId)}</title><style>${CSS}</style></head>
<body><main>
<h1>Evaluation report: ${esc(cand?.name ?? 'candidate')}</h1>
<p class="muted">Run <code>${esc(r.provenance.runId)}</code>, stage <code>${esc(r.provenance.stageName)}</code>, created ${esc(r.createdAt)} with alignflow ${esc(r.provenance.alignflowVersion)}.</p>
<p>This report compares a fine-tuned <b>candidate</b> model with ${bases.length ? bases.map((b) => `<b>${esc(b)}</b>`).join(', ') : 'no baseline'} on ${r.samples.length} held-out prompts. Judges decide which answer is better; every figure has a 95% confidence interval (bootstrap over prompts), and <span style="color:#116329">green ▲</span> / <span style="color:#a40e26">red ▼</span> mark figures that are clearly better or worse than the baseline.</p>
<section id="warnings">${warnings || '<p class="muted">No warnings.</p>'}</section>
${signoffSection(opts.signoffs)}
<h2>Summary</h2>
${summaryTable(r.summary)}
<h2>Training curves</h2>
<p class="explain">How each earlier stage trained, step by step. Read them for a loss that does not fall, or an accuracy that stays at 0.5.</p>
${curvesSection(r)}
<h2>Reward vs KL</h2>
${rewardKlSection(r)}
<h2>Score histograms</h2>
${histogramSection(r)}
<h2>Samples</h2>
<p class="explain">Every eval prompt with each model's answer side by side, the judges' verdicts and each answer's length. Filter by outcome to read the losses first.</p>
${samplesSection(r)}
<h2>Provenance</h2>
<p class="explain">Exactly which models, data, judges and settings produced these numbers.</p>
${provenanceSection(r)}
</main><script>${JS}</script></body></html>
`;
}
