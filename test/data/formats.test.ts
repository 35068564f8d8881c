import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectFormat, normalizeRecord, roleOrderProblem, serializeRecord, type Message } from '../../src/data/formats.js';
import { readLines } from '../../src/data/jsonl.js';

const U = (content: string): Message => ({ role: 'user', content });
const A = (content: string): Message => ({ role: 'assistant', content });
const S = (content: string): Message => ({ role: 'system', content });

test('detectFormat recognises every TRL format and honours a forced kind', () => {
  assert.equal(detectFormat({ text: 'x' }), 'text');
  assert.equal(detectFormat({ prompt: 'p', completion: 'c' }), 'prompt-completion');
  assert.equal(detectFormat({ prompt: [U('p')], completion: [A('c')] }), 'conversational-prompt-completion');
  assert.equal(detectFormat({ messages: [] }), 'messages');
  assert.equal(detectFormat({ prompt: 'p', chosen: 'a', rejected: 'b' }), 'explicit-prompt');
  assert.equal(detectFormat({ prompt: [U('p')], chosen: [A('a')], rejected: [A('b')] }), 'conversational-explicit-prompt');
  assert.equal(detectFormat({ chosen: 'a', rejected: 'b' }), 'implicit-prompt');
  assert.equal(detectFormat({ chosen: [U('q'), A('a')], rejected: [U('q'), A('b')] }), 'conversational-implicit-prompt');
  assert.equal(detectFormat({ prompt: 'p', completion: 'c', label: true }), 'unpaired');
  assert.equal(detectFormat({ prompt: [U('p')], completion: [A('c')], label: false }), 'conversational-unpaired');
  assert.equal(detectFormat({ prompt: 'p' }), 'prompt-only');
  assert.equal(detectFormat({ prompt: [U('p')] }), 'conversational-prompt-only');
  assert.equal(detectFormat({ id: 3 }), undefined);
  // forcing a kind: a prompt+completion file read as prompts, a preference file read as sft is not
  assert.equal(detectFormat({ prompt: 'p', completion: 'c' }, 'prompt'), 'prompt-only');
  assert.equal(detectFormat({ chosen: 'a' }, 'preference'), 'implicit-prompt');
});

test('normalizeRecord keeps only the format fields, in a fixed order', () => {
  const r = normalizeRecord({ rejected: 'b', id: 7, chosen: 'a', prompt: 'p', margin: 2 }, 'explicit-prompt');
  assert.ok(r.ok);
  assert.equal(serializeRecord(r.record, 'explicit-prompt'), '{"prompt":"p","chosen":"a","rejected":"b","margin":2}');
  const m = normalizeRecord({ messages: [{ content: 'hi', role: 'user', name: 'x' }, A('yo')] }, 'messages');
  assert.ok(m.ok);
  assert.equal(serializeRecord(m.record, 'messages'), '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}');
});

test('normalizeRecord reports missing, non-string, empty fields and wrong shapes with the field name', () => {
  const bad = (v: unknown, f: Parameters<typeof normalizeRecord>[1]) => {
    const r = normalizeRecord(v, f);
    assert.ok(!r.ok, JSON.stringify(v));
    return r.issues;
  };
  assert.deepEqual(bad({ prompt: 'p', chosen: 'a' }, 'explicit-prompt'), [{ field: 'rejected', reason: 'missing' }]);
  assert.deepEqual(bad({ prompt: 'p', chosen: 5, rejected: 'r' }, 'explicit-prompt'), [{ field: 'chosen', reason: 'must be a string, got a number' }]);
  // Empty answers are legal (EOS-only, see test/data/interop.test.ts); an empty prompt is not.
  assert.deepEqual(bad({ prompt: ' ', chosen: '', rejected: '  ' }, 'explicit-prompt'), [{ field: 'prompt', reason: 'is empty' }]);
  assert.match(bad({ prompt: 'p', chosen: 'a', rejected: 'b', margin: 'big' }, 'explicit-prompt')[0]!.reason, /finite number/);
  assert.equal(bad({ prompt: 'p', chosen: 'a', rejected: 'b' }, 'implicit-prompt')[0]!.field, 'prompt');
  assert.match(bad({ prompt: [U('p')], chosen: 'a', rejected: 'b' }, 'explicit-prompt')[0]!.reason, /message list/);
  assert.match(bad({ prompt: 'p', completion: 'c', label: 'yes' }, 'unpaired')[0]!.reason, /true or false/);
  assert.match(bad([1, 2], 'text')[0]!.reason, /JSON object/);
  assert.equal(bad({ messages: [{ role: 'robot', content: 'x' }] }, 'messages')[0]!.field, 'messages[0].role');
  assert.equal(bad({ messages: [U('x'), { role: 'assistant' }] }, 'messages')[0]!.field, 'messages[1].content');
});

