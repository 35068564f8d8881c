// alignflow web UI: sign in with a token, label pairs (keyboard first), watch batches (admins),
// follow runs, read eval reports, sign them off and compare runs (admins and viewers).
// Model text only ever reaches the page through renderMarkdown / renderContent (escape first) or textContent;
// report and compare HTML only inside sandboxed frames served under their own CSP.
import { renderMarkdown, renderContent } from './markdown.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'alignflow.token';
const POLL_MS = 3000;

const state = {
  me: null,
  batchId: null,
  batches: [],
  assignment: null,
  shownAt: 0,
  choice: null,
  // Ranking items: groups of shown answer numbers, best first (a group ties); the order answers
  // were ranked in (Backspace takes back the last); whether the next number ties with the last group.
  rankGroups: [],
  rankHistory: [],
  rankTie: false,
  // Ranking items with a suggestion: the order bar holds the suggested order until the labeler
  // changes it; the first answer number typed then starts the order afresh.
  rankPrefilled: false,
  view: null,
  adminBatch: null,
  labelersFor: null,
  busy: false,
  pollTimer: null,
  progressStamp: 0,
  reportRun: null,
  stageCache: new Map(),
};

const SECTIONS = ['labeler', 'admin', 'runs-view', 'report-view', 'compare-view'];
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Shows one main section and records the view the poller refreshes. */
function showSection(id, view) {
  for (const s of SECTIONS) $(s).hidden = s !== id;
  state.view = view;
  for (const [nav, v] of [['nav-label', 'label'], ['nav-admin', 'admin'], ['nav-runs', 'runs'], ['nav-compare', 'compare']]) {
    $(nav).setAttribute('aria-current', String(v === view || (v === 'runs' && view === 'report')));
  }
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, url, body) {
  const headers = { authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (res.status === 401) {
    logout('Your token is no longer valid. Sign in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function status(msg, isError = false) {
  const el = $('status');
  el.textContent = msg || '';
  el.className = isError ? 'error' : '';
}

// ------------------------------------------------------------------ sign in / out

async function login(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    state.me = await api('GET', '/api/me');
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $('login-error').textContent = e.status === 401 ? 'That token is not valid.' : e.message;
    return;
  }
  $('login').hidden = true;
  $('logout').hidden = false;
  $('who').textContent = `${state.me.name} (${state.me.role})`;
  // Labelers get no navigation (and the API refuses them runs and reports); viewers read, admins do all.
  $('nav').hidden = state.me.role === 'labeler';
  $('nav-label').hidden = state.me.role !== 'admin';
  if (document.activeElement) document.activeElement.blur();
  if (state.me.role === 'labeler') showLabeler();
  else showAdmin();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.pollTimer);
  state.me = null;
  for (const id of [...SECTIONS, 'nav', 'logout']) $(id).hidden = true;
  for (const id of ['report-frame', 'compare-frame']) {
    $(id).removeAttribute('src');
    $(id).hidden = true;
  }
  state.view = null;
  state.reportRun = null;
  state.stageCache.clear();
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

// ------------------------------------------------------------------ labeler view

async function showLabeler() {
  showSection('labeler', 'label');
  await loadQueue();
  await fetchNext();
  startPolling();
}

async function loadQueue() {
  const stamp = state.progressStamp;
  const q = await api('GET', '/api/labeling/queue');
  // A submit or undo refreshed the figures while this request was in flight: keep the newer ones.
  if (stamp !== state.progressStamp) {
    for (const b of q.batches) {
      const cur = state.batches.find((x) => x.id === b.id);
      if (cur) Object.assign(b, { done: cur.done, total: cur.total, mine: cur.mine });
    }
  }
  state.batches = q.batches;
  const sel = $('batch');
  const keep = state.batchId;
  sel.replaceChildren(
    ...q.batches.map((b) => {
      const o = document.createElement('option');
      o.value = b.id;
      o.textContent = b.name;
      return o;
    }),
  );
  if (keep && q.batches.some((b) => b.id === keep)) sel.value = keep;
  else state.batchId = q.batches[0] ? q.batches[0].id : null;
  sel.value = state.batchId || '';
  renderProgress();
}

function renderProgress() {
  const b = state.batches.find((x) => x.id === state.batchId);
  const fill = $('progress-fill');
  if (!b) {
    fill.style.width = '0';
    $('progress-text').textContent = '';
    $('mine').textContent = '';
    $('guidelines-text').innerHTML = renderMarkdown('No batch selected.');
    return;
  }
  const pct = b.total ? Math.round((100 * b.done) / b.total) : 0;
  fill.style.width = pct + '%';
  $('progress-text').textContent = `${b.done} / ${b.total} labels (${pct}%)`;
  $('mine').textContent = `you: ${b.mine}`;
  $('guidelines-text').innerHTML = renderMarkdown(b.guidelines || 'No guidelines were given for this batch.');
}

async function refreshProgress() {
  if (!state.batchId) return;
  state.progressStamp++;
  const r = await api('GET', `/api/labeling/batches/${encodeURIComponent(state.batchId)}/me`);
  const b = state.batches.find((x) => x.id === state.batchId);
  if (b) {
    b.done = r.progress.done;
    b.total = r.progress.total;
    b.mine = r.me.labels;
  }
  renderProgress();
}

async function fetchNext() {
  if (!state.batchId) {
    showEmpty('There is no open batch to label right now.');
    return;
  }
  const r = await api('POST', `/api/labeling/batches/${encodeURIComponent(state.batchId)}/next`);
  showAssignment(r.assignment);
}

function showEmpty(msg) {
  state.assignment = null;
  $('task').hidden = true;
  $('empty').hidden = false;
  $('empty').textContent = msg;
}

function showAssignment(a, previous) {
  if (!a) {
    showEmpty('Nothing left for you in this batch. Thank you!');
    return;
  }
  state.assignment = a;
  state.shownAt = performance.now();
  $('empty').hidden = true;
  $('task').hidden = false;
  $('prompt').innerHTML = renderContent(a.prompt);
  const ranking = Array.isArray(a.answers);
  $('rank-task').hidden = !ranking;
  $('pair-sides').hidden = ranking;
  $('pair-choices').hidden = ranking;
  for (const el of document.querySelectorAll('.pair-only')) el.hidden = ranking;
  if (ranking) {
    const prev = previous || a.previous;
    showAnswers(a.answers);
    // A suggested order pre-fills the order bar (Enter accepts it); an undone label's own ranking wins.
    const sug = a.suggestion && Array.isArray(a.suggestion.ranking) ? a.suggestion : null;
    $('suggestion').hidden = !sug;
    if (sug) {
      const order = sug.ranking.map((g) => g.join(' = ')).join(' > ');
      const scores = sug.scores.map((x, i) => `${i + 1}: ${Number(x).toPrecision(3)}`).join(', ');
      $('suggestion').textContent = `Pre-filled: the judge's order is ${order} (scores ${scores}). Enter accepts it; type answer numbers to rank afresh, or Backspace / drag to change it.`;
    }
    const start = prev && prev.ranking ? prev.ranking : sug ? sug.ranking : [];
    state.rankGroups = start.map((g) => [...g]);
    state.rankHistory = state.rankGroups.flat();
    state.rankPrefilled = !(prev && prev.ranking) && !!sug;
    state.rankTie = false;
    renderRanking();
    $('flag-unsafe').checked = !!prev && prev.flags.includes('unsafe');
    $('flag-broken').checked = !!prev && prev.flags.includes('broken');
    $('rationale').value = (prev && prev.rationale) || '';
    $('skip-form').hidden = true;
    return;
  }
  $('left').innerHTML = renderContent(a.left);
  $('right').innerHTML = renderContent(a.right);
  const prev = previous || a.previous;
  // A suggestion is a pre-annotation: selected, labelled as such, one key away from being changed.
  const sug = a.suggestion;
  $('suggestion').hidden = !sug;
  if (sug) {
    const pick = sug.choice === 'tie' ? 'a tie' : sug.choice === 'left' ? 'A' : 'B';
    $('suggestion').textContent = `Pre-selected: the judge's pick is ${pick} (scores A ${Number(sug.scoreLeft).toPrecision(3)}, B ${Number(sug.scoreRight).toPrecision(3)}). Change it if you disagree.`;
  }
  setChoice(prev ? prev.choice : sug ? sug.choice : null);
  for (const r of document.querySelectorAll('input[name="strength"]')) r.checked = !!prev && String(prev.strength) === r.value;
  $('flag-unsafe').checked = !!prev && prev.flags.includes('unsafe');
  $('flag-broken').checked = !!prev && prev.flags.includes('broken');
  $('rationale').value = (prev && prev.rationale) || '';
  $('skip-form').hidden = true;
}

// ------------------------------------------------------------------ ranking items

const isRanking = () => !!(state.assignment && Array.isArray(state.assignment.answers));

function showAnswers(answers) {
  $('answers').replaceChildren(
    ...answers.map((text, i) => {
      const n = i + 1;
      const art = document.createElement('article');
      art.className = 'side';
      art.id = `answer-${n}`;
      art.dataset.n = String(n);
      art.draggable = true;
      const h = document.createElement('h2');
      h.append(`Answer ${n} `);
      const k = document.createElement('kbd');
      k.textContent = String(n);
      const badge = document.createElement('span');
      badge.className = 'rank-badge';
      h.append(k, badge);
      const body = document.createElement('div');
      body.className = 'md';
      body.innerHTML = renderContent(text);
      art.append(h, body);
      art.addEventListener('dragstart', (e) => e.dataTransfer.setData('text/plain', String(n)));
      return art;
    }),
  );
}

/** Puts answer n at a place in the ranking: {group: g} ties it with group g, {gap: g} makes it a new group before group g, {pool: true} unranks it. */
function placeAnswer(n, where) {
  let groups = state.rankGroups.map((g) => g.filter((x) => x !== n));
  // Indices after n's removal: an emptied group disappears and shifts the later ones.
  const emptied = state.rankGroups.findIndex((g, i) => g.includes(n) && groups[i].length === 0);
  const shift = (i) => (emptied >= 0 && i > emptied ? i - 1 : i);
  groups = groups.filter((g) => g.length);
  state.rankHistory = state.rankHistory.filter((x) => x !== n);
  if (where.group !== undefined) {
    const gi = shift(where.group);
    if (groups[gi]) groups[gi].push(n);
    else groups.push([n]);
    state.rankHistory.push(n);
  } else if (where.gap !== undefined) {
    groups.splice(Math.min(shift(where.gap), groups.length), 0, [n]);
    state.rankHistory.push(n);
  }
  state.rankGroups = groups;
  renderRanking();
}

function rankKey(n) {
  const k = state.assignment.answers.length;
  if (n < 1 || n > k) return;
  if (state.rankGroups.some((g) => g.includes(n))) {
    status(`Answer ${n} is already ranked (Backspace takes back the last one).`, true);
    return;
  }
  const tie = state.rankTie && state.rankGroups.length > 0;
  state.rankTie = false;
  placeAnswer(n, tie ? { group: state.rankGroups.length - 1 } : { gap: state.rankGroups.length });
  status('');
}

function unrankLast() {
  const n = state.rankHistory[state.rankHistory.length - 1];
  state.rankTie = false;
  if (n !== undefined) placeAnswer(n, { pool: true });
}

function dropTarget(el, where) {
  el.addEventListener('dragover', (e) => {
    e.preventDefault();
    el.classList.add('over');
  });
  el.addEventListener('dragleave', () => el.classList.remove('over'));
  el.addEventListener('drop', (e) => {
    e.preventDefault();
    el.classList.remove('over');
    const n = Number(e.dataTransfer.getData('text/plain'));
    state.rankPrefilled = false;
    if (n) placeAnswer(n, where);
  });
}

function chip(n) {
  const c = document.createElement('span');
  c.className = 'chip';
  c.textContent = String(n);
  c.dataset.n = String(n);
  c.draggable = true;
  c.addEventListener('dragstart', (e) => e.dataTransfer.setData('text/plain', String(n)));
  return c;
}

function renderRanking() {
  const groups = state.rankGroups;
  const order = $('rank-order');
  const parts = [];
  const gap = (gi) => {
    const g = document.createElement('span');
    g.className = 'rank-gap';
    g.dataset.gap = String(gi);
    g.textContent = gi === 0 || gi === groups.length ? '' : '>';
    dropTarget(g, { gap: gi });
    return g;
  };
  groups.forEach((grp, gi) => {
    parts.push(gap(gi));
    const el = document.createElement('span');
    el.className = 'rank-group';
    el.dataset.group = String(gi);
    grp.forEach((n, j) => {
      if (j) el.append(' = ');
      el.append(chip(n));
    });
    dropTarget(el, { group: gi });
    parts.push(el);
  });
  parts.push(gap(groups.length));
  order.replaceChildren(...parts);
  order.dataset.ranking = groups.map((g) => g.join('=')).join('>');
  const k = state.assignment.answers.length;
  const ranked = new Set(groups.flat());
  $('rank-pool').replaceChildren(...Array.from({ length: k }, (_, i) => i + 1).filter((n) => !ranked.has(n)).map(chip));
  for (let n = 1; n <= k; n++) {
    const gi = groups.findIndex((g) => g.includes(n));
    const card = $(`answer-${n}`);
    card.classList.toggle('ranked', gi >= 0);
    card.querySelector('.rank-badge').textContent = gi >= 0 ? `rank ${gi + 1}${groups[gi].length > 1 ? ' (tie)' : ''}` : '';
  }
}

function setChoice(choice) {
  state.choice = choice;
  for (const b of document.querySelectorAll('[data-choice]')) b.setAttribute('aria-pressed', String(b.dataset.choice === choice));
  $('side-left').className = 'side' + (choice === 'left' ? ' chosen' : choice === 'right' ? ' rejected' : '');
  $('side-right').className = 'side' + (choice === 'right' ? ' chosen' : choice === 'left' ? ' rejected' : '');
}

async function submit() {
  const a = state.assignment;
  if (!a || state.busy) return;
  if (isRanking()) return submitRanking();
  if (!state.choice) {
    status('Choose first: 1 (A), 2 (B), t (tie) or b (both bad).', true);
    return;
  }
  const strengthEl = document.querySelector('input[name="strength"]:checked');
  await postLabel(a, {
    choice: state.choice,
    strength: strengthEl && (state.choice === 'left' || state.choice === 'right') ? Number(strengthEl.value) : null,
    ...labelExtras(),
  }, 'Label stored.');
}

/** What every label carries besides its decision: rationale, flags and time on the item. */
function labelExtras() {
  const flags = [];
  if ($('flag-unsafe').checked) flags.push('unsafe');
  if ($('flag-broken').checked) flags.push('broken');
  return { rationale: $('rationale').value.trim() || null, flags, durationMs: Math.max(0, Math.round(performance.now() - state.shownAt)) };
}

/** Stores a label (pairwise or ranking) and moves on; a 409 (lease lost) fetches the next item. */
async function postLabel(a, body, stored) {
  state.busy = true;
  try {
    await api('POST', `/api/labeling/assignments/${encodeURIComponent(a.assignmentId)}/label`, body);
    status(stored);
    await refreshProgress();
    await fetchNext();
  } catch (e) {
    status(e.message, true);
    if (e.status === 409) await fetchNext().catch(() => {});
  } finally {
    state.busy = false;
  }
}

async function submitRanking() {
  const a = state.assignment;
  const k = a.answers.length;
  const ranked = new Set(state.rankGroups.flat());
  const left = Array.from({ length: k }, (_, i) => i + 1).filter((n) => !ranked.has(n));
  // One answer left: it can only be last.
  if (left.length === 1) placeAnswer(left[0], { gap: state.rankGroups.length });
  else if (left.length > 1) {
    status(`Rank every answer first: ${left.join(', ')} still unranked.`, true);
    return;
  }
  await postLabel(a, { ranking: state.rankGroups, ...labelExtras() }, 'Ranking stored.');
}

async function skip(reason) {
  const a = state.assignment;
  if (!a || state.busy) return;
  state.busy = true;
  try {
    await api('POST', `/api/labeling/assignments/${encodeURIComponent(a.assignmentId)}/skip`, { reason });
    status('Skipped.');
    await fetchNext();
  } catch (e) {
    status(e.message, true);
  } finally {
    state.busy = false;
  }
}

async function undo() {
  if (!state.batchId || state.busy) return;
  state.busy = true;
  try {
    const r = await api('POST', `/api/labeling/batches/${encodeURIComponent(state.batchId)}/undo`);
    showAssignment(r.assignment, r.assignment.previous);
    status('Your last label was withdrawn: change it and submit again.');
    await refreshProgress();
  } catch (e) {
    status(e.message, true);
  } finally {
    state.busy = false;
  }
}

function openSkip() {
  if (!state.assignment) return;
  $('skip-form').hidden = false;
  $('skip-reason').value = '';
  $('skip-reason').focus();
}

function toggleGuidelines(show) {
  const g = $('guidelines');
  g.hidden = show === undefined ? !g.hidden : !show;
}

function onKey(e) {
  if (!state.me) return;
  const t = e.target;
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
  // Ctrl/Cmd+Enter submits even from the rationale box.
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && state.view === 'label' && t && t.id === 'rationale') {
    e.preventDefault();
    t.blur();
    submit();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'Escape') {
    toggleGuidelines(false);
    if (!$('skip-form').hidden) $('skip-form').hidden = true;
    if (typing) t.blur();
    return;
  }
  if (typing) return;
  if (e.key === '?') {
    toggleGuidelines();
    e.preventDefault();
    return;
  }
  if (state.view !== 'label' || !$('guidelines').hidden) return;
  if (isRanking() && (/^[1-9]$/.test(e.key) || e.key === '=' || e.key === 'Backspace')) {
    e.preventDefault();
    if (e.key === '=') state.rankTie = state.rankGroups.length > 0;
    else if (e.key === 'Backspace') unrankLast();
    else {
      // The first answer number typed over a suggested order starts the order afresh.
      if (state.rankPrefilled) {
        state.rankGroups = [];
        state.rankHistory = [];
        state.rankTie = false;
      }
      rankKey(Number(e.key));
    }
    state.rankPrefilled = false;
    return;
  }
  const map = { 1: 'left', 2: 'right', t: 'tie', b: 'both_bad' };
  if (map[e.key] && !isRanking()) {
    setChoice(map[e.key]);
    e.preventDefault();
  } else if (e.key === 'Enter') {
    e.preventDefault();
    submit();
  } else if (e.key === 's') {
    e.preventDefault();
    openSkip();
  } else if (e.key === 'u') {
    e.preventDefault();
    undo();
  }
}

// ------------------------------------------------------------------ admin view

async function showAdmin() {
  showSection('admin', 'admin');
  for (const el of document.querySelectorAll('.admin-only')) el.hidden = state.me.role !== 'admin';
  state.labelersFor = null;
  if (state.me.role === 'admin') await loadNewBatchForm().catch((e) => ($('nb-msg').textContent = e.message));
  await loadAdmin();
  startPolling();
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? '—' : Number(x).toFixed(digits));
const pct = (x) => (x === null || x === undefined ? '—' : (100 * x).toFixed(1) + '%');

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c);
    else td.textContent = c === null || c === undefined ? '' : String(c);
    tr.append(td);
  }
  return tr;
}

