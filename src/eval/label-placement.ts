// Point labels for the scatter charts that never overlap: each label's box is estimated from its
// text, candidate positions around its point are tried in a fixed order (nearest first), and the
// first one clear of the other labels, the markers, the leader lines and the plot frame wins.
// A label that lands far from its point gets a thin leader line; one that fits nowhere becomes a
// number at its point, and the chart lists "n = name" under itself. No randomness, no iteration
// over hash order: the same input gives the same placement.

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Width of `text` in the reports' label font (class `tk`: 10px system-ui). Measured once with
 * getBBox() in Debian's Chromium 10px system-ui (DejaVu Sans there): run names such as
 * "frontier/eval_online_dpo_rm_b01" average 5.0–5.3 px a character, digits 6.4, lowercase 5.6,
 * capitals 6.7, "m"/"W" 9.7–9.9. 0.64 em a character (0.72 for capitals, 1 for m, w, M, W) is an
 * upper bound for all of those, so a box is never smaller than its text there; other fonts of the same size
 * (system-ui differs by OS) are within that margin for the names alignflow produces.
 */
export function textWidth(text: string, fontPx = 10): number {
  let em = 0;
  for (const ch of text) em += /[mwMW@]/.test(ch) ? 1 : /[A-Z]/.test(ch) ? 0.72 : 0.64;
  return em * fontPx;
}

/** The box of a text drawn at baseline `y`: Chromium's 10px box spans 9 px above the baseline and 3 below. */
export function textBox(text: string, x: number, y: number, anchor: 'start' | 'middle' | 'end', fontPx = 10): Box {
  const w = textWidth(text, fontPx);
  const left = anchor === 'start' ? x : anchor === 'middle' ? x - w / 2 : x - w;
  return { x: left, y: y - 0.95 * fontPx, w, h: 1.25 * fontPx };
}

export function intersects(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

const inside = (a: Box, f: Box) => a.x >= f.x && a.y >= f.y && a.x + a.w <= f.x + f.w && a.y + a.h <= f.y + f.h;
const grow = (b: Box, p: number): Box => ({ x: b.x - p, y: b.y - p, w: b.w + 2 * p, h: b.h + 2 * p });

/** Whether the segment (x1,y1)–(x2,y2) crosses the box (Liang–Barsky clipping). */
export function segmentHitsBox(x1: number, y1: number, x2: number, y2: number, b: Box): boolean {
  const dx = x2 - x1;
  const dy = y2 - y1;
  let t0 = 0;
  let t1 = 1;
  for (const [p, q] of [[-dx, x1 - b.x], [dx, b.x + b.w - x1], [-dy, y1 - b.y], [dy, b.y + b.h - y1]] as const) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const r = q / p;
      if (p < 0) t0 = Math.max(t0, r);
      else t1 = Math.min(t1, r);
      if (t0 > t1) return false;
    }
  }
  return true;
}

export interface LabelInput {
  text: string;
  /** The point's position in SVG pixels. */
  px: number;
  py: number;
}

export interface PlacedLabel {
  /** What is drawn: the name, or its number when the name fit nowhere. */
  text: string;
  /** Text position: baseline y and the anchor's x. */
  x: number;
  y: number;
  anchor: 'start' | 'middle' | 'end';
  box: Box;
  /** From the marker's edge to the box, when the label sits away from its point. */
  leader?: [number, number, number, number];
  /** 1-based number shown instead of the name (listed under the chart). */
  number?: number;
  /** The number is drawn on the marker itself: not even it fitted beside the point. */
  onMarker?: boolean;
}

export interface PlacementOptions {
  /** The plot area: labels stay inside it. */
  frame: Box;
  /** Marker radius in pixels (the markers are obstacles too). */
  r?: number;
  /**
   * Thin lines (the interval bars) a label should rather not cover: avoided while a spot within
   * BAR_REACH of the point is free of them, crossed otherwise (they stay readable under text).
   */
  lines?: readonly (readonly [number, number, number, number])[];
  fontPx?: number;
}

// Distances from the marker's edge, nearest first; beyond the first two a leader line is drawn.
const OFFSETS = [2, 5, 10, 16, 24, 34, 46, 60, 78, 100, 130, 170, 220, 280, 360, 460];
const LEADER_FROM = 10;
const BAR_REACH = 46;
// Directions, in the order tried: right, then alternately a little up and down from it, round to
// the left; straight up and down last (a label beside its point reads best).
const ANGLES = [0, 30, -30, 60, -60, 180, 150, -150, 120, -120, 90, -90].map((a) => (a * Math.PI) / 180);

