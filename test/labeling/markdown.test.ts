import { test } from 'node:test';
import assert from 'node:assert/strict';

type Md = { renderMarkdown(s: string): string; escapeHtml(s: string): string };
const md = (await import('../../src/web/markdown.js' as string)) as Md;

test('markdown renderer escapes every tag from the input', () => {
  const out = md.renderMarkdown('<script>alert(1)</script> <img src=x onerror=alert(1)> **<b>x</b>**');
  assert.ok(!/<script|<img|<b>/i.test(out), out);
  assert.ok(out.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(out.includes('<strong>&lt;b&gt;x&lt;/b&gt;</strong>'));
  // the only tags present are from the safe subset, without attributes
  for (const m of out.matchAll(/<\/?([a-z]+)([^>]*)>/g)) {
    assert.ok(['p', 'br', 'pre', 'code', 'strong', 'em', 'ul', 'ol', 'li'].includes(m[1]!), m[0]);
    assert.equal(m[2], '');
  }
});

test('markdown subset: paragraphs, code blocks, inline code, emphasis, lists', () => {
  const out = md.renderMarkdown('Hello *world* and `a<b`\nnext line\n\n```\nif (a < b) { **x** }\n```\n- one\n- **two**\n\n1. first\n2. second');
  assert.equal(
    out,
    [
      '<p>Hello <em>world</em> and <code>a&lt;b</code><br>next line</p>',
      '<pre><code>if (a &lt; b) { **x** }</code></pre>',
      '<ul><li>one</li><li><strong>two</strong></li></ul>',
      '<ol><li>first</li><li>second</li></ol>',
    ].join('\n'),
  );
  assert.equal(md.renderMarkdown('a snake_case_name stays'), '<p>a snake_case_name stays</p>');
});
