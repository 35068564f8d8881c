// A BullMQ worker whose Redis goes away backs off and says so once per interval (not ten lines a
// second), says when Redis is back, and on SIGTERM with nothing running exits within its grace
// period even while Redis is unreachable.
import test from 'node:test';
import assert from 'node:assert/strict';
import { tmpDir } from '../helpers/tmp.js';
import { startRedis } from './redis.js';
import { spawnWorker } from './workers.js';
import { RedisOutage, redisRetryDelay } from '../../src/orchestrator/executors/bullmq.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

test('reconnect backoff doubles from 0.5 s to its cap; outage lines are throttled', async () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 12].map((t) => redisRetryDelay(t, 30_000)), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  let now = 0;
  const said: string[] = [];
  const o = new RedisOutage('redis://user:secret@host:1', (m) => said.push(m), 10_000, () => now);
  const refused = Object.assign(new Error('connect ECONNREFUSED host:1'), { code: 'ECONNREFUSED' });
  for (let i = 0; i < 100; i++) {
    o.error(refused);
    o.retryStrategy(i + 1);
    now += 100; // 100 errors in 10 s
  }
  assert.equal(o.error(new Error('ERR syntax error')), false, 'other errors are the caller\'s to report');
  await sleep(150);
  assert.equal(said.length, 1);
  assert.match(said[0]!, /^Redis at redis:\/\/host:1 is unreachable \(connect ECONNREFUSED host:1\); retrying with backoff, next attempt in \d+ s/);
  o.ready();
  assert.equal(said.at(-1), 'Redis at redis://host:1 is reachable again');
});

test('worker without Redis: one line per interval, "reachable again", and SIGTERM exits within the grace period', { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  if (!redis.own) return t.skip('needs a redis-server the test can kill');
  const w = await spawnWorker(tmpDir(), redis.url, ['--grace-ms', '2000'], { ALIGNFLOW_REDIS_REPORT_MS: '3000', ALIGNFLOW_REDIS_RETRY_MAX_MS: '2000' });
  await redis.kill();
  const downAt = Date.now();
  await sleep(10_000);
  const during = w.output();
  const lines = count(during, /is unreachable/);
  console.log(`# ${((Date.now() - downAt) / 1000).toFixed(1)} s without Redis: ${lines} outage line(s), ${during.split('\n').length} output lines in all`);
  assert.ok(lines >= 2 && lines <= 5, `one line per 3 s interval, got ${lines}:\n${during}`);
  assert.equal(count(during, /worker error/), 0, during);
  assert.match(during, /next attempt in \d+ s/);

  await redis.start();
  for (let i = 0; i < 100 && !/reachable again/.test(w.output()); i++) await sleep(100);
  assert.match(w.output(), /is reachable again/);

  await redis.kill();
  await sleep(500);
  const t0 = Date.now();
  w.proc.kill('SIGTERM');
  const killer = setTimeout(() => w.proc.kill('SIGKILL'), 30_000);
  const code = await w.exited;
  clearTimeout(killer);
  const secs = (Date.now() - t0) / 1000;
  console.log(`# SIGTERM with Redis down: exited ${code} after ${secs.toFixed(1)} s (grace 2 s)`);
  assert.equal(code, 0, w.output());
  assert.ok(secs < 10, `exited after ${secs} s`);
  assert.match(w.output(), /worker \d+ stopped/);
});
