import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitingText } from '../../src/orchestrator/follow.js';

test('a waiting stage shows its count once, whether or not the handler put it in its message', () => {
  assert.equal(waitingText('waiting for labels (37/200)', 37, 200), 'waiting for labels (37/200)');
  assert.equal(waitingText('waiting for labels', 37, 200), 'waiting for labels (37/200)');
  assert.equal(waitingText(undefined, undefined, undefined), 'waiting (0/?)');
});