/** Fills a table body, or one muted "none" row when there is nothing to show. */
function fill(tableId, rows) {
  const tbody = $(tableId).querySelector('tbody');
  if (rows.length) return tbody.replaceChildren(...rows);
  const tr = document.createElement('tr');
  const td = document.createElement('td');
  td.colSpan = $(tableId).querySelectorAll('thead th').length;
  td.className = 'none';
  td.textContent = 'none yet';
  tr.append(td);
  tbody.replaceChildren(tr);
}

async function loadRuns() {
  const r = await api('GET', '/api/runs?limit=10');
  const details = await Promise.all(r.runs.slice(0, 5).map((run) => api('GET', `/api/runs/${encodeURIComponent(run.id)}`).catch(() => null)));
  fill(
    'runs',
    r.runs.map((run, i) => {
      const d = details[i];
      const stages = d ? d.stages.map((s) => `${s.name}: ${s.state}`).join(', ') : '';
      return row([`${run.name} (${run.id})`, run.status, stages, new Date(run.createdAt).toLocaleString()]);
    }),
  );
}

async function loadAdmin() {
  await loadRuns().catch(() => {});
  const r = await api('GET', '/api/labeling/batches');
  const tbody = $('batches').querySelector('tbody');
  if (!state.adminBatch && r.batches.length) state.adminBatch = r.batches[r.batches.length - 1].id;
  tbody.replaceChildren(
    ...r.batches.map((b) => {
      const p = b.progress;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('div');
      fill.style.width = (p.total ? Math.round((100 * p.done) / p.total) : 0) + '%';
      bar.append(fill);
      const action = document.createElement('span');
      action.className = 'row-actions';
      if (state.me.role === 'admin' && b.status !== 'closed') {
        const act = (label, path, ask) => button(label, async (ev) => {
          ev.stopPropagation();
          if (ask && !confirm(ask)) return;
          try {
            await api('POST', `/api/labeling/batches/${encodeURIComponent(b.id)}/${path}`);
          } catch (e) {
            alert(e.message);
          }
          loadAdmin();
        });
        action.append(b.status === 'paused' ? act('Resume', 'resume') : act('Pause', 'pause'));
        action.append(act('Close', 'close', `Close batch "${b.name}"? Labelers' late submissions will be refused.`));
      }
      const tr = row([b.name, b.status, bar, `${p.completePairs} / ${p.pairs} (${p.done}/${p.total} labels)`, p.liveLeases, action]);
      tr.dataset.batch = b.id;
      if (b.id === state.adminBatch) tr.className = 'selected';
      tr.addEventListener('click', () => {
        state.adminBatch = b.id;
        loadAdmin();
      });
      return tr;
    }),
  );
  if (state.adminBatch) await loadStats(state.adminBatch, r.batches.find((b) => b.id === state.adminBatch));
  if (state.me.role === 'admin' && state.adminBatch && state.labelersFor !== state.adminBatch) {
    await loadBatchLabelers(state.adminBatch);
    $('item-history').hidden = true;
    await loadItems();
  }
}

