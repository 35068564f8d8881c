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

/** Logged by the trainers but not measurements of the model: a schedule and a counter. */
const NOT_METRICS = new Set(['epoch', 'learning_rate', 'lr', 'step']);
/** A curve needs this many points to say anything; shorter series are listed, not drawn. */
const MIN_CURVE_POINTS = 3;
/** Sample rows per page of the sample viewer. */
export const SAMPLES_PER_PAGE = 10;
/** Stage kinds in pipeline order, for the order of the training-curve sections. */
const KIND_ORDER = ['sft', 'collect', 'label', 'reward', 'dpo', 'eval'];
/** The figures a collapsed stage section shows in its one-line summary, first two present. */
const HEADLINE_METRICS = ['loss', 'rewards/accuracies', 'accuracy', 'eval_loss', 'eval_rewards/accuracies', 'eval_accuracy'];

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:0;display:inline}
section.top>h2{display:block;margin:22px 0 6px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#57606a}.explain{color:#57606a;margin:2px 0 10px}
nav.toc{margin:6px 0 4px;font-size:13px}nav.toc a{margin-right:14px;color:#0969da;text-decoration:none}
table{border-collapse:collapse;background:#fff;width:100%}th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#summary .explain{margin:0;font-size:12px}
tr.better td.flag{background:#dafbe1;color:#116329;font-weight:600}tr.worse td.flag{background:#ffebe9;color:#a40e26;font-weight:600}
.warn{border-left:4px solid #d4a72c;background:#fff8c5;padding:6px 10px;margin:6px 0}.warn.error{border-color:#cf222e;background:#ffebe9}.warn.info{border-color:#0969da;background:#ddf4ff}
details.sec{margin:18px 0 0;border-top:1px solid #d0d7de;padding-top:8px}details.sec>summary{padding:2px 0 6px}
details.stage{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:4px 10px}details.stage>summary{padding:4px 0}
details.stage>summary .hl{color:#57606a;font-size:13px;margin-left:8px}
.charts{display:flex;flex-wrap:wrap;gap:12px;padding:6px 0}.chart{background:#fff;border:1px solid #d0d7de}
.chart .ct{font-size:12px;font-weight:600}.chart .tk{font-size:10px;fill:#57606a}.chart .ax{stroke:#57606a}.chart .gr{stroke:#eaeef2}.chart .hl{stroke:#888;stroke-dasharray:4 3}
.chart .cur{stroke:#57606a;stroke-width:1}svg.smoothed polyline.raw{stroke-opacity:.28}svg.line{cursor:crosshair}
.fig{width:362px}.fig p{margin:2px 0 0;font-size:12px;color:#57606a}
.tools{display:flex;gap:18px;align-items:center;flex-wrap:wrap;margin:6px 0}
#tip{position:fixed;display:none;pointer-events:none;background:#1b1f24;color:#fff;font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,monospace;padding:4px 7px;border-radius:4px;white-space:pre;z-index:10}
pre.resp{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;max-height:220px;overflow:auto}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;font-weight:600;margin-right:4px}
.b-win{background:#dafbe1;color:#116329}.b-loss{background:#ffebe9;color:#a40e26}.b-tie{background:#eaeef2;color:#24292f}.b-error{background:#cf222e;color:#fff}
.filters button,.pager button,.tools button{margin-right:4px;padding:3px 10px;border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer}.filters button.on{background:#0969da;color:#fff}
.filters input[type=search]{padding:3px 8px;border:1px solid #d0d7de;border-radius:6px;width:260px}.pager{margin:8px 0}
details{margin:6px 0}summary{cursor:pointer}code{font-size:12px}
`;

// The report's only script. It is a constant (the CSP allows it by hash), so everything it needs
// comes from the markup: sample rows carry their outcomes, charts their frame and raw points.
// Smoothing is TensorBoard's debiased exponential moving average (classic TensorBoard,
// tensorboard/components/vz_line_chart2/line-chart.ts, resmoothDataset): last = w·last + (1−w)·y
// over the finite values, divided by 1 − w^n so the first points are not pulled towards 0.
const JS = `
(function(){
  function $(id){return document.getElementById(id);}
  function set(id,v){var e=$(id);if(e)e.textContent=String(v);}
  var PAGE=${SAMPLES_PER_PAGE};
  var sel=$('cmp'),q=$('q'),prev=$('prev'),next=$('next'),cur='all',page=0;
  var rows=[].slice.call(document.querySelectorAll('tr.sample'));
  var text=rows.map(function(r){return r.textContent.toLowerCase();});
  function apply(){
    var c=sel?sel.value:'0',needle=q?q.value.trim().toLowerCase():'',hits=[];
    rows.forEach(function(r,i){var o=r.getAttribute('data-o'+c)||'none';
      if((cur==='all'||o===cur)&&(!needle||text[i].indexOf(needle)>=0))hits.push(r);});
    var pages=Math.max(1,Math.ceil(hits.length/PAGE));if(page>=pages)page=pages-1;
    rows.forEach(function(r){r.style.display='none';});
    hits.slice(page*PAGE,page*PAGE+PAGE).forEach(function(r){r.style.display='';});
    set('shown',hits.length);set('page',page+1);set('pages',pages);
    if(prev)prev.disabled=page===0;if(next)next.disabled=page>=pages-1;
  }
  document.querySelectorAll('.filters button[data-f]').forEach(function(b){b.addEventListener('click',function(){
    document.querySelectorAll('.filters button[data-f]').forEach(function(x){x.classList.remove('on');});b.classList.add('on');cur=b.getAttribute('data-f');page=0;apply();});});
  if(sel)sel.addEventListener('change',function(){page=0;apply();});
  if(q)q.addEventListener('input',function(){page=0;apply();});
  if(prev)prev.addEventListener('click',function(){page--;apply();});
  if(next)next.addEventListener('click',function(){page++;apply();});
  apply();

  function fmt(v){if(!isFinite(v))return String(v);var a=Math.abs(v);return a!==0&&(a<1e-3||a>=1e5)?v.toExponential(3):String(Number(v.toPrecision(4)));}
  function smooth(ys,w){var last=0,n=0,out=[];for(var i=0;i<ys.length;i++){var y=ys[i];if(!isFinite(y)){out.push(y);continue;}
    last=last*w+(1-w)*y;n++;out.push(w>0?last/(1-Math.pow(w,n)):y);}return out;}
  var charts=[].slice.call(document.querySelectorAll('svg.chart.line')).map(function(svg){
    var f=svg.getAttribute('data-frame').split(',').map(Number);
    var F={w:f[0],h:f[1],x0:f[2],x1:f[3],y0:f[4],y1:f[5],l:f[6],r:f[7],t:f[8],b:f[9]};
    var series=[].slice.call(svg.querySelectorAll('polyline.raw')).map(function(pl){
      var pts=pl.getAttribute('data-pts').split(' ').map(function(p){return p.split(',').map(Number);});
      return {sm:pl.nextElementSibling,name:pl.getAttribute('data-name'),xs:pts.map(function(p){return p[0];}),ys:pts.map(function(p){return p[1];}),s:[]};});
    return {svg:svg,F:F,series:series};});
  function sx(F,x){return F.l+(x-F.x0)/(F.x1-F.x0)*(F.w-F.l-F.r);}
  function sy(F,y){return F.h-F.b-(y-F.y0)/(F.y1-F.y0)*(F.h-F.t-F.b);}
  var W=0;
  function resmooth(w){W=w;set('smooth-v',w.toFixed(2));charts.forEach(function(c){c.svg.classList.toggle('smoothed',w>0);c.series.forEach(function(s){
    s.s=smooth(s.ys,w);s.sm.setAttribute('points',w>0?s.xs.map(function(x,i){return sx(c.F,x).toFixed(1)+','+sy(c.F,s.s[i]).toFixed(1);}).join(' '):'');});});}
  var sl=$('smooth');if(sl){sl.addEventListener('input',function(){resmooth(Number(sl.value));});resmooth(Number(sl.value));}
  var tip=$('tip');
  charts.forEach(function(c){
    if(!c.series.length||!tip)return;
    var ln=document.createElementNS(c.svg.namespaceURI,'line');ln.setAttribute('class','cur');ln.setAttribute('y1',c.F.t);ln.setAttribute('y2',c.F.h-c.F.b);ln.style.display='none';c.svg.appendChild(ln);
    c.svg.addEventListener('mousemove',function(ev){
      var b=c.svg.getBoundingClientRect(),px=(ev.clientX-b.left)*c.F.w/b.width;
      var x=c.F.x0+(px-c.F.l)/(c.F.w-c.F.l-c.F.r)*(c.F.x1-c.F.x0),at=null,lines=[];
      c.series.forEach(function(s){var k=0;for(var i=1;i<s.xs.length;i++)if(Math.abs(s.xs[i]-x)<Math.abs(s.xs[k]-x))k=i;
        if(at===null||Math.abs(s.xs[k]-x)<Math.abs(at-x))at=s.xs[k];
        lines.push(s.name+'  step '+s.xs[k]+': '+fmt(s.ys[k])+(W>0?'  (smoothed '+fmt(s.s[k])+')':''));});
      ln.setAttribute('x1',sx(c.F,at));ln.setAttribute('x2',sx(c.F,at));ln.style.display='';
      tip.textContent=lines.join('\\n');tip.style.display='block';tip.style.left=(ev.clientX+14)+'px';tip.style.top=(ev.clientY+14)+'px';});
    c.svg.addEventListener('mouseleave',function(){ln.style.display='none';tip.style.display='none';});});
  var ex=$('expand');if(ex)ex.addEventListener('click',function(){var st=[].slice.call(document.querySelectorAll('details.stage'));
    var open=st.some(function(d){return !d.open;});st.forEach(function(d){d.open=open;});ex.textContent=open?'collapse all stages':'expand all stages';});
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

interface StageCurves {
  stage: string;
  kind: string;
  figs: string[];
  /** Metrics logged but not drawn, with why. */
  hidden: string[];
  headline: string;
}

function stageCurves(r: EvalReport, stage: string): StageCurves {
  const cs = r.curves.filter((c) => c.stage === stage && c.points.length > 0);
  const kind = cs[0]?.kind ?? '';
  const hidden: string[] = [];
  const drawable = cs.filter((c) => {
    if (NOT_METRICS.has(c.metric)) return hidden.push(`${c.metric} (a schedule, not a measurement)`), false;
    if (c.points.length < MIN_CURVE_POINTS) return hidden.push(`${c.metric} (${c.points.length} point${c.points.length === 1 ? '' : 's'}: ${fmt(c.points[c.points.length - 1]![1])})`), false;
    return true;
  });
  const metrics = [...new Set(drawable.map((c) => c.metric))].sort((a, b) => {
    const ia = CURVE_ORDER.indexOf(a), ib = CURVE_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  // Chosen and rejected share one chart, as do train/eval of the same metric.
  const done = new Set<string>();
  const figs: string[] = [];
  for (const m of metrics) {
    if (done.has(m)) continue;
    const group = m.endsWith('/chosen') ? [m, m.replace('/chosen', '/rejected')] : m.startsWith('eval_') ? [m] : [m, 'eval_' + m];
    const series: Series[] = group.flatMap((g) => drawable.filter((c) => c.metric === g).map((c) => ({ name: g, points: c.points })));
    group.forEach((g) => done.add(g));
    const hline = m === 'loss' && kind === 'dpo' ? Math.LN2 : undefined;
    figs.push(`<div class="fig" data-curve="${esc(stage)}/${esc(m)}">${lineChart(`${stage}: ${group.filter((g) => drawable.some((c) => c.metric === g)).join(' & ')}`, series, { yLabel: m, hline })}<p>${esc(CURVE_EXPLAIN[m] ?? CURVE_EXPLAIN[m.replace(/^eval_/, '')] ?? '')}</p></div>`);
  }
  const headline = HEADLINE_METRICS.map((m) => cs.find((c) => c.metric === m)).filter((c) => c !== undefined).slice(0, 2)
    .map((c) => {
      const first = c.points[0]![1], last = c.points[c.points.length - 1]![1];
      return c.points.length > 1 ? `${c.metric} ${fmt(first)} → ${fmt(last)}` : `${c.metric} ${fmt(last)}`;
    });
  const steps = Math.max(0, ...cs.map((c) => c.points[c.points.length - 1]![0]));
  return { stage, kind, figs, hidden, headline: [`${figs.length} chart${figs.length === 1 ? '' : 's'}`, steps > 0 ? `${steps} steps` : '', ...headline].filter(Boolean).join(' · ') };
}

function curvesSection(r: EvalReport): string {
  if (r.curves.length === 0) return '<p class="muted">No training curves were recorded for this run (the orchestrator supplies them from the metrics of earlier stages).</p>';
  const kindRank = (k: string) => (KIND_ORDER.indexOf(k) < 0 ? KIND_ORDER.length : KIND_ORDER.indexOf(k));
  const all = [...new Set(r.curves.map((c) => c.stage))].map((st) => stageCurves(r, st))
    .sort((a, b) => kindRank(a.kind) - kindRank(b.kind) || a.stage.localeCompare(b.stage));
  // The candidate's own training (DPO) is open; the rest fold to one line each.
  const openStages = new Set(all.filter((x) => x.kind === 'dpo' && x.figs.length > 0).map((x) => x.stage));
  if (openStages.size === 0) {
    const last = [...all].reverse().find((x) => x.figs.length > 0);
    if (last) openStages.add(last.stage);
  }
  const tools = `<div class="tools"><label>Smoothing <input type="range" id="smooth" min="0" max="0.99" step="0.01" value="0.6"> <output id="smooth-v">0.60</output></label>` +
    `<span class="muted">Hover a chart for the values at a step. Faint: raw values; solid: smoothed (TensorBoard's moving average).</span><button id="expand" type="button">expand all stages</button></div>`;
  return tools + all.map((x) => {
    const hidden = x.hidden.length ? `<p class="muted hidden-curves">Not drawn: ${x.hidden.map(esc).join('; ')}.</p>` : '';
    return `<details class="stage" data-stage="${esc(x.stage)}"${openStages.has(x.stage) ? ' open' : ''}><summary><b>Stage <code>${esc(x.stage)}</code></b> <span class="muted">(${esc(x.kind)})</span><span class="hl">${esc(x.headline)}</span></summary>` +
      `${x.figs.length ? `<div class="charts">${x.figs.join('')}</div>` : ''}${hidden}</details>`;
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
  const rows = r.samples.map((s, i) => {
    const attrs = cmps.map((c, i) => ` data-o${i}="${promptOutcome(s, c.baseline, c.judge)}"`).join('');
    const verdicts = s.judgments.map((j) => `<span class="badge b-${j.verdict}" title="${esc(j.error ?? '')}">${esc(j.judge)} vs ${esc(j.baseline)}${j.order === 'single' ? '' : ` (${j.order === 'forward' ? 'candidate shown first' : 'candidate shown second'})`}: ${j.verdict}${j.scores ? ` ${fmt(j.scores.candidate)} vs ${fmt(j.scores.baseline)}` : ''}</span>`).join('<br>');
    const cells = labels.map((l) => {
      const x = s.responses[l];
      const scores = x ? Object.entries(x.scores).map(([k, v]) => `${esc(k)} ${fmt(v)}`).join(', ') : '';
      return `<td><pre class="resp">${esc(x?.text ?? '')}</pre><div class="muted">${x?.length ?? 0} chars${x?.tokens != null ? `, ${x.tokens} tokens` : ''}${scores ? ` · ${scores}` : ''}</div></td>`;
    }).join('');
    // Rows past the first page start hidden, so the first render lays out one page, not all.
    return `<tr class="sample" data-prompt="${s.prompt}"${attrs}${i >= SAMPLES_PER_PAGE ? ' style="display:none"' : ''}><td><pre class="resp">${esc(s.text)}</pre>${s.contaminated ? '<span class="badge b-error">also in training</span>' : ''}</td>${cells}<td>${verdicts || '<span class="muted">not judged</span>'}</td></tr>`;
  }).join('\n');
  const pages = Math.max(1, Math.ceil(r.samples.length / SAMPLES_PER_PAGE));
  const pager = `<div class="pager"><button id="prev" type="button" disabled>‹ previous</button> page <span id="page">1</span> of <span id="pages">${pages}</span> <button id="next" type="button"${pages > 1 ? '' : ' disabled'}>next ›</button></div>`;
  return `<div class="filters"><input type="search" id="q" placeholder="Search prompts and answers" aria-label="Search prompts and answers"> ${select}<button data-f="all" class="on">all</button><button data-f="win">candidate won</button><button data-f="loss">candidate lost</button><button data-f="tie">tie</button><button data-f="error">judge error</button> <span class="muted"><span id="shown">${r.samples.length}</span> match</span></div>
${pager}<table id="samples"><thead><tr><th>Prompt</th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}<th>Judge verdicts (from the candidate's side)</th></tr></thead><tbody>${rows}</tbody></table>`;
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
  const sec = (id: string, title: string, open: boolean, body: string) => `<details class="sec" id="${id}"${open ? ' open' : ''}><summary><h2>${title}</h2></summary>${body}</details>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>alignflow eval report — ${esc(r.provenance.runId)}</title><style>${CSS}</style></head>
<body><main>
<h1>Evaluation report: ${esc(cand?.name ?? 'candidate')}</h1>
<p class="muted">Run <code>${esc(r.provenance.runId)}</code>, stage <code>${esc(r.provenance.stageName)}</code>, created ${esc(r.createdAt)} with alignflow ${esc(r.provenance.alignflowVersion)}.</p>
<nav class="toc"><a href="#sum">Summary</a><a href="#curves">Training curves</a><a href="#rewardkl">Reward vs KL</a><a href="#hist">Score histograms</a><a href="#samples-sec">Samples</a><a href="#prov">Provenance</a></nav>
<p>This report compares a fine-tuned <b>candidate</b> model with ${bases.length ? bases.map((b) => `<b>${esc(b)}</b>`).join(', ') : 'no baseline'} on ${r.samples.length} held-out prompts. Judges decide which answer is better; every figure has a 95% confidence interval (bootstrap over prompts), and <span style="color:#116329">green ▲</span> / <span style="color:#a40e26">red ▼</span> mark figures that are clearly better or worse than the baseline.</p>
<section id="warnings">${warnings || '<p class="muted">No warnings.</p>'}</section>
${signoffSection(opts.signoffs)}
<section class="top" id="sum"><h2>Summary</h2>
${summaryTable(r.summary)}</section>
${sec('curves', 'Training curves', true, `<p class="explain">How each earlier stage trained, step by step. Read them for a loss that does not fall, or an accuracy that stays at 0.5. Click a stage to open or fold it.</p>${curvesSection(r)}`)}
${sec('rewardkl', 'Reward vs KL', true, rewardKlSection(r))}
${sec('hist', 'Score histograms', true, histogramSection(r))}
${sec('samples-sec', 'Samples', true, `<p class="explain">Every eval prompt with each model's answer side by side, the judges' verdicts and each answer's length. Search, or filter by outcome to read the losses first.</p>${samplesSection(r)}`)}
${sec('prov', 'Provenance', false, `<p class="explain">Exactly which models, data, judges and settings produced these numbers.</p>${provenanceSection(r)}`)}
</main><div id="tip" role="tooltip"></div><script>${JS}</script></body></html>
`;
}
