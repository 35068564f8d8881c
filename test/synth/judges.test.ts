// Known answers for the two rule judges, and their refusal of invalid input.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as sentiment from '../../judges/sentiment.mjs';
import * as count from '../../judges/count.mjs';
import { loadRuleJudge } from '../../src/eval/judges.js';

const s = (prompt: string, response: string) => sentiment.score(prompt, response);

test('sentiment: positive beats neutral beats negative, strength and intensifiers order scores', () => {
  assert.ok(s('the movie was', ' good.') > 0);
  assert.ok(s('the movie was', ' bad.') < 0);
  assert.equal(s('the movie was', ' long.'), 0);
  assert.equal(s('the movie was', ' purple and enormous.'), 0, 'unknown words count nothing');
  assert.ok(s('the movie was', ' great.') > s('the movie was', ' good.'));
  assert.ok(s('the movie was', ' brilliant.') > s('the movie was', ' great.'));
  assert.ok(s('the movie was', ' very good.') > s('the movie was', ' good.'));
  assert.ok(s('the movie was', ' somewhat good.') < s('the movie was', ' good.'));
  assert.ok(s('the movie was', ' extremely terrible.') < s('the movie was', ' terrible.'));
  assert.ok(s('the movie was', ' good. i loved it.') > s('the movie was', ' good.'), 'sum over sentences');
  // Exact raw sums: good 1, great 2, brilliant 3; very ×1.5, extremely ×2; loved 2.
  assert.equal(sentiment.rawScore('the plot was very good and extremely brilliant. i loved it.'), 1.5 + 6 + 2);
  assert.equal(sentiment.rawScore('THE PLOT WAS GREAT!'), 2, 'case-insensitive');
});

test('sentiment: negation flips (damped) within its clause only', () => {
  assert.ok(s('the movie was', ' not good.') < 0);
  assert.ok(s('the movie was', ' not bad.') > 0);
  assert.equal(sentiment.rawScore('it was not good'), -0.5);
  assert.equal(sentiment.rawScore('it was not very good'), -0.75, 'negation over an intensifier');
  assert.equal(sentiment.rawScore("it wasn't good"), -0.5, "n't negates");
  assert.equal(sentiment.rawScore('it was never boring'), 1);
  assert.equal(sentiment.rawScore('not the best, but good'), 1, 'a clause break ends the negation');
  assert.equal(sentiment.rawScore('it was not long and good'), 1, 'the negation is used up by the first lexicon word');
  assert.equal(sentiment.rawScore('not that i would ever say it was good'), 1, 'beyond the 3-word window');
  // Negation crosses the prompt/response boundary: the prompt is part of the text.
  assert.ok(s('the movie was not', ' good.') < 0);
});

test('sentiment: scores are odd, bounded and monotone in the raw sum', () => {
  for (const raw of [0.5, 1, 3, 10, 100]) {
    const v = sentiment.normalize(raw);
    assert.ok(v > 0 && v < 1);
    assert.equal(sentiment.normalize(-raw), -v);
    assert.ok(sentiment.normalize(raw + 1) > v);
  }
  assert.equal(sentiment.normalize(0), 0);
  assert.equal(s('', ''), 0);
});

test('sentiment: non-string input is refused with a clear error', () => {
  const bad: unknown[] = [undefined, null, 3, ['good'], { text: 'good' }];
  for (const v of bad) {
    assert.throws(() => sentiment.score('the movie was', v as string), (e: Error) => e instanceof TypeError && /sentiment-lexicon judge: response must be a string, got /.test(e.message));
    assert.throws(() => sentiment.score(v as string, ' good.'), /prompt must be a string/);
  }
  assert.throws(() => sentiment.score('x', null as unknown as string), /got null/);
  assert.throws(() => sentiment.score('x', ['a'] as unknown as string), /got an array/);
});

test('count: exact compliance, and each way to fail', () => {
  const ok = (p: string, r: string) => count.score(p, r);
  assert.equal(ok('list three fruits:', ' apple, pear, plum.'), 1);
  assert.equal(ok('list 3 fruits:', 'apple, pear, plum'), 1, 'digits, no period, no leading space');
  assert.equal(ok('name two colors:', ' red ,blue'), 1, 'spaces around commas are ignored');
  assert.equal(ok('list three fruits:', ' apple, pear.'), 0, 'too few');
  assert.equal(ok('list three fruits:', ' apple, pear, plum, peach.'), 0, 'too many');
  assert.equal(ok('list three fruits:', ' apple, pear, dog.'), 0, 'outsider');
  assert.equal(ok('list three fruits:', ' apple, pear, apple.'), 0, 'repeat');
  assert.equal(ok('list three fruits:', ' apple pear plum.'), 0, 'not comma-separated');
  assert.equal(ok('list three fruits:', ' Apple, Pear, Plum.'), 0, 'not lower-case');
  assert.equal(ok('list three fruits:', ''), 0, 'empty');
  const c = count.check('give 4 animals:', ' cat, dog, plum.');
  assert.equal(c.ok, false);
  assert.equal(c.expected, 4);
  assert.deepEqual(c.items, ['cat', 'dog', 'plum']);
  assert.ok(c.problems.some((p) => p.startsWith('count:')) && c.problems.some((p) => p.includes('not animals: plum')));
});

test('count: instructions it cannot read, and non-string input, are refused', () => {
  assert.equal(count.parseInstruction('list seven fruits:'), null, 'count out of range');
  assert.equal(count.parseInstruction('list three cars:'), null, 'unknown category');
  assert.equal(count.parseInstruction('sing three fruits:'), null, 'unknown verb');
  assert.deepEqual(count.parseInstruction('Choose 5 Tools :'), { n: 5, category: 'tools' });
  assert.equal(count.parseInstruction('list six fruits:'), null, 'six is beyond MAX_COUNT');
  assert.throws(() => count.score('the movie was', ' good.'), /count-list judge: not a counting instruction/);
  assert.throws(() => count.score('list three fruits:', 42 as unknown as string), (e: Error) => e instanceof TypeError && /response must be a string, got number/.test(e.message));
  assert.throws(() => count.score(undefined as unknown as string, 'apple'), /prompt must be a string, got undefined/);
});

test('both judges load through the rule-judge loader with name and version', async () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const sj = await loadRuleJudge('judges/sentiment.mjs', root);
  const cj = await loadRuleJudge('judges/count.mjs', root);
  assert.deepEqual([sj.name, sj.version, cj.name, cj.version], ['sentiment-lexicon', '1', 'count-list', '2']);
  // the loader may wrap score() so that it returns a promise
  assert.ok((await sj.score!('the movie was', ' great.')) > (await sj.score!('the movie was', ' awful.')));
  assert.equal(await cj.score!('pick 2 tools:', ' saw, axe.'), 1);
  assert.equal(await cj.score!('pick 2 tools:', ' saw, dog.'), 0);
});