// ------------------------------------------------------------------ batch administration (admins)

/** Users who may label (labelers and admins), for the labeler pickers; fetched once per view. */
async function labelerUsers() {
  const r = await api('GET', '/api/users');
  return r.users.filter((u) => !u.disabled && u.role !== 'viewer');
}

function checkboxes(container, users, ticked) {
  container.replaceChildren(
    ...users.map((u) => {
      const l = document.createElement('label');
      const c = document.createElement('input');
      c.type = 'checkbox';
      c.value = u.id;
      c.checked = ticked.includes(u.id);
      l.append(c, ` ${u.name}`);
      return l;
    }),
  );
}

const ticked = (container) => [...container.querySelectorAll('input:checked')].map((c) => c.value);

async function loadNewBatchForm() {
  const [src, users] = await Promise.all([api('GET', '/api/labeling/sources'), labelerUsers()]);
  const sel = $('nb-artifact');
  sel.replaceChildren(
    ...src.sources.map((x) => {
      const o = document.createElement('option');
      o.value = x.artifactId;
      o.dataset.items = x.items || 'pairs';
      o.textContent = `${x.kind === 'pairs' ? (x.items === 'ranking' ? 'ranking items' : 'pairs') : 'preference dataset'}: ${x.name}${x.runId ? ` (run ${x.runId})` : ''}${x.records != null ? `, ${x.records} records` : ''}`;
      return o;
    }),
  );
  if (!src.sources.length) {
    const o = document.createElement('option');
    o.value = '';
    o.textContent = 'no pairs artifact or preference dataset yet';
    sel.append(o);
  }
  checkboxes($('nb-labelers'), users, []);
}