test('chosen identical to rejected is a warning, not an error', () => {
  const r = normalizeRecord({ prompt: 'p', chosen: 'same', rejected: 'same' }, 'explicit-prompt');
  assert.ok(r.ok);
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.field, 'rejected');
});

test('role order: system first, then user/assistant alternating, ending as the position requires', () => {
  assert.equal(roleOrderProblem([S('s'), U('u'), A('a')], 'conversation'), undefined);
  assert.equal(roleOrderProblem([U('u'), A('a'), U('u'), A('a')], 'conversation'), undefined);
  assert.match(roleOrderProblem([A('a'), U('u')], 'conversation')!, /message 0 is "assistant"/);
  assert.match(roleOrderProblem([U('u'), U('u'), A('a')], 'conversation')!, /message 1/);
  assert.match(roleOrderProblem([U('u')], 'conversation')!, /end with a "assistant"/);
  assert.match(roleOrderProblem([U('u'), S('s'), A('a')], 'conversation')!, /system/);
  assert.equal(roleOrderProblem([S('s'), U('u')], 'prompt'), undefined);
  assert.match(roleOrderProblem([U('u'), A('a')], 'prompt')!, /end with a "user"/);
  assert.equal(roleOrderProblem([A('a')], 'response'), undefined);
  assert.match(roleOrderProblem([U('a')], 'response')!, /"assistant" was expected/);
  assert.match(roleOrderProblem([S('s')], 'conversation')!, /no user message/);
  const r = normalizeRecord({ messages: [A('hi'), U('hello')] }, 'messages');
  assert.ok(!r.ok);
  assert.equal(r.issues[0]!.field, 'messages');
});

async function* chunksOf(...parts: (string | number[])[]) {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
}
async function lines(...parts: (string | number[])[]) {
  const out = [];
  for await (const l of readLines(chunksOf(...parts), { maxLineBytes: 32 })) out.push(l);
  return out;
}

test('readLines: numbering across chunk borders, CRLF, BOM, trailing newline, invalid UTF-8, long lines', async () => {
  assert.deepEqual(await lines('\ufeff{"a":', '1}\r\n{"b":2}\r\n'), [
    { line: 1, text: '{"a":1}' },
    { line: 2, text: '{"b":2}' },
  ]);
  assert.deepEqual(await lines('x\n\ny'), [
    { line: 1, text: 'x' },
    { line: 2, text: '' },
    { line: 3, text: 'y' },
  ]);
  assert.deepEqual(await lines(''), []);
  assert.deepEqual(await lines('ok\n', [0x61, 0xff, 0x62, 0x0a], 'é\n'), [
    { line: 1, text: 'ok' },
    { line: 2, error: 'not valid UTF-8' },
    { line: 3, text: 'é' },
  ]);
  // a multi-byte character split across chunks is fine
  const e = Buffer.from('é', 'utf8');
  assert.deepEqual(await lines([e[0]!], [e[1]!, 0x0a]), [{ line: 1, text: 'é' }]);
  const long = await lines('a'.repeat(20), 'b'.repeat(20), '\nshort\n');
  assert.equal(long[0]!.error, 'line is longer than 32 bytes (the limit; raise it with --max-line-bytes)');
  assert.deepEqual(long[1], { line: 2, text: 'short' });
  // a BOM after line 1 is content, not stripped
  assert.deepEqual((await lines('a\n\ufeffb\n'))[1], { line: 2, text: '\ufeffb' });
});
