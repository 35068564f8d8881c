// A tiny, safe Markdown subset for model output. Everything is HTML-escaped FIRST; the only tags
// in the result are the ones this file adds (p, br, pre, code, strong, em, ul, ol, li), none with
// attributes. So no HTML or script from a model response can ever run or render.
// Subset: fenced code blocks (```), inline `code`, **bold**, *italic* / _italic_, "- " / "* " and
// "1. " lists, paragraphs separated by blank lines, single newlines kept as line breaks.

export function escapeHtml(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

// Inline formatting on ALREADY-ESCAPED text. Code spans are cut out first so their contents are
// not formatted; the placeholders use a private-use character that escaped text cannot contain
// in this position (it is stripped from the input beforehand).
function inline(escaped) {
  const codes = [];
  let s = escaped.replace(/`([^`\n]+)`/g, (_, c) => {
    codes.push(c);
    return '\uE000' + (codes.length - 1) + '\uE001';
  });
  s = s.replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>');
  s = s.replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/(^|[^_\w])_([^_\n]+)_(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/\uE000(\d+)\uE001/g, (_, i) => '<code>' + codes[Number(i)] + '</code>');
  return s;
}

export function renderMarkdown(src) {
  const text = String(src ?? '').replace(/\r\n?/g, '\n').replace(/[\uE000\uE001]/g, '');
  const lines = text.split('\n');
  const out = [];
  let para = [];
  let list = null; // { tag: 'ul'|'ol', items: [] }
  const flushPara = () => {
    if (para.length) out.push('<p>' + para.map((l) => inline(escapeHtml(l))).join('<br>') + '</p>');
    para = [];
  };
  const flushList = () => {
    if (list) out.push('<' + list.tag + '>' + list.items.map((i) => '<li>' + inline(escapeHtml(i)) + '</li>').join('') + '</' + list.tag + '>');
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```/.exec(line);
    if (fence) {
      flushPara();
      flushList();
      const body = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) body.push(lines[i++]);
      out.push('<pre><code>' + escapeHtml(body.join('\n')) + '</code></pre>');
      continue;
    }
    const ul = /^\s*[-*]\s+(.*)$/.exec(line);
    const ol = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (ul || ol) {
      flushPara();
      const tag = ul ? 'ul' : 'ol';
      if (list && list.tag !== tag) flushList();
      if (!list) list = { tag, items: [] };
      list.items.push((ul || ol)[1]);
      continue;
    }
    if (line.trim() === '') {
      flushPara();
      flushList();
      continue;
    }
    flushList();
    para.push(line);
  }
  flushPara();
  flushList();
  return out.join('\n');
}

const ROLES = new Set(['system', 'user', 'assistant']);

/** The message list a text holds (labeling stores chat prompts and answers as their JSON), or null. */
export function messagesOf(text) {
  if (typeof text !== 'string' || !text.startsWith('[{')) return null;
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v) && v.length > 0 && v.every((m) => m && ROLES.has(m.role) && typeof m.content === 'string')) return v;
  } catch {
    // not JSON: plain text that starts with "[{"
  }
  return null;
}

/**
 * Model or dataset text as safe HTML: a message list as a chat (one bubble per turn with its role,
 * Markdown inside, system prompts folded), anything else as Markdown. Roles come from a fixed set,
 * so the class names and labels added here are ours, never the data's.
 */
export function renderContent(text) {
  const msgs = messagesOf(text);
  if (!msgs) return renderMarkdown(text);
  const turns = msgs.map((m) => {
    const body = `<div class="md">${renderMarkdown(m.content)}</div>`;
    if (m.role === 'system') return `<details class="turn system"><summary>system prompt</summary>${body}</details>`;
    return `<div class="turn ${m.role}"><div class="role">${m.role}</div>${body}</div>`;
  });
  return `<div class="chat">${turns.join('')}</div>`;
}