const readFile = (input) => (input.files && input.files[0] ? input.files[0].text().then((jsonl) => ({ jsonl, fileName: input.files[0].name })) : Promise.resolve(null));

async function createBatchFromForm() {
  const msg = $('nb-msg');
  msg.className = '';
  msg.textContent = 'Creating…';
  try {
    const from = document.querySelector('input[name="nb-from"]:checked').value;
    let source;
    if (from === 'file') {
      source = await readFile($('nb-file'));
      if (!source) throw new Error('choose a JSONL file of preference pairs');
    } else {
      if (!$('nb-artifact').value) throw new Error('choose a source, or upload a file');
      source = { artifactId: $('nb-artifact').value };
    }
    const num = (id) => ($(id).value === '' ? undefined : Number($(id).value));
    const body = {
      name: $('nb-name').value.trim(),
      guidelines: $('nb-guidelines').value,
      quota: num('nb-quota'),
      goldRate: num('nb-gold-rate'),
      leaseSeconds: num('nb-lease') === undefined ? undefined : Math.round(num('nb-lease') * 60),
      source,
      labelers: ticked($('nb-labelers')),
    };
    if (num('nb-labeler-quota') !== undefined) body.labelerQuota = num('nb-labeler-quota');
    if ($('nb-suggestions').checked) body.suggestions = true;
    if ($('nb-kind').value === 'ranking') {
      body.kind = 'ranking';
      body.pairRule = $('nb-pair-rule').value;
    }
    const gold = await readFile($('nb-gold'));
    if (gold) body.gold = gold;
    const r = await api('POST', '/api/labeling/batches/setup', body);
    msg.textContent = `Created "${r.batch.name}": ${r.added} ${r.batch.kind === 'ranking' ? 'ranking items' : 'pairs'}${r.gold ? ` + ${r.gold} gold` : ''}.`;
    state.adminBatch = r.batch.id;
    $('new-batch').reset();
    await loadAdmin();
  } catch (e) {
    msg.className = 'error';
    const issues = e.body && e.body.issues ? e.body.issues.slice(0, 5).map((i) => [i.file, i.line !== undefined ? `line ${i.line}` : '', i.field ? `field "${i.field}"` : ''].filter(Boolean).join(', ') + `: ${i.reason}`) : [];
    msg.textContent = [e.message, ...issues].join(' — ');
  }
}

