// Minimal inline-SVG charts for the self-contained HTML report: no library, no external asset.
// Every string that reaches the markup goes through esc().
import { placeLabels, textWidth } from './label-placement.js';

export function esc(s: string): string {
  // '//' is written '/&#47;' (renders the same) so no text from a model can read as a URL in the file.
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/\/\//g, '/&#47;');
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toFixed(digits);
}

interface Frame {
  w: number;
  h: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}
const M = { l: 52, r: 12, t: 22, b: 34 };

/** Tick labels with as many decimals as the tick step needs (0.0005 steps are not all "0.00"). */
function tickLabels(ticks: number[]): string[] {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(ticks[0] ?? 1) || 1;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const big = Math.max(...ticks.map(Math.abs));
  if (decimals > 4 || big >= 1e5) return ticks.map((t) => (t === 0 ? '0' : t.toExponential(1)));
  return ticks.map((t) => t.toFixed(decimals));
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  // Multiples of the step (not repeated addition) so 0 is exactly 0, not 5.55e-17.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function extent(vals: number[], pad = 0.05): [number, number] {
  const f = vals.filter(Number.isFinite);
  if (f.length === 0) return [0, 1];
  let lo = Math.min(...f);
  let hi = Math.max(...f);
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.1 || 0.5;
    hi += Math.abs(hi) * 0.1 || 0.5;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

/** `xt`: the x ticks (position in frame units, label) when the x axis is not linear. */
function axes(f: Frame, title: string, xLabel: string, yLabel: string, xt?: { at: number; label: string }[]): string {
  const sx = (x: number) => M.l + ((x - f.x0) / (f.x1 - f.x0)) * (f.w - M.l - M.r);
  const sy = (y: number) => f.h - M.b - ((y - f.y0) / (f.y1 - f.y0)) * (f.h - M.t - M.b);
  let s = `<text x="${f.w / 2}" y="14" text-anchor="middle" class="ct">${esc(title)}</text>`;
  s += `<line x1="${M.l}" y1="${f.h - M.b}" x2="${f.w - M.r}" y2="${f.h - M.b}" class="ax"/><line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${f.h - M.b}" class="ax"/>`;
  const lin = niceTicks(f.x0, f.x1);
  const linLabels = tickLabels(lin);
  for (const t of xt ?? lin.map((at, i) => ({ at, label: linLabels[i]! }))) s += `<text x="${sx(t.at).toFixed(1)}" y="${f.h - M.b + 13}" text-anchor="middle" class="tk">${t.label}</text>`;
  const yt = niceTicks(f.y0, f.y1);
  const yl = tickLabels(yt);
  yt.forEach((t, i) => {
    s += `<line x1="${M.l}" y1="${sy(t).toFixed(1)}" x2="${f.w - M.r}" y2="${sy(t).toFixed(1)}" class="gr"/>`;
    s += `<text x="${M.l - 4}" y="${(sy(t) + 3).toFixed(1)}" text-anchor="end" class="tk">${yl[i]}</text>`;
  });
  s += `<text x="${f.w / 2}" y="${f.h - 4}" text-anchor="middle" class="tk">${esc(xLabel)}</text>`;
  s += `<text x="10" y="${f.h / 2}" text-anchor="middle" class="tk" transform="rotate(-90 10 ${f.h / 2})">${esc(yLabel)}</text>`;
  return s;
}

function scales(f: Frame) {
  return {
    sx: (x: number) => M.l + ((x - f.x0) / (f.x1 - f.x0)) * (f.w - M.l - M.r),
    sy: (y: number) => f.h - M.b - ((y - f.y0) / (f.y1 - f.y0)) * (f.h - M.t - M.b),
  };
}

function legend(names: string[], f: Frame): string {
  const w = Math.max(90, Math.floor((f.w - M.l - M.r - 8) / Math.max(1, names.length)));
  const chars = Math.max(8, Math.floor((w - 18) / 5.6));
  return names.map((n, i) => `<g transform="translate(${M.l + 8 + i * w},${M.t + 4})"><rect width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="14" y="9" class="tk">${esc(n.length > chars ? n.slice(0, chars - 1) + '…' : n)}</text></g>`).join('');
}

export interface Series {
  name: string;
  points: [number, number][];
}

/**
 * A line chart whose markup carries its data for the report's script: the frame (data-frame:
 * width, height, x0, x1, y0, y1, then the margins left, right, top, bottom) and each series' raw
 * points (data-pts, "x,y x,y"). The script draws the smoothed line into the empty `sm` polyline
 * and shows values under the pointer; without the script the raw line is what shows.
 */
export function lineChart(title: string, series: Series[], o: { xLabel?: string; yLabel?: string; hline?: number; w?: number; h?: number } = {}): string {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
  const [x0, x1] = extent(all.map((p) => p[0]), 0);
  const [y0, y1] = extent([...all.map((p) => p[1]), ...(o.hline !== undefined ? [o.hline] : [])]);
  const f: Frame = { w: o.w ?? 360, h: o.h ?? 220, x0, x1: x1 > x0 ? x1 : x0 + 1, y0, y1 };
  const { sx, sy } = scales(f);
  let s = axes(f, title, o.xLabel ?? 'step', o.yLabel ?? '');
  if (o.hline !== undefined) s += `<line x1="${M.l}" x2="${f.w - M.r}" y1="${sy(o.hline).toFixed(1)}" y2="${sy(o.hline).toFixed(1)}" class="hl"/>`;
  series.forEach((se, i) => {
    const finite = se.points.filter((p) => Number.isFinite(p[1]));
    const pts = finite.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    const c = PALETTE[i % PALETTE.length];
    // Six significant digits: what the tooltip shows (four) with room, at a third of the bytes.
    const data = finite.map((p) => `${p[0]},${Number(p[1].toPrecision(6))}`).join(' ');
    s += finite.length > 1
      ? `<polyline class="raw" data-name="${esc(se.name)}" data-pts="${data}" points="${pts}" fill="none" stroke="${c}" stroke-width="1.6"/><polyline class="sm" points="" fill="none" stroke="${c}" stroke-width="1.8"/>`
      : finite.length === 1 ? `<circle cx="${pts.split(',')[0]}" cy="${pts.split(',')[1]}" r="3" fill="${c}"/>` : '';
  });
  if (series.length > 1) s += legend(series.map((x) => x.name), f);
  const frame = [f.w, f.h, f.x0, f.x1, f.y0, f.y1, M.l, M.r, M.t, M.b].join(',');
  return `<svg class="chart line" data-frame="${frame}" viewBox="0 0 ${f.w} ${f.h}" width="${f.w}" height="${f.h}" role="img" aria-label="${esc(title)}">${s}</svg>`;
}

export type XScale = 'linear' | 'sqrt';

/**
 * The frontier's x axis: linear unless one KL is more than 10× the median positive one (a run that
 * drifted far, e.g. length-hacked to KL 27 while the rest are < 6, squeezes everything else into a
 * corner). Then a square-root scale rather than log1p: √KL grows like the distance moved from the
 * reference (KL ≈ ½ δᵀFδ for a small step δ), it does not depend on the unit (nats per answer vs
 * per token only rescale it, while log1p bends at an arbitrary 1 nat), and signed (−√−x) it takes
 * the slightly negative lower interval ends the k1 estimator gives near KL 0.
 */
export function chooseXScale(xs: readonly number[]): XScale {
  const pos = xs.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (pos.length < 2) return 'linear';
  const m = pos.length >> 1;
  const median = pos.length % 2 ? pos[m]! : (pos[m - 1]! + pos[m]!) / 2;
  return pos[pos.length - 1]! / median > 10 ? 'sqrt' : 'linear';
}

export const signedSqrt = (x: number) => Math.sign(x) * Math.sqrt(Math.abs(x));

/**
 * Ticks for a square-root axis over [lo, hi] (data units): 0 and 1, 2, 5 × 10^k, the rounder ones
 * first (0, then powers of ten, then 2s, then 5s), each kept only if its label clears those of
 * the ticks kept (positions by `px`); sorted.
 */
export function sqrtTicks(lo: number, hi: number, px: (x: number) => number): number[] {
  // Room for both labels (centred on their ticks) and 8 px between them.
  const gap = (a: number, b: number) => (textWidth(String(a)) + textWidth(String(b))) / 2 + 8;
  const kMax = Math.ceil(Math.log10(Math.max(hi, 1e-3)));
  const cands: number[] = [0];
  // Nothing under hi/300 (√: the first 6% of the axis): such ticks crowd against 0 and say little.
  for (const m of [1, 2, 5]) for (let k = kMax; k >= kMax - 4; k--) if (m * 10 ** k >= hi / 300) cands.push(Number((m * 10 ** k).toPrecision(6)));
  const kept: number[] = [];
  for (const t of cands) if (t >= lo && t <= hi && kept.every((u) => Math.abs(px(u) - px(t)) >= gap(u, t))) kept.push(t);
  return kept.sort((a, b) => a - b);
}

export interface ScatterPoint {
  name: string;
  x: number;
  y: number;
  xlo?: number;
  xhi?: number;
  ylo?: number;
  yhi?: number;
}

/**
 * Points with their 95% interval bars, each named by a label placed clear of the others
 * (label-placement.ts); names that fit nowhere are numbered and listed under the chart. The x
 * axis turns square-root when one point is far to the right (chooseXScale).
 */
export function scatterChart(title: string, points: ScatterPoint[], o: { xLabel: string; yLabel: string; w?: number; h?: number }): string {
  const scale = chooseXScale(points.map((p) => p.x));
  const tx = scale === 'sqrt' ? signedSqrt : (x: number) => x;
  const xs = points.flatMap((p) => [p.x, p.xlo ?? p.x, p.xhi ?? p.x]).map(tx);
  const ys = points.flatMap((p) => [p.y, p.ylo ?? p.y, p.yhi ?? p.y]);
  const [x0, x1] = extent([...xs, 0], 0.1);
  const [y0, y1] = extent(ys, 0.1);
  const f: Frame = { w: o.w ?? 420, h: o.h ?? 260, x0, x1, y0, y1 };
  const { sx: sxT, sy } = scales(f);
  const sx = (x: number) => sxT(tx(x));
  let xt: { at: number; label: string }[] | undefined;
  if (scale === 'sqrt') {
    const lo = x0 < 0 ? -(x0 * x0) : x0 * x0;
    xt = sqrtTicks(lo, x1 * x1, sx).map((t) => ({ at: tx(t), label: String(t) }));
  }
  let s = axes(f, title, scale === 'sqrt' ? `${o.xLabel} (√ scale)` : o.xLabel, o.yLabel, xt);
  const bars: [number, number, number, number][] = [];
  points.forEach((p, i) => {
    const c = PALETTE[i % PALETTE.length];
    const own: [number, number, number, number][] = [];
    if (p.ylo !== undefined && p.yhi !== undefined) own.push([sx(p.x), sy(p.ylo), sx(p.x), sy(p.yhi)]);
    if (p.xlo !== undefined && p.xhi !== undefined) own.push([sx(p.xlo), sy(p.y), sx(p.xhi), sy(p.y)]);
    for (const [ax, ay, bx, by] of own) s += `<line x1="${ax.toFixed(1)}" y1="${ay.toFixed(1)}" x2="${bx.toFixed(1)}" y2="${by.toFixed(1)}" stroke="${c}"/>`;
    bars.push(...own);
  });
  points.forEach((p, i) => (s += `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="5" fill="${PALETTE[i % PALETTE.length]}"/>`));
  const frame = { x: M.l, y: M.t, w: f.w - M.l - M.r, h: f.h - M.t - M.b };
  const placed = placeLabels(points.map((p) => ({ text: p.name, px: sx(p.x), py: sy(p.y) })), { frame, r: 5, lines: bars });
  for (const l of placed) {
    if (l.leader) s += `<line class="ld" x1="${l.leader[0].toFixed(1)}" y1="${l.leader[1].toFixed(1)}" x2="${l.leader[2].toFixed(1)}" y2="${l.leader[3].toFixed(1)}" stroke="#8c959f" stroke-width="0.7"/>`;
    s += l.onMarker
      ? `<text x="${l.x.toFixed(1)}" y="${l.y.toFixed(1)}" text-anchor="middle" class="lbn" fill="#fff" font-size="8">${l.text}</text>`
      : `<text x="${l.x.toFixed(1)}" y="${l.y.toFixed(1)}" class="tk lb${l.number ? ' lbn' : ''}">${esc(l.text)}</text>`;
  }
  // The names that fit nowhere, as "n = name", wrapped under the chart.
  let h = f.h;
  const keyed = placed.map((l, i) => ({ n: l.number, name: points[i]!.name })).filter((k) => k.n !== undefined).sort((a, b) => a.n! - b.n!);
  let cx = M.l;
  let row = 0;
  for (const k of keyed) {
    let t = `${k.n} = ${k.name}`;
    // A name longer than the chart is wide is cut (the table under the chart has it in full).
    while (textWidth(t) > f.w - M.l - M.r && t.length > 8) t = t.slice(0, -2) + '…';
    const w = textWidth(t) + 14;
    if (cx > M.l && cx + w > f.w - M.r) {
      cx = M.l;
      row++;
    }
    s += `<text x="${cx.toFixed(1)}" y="${f.h + 10 + row * 14}" class="tk key">${esc(t)}</text>`;
    cx += w;
  }
  if (keyed.length) h = f.h + 16 + row * 14;
  return `<svg class="chart scatter" data-scale="${scale}" viewBox="0 0 ${f.w} ${h}" width="${f.w}" height="${h}" role="img" aria-label="${esc(title)}">${s}</svg>`;
}

export function histogramChart(title: string, hs: { name: string; edges: number[]; counts: number[] }[], xLabel: string): string {
  const edges = hs[0]?.edges ?? [0, 1];
  const maxC = Math.max(1, ...hs.flatMap((h) => h.counts));
  const f: Frame = { w: 420, h: 240, x0: edges[0]!, x1: edges[edges.length - 1]!, y0: 0, y1: maxC * 1.1 };
  if (!(f.x1 > f.x0)) f.x1 = f.x0 + 1;
  const { sx, sy } = scales(f);
  let s = axes(f, title, xLabel, 'answers');
  const k = hs.length;
  hs.forEach((h, i) => {
    const c = PALETTE[i % PALETTE.length];
    h.counts.forEach((n, b) => {
      const xa = sx(h.edges[b]!);
      const xb = sx(h.edges[b + 1]!);
      const bw = (xb - xa) / k;
      s += `<rect x="${(xa + i * bw).toFixed(1)}" y="${sy(n).toFixed(1)}" width="${Math.max(0.5, bw - 0.5).toFixed(1)}" height="${(sy(0) - sy(n)).toFixed(1)}" fill="${c}" fill-opacity="0.8"><title>${esc(h.name)}: ${n} in [${fmt(h.edges[b]!)}, ${fmt(h.edges[b + 1]!)})</title></rect>`;
    });
  });
  s += legend(hs.map((h) => h.name), f);
  return `<svg class="chart" viewBox="0 0 ${f.w} ${f.h}" width="${f.w}" height="${f.h}" role="img" aria-label="${esc(title)}">${s}</svg>`;
}