/** The box for a label of size w×h touching the point at angle θ, distance d from the marker's edge. */
function candidate(px: number, py: number, r: number, d: number, theta: number, w: number, h: number): Box {
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const ax = px + (r + d) * c;
  const ay = py - (r + d) * s;
  const x = c > 0.3 ? ax : c < -0.3 ? ax - w : ax - w / 2;
  const y = s > 0.3 ? ay - h : s < -0.3 ? ay : ay - h / 2;
  return { x, y, w, h };
}

/** The leader: from the marker's edge toward the box's nearest point, ending just short of it. */
function leaderTo(px: number, py: number, r: number, b: Box): [number, number, number, number] {
  const nx = Math.min(Math.max(px, b.x), b.x + b.w);
  const ny = Math.min(Math.max(py, b.y), b.y + b.h);
  const len = Math.hypot(nx - px, ny - py) || 1;
  const ux = (nx - px) / len;
  const uy = (ny - py) / len;
  return [px + ux * (r + 1), py + uy * (r + 1), nx - ux * 1.5, ny - uy * 1.5];
}

/**
 * Places every label; the result is in the input's order. Labels of crowded points go first (they
 * have the fewest free spots), ties in input order.
 */
export function placeLabels(labels: readonly LabelInput[], o: PlacementOptions): PlacedLabel[] {
  const r = o.r ?? 5;
  const fontPx = o.fontPx ?? 10;
  const pad = 1; // between boxes, and room for the 0.1 px rounding of the markup
  const frame = grow(o.frame, -1);
  const markers = labels.map((l) => ({ x: l.px - r - pad, y: l.py - r - pad, w: 2 * (r + pad), h: 2 * (r + pad) }));
  const crowd = labels.map((l) => labels.filter((m) => Math.hypot(m.px - l.px, m.py - l.py) < 60).length);
  const order = labels.map((_, i) => i).sort((a, b) => crowd[b]! - crowd[a]! || a - b);
  const boxes: Box[] = [];
  const leaders: [number, number, number, number][] = [];
  const out: PlacedLabel[] = new Array(labels.length);
  const numbered: number[] = [];

  const bars = o.lines ?? [];
  // Markers drawn on top of each other (the same or nearly the same point): a leader from one
  // necessarily starts inside the others, which is no reason to refuse it.
  const stacked = (i: number, j: number) => Math.hypot(labels[i]!.px - labels[j]!.px, labels[i]!.py - labels[j]!.py) < r + pad;
  const tryPlace = (i: number, text: string): PlacedLabel | undefined => {
    const l = labels[i]!;
    const w = textWidth(text, fontPx);
    const h = 1.25 * fontPx;
    // First near the point and clear of the interval bars, then anywhere.
    const tries = [...OFFSETS.filter((d) => d <= BAR_REACH).map((d) => [d, 1] as const), ...OFFSETS.map((d) => [d, 0] as const)];
    for (const [d, avoidBars] of tries) {
      for (const theta of ANGLES) {
        const b = candidate(l.px, l.py, r, d, theta, w, h);
        if (!inside(b, frame)) continue;
        const g = grow(b, pad);
        if (avoidBars && bars.some((s) => segmentHitsBox(s[0], s[1], s[2], s[3], g))) continue;
        if (boxes.some((x) => intersects(g, x)) || markers.some((m) => intersects(g, m))) continue;
        if (leaders.some((s) => segmentHitsBox(s[0], s[1], s[2], s[3], g))) continue;
        let leader: PlacedLabel['leader'];
        if (d >= LEADER_FROM) {
          leader = leaderTo(l.px, l.py, r, b);
          const [x1, y1, x2, y2] = leader;
          if (boxes.some((x) => segmentHitsBox(x1, y1, x2, y2, x)) || markers.some((m, j) => !stacked(i, j) && segmentHitsBox(x1, y1, x2, y2, m))) continue;
        }
        const y = b.y + 0.95 * fontPx;
        return { text, x: b.x, y, anchor: 'start', box: b, ...(leader ? { leader } : {}) };
      }
    }
    return undefined;
  };

  const commit = (i: number, p: PlacedLabel) => {
    out[i] = p;
    boxes.push(grow(p.box, pad));
    if (p.leader) leaders.push(p.leader);
  };
  for (const i of order) {
    const p = tryPlace(i, labels[i]!.text);
    if (p) commit(i, p);
    else numbered.push(i);
  }
  // Numbers in input order, so the list under the chart reads in the same order as the table.
  numbered.sort((a, b) => a - b).forEach((i, k) => {
    const n = String(k + 1);
    const p = tryPlace(i, n);
    if (p) commit(i, { ...p, number: k + 1 });
    else {
      // On the marker itself (white on the dot): the marker's own box is already kept clear.
      const l = labels[i]!;
      const fs = fontPx * 0.8;
      const y = l.py + 0.35 * fs;
      out[i] = { text: n, x: l.px, y, anchor: 'middle', box: textBox(n, l.px, y, 'middle', fs), number: k + 1, onMarker: true };
    }
  });
  return out;
}