async function loadBatchLabelers(batchId) {
  state.labelersFor = batchId;
  const [mine, users] = await Promise.all([api('GET', `/api/labeling/batches/${encodeURIComponent(batchId)}/labelers`), labelerUsers()]);
  checkboxes($('bl-list'), users, mine.labelers);
  const keep = $('it-labeler').value;
  $('it-labeler').replaceChildren(new Option('any labeler', ''), ...users.map((u) => new Option(u.name, u.id)));
  $('it-labeler').value = users.some((u) => u.id === keep) ? keep : '';
  $('bl-msg').textContent = '';
}

async function saveBatchLabelers() {
  try {
    const r = await api('PUT', `/api/labeling/batches/${encodeURIComponent(state.adminBatch)}/labelers`, { labelers: ticked($('bl-list')) });
    $('bl-msg').textContent = r.labelers.length ? `Saved: ${r.labelers.length} labeler(s).` : 'Saved: open to every labeler.';
  } catch (e) {
    $('bl-msg').textContent = e.message;
  }
}

async function loadItems() {
  if (!state.adminBatch) return;
  const p = new URLSearchParams({ filter: $('it-filter').value, limit: '100' });
  if ($('it-q').value.trim()) p.set('q', $('it-q').value.trim());
  if ($('it-labeler').value) p.set('labeler', $('it-labeler').value);
  const batchId = state.adminBatch;
  const r = await api('GET', `/api/labeling/batches/${encodeURIComponent(batchId)}/items?${p}`);
  if (batchId !== state.adminBatch) return;
  $('it-count').textContent = `${r.total} item(s)${r.total > r.items.length ? `, first ${r.items.length} shown` : ''}`;
  fill(
    'items',
    r.items.map((it) => {
      const tr = row([
        (it.isGold ? '[gold] ' : '') + (it.prompt.length > 140 ? it.prompt.slice(0, 140) + '…' : it.prompt),
        it.labels,
        it.rankings ? it.rankings.join(' · ') : Object.entries(it.counts).map(([k, v]) => `${k}: ${v}`).join(', '),
        it.flags.join(', '),
        it.labelers.join(', '),
      ]);
      tr.dataset.pair = it.pairId;
      tr.className = 'clickable';
      tr.addEventListener('click', () => showHistory(it.pairId));
      return tr;
    }),
  );
}

const decisionText = { a: 'a is better', b: 'b is better', tie: 'tie', both_bad: 'both bad' };

async function showHistory(pairId) {
  const h = await api('GET', `/api/labeling/pairs/${encodeURIComponent(pairId)}/history`);
  $('item-history').hidden = false;
  $('item-history').dataset.pair = pairId;
  $('ih-prompt').innerHTML = renderContent(h.pair.prompt);
  if (h.pair.answers) {
    // A ranking item: its answers numbered in item order, as the rankings below name them.
    $('ih-a').innerHTML = h.pair.answers.map((t, i) => `<h4>Answer ${i + 1}</h4>${renderContent(t)}`).join('');
    $('ih-b').innerHTML = '';
  } else {
    $('ih-a').innerHTML = renderContent(h.pair.responseA);
    $('ih-b').innerHTML = renderContent(h.pair.responseB);
  }
  fill(
    'ih-events',
    h.events.map((e) => {
      if (e.kind === 'leased') return row([when(e.at), 'shown', e.user, `${e.shownLeft} on the left; now ${e.status}`]);
      if (e.kind === 'skipped') return row([when(e.at), 'skipped', e.user, e.reason || '']);
      const extra = [e.strength ? `strength ${e.strength}` : '', e.flags.length ? `flags: ${e.flags.join(', ')}` : '', e.durationMs !== null ? `${(e.durationMs / 1000).toFixed(1)} s` : '', e.rationale ? `“${e.rationale}”` : ''].filter(Boolean).join(' · ');
      // A ranking: answer numbers in item order, best first, "=" for ties.
      const ranked = e.ranks ? 'ranked ' + [...new Set(e.ranks)].sort((p, q) => p - q).map((lv) => e.ranks.flatMap((v, i) => (v === lv ? [i + 1] : [])).join('=')).join(' > ') : null;
      return row([when(e.at), ranked || decisionText[e.decision] || e.decision, e.annotator, extra]);
    }),
  );
}

/** Downloads an export through the API (the token goes in a header, so a plain link cannot). */
async function downloadExport(what) {
  const id = state.adminBatch;
  $('ex-msg').textContent = '';
  try {
    const res = await fetch(`/api/labeling/batches/${encodeURIComponent(id)}/export?what=${what}`, { headers: { authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) } });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message || `HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    // The HF folder comes as a tar named by the server (batch name and id).
    const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '');
    a.download = named ? named[1] : `${id}-${what}.jsonl`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    $('ex-msg').textContent = `Downloaded ${a.download}.`;
  } catch (e) {
    $('ex-msg').textContent = e.message;
  }
}

async function loadStats(batchId, batch) {
  const s = await api('GET', `/api/labeling/batches/${encodeURIComponent(batchId)}/stats`);
  $('stats').hidden = false;
  $('stats-title').textContent = `Quality — ${batch ? batch.name : batchId}`;
  $('fig-alpha').textContent = fmt(s.alpha);
  $('fig-kappa').textContent = fmt(s.kappa.mean);
  $('fig-bias').textContent = s.positionBias.leftWinRate === null ? '—' : `${pct(s.positionBias.leftWinRate)} (z ${fmt(s.positionBias.z, 2)})`;
  $('fig-labels').textContent = `${s.progress.labels} / ${s.skips}`;
  // Rankings: exact follows, and the mean τ-b between label and suggested order.
  const tauSug = (x) => (x.meanTau === null || x.meanTau === undefined ? '' : `, τ-b ${fmt(x.meanTau)}`);
  $('fig-follow').textContent = s.suggestions.rate === null ? '—' : `${pct(s.suggestions.rate)} of ${s.suggestions.shown}${tauSug(s.suggestions)}`;
  $('follow-panel').hidden = s.suggestions.shown === 0;
  $('follow-tau-head').hidden = !s.ranking;
  fill('follow', s.suggestions.byAnnotator.map((f) => row([f.annotator, `${f.followed} / ${f.shown}`, pct(f.rate), ...(s.ranking ? [f.meanTau === null ? '—' : fmt(f.meanTau)] : [])])));
  // Ranking batches: τ-b and pairwise agreement; α, κ and bias are then over answer pairs.
  for (const el of document.querySelectorAll('.rank-only')) el.hidden = !s.ranking;
  $('ex-rankings').hidden = !s.ranking;
  if (s.ranking) {
    $('fig-tau').textContent = s.ranking.meanTau === null ? '—' : `${fmt(s.ranking.meanTau)} (${s.ranking.comparisons})`;
    $('fig-rank-agree').textContent = pct(s.ranking.pairwiseAgreement);
  }
  // Ranking batches: "correct" is a top-1 match with the gold ranking; τ-b to it beside.
  $('gold-title').textContent = s.ranking ? 'Gold rankings: top-1 match, τ-b' : 'Gold accuracy';
  fill('gold', s.gold.map((g) => row([g.annotator, `${g.correct} / ${g.total}`, pct(g.accuracy) + (g.meanTau === undefined ? '' : ` · τ-b ${fmt(g.meanTau)}`)])));
  fill('time', s.time.map((t) => row([t.annotator, t.labels, t.medianMs === null ? '—' : (t.medianMs / 1000).toFixed(1) + ' s'])));
  fill('kappa', s.kappa.pairs.map((k) => row([`${k.a} · ${k.b}`, k.items, fmt(k.kappa)])));
  fill(
    'disputed',
    s.disputed.map((d) => row([d.prompt.length > 160 ? d.prompt.slice(0, 160) + '…' : d.prompt, d.labels, Object.entries(d.counts).map(([k, v]) => `${k}: ${v}`).join(', '), pct(d.disagreement)])),
  );
}

// ------------------------------------------------------------------ runs, reports, compare

const when = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

function button(text, onClick, cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

/** Runs, newest first, each with its stages (cached once the run has finished). */
async function runsWithStages(limit) {
  const r = await api('GET', `/api/runs?limit=${limit}`);
  const stagesOf = await Promise.all(
    r.runs.map(async (run) => {
      const cached = state.stageCache.get(run.id);
      if (cached && cached.status === run.status) return cached.stages;
      const d = await api('GET', `/api/runs/${encodeURIComponent(run.id)}`).catch(() => null);
      const st = d ? d.stages : [];
      if (TERMINAL.has(run.status) && d) state.stageCache.set(run.id, { status: run.status, stages: st });
      return st;
    }),
  );
  return r.runs.map((run, i) => ({ ...run, stages: stagesOf[i] }));
}

async function showRuns() {
  showSection('runs-view', 'runs');
  await loadRunsPage();
  startPolling();
}

async function loadRunsPage() {
  const list = await runsWithStages(30);
  $('runs-error').textContent = '';
  fill(
    'runs-table',
    list.map((run) => {
      const tr = row([
        `${run.name} (${run.id})`,
        run.status + (run.error ? `: ${run.error}` : ''),
        run.stages.map((s) => `${s.name}: ${s.state}`).join(', '),
        when(run.createdAt),
        when(run.finishedAt),
        button('Report', () => showReport(run.id, run.name)),
      ]);
      tr.dataset.run = run.id;
      return tr;
    }),
  );
}

async function showReport(runId, name) {
  showSection('report-view', 'report');
  state.reportRun = runId;
  $('report-title').textContent = `Eval report — ${name || runId}`;
  $('report-run-status').textContent = '';
  $('report-error').textContent = '';
  $('signoff-msg').textContent = '';
  $('signoff-comment').value = '';
  for (const r of document.querySelectorAll('input[name="decision"]')) r.checked = false;
  $('report-frame').hidden = true;
  $('report-frame').removeAttribute('src');
  $('signoff-panel').hidden = true;
  startPolling();
  try {
    await Promise.all([loadReportFrame(runId), loadSignoffs(runId), refreshReportRun(runId)]);
    if (state.reportRun === runId) $('signoff-panel').hidden = false;
  } catch (e) {
    if (state.reportRun !== runId) return;
    $('report-error').textContent = e.status === 404 ? `No eval report for this run yet. ${e.message}` : e.message;
  }
}

/** Asks for a one-time URL and points the sandboxed frame at it (the report keeps its own CSP). */
async function loadReportFrame(runId) {
  const v = await api('POST', `/api/runs/${encodeURIComponent(runId)}/report/view`);
  if (state.reportRun !== runId) return;
  $('report-frame').src = v.url;
  $('report-frame').hidden = false;
}

async function refreshReportRun(runId) {
  const d = await api('GET', `/api/runs/${encodeURIComponent(runId)}`);
  if (state.reportRun !== runId) return;
  $('report-run-status').textContent = d.run.status;
  $('report-title').textContent = `Eval report — ${d.run.name} (${d.run.id})`;
}

async function loadSignoffs(runId) {
  const r = await api('GET', `/api/runs/${encodeURIComponent(runId)}/report/signoffs`);
  if (state.reportRun !== runId) return;
  fill(
    'signoffs',
    r.signoffs.map((so) => {
      const tr = row([so.user, so.decision, so.comment, when(so.createdAt)]);
      tr.children[1].className = so.decision === 'approve' ? 'approve' : 'reject';
      return tr;
    }),
  );
}

async function submitSignoff() {
  const runId = state.reportRun;
  const picked = document.querySelector('input[name="decision"]:checked');
  const msg = $('signoff-msg');
  msg.className = 'error';
  if (!runId) return;
  if (!picked) {
    msg.textContent = 'Choose approve or reject first.';
    return;
  }
  const comment = $('signoff-comment').value.trim();
  if (picked.value === 'reject' && !comment) {
    msg.textContent = 'A rejection needs a comment saying why.';
    return;
  }
  $('signoff-submit').disabled = true;
  try {
    await api('POST', `/api/runs/${encodeURIComponent(runId)}/report/signoff`, { decision: picked.value, comment });
    msg.className = '';
    msg.textContent = picked.value === 'approve' ? 'Approval recorded.' : 'Rejection recorded.';
    $('signoff-comment').value = '';
    picked.checked = false;
    // The report shows its sign-offs too: reload it with a fresh ticket.
    await Promise.all([loadSignoffs(runId), loadReportFrame(runId)]);
  } catch (e) {
    msg.textContent = e.message;
  } finally {
    $('signoff-submit').disabled = false;
  }
}

async function showCompare() {
  showSection('compare-view', 'compare');
  $('compare-error').textContent = '';
  const list = await runsWithStages(50);
  const keep = new Set([...document.querySelectorAll('#compare-pick input:checked')].map((c) => c.value));
  fill(
    'compare-pick',
    list.map((run) => {
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = run.id;
      box.dataset.created = String(run.createdAt);
      box.checked = keep.has(run.id);
      box.setAttribute('aria-label', `compare ${run.id}`);
      box.addEventListener('change', updateCompareButton);
      const hasEval = run.stages.some((s) => s.kind === 'eval' && s.state === 'succeeded');
      return row([box, `${run.name} (${run.id})`, run.status + (hasEval ? ' · has eval' : ''), when(run.createdAt)]);
    }),
  );
  updateCompareButton();
  startPolling();
}

function pickedRuns() {
  return [...document.querySelectorAll('#compare-pick input:checked')]
    .sort((a, b) => Number(a.dataset.created) - Number(b.dataset.created) || a.value.localeCompare(b.value))
    .map((c) => c.value);
}

function updateCompareButton() {
  const n = pickedRuns().length;
  $('compare-go').disabled = n < 2 || n > 20;
  $('compare-count').textContent = n ? `${n} selected` : '';
}

async function runCompare() {
  const runs = pickedRuns();
  $('compare-error').textContent = '';
  try {
    const v = await api('POST', '/api/compare/view', { runs: runs.join(',') });
    $('compare-frame').src = v.url;
    $('compare-frame').hidden = false;
  } catch (e) {
    $('compare-frame').hidden = true;
    $('compare-error').textContent = e.message;
  }
}

// ------------------------------------------------------------------ live status

function startPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(async () => {
    try {
      if (state.view === 'admin') await loadAdmin();
      else if (state.view === 'runs') await loadRunsPage();
      else if (state.view === 'report' && state.reportRun) {
        // Status and sign-offs only: reloading the frame would lose the reader's place.
        await refreshReportRun(state.reportRun);
        await loadSignoffs(state.reportRun);
      }
      else if (state.view === 'label' && !state.busy) {
        const had = state.batchId;
        await loadQueue();
        if (!state.assignment && state.batchId) await fetchNext();
        else if (had !== state.batchId) await fetchNext();
      }
    } catch {
      // the next poll tries again
    }
  }, POLL_MS);
}

// ------------------------------------------------------------------ wiring

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (t) login(t);
  });
  $('logout').addEventListener('click', () => logout());
  $('nav-label').addEventListener('click', () => showLabeler());
  $('nav-admin').addEventListener('click', () => showAdmin());
  $('nav-runs').addEventListener('click', () => showRuns().catch((e) => ($('runs-error').textContent = e.message)));
  $('nav-compare').addEventListener('click', () => showCompare().catch((e) => ($('compare-error').textContent = e.message)));
  $('report-back').addEventListener('click', () => showRuns().catch(() => {}));
  $('signoff-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitSignoff();
  });
  $('compare-go').addEventListener('click', () => runCompare());
  $('new-batch').addEventListener('submit', (e) => {
    e.preventDefault();
    createBatchFromForm();
  });
  $('nb-file').addEventListener('change', () => (document.querySelector('input[name="nb-from"][value="file"]').checked = true));
  // A collect stage's ranking items make a ranking batch: the kind follows the chosen source.
  $('nb-artifact').addEventListener('change', () => {
    const o = $('nb-artifact').selectedOptions[0];
    if (o && o.dataset.items) $('nb-kind').value = o.dataset.items === 'ranking' ? 'ranking' : 'pairwise';
  });
  $('batch-labelers').addEventListener('submit', (e) => {
    e.preventDefault();
    saveBatchLabelers();
  });
  $('ex-prefs').addEventListener('click', () => downloadExport('preferences'));
  let searchTimer = null;
  $('it-q').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadItems().catch(() => {}), 200);
  });
  $('it-filter').addEventListener('change', () => loadItems().catch(() => {}));
  $('it-labeler').addEventListener('change', () => loadItems().catch(() => {}));
  $('ex-labels').addEventListener('click', () => downloadExport('labels'));
  $('ex-rankings').addEventListener('click', () => downloadExport('rankings'));
  $('ex-hf').addEventListener('click', () => downloadExport('hf'));
  dropTarget($('rank-pool'), { pool: true });
  $('batch').addEventListener('change', async (e) => {
    state.batchId = e.target.value;
    renderProgress();
    await fetchNext();
    e.target.blur();
  });
  for (const b of document.querySelectorAll('[data-choice]')) b.addEventListener('click', () => setChoice(b.dataset.choice));
  $('submit').addEventListener('click', () => submit());
  $('skip').addEventListener('click', () => openSkip());
  $('undo').addEventListener('click', () => undo());
  $('help').addEventListener('click', () => toggleGuidelines());
  $('guidelines').addEventListener('click', (e) => {
    if (e.target === $('guidelines')) toggleGuidelines(false);
  });
  $('skip-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const reason = $('skip-reason').value.trim();
    if (!reason) return;
    $('skip-reason').blur();
    $('skip-form').hidden = true;
    skip(reason);
  });
  document.addEventListener('keydown', onKey);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) login(saved);
});
